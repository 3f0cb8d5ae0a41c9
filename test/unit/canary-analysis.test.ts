/**
 * The pure part of the canary analysis (functions/shared/canary-analysis.ts): parsing the serving
 * metrics (as the example server renders them), deltas across counter resets, p95 from the histogram,
 * the verdict rules and threshold validation; and the FAULT grammar (functions/shared/fault.ts).
 * No network: the reader is tested over HTTP in test/local-kube/pods-proxy.test.ts.
 */
import { ServingMetrics } from '../../examples/fashion-mnist/serving-metrics';
import {
  counterDelta,
  judge,
  parseServingMetrics,
  ServingMetricsError,
  statsOf,
  type CanaryThresholds,
  type PodCounters,
  type VersionCounters,
  type VersionStats,
} from '../../functions/shared/canary-analysis';
import { InvalidInputError } from '../../functions/shared/errors';
import { FaultInjector, FaultSpecError, formatFault, parseFault } from '../../functions/shared/fault';

const THRESHOLDS: CanaryThresholds = { maxErrorRate: 0.05, maxErrorRateIncrease: 0.02, maxP95LatencyMs: 500, maxP95Ratio: 1.5, minRequests: 20 };

function version(pods: Record<string, PodCounters>): VersionCounters {
  const all = Object.values(pods);
  const bounds = [...new Set(all.flatMap((p) => p.buckets.map(([le]) => le)))].sort((a, b) => a - b);
  return {
    requests: all.reduce((n, p) => n + p.requests, 0),
    errors: all.reduce((n, p) => n + p.errors, 0),
    buckets: bounds.map((le) => [le, all.reduce((n, p) => n + (p.buckets.find(([b]) => b === le)?.[1] ?? 0), 0)]),
    pods: all.length,
    podsRead: all.length,
    byPod: pods,
  };
}

const pod = (requests: number, errors: number, restarts = 0, fast = requests): PodCounters => ({
  requests,
  errors,
  restarts,
  buckets: [
    [10, fast],
    [100, requests],
  ],
});

const stats = (requests: number, errors: number, p95Ms: number | null): VersionStats => ({ requests, errors, errorRate: requests ? errors / requests : 0, p95Ms });

describe('parseServingMetrics', () => {
  it("reads the prediction route of the example server's own /metrics: requests, 5xx errors, histogram in ms", () => {
    // Prepare: what examples/fashion-mnist/serving-metrics.ts renders after this traffic.
    const m = new ServingMetrics();
    for (let i = 0; i < 6; i++) m.observe('predict', 200, 0.002);
    m.observe('predict', 200, 0.3);
    m.observe('predict', 500, 0.02);
    m.observe('predict', 503, 0.0004);
    m.observe('predict', 400, 0.001); // the client's fault: a request, not an error of the model
    m.observe('status', 500, 0.001); // not the prediction route
    m.observe('metrics', 200, 0.001);

    // Act
    const c = parseServingMetrics(m.render(true));

    // Assess
    expect(c.requests).toBe(10);
    expect(c.errors).toBe(2);
    expect(c.buckets[0]).toEqual([1, 2]);
    expect(c.buckets).toContainEqual([2.5, 8]);
    expect(c.buckets).toContainEqual([25, 9]);
    expect(c.buckets).toContainEqual([250, 9]);
    expect(c.buckets).toContainEqual([500, 10]);
    expect(c.buckets.at(-1)).toEqual([10000, 10]);
    expect(c.buckets.every(([le]) => Number.isFinite(le))).toBe(true);
  });

  it('reads a server with no traffic yet as zero, and label values with escapes, spaces and timestamps', () => {
    expect(parseServingMetrics(new ServingMetrics().render(false))).toEqual({ requests: 0, errors: 0, buckets: [] });
    const text = [
      '# TYPE serving_requests_total counter',
      'serving_requests_total{ code="200", route="predict" } 7 1700000000000',
      'serving_requests_total{route="pre\\"dict",code="500"} 99',
      'serving_request_duration_seconds_bucket{le="0.05",route="predict"} 7',
      'serving_request_duration_seconds_bucket{le="+Inf",route="predict"} 7',
    ].join('\n');
    expect(parseServingMetrics(text)).toEqual({ requests: 7, errors: 0, buckets: [[50, 7]] });
  });

  it.each([
    ['a text without the serving metrics', 'up 1\n', /pod x: no serving_requests_total in its \/metrics/],
    ['a line that is not a sample', '# TYPE serving_requests_total counter\nserving_requests_total{route="predict" 3\n', /pod x: line 2 is not a Prometheus sample/],
    ['a bucket without le', '# TYPE serving_requests_total counter\nserving_request_duration_seconds_bucket{route="predict"} 3\n', /pod x: line 2: histogram bucket without a valid "le"/],
    ['an HTML error page', '<html><body>502 Bad Gateway</body></html>', /pod x: line 1 is not a Prometheus sample/],
  ])('refuses %s with a message naming the pod', (_, text, message) => {
    expect(() => parseServingMetrics(text, 'pod x')).toThrow(ServingMetricsError);
    expect(() => parseServingMetrics(text, 'pod x')).toThrow(message);
  });
});

