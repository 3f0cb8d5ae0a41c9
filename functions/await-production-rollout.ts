/**
 * AwaitProductionRollout: watches this version's production Deployment and its pods for one budget →
 * `ready`, `pending`, or RolloutFailedError with the reason and pod log tail. Traffic still goes to the
 * previous version meanwhile. Past ROLLOUT_TIMEOUT_SECONDS → PhaseTimeoutError. A Deployment that is gone
 * fails at once rather than waiting out the rollout deadline.
 */
import { FUNCTION_SETTINGS } from './shared/function-settings';
import { logWait, withLogContext } from './shared/logger';
import { workloadLabels } from './shared/names';
import { rolloutTiming } from './shared/phase';
import { loadSettings } from './shared/settings';
import { StageSchema, parseInput, stateWith } from './shared/state';
import type { PipelineState, StageResult } from './shared/types';
import { awaitRollout } from './shared/workloads';

/** Read and validated once, at init: a bad value fails the Lambda's init naming the variable. */
const settings = loadSettings(FUNCTION_SETTINGS.AwaitProductionRollout);
const Input = stateWith({ production: StageSchema });

async function awaitProductionRollout(event: PipelineState): Promise<StageResult> {
  const { run, production } = parseInput(Input, event, 'AwaitProductionRollout input');
  const result = await awaitRollout(production, workloadLabels(run.modelName, run.version, 'production'), rolloutTiming(settings));
  return logWait(result, 'production rollout', { deployment: production.deploymentName, namespace: production.namespace });
}

export const handler = withLogContext('AwaitProductionRollout', awaitProductionRollout);
