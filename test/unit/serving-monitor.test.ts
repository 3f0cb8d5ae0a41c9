/**
 * The serving monitor's arithmetic (functions/shared/serving-monitor.ts), on /metrics text rendered by the
 * example server's own ServingMetrics: predicted-class counts, windows across scrapes (restarts, counter
 * resets, new pods), p50/p95 from histogram deltas, PSI, the EMF record and the alarm rule; and the local
 * run's monitor (local/serving-monitor.ts), which emails each alarm change through the local SNS (the
 * outbox). The handler is tested against the local Kubernetes API and real servers in
 * test/functions-kube/serving-monitor.test.ts.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ServingMetrics } from '../../examples/fashion-mnist/serving-metrics';
import {
  emfRecord,
  evaluateAlarm,
  MIN_DRIFT_PREDICTIONS,
  MIN_RATE_REQUESTS,
  nextBaselines,
  parsePredictionCounts,
  podCounters,
  predictedCounts,
  psi,
  servingAlarmRules,
  servingStats,
  servingValues,
  windowSince,
  type MonitorPodCounters,
  type MonitorSnapshot,
  type ServingAlarm,
} from '../../functions/shared/serving-monitor';
import { startLocalMonitor } from '../../local/serving-monitor';
import { parseSnsLog, startLocalSns, type LocalSns } from '../../local/sns';
import type { LocalStack } from '../../local/lambda/template';

/** A pod's counters after `requests` predictions of `seconds` each, one instance each, predicted as `classOf(i)`. */
function served(metrics: ServingMetrics, requests: number, seconds: number, classOf: (i: number) => number, code = 200): void {
  for (let i = 0; i < requests; i++) {
    metrics.observe('predict', code, seconds);
    if (code === 200) metrics.classesPredicted([classOf(i)]);
  }
}

const read = (m: ServingMetrics, restarts = 0): MonitorPodCounters => podCounters(m.render(true), restarts, 'test pod');
const UNIFORM = Array.from({ length: 10 }, () => 1000);

describe('predicted-class counts', () => {
  it('reads mlpipe_predictions_total{class} from the example server, and {} from a server without it', () => {
    const m = new ServingMetrics();
    m.classesPredicted([3, 3, 7]);
    expect(parsePredictionCounts(m.render(true))).toEqual({ '3': 2, '7': 1 });
    expect(parsePredictionCounts('# TYPE serving_requests_total counter\nserving_requests_total{route="predict",code="200"} 4\n')).toEqual({});
  });
});

describe('windowSince', () => {
  it('takes each pod\'s delta; a restarted pod or one whose counters went down counts from zero; a new pod counts whole', () => {
    // Prepare
    const [a, b] = [new ServingMetrics(), new ServingMetrics()];
    served(a, 10, 0.004, () => 1);
    served(b, 5, 0.004, () => 2);
    const before = { a: read(a), b: read(b) };
    served(a, 20, 0.2, () => 3); // a: 20 slow ones since
    const restarted = new ServingMetrics(); // b's process started again: 4 requests since its restart
    served(restarted, 4, 0.004, () => 4);
    const fresh = new ServingMetrics();
    served(fresh, 6, 0.004, () => 5, 500);

    // Act
    const w = windowSince({ a: read(a), b: read(restarted, 1), c: read(fresh) }, before);

    // Assess
    expect([w.requests, w.errors, w.restarts]).toEqual([30, 6, 1]);
    expect(w.classes).toEqual({ '3': 20, '4': 4 });
    const stats = servingStats(w, null);
    expect(stats.latencyMsP50).toBeGreaterThan(100); // 20 of 30 took 200 ms (the 0.1–0.25 s bucket)
    expect(stats.latencyMsP95).toBeLessThanOrEqual(250);
    expect(stats.errorRate).toBeCloseTo(0.2, 6);
    // The same pod read twice with nothing in between: an empty window.
    expect(windowSince({ a: read(a) }, { a: read(a) })).toMatchObject({ requests: 0, errors: 0, classes: {} });
  });

  it('counts a pod whose counters went down without a restart count (a replaced process) from zero', () => {
    const busy = new ServingMetrics();
    served(busy, 50, 0.004, () => 0);
    const again = new ServingMetrics();
    served(again, 3, 0.004, () => 6);
    expect(windowSince({ p: read(again) }, { p: read(busy) })).toMatchObject({ requests: 3, classes: { '6': 3 } });
  });

  it('keeps the baseline of a running pod not read this scrape, so its next window is not its whole lifetime', () => {
    // Prepare: a and b read at the first scrape; at the second, b is running but unreadable (a 503), c gone
    const [a, b, c] = [new ServingMetrics(), new ServingMetrics(), new ServingMetrics()];
    served(a, 10, 0.004, () => 1);
    served(b, 40, 0.004, () => 2);
    served(c, 1, 0.004, () => 3);
    const first = { a: read(a), b: read(b), c: read(c) };
    served(a, 5, 0.004, () => 1);

    // Act
    const second = nextBaselines({ a: read(a) }, first, ['a', 'b']);
    served(b, 7, 0.004, () => 2);
    const third = windowSince({ a: read(a), b: read(b) }, second);

    // Assess: b counts the 7 since it was last read, not its 47; c is dropped
    expect(Object.keys(second).sort()).toEqual(['a', 'b']);
    expect(third).toMatchObject({ requests: 7, classes: { '2': 7 } });
    expect(nextBaselines({ a: read(a) }, undefined, ['a', 'b'])).toEqual({ a: read(a) });
  });
});