describe('counterDelta', () => {
  it('subtracts the baseline per pod', () => {
    const before = version({ a: pod(100, 1), b: pod(50, 0) });
    const now = version({ a: pod(130, 4), b: pod(70, 0, 0, 60) });
    expect(counterDelta(now, before)).toEqual({ requests: 50, errors: 3, buckets: [[10, 40], [100, 50]], pods: 2, podsRead: 2, restarts: 0 });
  });

  it('counts a restarted pod from 0, and a pod new since the baseline whole, instead of going negative', () => {
    const before = version({ a: pod(100, 1), b: pod(500, 20) });
    // b restarted (restarts 1, counters from 0 again): 30 since; c appeared with 12.
    const now = version({ a: pod(110, 1), b: pod(30, 3, 1), c: pod(12, 0) });
    expect(counterDelta(now, before)).toMatchObject({ requests: 10 + 30 + 12, errors: 3, pods: 3, restarts: 1 });
  });

  it('counts a restarted pod from 0 even when it has already served more than at the baseline', () => {
    // Subtracting the baseline would say 25: the 5 were served by the process before the restart.
    const before = version({ a: pod(5, 0) });
    const now = version({ a: pod(30, 3, 2) });
    expect(counterDelta(now, before)).toMatchObject({ requests: 30, errors: 3, restarts: 2 });
  });

  it('treats counters that went down as a reset even when the restart count did not change', () => {
    const before = version({ a: pod(100, 10) });
    const now = version({ a: pod(7, 1) });
    expect(counterDelta(now, before)).toMatchObject({ requests: 7, errors: 1 });
  });

  it('adds nothing for a pod gone or unread since the baseline', () => {
    const before = version({ a: pod(100, 1), b: pod(100, 1) });
    const now = { ...version({ a: pod(120, 1) }), pods: 2 };
    expect(counterDelta(now, before)).toMatchObject({ requests: 20, errors: 0, pods: 2, podsRead: 1 });
  });

  it('works on the sums when a reading has no per-pod counters (a zero baseline made by hand)', () => {
    const zero: VersionCounters = { requests: 0, errors: 0, buckets: [], pods: 0, podsRead: 0 };
    const now = version({ a: pod(40, 2) });
    expect(counterDelta(now, zero)).toEqual({ requests: 40, errors: 2, buckets: [[10, 40], [100, 40]], pods: 1, podsRead: 1 });
    const { byPod: _, ...sumsOnly } = version({ a: pod(10, 0) });
    expect(counterDelta(now, sumsOnly)).toMatchObject({ requests: 30, errors: 2 });
  });
});

