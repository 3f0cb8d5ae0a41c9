/**
 * AnalyzeCanary: after each BakeCanary Wait, reads both versions' `/metrics` through the pod proxy,
 * takes what each served since the step's baseline, and judges the canary against the stable version
 * (canary-analysis.ts: error rate, p95 from the histogram, request count). A fail answers `rollback` at
 * once, so a bad canary serves at most one analysis interval longer; otherwise the bake goes on, and at
 * its end a pass moves to the next step (`scaling`) and an inconclusive one extends the bake (canary.ts
 * afterAnalysis). Reads only, so a retry is harmless. Returns `$.canary`.
 */
import { counterDelta, judge, readVersionCounters, statsOf } from './shared/canary-analysis';
import { afterAnalysis } from './shared/canary';
import { InvalidInputError } from './shared/errors';
import { FUNCTION_SETTINGS } from './shared/function-settings';
import { logger, withLogContext } from './shared/logger';
import { SERVING_PORT } from './shared/manifests';
import { workloadLabels } from './shared/names';
import { phaseClock } from './shared/phase';
import { loadSettings } from './shared/settings';
import { CanarySchema, parseInput, stateWith } from './shared/state';
import type { CanaryState, PipelineState } from './shared/types';

/** Read and validated once, at init: this function reads only the cluster's location. */
loadSettings(FUNCTION_SETTINGS.AnalyzeCanary);
const Input = stateWith({ canary: CanarySchema });

async function analyzeCanary(event: PipelineState): Promise<CanaryState> {
  const { run, canary } = parseInput(Input, event, 'AnalyzeCanary input');
  if (!run.rollout || canary.status !== 'baking' || !canary.baseline) {
    throw new InvalidInputError(`AnalyzeCanary input is invalid: canary.status must be "baking" with a baseline (got "${canary.status}").`);
  }
  const namespace = run.namespaces.production;
  const [now, stable] = await Promise.all([
    readVersionCounters(namespace, workloadLabels(run.modelName, run.version, 'production'), SERVING_PORT),
    readVersionCounters(namespace, workloadLabels(run.modelName, canary.stableVersion, 'production'), SERVING_PORT),
  ]);
  const verdict = judge(statsOf(counterDelta(now, canary.baseline.canary)), statsOf(counterDelta(stable, canary.baseline.stable)), run.rollout);
  const next = afterAnalysis(canary, verdict, run.rollout, run.version, phaseClock().now());
  logger.info('canary analysed', {
    step: canary.step + 1,
    weight: canary.weight,
    verdict: verdict.verdict,
    reasons: verdict.reasons,
    canary: verdict.canary,
    stable: verdict.stable,
    servedShare: verdict.servedShare,
    podsRead: { canary: `${now.podsRead}/${now.pods}`, stable: `${stable.podsRead}/${stable.pods}` },
    next: next.status,
  });
  return next;
}

export const handler = withLogContext('AnalyzeCanary', analyzeCanary);
