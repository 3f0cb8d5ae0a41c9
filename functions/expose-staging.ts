/**
 * ExposeStaging: applies the staging LoadBalancer Service selecting this version's staging pods
 * (idempotent). Returns StageResult `exposed`; switchedAt marks when the endpoint phase began.
 */
import { applyObject } from './shared/kube';
import { FUNCTION_SETTINGS } from './shared/function-settings';
import { logger, withLogContext } from './shared/logger';
import { servingService, stagingExposure, stagingServiceTarget } from './shared/manifests';
import { loadSettings } from './shared/settings';
import { StageSchema, parseInput, stateWith } from './shared/state';
import type { PipelineState, StageResult } from './shared/types';

/** Read and validated once, at init: a bad value fails the Lambda's init naming the variable. */
const settings = loadSettings(FUNCTION_SETTINGS.ExposeStaging);
const Input = stateWith({ staging: StageSchema });

async function exposeStaging(event: PipelineState): Promise<StageResult> {
  const { run, staging } = parseInput(Input, event, 'ExposeStaging input');
  await applyObject(servingService(stagingServiceTarget(run), stagingExposure(settings)));
  logger.info('staging Service applied', { serviceName: staging.serviceName, namespace: staging.namespace });
  return { ...staging, status: 'exposed', switchedAt: staging.switchedAt ?? new Date().toISOString() };
}

export const handler = withLogContext('ExposeStaging', exposeStaging);
