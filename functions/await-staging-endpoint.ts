/**
 * AwaitStagingEndpoint: waits for the staging Service's LoadBalancer ingress, then for the model to answer
 * `GET /v1/models/<name>` as AVAILABLE there → `serving` + endpoint; `pending` when the budget runs out.
 * A Service that is gone fails at once rather than waiting out the deadline (shared awaitEndpoint).
 */
import { FUNCTION_SETTINGS } from './shared/function-settings';
import { endpointTiming } from './shared/phase';
import { loadSettings } from './shared/settings';
import { StageSchema, parseInput, stateWith } from './shared/state';
import type { PipelineState, StageResult } from './shared/types';
import { awaitEndpoint } from './shared/workloads';

/** Read and validated once, at init: a bad value fails the Lambda's init naming the variable. */
const settings = loadSettings(FUNCTION_SETTINGS.AwaitStagingEndpoint);
const Input = stateWith({ staging: StageSchema });

export async function handler(event: PipelineState): Promise<StageResult> {
  const { run, staging } = parseInput(Input, event, 'AwaitStagingEndpoint input');
  return awaitEndpoint(staging, run.modelName, endpointTiming(settings));
}
