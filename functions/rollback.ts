/**
 * Rollback (invoked by `mlpipe rollback`, not by the state machine): switches the production Service back
 * to an earlier version — `toVersion`, or the previous one from models/<model>/production.json (else from
 * the Service's own record of what it selected before) — then records the rollback in the registry.
 * Replaced versions are retired (0 replicas, functions/shared/retention.ts), so the target is first scaled
 * back up to SERVING_REPLICAS and the switch waits until it is rolled out (at most ROLLOUT_TIMEOUT_SECONDS,
 * within the function's 900 s timeout): traffic never moves to pods that are not there. The version rolled
 * back from is then retired in its turn. The result says how long the target took to be ready and the
 * whole rollback took.
 */
import * as z from 'zod';
import { FUNCTION_SETTINGS } from './shared/function-settings';
import { RollbackError } from './shared/errors';
import type { V1Deployment } from '@kubernetes/client-node';
import { applyObject, readObject } from './shared/kube';
import { appendRunKeys, logger, withLogContext } from './shared/logger';
import { productionExposure, servingService } from './shared/manifests';
import { LABELS, PREVIOUS_VERSION_ANNOTATION, productionDeploymentName, productionServiceName } from './shared/names';
import { phaseClock } from './shared/phase';
import { readProduction, recordRollback } from './shared/registry';
import { reactivateDeployment, retireDeployment, retiredAtOf } from './shared/retention';
import { ModelNameSchema, loadSettings } from './shared/settings';
import { VersionSchema, parseInput } from './shared/state';
import { readService, serviceEndpoint } from './shared/workloads';

/** Read and validated once, at init: a bad value fails the Lambda's init naming the variable. */
const settings = loadSettings(FUNCTION_SETTINGS.Rollback);

/**
 * The longest the target may take to be ready: the rollout deadline, within the function's 900 s timeout
 * (lib/constructs/pipeline-functions.ts) less time for the switch and the registry write.
 */
const MAX_READY_WAIT_SECONDS = 840;

const Input = z.object({
  modelName: ModelNameSchema,
  toVersion: VersionSchema.optional(),
  by: z.string().min(1).optional(),
});

export interface RollbackResult {
  modelName: string;
  fromVersion: string | null;
  toVersion: string;
  endpoint: string | null;
  switchedAt: string;
  /** Replicas of the target before (0: it was retired) and after. */
  scaledFrom: number;
  replicas: number;
  /** From the scale-up to the target being rolled out (0 when it was already). */
  readySeconds: number;
  /** From the start of the rollback to the switch. */
  tookSeconds: number;
  /** The version rolled back from, now retired (null if its Deployment is gone). */
  retired: string | null;
}

async function rollback(event: unknown): Promise<RollbackResult> {
  const { modelName, toVersion, by } = parseInput(Input, event, 'Rollback input');
  appendRunKeys({ model: modelName });
  const namespace = settings.PRODUCTION_NAMESPACE;
  const serviceName = productionServiceName(modelName);
  const service = await readService(namespace, serviceName);
  const fromVersion = service?.spec?.selector?.[LABELS.version] ?? null;
  if (!fromVersion) throw new RollbackError(`Service ${namespace}/${serviceName} does not exist or selects no version: ${modelName} has no production to roll back.`);

  const record = await readProduction(modelName);
  const target = toVersion ?? record?.previousVersion ?? service?.metadata?.annotations?.[PREVIOUS_VERSION_ANNOTATION];
  if (!target) throw new RollbackError(`${modelName} has no previous production version; name one with --to <version> (toVersion).`);
  if (target === fromVersion) throw new RollbackError(`${modelName} already serves version ${target}.`);

  const deploymentName = productionDeploymentName(modelName, target);
  const deployment = await readObject<V1Deployment>({ kind: 'Deployment', namespace, name: deploymentName });
  if (!deployment) {
    throw new RollbackError(`Version ${target} cannot take traffic: Deployment ${namespace}/${deploymentName} no longer exists (pruned?); production stays on ${fromVersion}.`);
  }
  const clock = phaseClock();
  const started = clock.now();
  const waitSeconds = Math.min(settings.ROLLOUT_TIMEOUT_SECONDS, MAX_READY_WAIT_SECONDS);
  logger.info('scaling the rollback target up', { version: target, replicas: settings.SERVING_REPLICAS, from: deployment.spec?.replicas ?? 1, waitSeconds });
  const ready = await reactivateDeployment(namespace, deployment, settings.SERVING_REPLICAS, waitSeconds * 1000).catch((err: Error) => {
    throw err instanceof RollbackError ? new RollbackError(`Version ${target} cannot take traffic: ${err.message.replace(/\.$/, '')}. Production stays on ${fromVersion}.`) : err;
  });

  await applyObject(servingService({ modelName, version: target, stage: 'production', namespace, name: serviceName }, productionExposure(settings), fromVersion));
  const tookSeconds = (clock.now() - started) / 1000;
  const switchedAt = new Date().toISOString();
  // What served until now stops costing pods, and stays a rollback target for the retention window.
  const replaced = await readObject<V1Deployment>({ kind: 'Deployment', namespace, name: productionDeploymentName(modelName, fromVersion) });
  if (replaced) await retireDeployment(namespace, { name: replaced.metadata!.name!, retiredAt: retiredAtOf(replaced) }, new Date(switchedAt));
  if (record) await recordRollback({ modelName, toVersion: target, by: by ?? 'mlpipe rollback', at: switchedAt });
  appendRunKeys({ version: target });
  logger.info('production rolled back', {
    from: fromVersion, to: target, by: by ?? 'mlpipe rollback', recorded: record !== undefined,
    scaledFrom: ready.fromReplicas, replicas: ready.replicas, readySeconds: ready.readySeconds, tookSeconds, retired: replaced ? fromVersion : null,
  });
  return {
    modelName, fromVersion, toVersion: target, endpoint: (service && serviceEndpoint(service)) ?? record?.endpoint ?? null, switchedAt,
    scaledFrom: ready.fromReplicas, replicas: ready.replicas, readySeconds: ready.readySeconds, tookSeconds, retired: replaced ? fromVersion : null,
  };
}

/** Not a state machine task: its lines carry the model, and the version it put back once known. */
export const handler = withLogContext(() => ({}), rollback);
