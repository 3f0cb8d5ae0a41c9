/**
 * AwaitStagingRollout: watches the staging Deployment and its pods for one budget → `ready`, `pending`,
 * or RolloutFailedError (ProgressDeadlineExceeded, CrashLoopBackOff, ImagePullBackOff; with the pod's
 * log tail). Past ROLLOUT_TIMEOUT_SECONDS → PhaseTimeoutError. A Deployment that is gone fails at once
 * rather than waiting out the rollout deadline.
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
const settings = loadSettings(FUNCTION_SETTINGS.AwaitStagingRollout);
const Input = stateWith({ staging: StageSchema });

async function awaitStagingRollout(event: PipelineState): Promise<StageResult> {
  const { run, staging } = parseInput(Input, event, 'AwaitStagingRollout input');
  const result = await awaitRollout(staging, workloadLabels(run.modelName, run.version, 'staging'), rolloutTiming(settings));
  return logWait(result, 'staging rollout', { deployment: staging.deploymentName, namespace: staging.namespace });
}

export const handler = withLogContext('AwaitStagingRollout', awaitStagingRollout);
