/**
 * The canary's pure parts: the rollout settings' rules (rollout.ts), the split by replica counts, and the
 * step machine of $.canary (canary.ts): what follows each analysis. No network, no clock: times are given.
 */
import type { CanaryVerdict } from '../../functions/shared/canary-analysis';
import { afterAnalysis, firstStep, startBake } from '../../functions/shared/canary';
import { RolloutSchema, RunRolloutSchema, describeSplit, mergeRollout, splitFor, type RunRollout } from '../../functions/shared/rollout';
import { ROLLOUT, parseSetting } from '../../functions/shared/settings';
import type { CanaryState } from '../../functions/shared/types';

const ROLLOUT_DEFAULTS = RolloutSchema.parse({});
const T0 = Date.parse('2026-01-01T00:00:00Z');
const COUNTERS = { requests: 0, errors: 0, buckets: [] as Array<[number, number]>, pods: 1, podsRead: 1 };
const stats = (requests: number, errors: number) => ({ requests, errors, errorRate: requests ? errors / requests : 0, p95Ms: 3 });
const verdict = (v: CanaryVerdict['verdict'], reasons = [`${v} because`]): CanaryVerdict => ({ verdict: v, reasons, canary: stats(40, v === 'fail' ? 20 : 0), stable: stats(120, 0), servedShare: 0.25 });

describe('rollout settings', () => {
  it('defaults to a canary of 10, 50, 100 % baking 5 minutes, analysed every minute', () => {
    expect(parseSetting(ROLLOUT, undefined)).toEqual({
      strategy: 'canary', steps: [10, 50, 100], bakeSeconds: 300, analysisIntervalSeconds: 60, maxInconclusive: 2,
      maxErrorRate: 0.05, maxErrorRateIncrease: 0.02, maxP95LatencyMs: 1000, maxP95Ratio: 1.5, minRequests: 50,
    });
  });

  it.each([
    ['steps that do not end at 100', '{"steps":[10,50]}', /steps: must end at 100/],
    ['steps that do not ascend', '{"steps":[50,10,100]}', /steps: must ascend: step 2 \(10\) is not above step 1 \(50\)/],
    ['an unknown strategy', '{"strategy":"linear"}', /strategy: must be "canary" or "blueGreen"/],
    ['a threshold out of range', '{"maxErrorRate":5}', /maxErrorRate: must be between 0 and 1/],
    ['a misspelt field', '{"bakeSecs":5}', /bakeSecs/],
    ['no JSON', 'canary', /must be JSON/],
  ])('refuses %s, naming the field', (_what, text, message) => {
    expect(() => parseSetting(ROLLOUT, text)).toThrow(message);
  });

  it("a run's override goes over the stack's, and the whole is checked again", () => {
    const merged = mergeRollout(ROLLOUT_DEFAULTS, { bakeSeconds: 5, candidateFault: 'error-rate=0.2' });
    expect(merged).toMatchObject({ strategy: 'canary', steps: [10, 50, 100], bakeSeconds: 5, candidateFault: 'error-rate=0.2' });
    expect(() => RunRolloutSchema.parse(mergeRollout(ROLLOUT_DEFAULTS, { candidateFault: 'error-rate=2' }, false))).toThrow(/error-rate must be a fraction between 0 and 1/);
  });
});

describe('splitFor: the split by replica counts', () => {
  it.each([
    [10, 4, 1, 3, 25],
    [50, 4, 2, 2, 50],
    [90, 4, 3, 1, 75], // never all pods below 100 %: stable keeps one
    [1, 10, 1, 9, 10], // never none: the canary gets one
    [100, 4, 4, 0, 100],
    [10, 2, 1, 1, 50],
  ])('%i %% of %i pods → canary %i, stable %i (%i %% reachable)', (weight, total, canary, stable, reachable) => {
    expect(splitFor(weight, total)).toEqual({ weight, canaryReplicas: canary, stableReplicas: stable, reachablePercent: reachable });
  });

  it('says what is reachable in words, and refuses to split one pod', () => {
    expect(describeSplit(splitFor(10, 4))).toBe('10 % requested → 1 of 4 pods = 25 % reachable');
    expect(() => splitFor(10, 1)).toThrow(/needs at least 2 replicas/);
  });
});