describe('statsOf', () => {
  const counters = (requests: number, errors: number, buckets: Array<[number, number]>): VersionCounters => ({ requests, errors, buckets, pods: 1, podsRead: 1 });

  it('interpolates p95 within its bucket as histogram_quantile does', () => {
    // 100 requests: 90 ≤ 10 ms, 100 ≤ 20 ms → rank 95 is halfway through (10, 20].
    expect(statsOf(counters(100, 5, [[10, 90], [20, 100]]))).toEqual({ requests: 100, errors: 5, errorRate: 0.05, p95Ms: 15 });
    // All in the first bucket: from 0 to its bound.
    expect(statsOf(counters(20, 0, [[1, 20], [2.5, 20]])).p95Ms).toBe(0.95);
  });

  it('gives the highest finite bound when the rank is beyond it, and null without requests', () => {
    expect(statsOf(counters(10, 0, [[10, 5], [10000, 9]])).p95Ms).toBe(10000);
    expect(statsOf(counters(0, 0, []))).toEqual({ requests: 0, errors: 0, errorRate: 0, p95Ms: null });
  });
});

describe('judge', () => {
  it('passes a canary within every threshold, with the served share measured', () => {
    const v = judge(stats(100, 1, 12), stats(300, 3, 11), THRESHOLDS);
    expect(v.verdict).toBe('pass');
    expect(v.servedShare).toBe(0.25);
    expect(v.reasons).toEqual(['within thresholds: canary 1.0 % errors, p95 12 ms over 100 requests; stable 1.0 % errors, p95 11 ms over 300 requests']);
  });

  it.each([
    ['an error rate above maxErrorRate', stats(100, 20, 10), stats(300, 57, 10), /^canary error rate 20\.0 % \(20\/100\) is above maxErrorRate 5\.0 %$/],
    ['an error rate more than maxErrorRateIncrease above stable', stats(100, 4, 10), stats(300, 3, 10), /^canary error rate 4\.0 % is 3\.0 % above stable's 1\.0 % \(maxErrorRateIncrease 2\.0 %\)$/],
    ['a p95 above maxP95LatencyMs', stats(100, 0, 900), null, /^canary p95 900 ms is above maxP95LatencyMs 500 ms$/],
    ['a p95 more than maxP95Ratio × stable', stats(100, 0, 60), stats(300, 0, 20), /^canary p95 60 ms is 3\.00× stable's 20 ms \(maxP95Ratio 1\.5\)$/],
  ])('fails on %s, saying so with the numbers', (_, canary, stable, reason) => {
    const v = judge(canary, stable, THRESHOLDS);
    expect(v.verdict).toBe('fail');
    expect(v.reasons).toHaveLength(1);
    expect(v.reasons[0]).toMatch(reason);
  });

  it('does not judge a p95 ratio below the histogram floor (1 ms vs 3 ms is bucket noise)', () => {
    expect(judge(stats(100, 0, 3), stats(300, 0, 1), THRESHOLDS).verdict).toBe('pass');
  });

  it('is inconclusive below minRequests for either version, and says which', () => {
    const v = judge(stats(19, 0, 10), stats(300, 0, 10), THRESHOLDS);
    expect(v).toMatchObject({ verdict: 'inconclusive', reasons: ['canary served 19 requests, fewer than minRequests 20'] });
    const s = judge(stats(50, 0, 10), stats(5, 0, 10), THRESHOLDS);
    expect(s).toMatchObject({ verdict: 'inconclusive', reasons: ['stable served 5 requests, fewer than minRequests 20'] });
    expect(judge(stats(0, 0, null), null, THRESHOLDS)).toMatchObject({ verdict: 'inconclusive', servedShare: null });
  });

  it('fails on absolute thresholds even when the stable has too few requests to compare', () => {
    expect(judge(stats(50, 25, 10), stats(3, 0, 10), THRESHOLDS).verdict).toBe('fail');
  });

  it('judges the 100 % step (no stable version) on the absolute thresholds alone', () => {
    expect(judge(stats(100, 1, 30), null, THRESHOLDS)).toMatchObject({ verdict: 'pass', servedShare: 1, stable: null });
    expect(judge(stats(100, 10, 30), null, THRESHOLDS).verdict).toBe('fail');
    // The stable's Deployment at 0 pods reads as a version that served nothing: the same, not inconclusive.
    const none = judge(stats(100, 1, 30), stats(0, 0, null), THRESHOLDS);
    expect(none).toMatchObject({ verdict: 'pass', servedShare: 1, stable: stats(0, 0, null) });
    expect(none.reasons[0]).toMatch(/the stable version served nothing in this step \(nothing to compare with\)$/);
  });

  it.each([
    [{ maxErrorRate: 1.5 }, /maxErrorRate must be a fraction between 0 and 1 \(got 1\.5\)/],
    [{ maxErrorRateIncrease: -0.1 }, /maxErrorRateIncrease must be a fraction between 0 and 1 \(got -0\.1\)/],
    [{ maxP95LatencyMs: 0 }, /maxP95LatencyMs must be a number of milliseconds above 0 \(got 0\)/],
    [{ maxP95Ratio: 0.5 }, /maxP95Ratio must be at least 1 \(got 0\.5\)/],
    [{ minRequests: 2.5 }, /minRequests must be a whole number of at least 1 \(got 2\.5\)/],
    [{ maxErrorRate: Number.NaN }, /maxErrorRate must be a fraction between 0 and 1 \(got NaN\)/],
  ])('refuses thresholds %j with InvalidInputError naming the threshold', (bad, message) => {
    const call = () => judge(stats(100, 0, 10), null, { ...THRESHOLDS, ...bad });
    expect(call).toThrow(InvalidInputError);
    expect(call).toThrow(message);
  });
});

describe('FAULT', () => {
  it.each([
    ['', { errorRate: 0, latencyMs: 0 }],
    ['error-rate=0.2', { errorRate: 0.2, latencyMs: 0 }],
    [' error-rate = 1 , latency-ms=50 ', { errorRate: 1, latencyMs: 50 }],
    ['latency-ms=0', { errorRate: 0, latencyMs: 0 }],
  ])('parses %j', (spec, fault) => {
    expect(parseFault(spec)).toEqual(fault);
  });

  it.each([
    ['error-rate=2', /error-rate must be a fraction between 0 and 1, not "2"/],
    ['error-rate=-0.1', /error-rate must be a fraction between 0 and 1, not "-0\.1"/],
    ['latency-ms=1.5', /latency-ms must be a whole number of milliseconds from 0 to 60000, not "1\.5"/],
    ['latency-ms=70000', /latency-ms must be a whole number/],
    ['error-rate', /"error-rate" is not key=value/],
    ['error-rate=0.1,error-rate=0.2', /error-rate is given twice/],
    ['drop=0.5', /unknown fault "drop" \(known: error-rate, latency-ms\)/],
  ])('refuses %j with a message naming the problem', (spec, message) => {
    expect(() => parseFault(spec)).toThrow(FaultSpecError);
    expect(() => parseFault(spec)).toThrow(message);
  });

  it('formats a fault canonically', () => {
    expect(formatFault(parseFault('latency-ms=50, error-rate=0.25'))).toBe('error-rate=0.25,latency-ms=50');
    expect(formatFault(parseFault(''))).toBe('');
  });

  it.each([0, 0.1, 0.2, 0.25, 0.3, 0.5, 1])('fails exactly ⌊n·%p⌋ of any first n requests, spread evenly', (rate) => {
    const injector = new FaultInjector({ errorRate: rate, latencyMs: 0 });
    let failed = 0;
    for (let n = 1; n <= 200; n++) {
      if (injector.nextFails()) failed++;
      expect(failed).toBe(Math.floor(n * rate + 1e-9));
    }
  });
});
