/**
 * Rollback (invoked by `mlpipe rollback`, not by the state machine): switches the production Service back
 * to an earlier version — `toVersion`, or the previous one from models/<model>/production.json (else from
 * the Service's own record of what it selected before) — after checking that version's Deployment still
 * exists and is available, then records the rollback in the registry.
 */
import * as z from 'zod';
import { FUNCTION_SETTINGS } from './shared/function-settings';
import { RollbackError } from './shared/errors';
import { applyObject } from './shared/kube';
import { appendRunKeys, logger, withLogContext } from './shared/logger';
import { servingService } from './shared/manifests';
import { LABELS, PREVIOUS_VERSION_ANNOTATION, productionDeploymentName, productionServiceName } from './shared/names';
import { readProduction, recordRollback } from './shared/registry';
import { ModelNameSchema, loadSettings } from './shared/settings';
import { VersionSchema, parseInput } from './shared/state';
import { deploymentUnavailable, readService, serviceEndpoint } from './shared/workloads';

/** Read and validated once, at init: a bad value fails the Lambda's init naming the variable. */
const settings = loadSettings(FUNCTION_SETTINGS.Rollback);

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

  const unavailable = await deploymentUnavailable(namespace, productionDeploymentName(modelName, target));
  if (unavailable) throw new RollbackError(`Version ${target} cannot take traffic: ${unavailable}; production stays on ${fromVersion}.`);

  await applyObject(servingService({ modelName, version: target, stage: 'production', namespace, name: serviceName }, settings.SERVICE_ANNOTATIONS, fromVersion));
  const switchedAt = new Date().toISOString();
  if (record) await recordRollback({ modelName, toVersion: target, by: by ?? 'mlpipe rollback', at: switchedAt });
  appendRunKeys({ version: target });
  logger.info('production rolled back', { from: fromVersion, to: target, by: by ?? 'mlpipe rollback', recorded: record !== undefined });
  return { modelName, fromVersion, toVersion: target, endpoint: (service && serviceEndpoint(service)) ?? record?.endpoint ?? null, switchedAt };
}

/** Not a state machine task: its lines carry the model, and the version it put back once known. */
export const handler = withLogContext(() => ({}), rollback);
