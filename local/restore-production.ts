/**
 * Local mode starts an empty Kubernetes API on every `npm start`, while the S3 registry in .mlpipe/s3
 * survives: production.json would name a version nothing serves, and `mlpipe rollback` would have no
 * Deployment to go back to. This puts production back as the registry describes it — the production
 * Deployments of the current and the previous version (from each version's manifest.json, through the
 * same manifest builders as DeployProduction) and the production Service selecting the current one — and
 * waits until it serves. The previous version comes back retired, as Cleanup left it: 0 replicas, marked
 * `mlpipe.dev/retired-at` with the time production.json says it was replaced, so `mlpipe rollback` scales
 * it up as on a live cluster. Only for the local cluster: a real cluster keeps its own state.
 */
import { z } from 'zod';
import type { V1Deployment, V1Pod } from '@kubernetes/client-node';
import { applyObject, listObjects, sleep } from '../functions/shared/kube';
import { ENDPOINT_TOKENS, KUBE, PRODUCTION_SERVICE, REGISTRY, SERVING_DEPLOYMENT } from '../functions/shared/function-settings';
import { presentedToken } from '../functions/shared/endpoint-auth';
import { productionExposure, productionServiceTarget, servingDeployment, servingService } from '../functions/shared/manifests';
import { labelSelector, runNames, workloadLabels } from '../functions/shared/names';
import { hasModelFiles, readManifest, readProduction, recordProductionEndpoint } from '../functions/shared/registry';
import { RETIRED_AT_ANNOTATION } from '../functions/shared/retention';
import { APPROVAL_TIMEOUT_SECONDS, PRODUCTION_NAMESPACE, STAGING_NAMESPACE, defineSettings, group, loadSettings, type SettingsOf } from '../functions/shared/settings';
import { RunSchema, parseInput } from '../functions/shared/state';
import type { RunContext } from '../functions/shared/types';
import { podProblem, probeModel, readService, serviceEndpoint, syncTokenSecret } from '../functions/shared/workloads';

/** Serving pods start in about a second locally; this leaves room for a busy machine. */
const SERVE_TIMEOUT_MS = 30_000;

export interface RestoredProduction {
  modelName: string;
  version: string;
  /** The previous version's Deployment was restored too (a rollback target). */
  previousVersion: string | null;
  endpoint: string;
}

const ManifestRun = z.object({
  modelName: z.string(),
  version: z.string(),
  modelUri: z.string(),
  servingImage: z.string(),
  image: z.object({ uri: z.string(), digest: z.string().nullable() }),
  data: z.object({ uri: z.string(), evalUri: z.string() }),
  hyperparameters: z.record(z.string(), z.union([z.string(), z.number(), z.boolean()])),
  execution: z.object({ arn: z.string(), name: z.string(), startedAt: z.string(), trigger: z.object({ source: z.string(), detail: z.record(z.string(), z.unknown()).optional() }) }),
});

/** What a restore reads: what Prepare and DeployProduction/SwitchProductionTraffic would, from the local run's environment. */
const RESTORE_SETTINGS = defineSettings({
  ...KUBE, ...REGISTRY, ...SERVING_DEPLOYMENT, ...PRODUCTION_SERVICE, ...ENDPOINT_TOKENS,
  ...group(APPROVAL_TIMEOUT_SECONDS, STAGING_NAMESPACE, PRODUCTION_NAMESPACE),
});
type RestoreSettings = SettingsOf<typeof RESTORE_SETTINGS.definitions>;

