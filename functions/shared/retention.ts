/**
 * Retained production versions (issue 9 item 5): a version that stops serving production is not deleted
 * but "retired" — its Deployment scaled to 0 replicas (no pods, so it costs nothing) and annotated with
 * `mlpipe.dev/retired-at` — so `mlpipe rollback` can bring it back in the time its pods take to start,
 * without the registry, the image or the manifest builders. Retired versions are kept for RETENTION_HOURS,
 * and the most recently retired one whatever its age; Cleanup prunes the rest. Rollback scales a retired
 * version back up and waits until it is ready before the Service is switched to it.
 *
 * Writes are JSON merge patches of `spec.replicas` and the one annotation (kube patchObject): a
 * server-side apply of a partial Deployment by mlpipe's field manager would drop every field it applied
 * before. Each write is idempotent: retiring a retired version keeps its first retired-at.
 */
import type { V1Deployment } from '@kubernetes/client-node';
import { listObjects, patchObject } from './kube';
import { LABELS, labelSelector, workloadLabels } from './names';
import { RollbackError } from './errors';
import { phaseClock } from './phase';
import { describeCreateFailure, describeFailure, describePodProblem, describeTimeout, rolloutOutcome, watchWorkload, type RolloutOutcome } from './workloads';

/** When the version stopped serving production (ISO 8601); present only while it is retired. */
export const RETIRED_AT_ANNOTATION = 'mlpipe.dev/retired-at';

/** One production Deployment of a model, as retention sees it. */
export interface ProductionVersion {
  name: string;
  version: string;
  /** spec.replicas (a Deployment without it runs 1). */
  replicas: number;
  /** Epoch ms of its valid `mlpipe.dev/retired-at`, undefined when not retired (or the annotation is unreadable). */
  retiredAt: number | undefined;
}

/** The production Deployments of `modelName` (label selector: model, managed-by mlpipe, stage production). */
export async function listProductionVersions(namespace: string, modelName: string): Promise<ProductionVersion[]> {
  const list = await listObjects<V1Deployment>('Deployment', namespace, {
    labelSelector: labelSelector({ [LABELS.name]: modelName, [LABELS.managedBy]: 'mlpipe', [LABELS.stage]: 'production' }),
  });
  return list.items.flatMap((d) => {
    const name = d.metadata?.name;
    const version = d.metadata?.labels?.[LABELS.version];
    if (!name || !version) return [];
    return [{ name, version, replicas: d.spec?.replicas ?? 1, retiredAt: retiredAtOf(d) }];
  });
}

export function retiredAtOf(d: V1Deployment): number | undefined {
  const text = d.metadata?.annotations?.[RETIRED_AT_ANNOTATION];
  const at = text === undefined ? NaN : Date.parse(text);
  return Number.isFinite(at) ? at : undefined;
}

export interface RetentionPlan {
  /** Versions to scale to 0 and mark retired (already-retired ones keep their retired-at). */
  retire: ProductionVersion[];
  /** Retired versions past the window, to delete. */
  prune: ProductionVersion[];
}

/**
 * What to retire and what to prune, decided from the Deployments alone (pure).
 * - `selected`: the version the production Service selects. Only versions OLDER than it (versions sort by
 *   time, `<yyyymmdd>-<hhmmss>-<hash>`) are retired: a newer Deployment may be a release still in flight
 *   (its rollout, its canary), which is not ours to stop. Without a selected version (no Service yet, or a
 *   canary's split selector) nothing is retired.
 * - `protect`: never pruned (the selected version, the Service's previous version: rollback's default target).
 * - Only a retired Deployment at 0 replicas is ever pruned, once `retentionHours` have passed since its
 *   retired-at, and never the most recently retired one.
 */
export function planRetention(
  versions: readonly ProductionVersion[],
  opts: { selected: string | undefined; protect: ReadonlySet<string>; retentionHours: number; now: number },
): RetentionPlan {
  const { selected, protect, retentionHours, now } = opts;
  const retire = selected
    ? versions.filter((v) => v.version !== selected && v.version.localeCompare(selected) < 0 && (v.replicas > 0 || v.retiredAt === undefined))
    : [];
  const retiring = new Set(retire.map((v) => v.name));
  // After this plan, every retired Deployment and when it was retired (the ones retired now: `now`).
  const retired = versions
    .filter((v) => retiring.has(v.name) || (v.retiredAt !== undefined && v.replicas === 0))
    .map((v) => ({ v, at: retiring.has(v.name) ? (v.retiredAt ?? now) : v.retiredAt! }));
  const newest = retired.reduce<{ v: ProductionVersion; at: number } | undefined>(
    (best, r) => (!best || r.at > best.at || (r.at === best.at && r.v.version > best.v.version) ? r : best),
    undefined,
  );
  const windowMs = retentionHours * 3_600_000;
  const prune = retired
    .filter((r) => r !== newest && !retiring.has(r.v.name) && !protect.has(r.v.version) && r.v.version !== selected && now - r.at > windowMs)
    .map((r) => r.v);
  return { retire, prune };
}