describe('the canary step machine', () => {
  const rollout: RunRollout = { ...ROLLOUT_DEFAULTS, bakeSeconds: 6, analysisIntervalSeconds: 2, maxInconclusive: 1 };
  const baking = (at = T0): CanaryState => startBake(firstStep('v1', 4, rollout, at), { canary: COUNTERS, stable: COUNTERS }, rollout, at);

  it('starts at the first step with its pods, then bakes until the bake time is over', () => {
    const c = baking();
    expect(c).toMatchObject({ status: 'baking', step: 0, weight: 10, canaryReplicas: 1, stableReplicas: 3, waitSeconds: 2, bakeUntil: '2026-01-01T00:00:06.000Z' });
    const mid = afterAnalysis(c, verdict('pass'), rollout, 'v2', T0 + 2000);
    expect(mid).toMatchObject({ status: 'baking', step: 0, analyses: 1, waitSeconds: 2 });
    // The last wait is what is left of the bake, not a whole interval.
    expect(afterAnalysis(c, verdict('pass'), rollout, 'v2', T0 + 5500).waitSeconds).toBe(1);
  });

  it('a pass at the end of the bake moves to the next step, keeping the step and its evidence', () => {
    const next = afterAnalysis(baking(), verdict('pass'), rollout, 'v2', T0 + 6000);
    expect(next).toMatchObject({ status: 'scaling', step: 1, weight: 50, canaryReplicas: 2, stableReplicas: 2, analyses: 0, inconclusive: 0 });
    expect(next.baseline).toBeUndefined();
    expect(next.steps).toEqual([expect.objectContaining({ weight: 10, analyses: 1, evidence: expect.objectContaining({ verdict: 'pass', servedShare: 0.25 }) })]);
  });

  it('a fail rolls back at once, before the bake is over, with both versions in the cause', () => {
    const next = afterAnalysis(baking(), verdict('fail', ['canary error rate 50.0 % is above maxErrorRate 5.0 %']), rollout, 'v2', T0 + 2000);
    expect(next.status).toBe('rollback');
    expect(next.failure).toBe(
      'Canary v2 failed at 10 % (1 of 4 pods) after 1 analysis: canary error rate 50.0 % is above maxErrorRate 5.0 %. ' +
        'Canary: 40 requests, 20 errors (50.0 %), p95 3.0 ms; stable v1: 120 requests, 0 errors (0.0 %), p95 3.0 ms. Traffic went back to v1.',
    );
  });

  it('an inconclusive bake is extended up to maxInconclusive times, then counts as a fail', () => {
    const extended = afterAnalysis(baking(), verdict('inconclusive'), rollout, 'v2', T0 + 6000);
    expect(extended).toMatchObject({ status: 'baking', step: 0, inconclusive: 1, bakeUntil: '2026-01-01T00:00:12.000Z' });
    // Before the bake ends, inconclusive just bakes on.
    expect(afterAnalysis(extended, verdict('inconclusive'), rollout, 'v2', T0 + 8000)).toMatchObject({ status: 'baking', inconclusive: 1 });
    const failed = afterAnalysis(extended, verdict('inconclusive', ['canary served 3 requests, fewer than minRequests 50']), rollout, 'v2', T0 + 12_000);
    expect(failed.status).toBe('rollback');
    expect(failed.failure).toContain('still inconclusive after 1 extended bake (maxInconclusive 1); canary served 3 requests');
  });

  it('the last step (100 %) runs the canary on every pod', () => {
    const at50 = afterAnalysis(baking(), verdict('pass'), rollout, 'v2', T0 + 6000);
    const started = startBake(at50, { canary: COUNTERS, stable: COUNTERS }, rollout, T0 + 7000);
    const at100 = afterAnalysis(started, verdict('pass'), rollout, 'v2', T0 + 13_000);
    expect(at100).toMatchObject({ status: 'scaling', step: 2, weight: 100, canaryReplicas: 4, stableReplicas: 0 });
    expect(at100.steps.map((s) => s.weight)).toEqual([10, 50]);
  });

  it('the last step (100 %) is baked and judged too: its pass promotes, its fail rolls back', () => {
    const at50 = afterAnalysis(baking(), verdict('pass'), rollout, 'v2', T0 + 6000);
    const at100 = afterAnalysis(startBake(at50, { canary: COUNTERS, stable: COUNTERS }, rollout, T0 + 7000), verdict('pass'), rollout, 'v2', T0 + 13_000);
    const baking100 = startBake(at100, { canary: COUNTERS, stable: COUNTERS }, rollout, T0 + 14_000);
    expect(afterAnalysis(baking100, verdict('pass'), rollout, 'v2', T0 + 16_000)).toMatchObject({ status: 'baking' });
    const promoted = afterAnalysis(baking100, verdict('pass'), rollout, 'v2', T0 + 20_000);
    expect(promoted.status).toBe('promote');
    expect(promoted.steps.map((s) => s.weight)).toEqual([10, 50, 100]);
    expect(afterAnalysis(baking100, verdict('fail', ['canary error rate 9.0 % is above maxErrorRate 5.0 %']), rollout, 'v2', T0 + 16_000)).toMatchObject({ status: 'rollback' });
  });
});
