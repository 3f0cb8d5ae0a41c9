/**
 * A canary on the one production LoadBalancer Service, without a mesh (DESIGN decision 14): during a step
 * the Service selects the pods of both versions (model label only) and the split follows the replica
 * counts (rollout.ts splitFor); the canary is scaled up and ready before the stable version is scaled
 * down, so capacity never drops. This module holds the Kubernetes side (scale, split the Service, put the
 * stable version back) and the step machine of `$.canary` (pure: what follows an analysis), so the
 * handlers ShiftCanaryTraffic, AnalyzeCanary and AbortCanary stay thin and Cleanup can restore a split
 * left by a failure.
 */
import type { V1Service } from '@kubernetes/client-node';
import type { CanaryVerdict } from './canary-analysis';
import { CanaryError } from './errors';
import { applyObject, isNotFound, toKubeError } from './kube';
import { sendRequest } from './kube/transport';
import { productionServiceTarget, servingService, type ServiceExposure } from './manifests';
import {
  CANARY_VERSION_ANNOTATION,
  LABELS,
  PREVIOUS_VERSION_ANNOTATION,
  STABLE_VERSION_ANNOTATION,
  SWITCHED_BACK_FROM_ANNOTATION,
  productionDeploymentName,
} from './names';
import { splitFor, type RunRollout } from './rollout';
import type { CanaryState, RunContext } from './types';
import { deploymentUnavailable, readService } from './workloads';

// ---------------------------------------------------------------------------------------------------
// Kubernetes

/**
 * Sets a Deployment's replicas through its `scale` subresource (what `kubectl scale` does; the edit
 * access policy allows it), leaving the rest of the object alone. `false` when the Deployment is gone.
 */
export async function scaleDeployment(namespace: string, name: string, replicas: number): Promise<boolean> {
  const path = `/apis/apps/v1/namespaces/${encodeURIComponent(namespace)}/deployments/${encodeURIComponent(name)}/scale`;
  try {
    await sendRequest({ method: 'PATCH', path, body: { spec: { replicas } }, contentType: 'application/merge-patch+json' });
    return true;
  } catch (err) {
    if (isNotFound(err)) return false;
    throw toKubeError(err, `scale Deployment ${namespace}/${name} to ${replicas}`, `Deployment ${namespace}/${name}`);
  }
}

/**
 * The production Service in split mode: it selects every production pod of the model (both versions),
 * and records which version is the canary and which the stable one, so Cleanup (after any failure) and
 * SwitchProductionTraffic know. `previousOfStable` keeps the stable version's own predecessor for rollback.
 */
export function splitService(
  run: RunContext,
  stableVersion: string,
  exposure: ServiceExposure,
  previousOfStable: string | null,
  /** The 100 % step: the Service selects the canary alone, still marked as a canary over `stableVersion`. */
  canaryOnly = false,
): V1Service {
  const svc = servingService(productionServiceTarget(run), exposure, previousOfStable);
  const selector = { ...svc.spec!.selector };
  if (!canaryOnly) delete selector[LABELS.version];
  return {
    ...svc,
    metadata: { ...svc.metadata, annotations: { ...svc.metadata!.annotations, [CANARY_VERSION_ANNOTATION]: run.version, [STABLE_VERSION_ANNOTATION]: stableVersion } },
    spec: { ...svc.spec, selector },
  };
}

/**
 * The canary and stable versions while a canary runs on the Service (selector without a version: a split
 * step; or the canary's version: its 100 % step), else undefined.
 */
export function splitOf(svc: V1Service | undefined): { canaryVersion: string; stableVersion: string } | undefined {
  const canaryVersion = svc?.metadata?.annotations?.[CANARY_VERSION_ANNOTATION];
  const stableVersion = svc?.metadata?.annotations?.[STABLE_VERSION_ANNOTATION];
  const selected = svc?.spec?.selector?.[LABELS.version];
  if (!canaryVersion || !stableVersion || (selected !== undefined && selected !== canaryVersion)) return undefined;
  return { canaryVersion, stableVersion };
}

/**
 * Puts the stable version back at 100 %: its Deployment to all `totalReplicas`, the Service's selector
 * onto it at once (its pods are ready: they served the split), the canary's Deployment to 0. Traffic
 * moves first, so a failing canary stops answering within the call. Idempotent. The Service keeps the
 * stable version's predecessor as previous version (the failed canary must never become a rollback
 * target) and names the canary it switched back from. `{ reason }` when the stable version cannot serve.
 */
export async function restoreStable(
  run: RunContext,
  stableVersion: string,
  totalReplicas: number,
  exposure: ServiceExposure,
): Promise<{ service: V1Service } | { reason: string }> {
  const namespace = run.namespaces.production;
  const stableName = productionDeploymentName(run.modelName, stableVersion);
  if (!(await scaleDeployment(namespace, stableName, totalReplicas))) return { reason: `the stable version ${stableVersion} has no Deployment (${namespace}/${stableName})` };
  const unavailable = await deploymentUnavailable(namespace, stableName);
  if (unavailable) return { reason: `the stable version ${stableVersion} cannot take traffic: ${unavailable}` };
  const current = await readService(namespace, run.names.productionService);
  const previous = current?.metadata?.annotations?.[PREVIOUS_VERSION_ANNOTATION] ?? null;
  const svc = servingService({ ...productionServiceTarget(run), version: stableVersion }, exposure, previous === run.version ? null : previous);
  svc.metadata = { ...svc.metadata, annotations: { ...svc.metadata?.annotations, [SWITCHED_BACK_FROM_ANNOTATION]: run.version } };
  const service = await applyObject(svc);
  await scaleDeployment(namespace, run.names.productionDeployment, 0);
  return { service };
}

