/**
 * AwaitStagingEndpoint: waits for the staging Service's LoadBalancer ingress, then for the model to answer
 * `GET /v1/models/<name>` as AVAILABLE there → `serving` + endpoint; `pending` when the budget runs out.
 * A Service that is gone fails at once rather than waiting out the deadline (shared awaitEndpoint).
 */
import { FUNCTION_SETTINGS } from './shared/function-settings';
import { logWait, withLogContext } from './shared/logger';
import { endpointTiming } from './shared/phase';
import { loadSettings } from './shared/settings';
import { StageSchema, parseInput, stateWith } from './shared/state';
import type { PipelineState, StageResult } from './shared/types';
import { awaitEndpoint } from './shared/workloads';

/** Read and validated once, at init: a bad value fails the Lambda's init naming the variable. */
const settings = loadSettings(FUNCTION_SETTINGS.AwaitStagingEndpoint);
const Input = stateWith({ staging: StageSchema });

async function awaitStagingEndpoint(event: PipelineState): Promise<StageResult> {
  const { run, staging } = parseInput(Input, event, 'AwaitStagingEndpoint input');
  const result = await awaitEndpoint(staging, run.modelName, endpointTiming(settings));
  return logWait(result, 'staging endpoint', { serviceName: staging.serviceName, namespace: staging.namespace, endpoint: result.endpoint });
}

export const handler = withLogContext('AwaitStagingEndpoint', awaitStagingEndpoint);
