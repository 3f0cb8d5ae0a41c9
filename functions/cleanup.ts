/**
 * Cleanup and CleanupStaging: deletes what a run left in the staging namespace (training Job, staging
 * Deployment and Service). On the failure path (`$.error` set) it also takes production back from a run
 * that failed after SwitchProductionTraffic (endpoint never answered, RecordRelease failed...): if the
 * production Service selects this run's version, it is switched back to the version that served before
 * (`$.production.previousVersion`, else the Service's own record of it) provided that version's Deployment
 * is available, and scaled back to SERVING_REPLICAS; otherwise traffic stays and the result says why. If
 * the run failed during its canary (the Service splits traffic with this run as the canary), the stable
 * version gets every replica and all traffic back (canary.ts restoreStable). This run's production
 * Deployment is then deleted unless traffic is still on it. Finally it retires the versions production no longer serves
 * (functions/shared/retention.ts): each production Deployment older than the version the Service selects
 * is scaled to 0 replicas and marked `mlpipe.dev/retired-at`, so rollback has somewhere to go at no cost;
 * on the success path this runs after RecordRelease, i.e. once the switch is confirmed, for either
 * strategy. Retired versions older than RETENTION_HOURS (default 72) are deleted, never the newest
 * retired one nor the Service's previous version. Deletes tolerate 404, retiring is a merge patch, and a
 * retried call still reports an earlier switch-back, so it is safe to retry; it works without `run`
 * (Prepare failed: nothing was created). Returns CleanupResult (`$.cleanup`).
 */
import type { V1Service } from '@kubernetes/client-node';
import * as z from 'zod';
import { FUNCTION_SETTINGS } from './shared/function-settings';
import { applyObject, deleteObject, type ManagedKind } from './shared/kube';
import { logger, stateByPath, withLogContext } from './shared/logger';
import { restoreStable, scaleDeployment, splitOf } from './shared/canary';
import { productionExposure, servingService } from './shared/manifests';
import { LABELS, PREVIOUS_VERSION_ANNOTATION, SWITCHED_BACK_FROM_ANNOTATION, productionDeploymentName } from './shared/names';
import { listProductionVersions, planRetention, retireDeployment } from './shared/retention';
import { loadSettings } from './shared/settings';
import { RunSchema, VersionSchema, parseInput } from './shared/state';
import type { CleanupResult, RunContext } from './shared/types';
import { deploymentUnavailable, readService } from './shared/workloads';

/** Read and validated once, at init: a bad value fails the Lambda's init naming the variable. */
const settings = loadSettings(FUNCTION_SETTINGS.Cleanup);

export { SWITCHED_BACK_FROM_ANNOTATION } from './shared/names';

const Input = z.object({
  run: RunSchema.optional(),
  production: z.object({ previousVersion: VersionSchema.nullable().optional() }).optional(),
  error: z.unknown().optional(),
});