// ---------------------------------------------------------------------------------------------------
// The step machine of $.canary

/** The first step's state, before any pod moved (DeployProduction already made the canary's first pods). */
export function firstStep(stableVersion: string, totalReplicas: number, rollout: RunRollout, now: number): CanaryState {
  return { ...stepFields(0, totalReplicas, rollout, now), stableVersion, totalReplicas, steps: [] };
}

function stepFields(step: number, totalReplicas: number, rollout: RunRollout, now: number) {
  const weight = rollout.steps[step];
  if (weight === undefined) throw new CanaryError(`canary step ${step + 1} does not exist (steps ${JSON.stringify(rollout.steps)})`);
  const plan = splitFor(weight, totalReplicas);
  return {
    status: 'scaling' as const,
    step,
    weight,
    canaryReplicas: plan.canaryReplicas,
    stableReplicas: plan.stableReplicas,
    reachablePercent: plan.reachablePercent,
    scaledAt: new Date(now).toISOString(),
    inconclusive: 0,
    analyses: 0,
    waitSeconds: waitFor(rollout.bakeSeconds, rollout),
  };
}

/** Seconds until the next analysis: the interval, or less when the bake ends sooner; at least 1. */
function waitFor(remainingSeconds: number, rollout: RunRollout): number {
  return Math.max(1, Math.min(rollout.analysisIntervalSeconds, Math.ceil(remainingSeconds)));
}

/** The step's pods are ready and the Service splits: the bake starts now, against these counters. */
export function startBake(c: CanaryState, baseline: NonNullable<CanaryState['baseline']>, rollout: RunRollout, now: number): CanaryState {
  return {
    ...c,
    status: 'baking',
    stepStartedAt: new Date(now).toISOString(),
    bakeUntil: new Date(now + rollout.bakeSeconds * 1000).toISOString(),
    baseline,
    waitSeconds: waitFor(rollout.bakeSeconds, rollout),
  };
}

/**
 * What follows an analysis: a fail rolls back at once (whatever is left of the bake); before the bake
 * ends, bake on; at its end a pass moves to the next step, an inconclusive one extends the bake (up to
 * maxInconclusive times, then it counts as a fail: a canary nobody used is not a canary that passed).
 */
export function afterAnalysis(c: CanaryState, v: CanaryVerdict, rollout: RunRollout, version: string, now: number): CanaryState {
  const evidence = { verdict: v.verdict, reasons: v.reasons, canary: v.canary, stable: v.stable, servedShare: v.servedShare };
  const seen: CanaryState = { ...c, analyses: c.analyses + 1, last: evidence };
  const at = new Date(now).toISOString();
  if (v.verdict === 'fail') return { ...seen, status: 'rollback', failure: failureText(seen, version, v.reasons), failedAt: at };
  const bakeUntil = Date.parse(c.bakeUntil ?? at);
  if (now < bakeUntil) return { ...seen, status: 'baking', waitSeconds: waitFor((bakeUntil - now) / 1000, rollout) };
  if (v.verdict === 'inconclusive') {
    if (c.inconclusive < rollout.maxInconclusive) {
      return { ...seen, status: 'baking', inconclusive: c.inconclusive + 1, bakeUntil: new Date(now + rollout.bakeSeconds * 1000).toISOString(), waitSeconds: waitFor(rollout.bakeSeconds, rollout) };
    }
    const why = [`still inconclusive after ${c.inconclusive} extended bake${c.inconclusive === 1 ? '' : 's'} (maxInconclusive ${rollout.maxInconclusive})`, ...v.reasons];
    return { ...seen, status: 'rollback', failure: failureText(seen, version, why), failedAt: at };
  }
  const done = {
    weight: c.weight,
    canaryReplicas: c.canaryReplicas,
    stableReplicas: c.stableReplicas,
    reachablePercent: c.reachablePercent,
    startedAt: c.stepStartedAt ?? c.scaledAt,
    endedAt: at,
    analyses: seen.analyses,
    evidence,
  };
  const { baseline: _b, stepStartedAt: _s, bakeUntil: _u, last: _l, ...rest } = seen;
  // The last step (100 %) passed: SwitchProductionTraffic confirms the Service on the candidate.
  if (c.step + 1 >= rollout.steps.length) return { ...rest, status: 'promote', steps: [...c.steps, done] };
  return { ...rest, ...stepFields(c.step + 1, c.totalReplicas, rollout, now), steps: [...c.steps, done] };
}

/** The Cause of CanaryAnalysisFailed: where the canary was and why, with the numbers of both versions. */
function failureText(c: CanaryState, version: string, reasons: string[]): string {
  const stats = c.last ? ` Canary: ${statsText(c.last.canary)}; stable ${c.stableVersion}: ${c.last.stable ? statsText(c.last.stable) : 'n/a'}.` : '';
  return `Canary ${version} failed at ${c.weight} % (${c.canaryReplicas} of ${c.totalReplicas} pods) after ${c.analyses} analys${c.analyses === 1 ? 'is' : 'es'}: ${reasons.join('; ')}.${stats} Traffic went back to ${c.stableVersion}.`;
}

export function statsText(s: { requests: number; errors: number; errorRate: number; p95Ms: number | null }): string {
  return `${s.requests} requests, ${s.errors} errors (${(s.errorRate * 100).toFixed(1)} %), p95 ${s.p95Ms === null ? 'n/a' : `${s.p95Ms.toFixed(1)} ms`}`;
}
