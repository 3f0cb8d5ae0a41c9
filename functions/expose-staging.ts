/**
 * ExposeStaging: applies the staging LoadBalancer Service selecting this version's staging pods
 * (idempotent). Returns StageResult `exposed`; switchedAt marks when the endpoint phase began.
 */
import { applyObject } from './shared/kube';
import { servingService, stagingServiceTarget, workloadSettings } from './shared/manifests';
import { StageSchema, parseInput, stateWith } from './shared/state';
import type { PipelineState, StageResult } from './shared/types';

const Input = stateWith({ staging: StageSchema });

export async function handler(event: PipelineState): Promise<StageResult> {
  const { run, staging } = parseInput(Input, event, 'ExposeStaging input');
  await applyObject(servingService(stagingServiceTarget(run), workloadSettings()));
  return { ...staging, status: 'exposed', switchedAt: staging.switchedAt ?? new Date().toISOString() };
}