async function cleanup(event: unknown): Promise<CleanupResult> {
  const { run, production, error } = parseInput(Input, event, 'Cleanup input');
  if (!run) {
    logger.info('nothing to clean up: the run never started');
    return { deleted: [] };
  }
  const result: CleanupResult = { deleted: [] };
  const remove = async (kind: ManagedKind, namespace: string, name: string): Promise<void> => {
    if (await deleteObject(kind, namespace, name)) result.deleted.push(`${kind}/${namespace}/${name}`);
  };
  const staging = run.namespaces.staging;
  await remove('Job', staging, run.names.trainingJob);
  await remove('Deployment', staging, run.names.stagingDeployment);
  await remove('Service', staging, run.names.stagingService);

  const failed = error !== undefined;
  let service = await readService(run.namespaces.production, run.names.productionService);
  let selected = service?.spec?.selector?.[LABELS.version];
  const split = splitOf(service);
  if (failed && split?.canaryVersion === run.version) {
    // The run failed during its canary (the Service selects both versions): the stable version takes all traffic back.
    const back = await restoreStable(run, split.stableVersion, settings.SERVING_REPLICAS, productionExposure(settings));
    if ('service' in back) {
      service = back.service;
      selected = split.stableVersion;
      result.switchedBack = { from: run.version, to: selected };
      logger.info('canary traffic restored to the stable version', { from: run.version, to: selected });
    } else {
      result.trafficKept = { version: run.version, reason: back.reason };
      logger.warn('production traffic stays split with the failed canary', { reason: back.reason });
    }
  } else if (failed && selected === run.version) {
    const previous = production?.previousVersion ?? service?.metadata?.annotations?.[PREVIOUS_VERSION_ANNOTATION] ?? null;
    const back = await switchBack(run, previous);
    if ('service' in back) {
      service = back.service;
      selected = previous!;
      result.switchedBack = { from: run.version, to: selected };
      logger.info('production traffic switched back', { from: run.version, to: selected });
    } else {
      result.trafficKept = { version: run.version, reason: back.reason };
      logger.warn('production traffic stays on the failed run', { reason: back.reason });
    }
  } else if (failed && selected && service?.metadata?.annotations?.[SWITCHED_BACK_FROM_ANNOTATION] === run.version) {
    result.switchedBack = { from: run.version, to: selected };
  }

  const protect = new Set([selected, service?.metadata?.annotations?.[PREVIOUS_VERSION_ANNOTATION]].filter((v): v is string => Boolean(v)));
  const failedVersionGone = failed && selected !== run.version;
  if (failedVersionGone) await remove('Deployment', run.namespaces.production, run.names.productionDeployment);
  else protect.add(run.version);
  const retired = await retainProduction(run, selected, protect, failedVersionGone, remove);
  if (retired.length) result.retired = retired;
  logger.info('cleaned up', { deleted: result.deleted, retired });
  return result;
}

export const handler = withLogContext(stateByPath('CleanupStaging', 'Cleanup'), cleanup);

/**
 * Points the production Service back at `previous` if its Deployment can serve. The Service then carries
 * no previous-version annotation: the failed run must never become a rollback target, and what served
 * before `previous` is in production.json, which rollback reads first.
 */
async function switchBack(run: RunContext, previous: string | null): Promise<{ service: V1Service } | { reason: string }> {
  if (!previous) return { reason: 'no version served production before this run (first release), so there is nothing to switch back to' };
  const namespace = run.namespaces.production;
  const unavailable = await deploymentUnavailable(namespace, productionDeploymentName(run.modelName, previous));
  if (unavailable) return { reason: `the previous version ${previous} cannot take traffic: ${unavailable}` };
  const svc = servingService(
    { modelName: run.modelName, version: previous, stage: 'production', namespace, name: run.names.productionService },
    productionExposure(settings),
    null,
  );
  svc.metadata = { ...svc.metadata, annotations: { ...svc.metadata?.annotations, [SWITCHED_BACK_FROM_ANNOTATION]: run.version } };
  const service = await applyObject(svc);
  // After a canary the previous version may run fewer pods than production needs (its last step's share).
  await scaleDeployment(namespace, productionDeploymentName(run.modelName, previous), settings.SERVING_REPLICAS);
  return { service };
}

/**
 * Retires what production replaced and prunes retired versions past the retention window; returns the
 * versions retired by this call. The failed run's own Deployment (already deleted) is left out.
 */
async function retainProduction(
  run: RunContext,
  selected: string | undefined,
  protect: Set<string>,
  failedVersionGone: boolean,
  remove: (k: ManagedKind, ns: string, n: string) => Promise<void>,
): Promise<string[]> {
  const namespace = run.namespaces.production;
  const now = new Date();
  const versions = (await listProductionVersions(namespace, run.modelName)).filter((v) => !(failedVersionGone && v.version === run.version));
  const plan = planRetention(versions, { selected, protect, retentionHours: settings.RETENTION_HOURS, now: now.getTime() });
  for (const v of plan.retire) await retireDeployment(namespace, v, now);
  for (const v of plan.prune) await remove('Deployment', namespace, v.name);
  if (plan.retire.length) logger.info('replaced versions retired (0 replicas, kept for rollback)', { versions: plan.retire.map((v) => v.version), retentionHours: settings.RETENTION_HOURS });
  return plan.retire.map((v) => v.version);
}
