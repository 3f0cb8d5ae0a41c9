/**
 * ExposeStaging: applies the staging LoadBalancer Service selecting this version's staging pods
 * (idempotent). Returns StageResult `exposed`; switchedAt marks when the endpoint phase began.
 */
import { applyObject } from './shared/kube';
import { logger, withLogContext } from './shared/logger';
import { servingService, stagingServiceTarget, workloadSettings } from './shared/manifests';
import { StageSchema, parseInput, stateWith } from './shared/state';
import type { PipelineState, StageResult } from './shared/types';

const Input = stateWith({ staging: StageSchema });

async function exposeStaging(event: PipelineState): Promise<StageResult> {
  const { run, staging } = parseInput(Input, event, 'ExposeStaging input');
  await applyObject(servingService(stagingServiceTarget(run), workloadSettings()));
  logger.info('staging Service applied', { service: staging.serviceName, namespace: staging.namespace });
  return { ...staging, status: 'exposed', switchedAt: staging.switchedAt ?? new Date().toISOString() };
}

export const handler = withLogContext('ExposeStaging', exposeStaging);