/** The RunContext a version was released with, from its manifest.json; a note instead when it cannot serve. */
async function releasedRun(modelName: string, version: string, settings: RestoreSettings): Promise<RunContext | string> {
  if (!(await hasModelFiles(modelName, version))) return `${version}: no model files under models/${modelName}/${version}/`;
  const manifest = await readManifest(modelName, version);
  if (!manifest) return `${version}: no manifest.json`;
  const parsed = ManifestRun.safeParse(manifest);
  if (!parsed.success) return `${version}: manifest.json is unusable (${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')})`;
  const m = parsed.data;
  return parseInput(
    RunSchema,
    {
      modelName,
      version,
      image: m.image.uri,
      imageDigest: m.image.digest,
      servingImage: m.servingImage,
      dataUri: m.data.uri,
      evalDataUri: m.data.evalUri,
      hyperparameters: m.hyperparameters,
      modelUri: m.modelUri,
      executionArn: m.execution.arn,
      executionName: m.execution.name,
      startedAt: m.execution.startedAt,
      trigger: m.execution.trigger,
      approvalTimeoutSeconds: settings.APPROVAL_TIMEOUT_SECONDS,
      namespaces: { staging: settings.STAGING_NAMESPACE, production: settings.PRODUCTION_NAMESPACE },
      names: runNames(modelName, version),
    },
    `manifest.json of ${modelName} ${version}`,
  );
}

/**
 * Restores production of `modelName` from the registry into the (empty) cluster the settings point at.
 * Returns what serves, or undefined when nothing was ever released or the current version cannot be
 * restored (each skipped version is reported through `note`).
 */
export async function restoreProduction(modelName: string, note: (line: string) => void): Promise<RestoredProduction | undefined> {
  // Loaded here, not at module load: the local runner sets its environment after importing this module.
  const settings = loadSettings(RESTORE_SETTINGS);
  const record = await readProduction(modelName);
  if (!record) return undefined;
  const current = await releasedRun(modelName, record.version, settings);
  if (typeof current === 'string') {
    note(`production ${modelName} not restored: ${current}`);
    return undefined;
  }
  const previous = record.previousVersion ? await releasedRun(modelName, record.previousVersion, settings) : undefined;
  if (typeof previous === 'string') note(`production ${modelName}: previous version not restored (no rollback target): ${previous}`);
  const previousRun = typeof previous === 'object' ? previous : undefined;

  await syncTokenSecret(modelName, current.namespaces.production);
  await applyObject(servingDeployment(current, 'production', settings));
  const replacedAt = Number.isFinite(Date.parse(record.switchedAt)) ? new Date(record.switchedAt) : new Date();
  if (previousRun) await applyObject(retired(servingDeployment(previousRun, 'production', settings), replacedAt.toISOString()));
  await applyObject(servingService(productionServiceTarget(current), productionExposure(settings), previousRun?.version ?? null));

  const endpoint = await awaitServing(current, SERVE_TIMEOUT_MS);
  await recordProductionEndpoint(modelName, endpoint);
  return { modelName, version: current.version, previousVersion: previousRun?.version ?? null, endpoint };
}

/** A production Deployment as a retired version: no replicas, and since when it is retired. */
function retired(d: V1Deployment, at: string): V1Deployment {
  return { ...d, metadata: { ...d.metadata, annotations: { ...d.metadata?.annotations, [RETIRED_AT_ANNOTATION]: at } }, spec: { ...d.spec!, replicas: 0 } };
}

/**
 * Polls the production Service until its LoadBalancer endpoint answers for the model as AVAILABLE; gives
 * up at once on a pod that cannot start (an image the local runner does not know, a crash loop) rather
 * than holding up the start for the whole timeout.
 */
async function awaitServing(run: RunContext, timeoutMs: number): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  const pods = labelSelector(workloadLabels(run.modelName, run.version, 'production'));
  let problem = 'the Service has no LoadBalancer endpoint';
  const token = await presentedToken(run.modelName);
  while (Date.now() < deadline) {
    const stuck = (await listObjects<V1Pod>('Pod', run.namespaces.production, { labelSelector: pods })).items.map(podProblem).find(Boolean);
    if (stuck) throw new Error(`pod ${stuck.pod} of ${run.modelName} ${run.version} cannot start: ${stuck.reason}${stuck.message ? `: ${stuck.message}` : ''}`);
    const svc = await readService(run.namespaces.production, run.names.productionService);
    const endpoint = svc && serviceEndpoint(svc);
    if (endpoint) {
      const why = await probeModel(endpoint, run.modelName, 2000, token);
      if (!why) return endpoint;
      problem = why;
    }
    await sleep(200);
  }
  throw new Error(`restored production of ${run.modelName} ${run.version} did not serve within ${timeoutMs / 1000} s: ${problem}`);
}
