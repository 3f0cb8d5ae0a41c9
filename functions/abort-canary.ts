/**
 * AbortCanary: a canary failed its analysis. The production Service goes back to the stable version at
 * once (its pods are ready: they served their share), the stable Deployment back to every replica, the
 * canary's to 0 (Cleanup then deletes it). The failure path follows (FailCanary → Cleanup →
 * RecordFailure with the evidence → NotifyFailure). Idempotent. Returns `$.canary`, `rolledBack`.
 */
import { restoreStable } from './shared/canary';
import { CanaryError, InvalidInputError } from './shared/errors';
import { FUNCTION_SETTINGS } from './shared/function-settings';
import { logger, withLogContext } from './shared/logger';
import { productionExposure } from './shared/manifests';
import { phaseClock } from './shared/phase';
import { loadSettings } from './shared/settings';
import { CanarySchema, parseInput, stateWith } from './shared/state';
import type { CanaryState, PipelineState } from './shared/types';

/** Read and validated once, at init: a bad value fails the Lambda's init naming the variable. */
const settings = loadSettings(FUNCTION_SETTINGS.AbortCanary);
const Input = stateWith({ canary: CanarySchema });

async function abortCanary(event: PipelineState): Promise<CanaryState> {
  const { run, canary } = parseInput(Input, event, 'AbortCanary input');
  if (canary.status !== 'rollback' && canary.status !== 'rolledBack') {
    throw new InvalidInputError(`AbortCanary input is invalid: canary.status must be "rollback" (got "${canary.status}").`);
  }
  const restored = await restoreStable(run, canary.stableVersion, canary.totalReplicas, productionExposure(settings));
  if ('reason' in restored) throw new CanaryError(`The canary of ${run.version} failed and could not be rolled back: ${restored.reason}.`);
  const rolledBackAt = canary.rolledBackAt ?? new Date(phaseClock().now()).toISOString();
  logger.warn('canary rolled back', { from: run.version, to: canary.stableVersion, failure: canary.failure, failedAt: canary.failedAt, rolledBackAt });
  return { ...canary, status: 'rolledBack', rolledBackAt };
}

export const handler = withLogContext('AbortCanary', abortCanary);