/**
 * Scales a production Deployment to 0 and marks it retired at `at` (a retired-at it already has stays:
 * the retention window counts from when it first stopped serving). Idempotent.
 */
export async function retireDeployment(namespace: string, v: Pick<ProductionVersion, 'name' | 'retiredAt'>, at: Date): Promise<void> {
  const annotations = v.retiredAt === undefined ? { [RETIRED_AT_ANNOTATION]: at.toISOString() } : {};
  await patchObject({ kind: 'Deployment', namespace, name: v.name }, { metadata: { annotations }, spec: { replicas: 0 } });
}

export interface Reactivation {
  /** Replicas before (0 for a retired version) and after. */
  fromReplicas: number;
  replicas: number;
  /** From the scale-up request to the rollout being complete (all replicas updated and available). */
  readySeconds: number;
}

/**
 * Brings a (possibly retired) production Deployment to `replicas` and no longer retired, then waits until
 * it is rolled out as `kubectl rollout status` sees it, for at most `timeoutMs`. On a pod that cannot start,
 * pods that cannot be created, or the timeout, the Deployment is put back as it was (retired again, with its
 * first retired-at) and RollbackError says why: a version that cannot serve must not keep costing pods.
 */
export async function reactivateDeployment(
  namespace: string,
  deployment: V1Deployment,
  replicas: number,
  timeoutMs: number,
): Promise<Reactivation> {
  const name = deployment.metadata!.name!;
  const version = deployment.metadata?.labels?.[LABELS.version] ?? '';
  const modelName = deployment.metadata?.labels?.[LABELS.name] ?? '';
  const fromReplicas = deployment.spec?.replicas ?? 1;
  const retiredAt = deployment.metadata?.annotations?.[RETIRED_AT_ANNOTATION];
  const target = Math.max(fromReplicas, replicas);
  const clock = phaseClock();
  const started = clock.now();
  await patchObject({ kind: 'Deployment', namespace, name }, { metadata: { annotations: { [RETIRED_AT_ANNOTATION]: null } }, spec: { replicas: target } });
  const podLabels = workloadLabels(modelName, version, 'production');
  const what = `Deployment ${namespace}/${name}`;
  let problem: string | undefined;
  try {
    const outcome = await watchWorkload<V1Deployment, RolloutOutcome>('Deployment', namespace, name, rolloutOutcome, podLabels, timeoutMs);
    if (outcome?.kind === 'ready') return { fromReplicas, replicas: target, readySeconds: (clock.now() - started) / 1000 };
    if (outcome?.kind === 'pod') problem = await describePodProblem(namespace, outcome.problem);
    else if (outcome?.kind === 'failed-create' || (outcome?.kind === 'failed' && outcome.reason === 'FailedCreate')) problem = describeCreateFailure(outcome.message);
    else if (outcome?.kind === 'failed') problem = await describeFailure(namespace, podLabels, outcome.reason, outcome.message);
    else problem = `not ready within ${Math.round(timeoutMs / 1000)} s (ROLLOUT_TIMEOUT_SECONDS)\n${await describeTimeout(namespace, podLabels)}`;
  } catch (err) {
    problem = (err as Error).message;
  }
  let after = '';
  if (fromReplicas === 0) {
    after = await patchObject({ kind: 'Deployment', namespace, name }, {
      metadata: { annotations: { [RETIRED_AT_ANNOTATION]: retiredAt ?? new Date(clock.now()).toISOString() } },
      spec: { replicas: 0 },
    }).then(
      () => ' It was scaled back to 0 replicas.',
      (err: Error) => ` It could not be scaled back to 0 replicas (${err.message}): scale it down by hand.`,
    );
  }
  // The problem may end with a pod's log tail: what was done about it goes on a line of its own.
  throw new RollbackError(`${what} did not become ready: ${problem}${after ? `\n${after.trim()}` : ''}`);
}
