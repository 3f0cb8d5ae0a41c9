/**
 * EvaluateModel: measures the staging endpoint on the held-out set and decides the gate. Returns
 * EvaluationResult (`$.evaluation`); a model that fails the gate returns passed:false and the ASL routes it
 * to failure. Only an evaluation that cannot run at all (no data, endpoint unreachable) throws.
 * When a version serves production, its endpoint gets the same images in the same evaluation, requests
 * interleaved with the candidate's, so per-class accuracy and latency compare like with like. When its own
 * evaluation.json measured these very images (same fingerprint), its accuracy is that one's and it gets
 * only a few batches, for its latency and error rate now.
 */
import * as z from 'zod';
import { presentedToken } from './shared/endpoint-auth';
import { FUNCTION_SETTINGS } from './shared/function-settings';
import { CHAMPION_LATENCY_BATCHES, championComparison, heldOutFingerprint, judge, knownAccuracy, loadHeldOutSet, measureEndpoints, perClassFields, type Thresholds } from './shared/evaluation';
import { logger, withLogContext } from './shared/logger';
import { readEvaluation, readProduction, registryKeys, s3Uri, writeEvaluation } from './shared/registry';
import { loadSettings } from './shared/settings';
import { parseInput } from './shared/state';
import type { EvaluationResult } from './shared/types';

/** Read and validated once, at init: a bad value fails the Lambda's init naming the variable. */
const loaded = loadSettings(FUNCTION_SETTINGS.EvaluateModel);
const settings = {
  samples: loaded.EVAL_SAMPLES,
  batchSize: loaded.EVAL_BATCH_SIZE,
  // p95 is a gate on the model's latency, not on queueing: with 4 requests in flight against one local
  // serve.ts, p95 measured 118-123 ms against 19-31 ms with 1, and 2 was as fast overall (1.6-2.4 s).
  concurrency: loaded.EVAL_CONCURRENCY,
  timeoutMs: loaded.EVAL_REQUEST_TIMEOUT_MS,
};
const thresholds: Thresholds = {
  minAccuracy: loaded.MIN_ACCURACY,
  maxP95LatencyMs: loaded.MAX_P95_LATENCY_MS,
  maxErrorRate: loaded.MAX_ERROR_RATE,
  maxAccuracyDrop: loaded.MAX_ACCURACY_DROP,
};

const Input = z.object({
  run: z.object({
    modelName: z.string().min(1),
    version: z.string().min(1),
    evalDataUri: z.string().startsWith('s3://', 'must be an s3:// URI'),
  }),
  staging: z.object({
    status: z.literal('serving', 'must be "serving" before evaluation'),
    endpoint: z.url({ protocol: /^https?$/, message: 'must be the http(s) URL of the staging endpoint' }),
  }),
});

async function evaluateModel(event: unknown): Promise<EvaluationResult> {
  const { run, staging } = parseInput(Input, event, 'EvaluateModel input');

  // The champion: what serves production now, unless that is this very version (a re-run).
  const current = await readProduction(run.modelName);
  const champion = current && current.version !== run.version ? current : undefined;
  const [data, stored] = await Promise.all([
    loadHeldOutSet(run.evalDataUri),
    champion ? readEvaluation(run.modelName, champion.version) : undefined,
  ]);
  const fingerprint = heldOutFingerprint(data, settings.samples);
  const known = knownAccuracy(stored, fingerprint);
  const { candidate: m, champion: measured } = await measureEndpoints({
    endpoint: staging.endpoint,
    ...(champion?.endpoint ? { championEndpoint: champion.endpoint } : {}),
    ...(known ? { championBatches: CHAMPION_LATENCY_BATCHES } : {}),
    modelName: run.modelName,
    data,
    token: await presentedToken(run.modelName),
    ...settings,
  });
  const { production, note, accuracyFromEvaluation } = championComparison(champion, measured, stored, thresholds.maxErrorRate, known);

  const result: EvaluationResult = {
    ...judge(m, thresholds, production, note),
    accuracy: m.accuracy,
    latencyMsP50: m.latencyMsP50,
    latencyMsP95: m.latencyMsP95,
    errorRate: m.errorRate,
    samples: m.samples,
    thresholds,
    ...perClassFields(m, data.classes),
    production,
    evaluatedAt: new Date().toISOString(),
    reportUri: s3Uri(registryKeys.evaluation(run.modelName, run.version)),
  };
  await writeEvaluation({
    ...result,
    modelName: run.modelName,
    version: run.version,
    endpoint: staging.endpoint,
    details: {
      requests: m.requests,
      failedRequests: m.failedRequests,
      batchSize: settings.batchSize,
      // Which images were sent: a later evaluation of the same images takes this version's accuracy from here.
      heldOut: { sha256: fingerprint },
      errors: m.errors,
      // In full, whatever the class count (the state carries them only up to its limits).
      perClassAccuracy: m.perClassAccuracy,
      confusion: m.confusion,
      ...(measured
        ? {
            production: 'unreachable' in measured
              ? { unreachable: measured.unreachable }
              : { requests: measured.requests, failedRequests: measured.failedRequests, errors: measured.errors, errorRate: measured.errorRate, ...(accuracyFromEvaluation && champion ? { accuracyFrom: registryKeys.evaluation(run.modelName, champion.version) } : {}) },
          }
        : {}),
    },
  });
  logger.info('evaluated', {
    passed: result.passed,
    summary: result.summary,
    accuracy: result.accuracy,
    latencyMsP95: result.latencyMsP95,
    errorRate: result.errorRate,
    productionLatencyMsP95: production?.latencyMsP95,
    reportUri: result.reportUri,
  });
  return result;
}

export const handler = withLogContext('EvaluateModel', evaluateModel);
