/**
 * AwaitProductionEndpoint: confirms production serves the NEW version. A TF Serving status answer cannot
 * tell versions apart, so "serves the new version" is established from what routes traffic: the stable
 * Service's selector names this version (every pod behind the LoadBalancer therefore carries this
 * version's label), this version's Deployment has available replicas, and the LoadBalancer endpoint
 * answers `GET /v1/models/<name>` as AVAILABLE. If someone switched the selector elsewhere meanwhile
 * (a rollback, a newer release) it fails rather than reporting someone else's version as serving.
 */
import { EndpointUnavailableError } from './shared/errors';
import { FUNCTION_SETTINGS } from './shared/function-settings';
import { logWait, withLogContext } from './shared/logger';
import { LABELS } from './shared/names';
import { endpointTiming } from './shared/phase';
import { loadSettings } from './shared/settings';
import { StageSchema, parseInput, stateWith } from './shared/state';
import type { PipelineState, StageResult } from './shared/types';
import { awaitEndpoint, deploymentUnavailable } from './shared/workloads';

/** Read and validated once, at init: a bad value fails the Lambda's init naming the variable. */
const settings = loadSettings(FUNCTION_SETTINGS.AwaitProductionEndpoint);
const Input = stateWith({ production: StageSchema });

async function awaitProductionEndpoint(event: PipelineState): Promise<StageResult> {
  const { run, production } = parseInput(Input, event, 'AwaitProductionEndpoint input');
  const result = await awaitEndpoint(production, run.modelName, endpointTiming(settings), {
    async precondition() {
      const unavailable = await deploymentUnavailable(production.namespace, production.deploymentName);
      if (unavailable) throw new EndpointUnavailableError(`${unavailable}, so nothing of version ${run.version} is behind the production Service.`);
    },
    checkService(svc) {
      const selected = svc.spec?.selector?.[LABELS.version];
      if (selected !== run.version) {
        throw new EndpointUnavailableError(
          `Service ${production.namespace}/${production.serviceName} selects version ${selected ?? '(none)'}, not ${run.version}: traffic was switched elsewhere (rollback or another release).`,
        );
      }
    },
  });
  return logWait(result, 'production endpoint', { serviceName: production.serviceName, namespace: production.namespace, endpoint: result.endpoint });
}

export const handler = withLogContext('AwaitProductionEndpoint', awaitProductionEndpoint);
