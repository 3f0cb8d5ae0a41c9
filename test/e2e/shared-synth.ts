/**
 * The local configuration the end-to-end tests synthesize, and where they cache it: one cloud assembly
 * shared by every test file (and by later `npm test` runs while the sources are unchanged), in the
 * repository's .mlpipe/synth, which `npm start` uses too.
 */
import { join } from 'node:path';
import { LOCAL_CONTEXT } from '../../local/pipeline';
import { REPO_ROOT, synthesizeLocalStack, type SynthResult } from '../../local/lambda/synth';

export const SHARED_SYNTH_CACHE = join(REPO_ROOT, '.mlpipe', 'synth');

/**
 * The gate is lowered so the quick models (one rejected on purpose, one released) still reach a human,
 * and latency is not gated: on a shared test machine it measures the machine's load, not the model.
 * `npm start -- -c minAccuracy=0.6 -c maxAccuracyDrop=0.5 -c maxP95LatencyMs=10000 -c evalSamples=2000
 * -c rollout='{"bakeSeconds":4,…}' --synth-cache .mlpipe/synth` runs (and caches) the same stack.
 */
/** The e2e's quick model: a release in well under a minute that passes E2E_CONTEXT's gate. */
export const QUICK_HYPERPARAMETERS = { epochs: 1, maxTrainSamples: 6000 };

export const E2E_CONTEXT: Readonly<Record<string, unknown>> = {
  minAccuracy: 0.6,
  maxAccuracyDrop: 0.5,
  maxP95LatencyMs: 10000,
  // 2,000 held-out images (of 10,000, the default): the same code path at a fifth of the requests, in each
  // of the five runs that reach evaluation across the e2e files.
  evalSamples: 2000,
  // Production runs LOCAL_CONTEXT's two pods (each release, rollback and restore starts every one of them):
  // each canary step is still a real split (10 % and 50 %: 1 canary pod beside 1 stable; 100 %: 2 canary
  // pods); the step arithmetic for four and more is test/unit/canary-steps.test.ts's.
  // The canary keeps three steps of 4 s (the local run: 50/100 at 2 s), so the e2e covers an intermediate
  // step analysed twice: two analyses a step still see 10+ requests of the one canary pod of two at 20
  // requests/s. Every field: context replaces LOCAL_CONTEXT's rollout whole.
  rollout: { bakeSeconds: 4, analysisIntervalSeconds: 2, minRequests: 10, maxP95Ratio: 10, maxP95LatencyMs: 5000 },
};

/** The stack the end-to-end tests run: LOCAL_CONTEXT with E2E_CONTEXT over it, as startLocalPipeline merges them. */
export function synthesizeE2eStack(): Promise<SynthResult> {
  return synthesizeLocalStack({ context: { ...LOCAL_CONTEXT, ...E2E_CONTEXT }, cacheDir: SHARED_SYNTH_CACHE });
}