describe('psi', () => {
  it('is 0 for the same distribution, small for sampling noise, large for one class only', () => {
    expect(psi(UNIFORM, UNIFORM.map((n) => n / 10))).toBe(0);
    expect(psi(UNIFORM, [11, 9, 10, 12, 8, 10, 9, 11, 10, 10])).toBeLessThan(0.05);
    const oneClass = psi(UNIFORM, [100, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    // (1 − 0.1)·ln(10) + 9 · (0.0001 − 0.1)·ln(0.0001 / 0.1)
    expect(oneClass).toBeCloseTo(0.9 * Math.log(10) + 9 * (1e-4 - 0.1) * Math.log(1e-4 / 0.1), 3);
    expect(oneClass).toBeGreaterThan(8);
  });

  it('refuses counts of different classes or without a total', () => {
    expect(() => psi([1, 2], [1, 2, 3])).toThrow(/same classes/);
    expect(() => psi([0, 0], [1, 2])).toThrow(/positive total/);
  });

  it('compares with the evaluation\'s predicted classes (confusion column sums), only from MIN_DRIFT_PREDICTIONS on', () => {
    expect(predictedCounts([[5, 1], [2, 7]])).toEqual([7, 8]);
    const few = servingStats({ requests: 10, errors: 0, buckets: [], classes: { '0': 10 }, restarts: 0 }, UNIFORM);
    expect(few.drift).toBeNull();
    const short = servingStats({ requests: 10, errors: 0, buckets: [], classes: { '0': MIN_DRIFT_PREDICTIONS - 1 }, restarts: 0 }, UNIFORM);
    expect(short.drift).toBeNull();
    const skewed = servingStats({ requests: 10, errors: 0, buckets: [], classes: { '0': MIN_DRIFT_PREDICTIONS }, restarts: 0 }, UNIFORM);
    expect(skewed.drift).toBeGreaterThan(8);
    expect(skewed.classCounts).toEqual([MIN_DRIFT_PREDICTIONS, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
  });
});

describe('EMF', () => {
  it('is one record in mlpipe/Serving with the Model dimension and only the metrics that have a value', () => {
    // Prepare: a window with enough requests for the rates but too few predictions for a drift datapoint
    const stats = servingStats({ requests: MIN_RATE_REQUESTS, errors: 5, buckets: [[5, 13], [10, MIN_RATE_REQUESTS]], classes: { '1': 3 }, restarts: 0 }, UNIFORM);

    // Act
    const record = JSON.parse(emfRecord('fashion-mnist', servingValues(stats), 1_700_000_000_000)) as Record<string, unknown>;

    // Assess
    expect(record).toEqual({
      _aws: {
        Timestamp: 1_700_000_000_000,
        CloudWatchMetrics: [
          {
            Namespace: 'mlpipe/Serving',
            Dimensions: [['Model']],
            Metrics: [
              { Name: 'Requests', Unit: 'Count' },
              { Name: 'ErrorRate', Unit: 'None' },
              { Name: 'LatencyP50', Unit: 'Milliseconds' },
              { Name: 'LatencyP95', Unit: 'Milliseconds' },
            ],
          },
        ],
      },
      Model: 'fashion-mnist',
      Requests: MIN_RATE_REQUESTS,
      ErrorRate: 0.25,
      LatencyP50: stats.latencyMsP50,
      LatencyP95: stats.latencyMsP95,
    });
  });

  it('has no ErrorRate or LatencyP95 datapoint below MIN_RATE_REQUESTS requests (a quiet window would breach on noise)', () => {
    const quiet = servingStats({ requests: MIN_RATE_REQUESTS - 1, errors: 1, buckets: [[5, 3], [10, MIN_RATE_REQUESTS - 1]], classes: { '1': 3 }, restarts: 0 }, UNIFORM);
    expect(quiet.errorRate).toBeGreaterThan(0); // the snapshot still shows it
    expect(servingValues(quiet)).toEqual({ Requests: MIN_RATE_REQUESTS - 1, LatencyP50: quiet.latencyMsP50 });
  });
});

describe('alarm rules', () => {
  const [p95, errors, drift] = servingAlarmRules({ maxP95LatencyMs: 250, maxErrorRate: 0.01, maxPredictionDrift: 0.2 });

  it('are p95, error rate and drift, each above its threshold in 2 of the last 3 datapoints', () => {
    expect([p95, errors, drift].map((r) => [r!.metric, r!.threshold, r!.datapointsToAlarm, r!.evaluationPeriods])).toEqual([
      ['LatencyP95', 250, 2, 3],
      ['ErrorRate', 0.01, 2, 3],
      ['PredictionDrift', 0.2, 2, 3],
    ]);
  });

  it.each([
    [[0.5], 'OK'],
    [[0.5, 0.1, 0.6], 'ALARM'],
    [[0.5, 0.6, 0.1, 0.1], 'OK'],
    [[0.1, 0.2, 0.2], 'OK'], // at the threshold is not above it
    [[0.9, undefined, 0.9], 'ALARM'],
    [[undefined, undefined, undefined], 'OK'], // missing data never breaches
  ])('drift datapoints %j → %s', (datapoints, state) => {
    const result = evaluateAlarm(drift!, datapoints);
    expect(result.state).toBe(state);
    expect(result.reason).toMatch(/^PredictionDrift: \d of the last \d datapoints \[.*\] (was|were)( not)? greater than the threshold \(0\.2\)/);
  });
});

const TOPIC = 'arn:aws:sns:us-east-1:000000000000:mlpipe-local-topic';
const [, , DRIFT] = servingAlarmRules({ maxP95LatencyMs: 250, maxErrorRate: 0.01, maxPredictionDrift: 0.2 });

/** The Monitor's answers for a series of drift datapoints, with alarm states as the Monitor sets them. */
function snapshots(drifts: number[]): MonitorSnapshot[] {
  let previous: ServingAlarm | undefined;
  return drifts.map((drift, i) => {
    const readAt = new Date(Date.UTC(2026, 10, 29, 22, 0, i * 10)).toISOString();
    const { state, reason } = evaluateAlarm(DRIFT!, drifts.slice(0, i + 1));
    const alarm: ServingAlarm = { metric: 'PredictionDrift', state, threshold: 0.2, reason, since: previous?.state === state ? previous.since : readAt };
    previous = alarm;
    return {
      model: 'fashion-mnist', version: 'v1', readAt, windowSeconds: 10, pods: 2, podsRead: 2, restarts: 0, requests: 200, errors: 0, errorRate: 0,
      latencyMsP50: 4, latencyMsP95: 9, predictions: 200, classCounts: [200], classNames: null, drift, alarms: [alarm], notes: [],
    };
  });
}

describe('local serving monitor', () => {
  let dir: string;
  let sns: LocalSns;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'mlpipe-local-monitor-'));
    sns = await startLocalSns({ file: join(dir, 'notifications.jsonl') });
  });
  afterAll(async () => {
    await sns.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('emails an alarm when it fires and when it is OK again, nothing while it stays', async () => {
    // Prepare: skewed traffic from the 2nd scrape to the 4th, normal after
    const answers = snapshots([0.01, 5.2, 6.1, 5.9, 0.02, 0.01]);
    const invoked: string[] = [];
    const stack = {
      resources: { region: 'us-east-1' },
      functions: [
        { logicalId: 'PipelineServingMonitorFunction1234', environment: {} },
        { logicalId: 'PipelineFunctionsNotify5678', environment: { NOTIFICATION_TOPIC_ARN: TOPIC } },
      ],
    } as unknown as LocalStack;
    const monitor = startLocalMonitor({
      stack,
      snsEndpoint: sns.endpoint,
      intervalMs: 3_600_000, // the test ticks itself
      invoke: async (fn) => {
        invoked.push(fn);
        return answers[invoked.length - 1];
      },
    });

    // Act
    const states: string[] = [];
    for (let i = 0; i < answers.length; i++) states.push((await monitor.tick())!.alarms[0]!.state);
    monitor.stop();

    // Assess
    expect(invoked).toEqual(new Array(answers.length).fill('PipelineServingMonitorFunction1234'));
    expect(states).toEqual(['OK', 'OK', 'ALARM', 'ALARM', 'ALARM', 'OK']);
    const emails = parseSnsLog(readFileSync(join(dir, 'notifications.jsonl'), 'utf8'));
    expect(emails.map((e) => [e.topicArn, e.subject])).toEqual([
      [TOPIC, 'ALARM: "mlpipe fashion-mnist PredictionDrift" in local'],
      [TOPIC, 'OK: "mlpipe fashion-mnist PredictionDrift" in local'],
    ]);
    expect(emails[0]!.message).toMatch(/The alarm fired.*\n\nReason: PredictionDrift: 2 of the last 3 datapoints \[0\.01, 5\.2, 6\.1\] were greater than the threshold \(0\.2\)/);
    expect(emails[0]!.message).toContain('prediction drift (PSI) 6.1 over 200 predictions');
  });
});
