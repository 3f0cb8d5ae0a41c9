/**
 * The serving monitor's arithmetic (DESIGN decision 15), pure so the Monitor Lambda, the local run and
 * the CDK share it: what production served since the last scrape, per model — requests, error rate, p50
 * and p95 latency from the latency histogram's deltas, the predicted classes and their drift from the
 * evaluation's as PSI — rendered as one CloudWatch embedded-metric-format (EMF) line, and the alarm
 * rules (threshold, M of N datapoints) that both the CloudWatch alarms (lib/constructs/serving-monitor.ts)
 * and the monitor's own evaluation (the snapshot `mlpipe status` shows, the local run's emails) apply.
 *
 * Counters are kept per pod between scrapes (a pod whose container restarted, whose counters went down,
 * or that is new counts from its own zero: canary-analysis.ts `counterDelta`, the same rule).
 */
import * as z from 'zod';
import { counterDelta, parseSample, parseServingMetrics, quantileMs, type PodCounters, type VersionCounters } from './canary-analysis';
import { emfDocument } from './emf';

/** The CloudWatch namespace and dimension of the serving metrics (cost's dashboard and auth read the same names). */
export const SERVING_NAMESPACE = 'mlpipe/Serving';
export const SERVING_DIMENSION = 'Model';

/** Each serving metric and its CloudWatch unit. */
export const SERVING_METRICS = {
  Requests: 'Count',
  ErrorRate: 'None',
  LatencyP50: 'Milliseconds',
  LatencyP95: 'Milliseconds',
  PredictionDrift: 'None',
} as const;
export type ServingMetricName = keyof typeof SERVING_METRICS;
export type ServingValues = Partial<Record<ServingMetricName, number>>;

/**
 * Below this many predicted instances in a window the class distribution is too thin to compare: no
 * PredictionDrift datapoint (missing data never breaches). The sampling noise of PSI over 10 classes is
 * about (classes − 1) / n on average, but its tail is what false alarms come from: at 100, uniform traffic
 * still gives PSI > 0.2 in ~3 % of windows, which at one window a minute is ~4 false 2-of-3 alarms a day;
 * at 200 the mean halves (0.045) and the tail above 0.2 is far rarer.
 */
export const MIN_DRIFT_PREDICTIONS = 200;

/**
 * Below this many predict requests in a window no ErrorRate or LatencyP95 datapoint: one 5xx in 3 requests
 * is a 33 % error rate, and a p95 of 5 requests is their slowest one; a quiet minute would breach on noise.
 * Missing data is not breaching in the alarms (servingAlarmRules and the CloudWatch alarms alike).
 */
export const MIN_RATE_REQUESTS = 20;

/** Shares under this are taken as this in PSI (a class never predicted would make it infinite). */
export const PSI_FLOOR = 1e-4;

// ------------------------------------------------------------------------------------------ counters

/** One pod's counters as the monitor keeps them between scrapes: the canary's, plus predicted classes. */
export interface MonitorPodCounters extends PodCounters {
  /** Class index (as text) → instances predicted as that class (`mlpipe_predictions_total{class}`). */
  classes: Record<string, number>;
}

/** `mlpipe_predictions_total{class="<index>"}` of one pod's /metrics text; {} for a server that lacks it. */
export function parsePredictionCounts(text: string): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line.startsWith('mlpipe_predictions_total')) continue;
    const sample = parseSample(line);
    const cls = sample?.labels.class;
    if (!sample || sample.name !== 'mlpipe_predictions_total' || cls === undefined || !/^\d+$/.test(cls) || !Number.isFinite(sample.value)) continue;
    counts[cls] = (counts[cls] ?? 0) + sample.value;
  }
  return counts;
}

/** A pod's counters from its /metrics text (ServingMetricsError when it is not the serving contract's). */
export function podCounters(text: string, restarts: number, where: string): MonitorPodCounters {
  return { ...parseServingMetrics(text, where), restarts, classes: parsePredictionCounts(text) };
}

/** What the model's pods served between two scrapes. */
export interface ServingWindow {
  requests: number;
  errors: number;
  /** [upper bound in ms, cumulative count], finite bounds. */
  buckets: Array<[number, number]>;
  /** Class index → instances predicted in the window. */
  classes: Record<string, number>;
  /** Container restarts since the last scrape, over the pods read both times. */
  restarts: number;
}

/**
 * now − before, per pod: a pod that is new, restarted (restart count changed) or whose counters went down
 * (its process started again) counts whole from its zero; a pod gone since adds nothing.
 */
export function windowSince(now: Record<string, MonitorPodCounters>, before: Record<string, MonitorPodCounters>): ServingWindow {
  const version = (byPod: Record<string, MonitorPodCounters>): VersionCounters => ({ requests: 0, errors: 0, buckets: [], pods: 0, podsRead: 0, byPod });
  const served = counterDelta(version(now), version(before));
  const classes: Record<string, number> = {};
  for (const [name, pod] of Object.entries(now)) {
    const base = before[name];
    const reset =
      !base || base.restarts !== pod.restarts || pod.requests < base.requests || Object.entries(base.classes).some(([c, n]) => (pod.classes[c] ?? 0) < n);
    for (const [c, n] of Object.entries(pod.classes)) {
      const d = reset || !base ? n : n - (base.classes[c] ?? 0);
      if (d > 0) classes[c] = (classes[c] ?? 0) + d;
    }
  }
  return { requests: served.requests, errors: served.errors, buckets: served.buckets, classes, restarts: served.restarts ?? 0 };
}

/**
 * The per-pod baselines the next scrape compares with: the pods read now, plus the previous baseline of
 * each pod still running but not read this time (503, no address yet): without it the next scrape would
 * count that pod's whole lifetime as one window. Pods no longer running are dropped.
 */
export function nextBaselines(
  read: Record<string, MonitorPodCounters>,
  previous: Record<string, MonitorPodCounters> | undefined,
  running: readonly string[],
): Record<string, MonitorPodCounters> {
  const next: Record<string, MonitorPodCounters> = {};
  for (const name of running) {
    const before = previous?.[name];
    if (!(name in read) && before) next[name] = before;
  }
  return { ...next, ...read };
}

// ------------------------------------------------------------------------------------------ drift

/** The evaluated model's prediction distribution: instances predicted per class (confusion[true][predicted] column sums). */
export function predictedCounts(confusion: readonly (readonly number[])[]): number[] {
  const classes = Math.max(0, ...confusion.map((row) => row.length));
  const counts = new Array<number>(classes).fill(0);
  for (const row of confusion) row.forEach((n, c) => (counts[c]! += n));
  return counts;
}

/**
 * Population stability index of `actual` against `expected` (both counts per class, same length):
 * Σ (a − e) · ln(a / e) over the classes' shares, each floored at PSI_FLOOR. 0 is the same distribution;
 * the usual reading: < 0.1 no shift, 0.1–0.2 some, > 0.2 a significant one.
 */
export function psi(expected: readonly number[], actual: readonly number[]): number {
  if (expected.length !== actual.length || expected.length === 0) {
    throw new RangeError(`psi: expected and actual must count the same classes (got ${expected.length} and ${actual.length})`);
  }
  const total = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0);
  const [te, ta] = [total(expected), total(actual)];
  if (!(te > 0) || !(ta > 0) || [...expected, ...actual].some((n) => !(n >= 0))) {
    throw new RangeError('psi: counts must be non-negative with a positive total');
  }
  let sum = 0;
  for (let i = 0; i < expected.length; i++) {
    const e = Math.max(expected[i]! / te, PSI_FLOOR);
    const a = Math.max(actual[i]! / ta, PSI_FLOOR);
    sum += (a - e) * Math.log(a / e);
  }
  return Math.round(sum * 1e4) / 1e4;
}

/** The window's numbers: what goes to CloudWatch and into the snapshot. */
export interface ServingStats {
  requests: number;
  errors: number;
  /** errors / requests; null without requests. */
  errorRate: number | null;
  latencyMsP50: number | null;
  latencyMsP95: number | null;
  /** Instances predicted in the window, per class (index = class), over the evaluation's classes when known. */
  classCounts: number[];
  predictions: number;
  /** PSI against the evaluation's prediction distribution; null without one or below MIN_DRIFT_PREDICTIONS. */
  drift: number | null;
}

export function servingStats(w: ServingWindow, expected: readonly number[] | null): ServingStats {
  const observed = Object.keys(w.classes).map(Number);
  const classes = Math.max(expected?.length ?? 0, observed.length === 0 ? 0 : Math.max(...observed) + 1);
  const classCounts = Array.from({ length: classes }, (_, c) => w.classes[String(c)] ?? 0);
  const predictions = classCounts.reduce((a, b) => a + b, 0);
  // A class the evaluation never saw (an index beyond its matrix) still shifts the distribution: pad with 0.
  const base = expected ? [...expected, ...new Array<number>(classes - expected.length).fill(0)] : null;
  const drift = base && predictions >= MIN_DRIFT_PREDICTIONS && base.some((n) => n > 0) ? psi(base, classCounts) : null;
  return {
    requests: w.requests,
    errors: w.errors,
    errorRate: w.requests > 0 ? Math.round((w.errors / w.requests) * 1e6) / 1e6 : null,
    latencyMsP50: quantileMs(w, 0.5),
    latencyMsP95: quantileMs(w, 0.95),
    classCounts,
    predictions,
    drift,
  };
}

/**
 * The datapoints of one scrape: Requests always, the rest only when there is something to measure
 * (ErrorRate and LatencyP95, which alarm, from MIN_RATE_REQUESTS requests on).
 */
export function servingValues(s: ServingStats): ServingValues {
  const values: ServingValues = { Requests: s.requests };
  const enough = s.requests >= MIN_RATE_REQUESTS;
  if (enough && s.errorRate !== null) values.ErrorRate = s.errorRate;
  if (s.latencyMsP50 !== null) values.LatencyP50 = s.latencyMsP50;
  if (enough && s.latencyMsP95 !== null) values.LatencyP95 = s.latencyMsP95;
  if (s.drift !== null) values.PredictionDrift = s.drift;
  return values;
}

/** One EMF line (emf.ts) of the scrape's datapoints, dimension Model. */
export function emfRecord(model: string, values: ServingValues, timestampMs: number): string {
  const names = (Object.keys(SERVING_METRICS) as ServingMetricName[]).filter((n) => values[n] !== undefined);
  const metrics = names.map((n) => ({ name: n, unit: SERVING_METRICS[n], value: values[n]! }));
  return JSON.stringify(emfDocument(SERVING_NAMESPACE, { [SERVING_DIMENSION]: model }, [{ dimensionSet: [SERVING_DIMENSION], metrics }], new Date(timestampMs)));
}

// ------------------------------------------------------------------------------------------ alarms

export interface ServingThresholds {
  /** MAX_P95_LATENCY_MS: the gate's latency limit serves as production's too. */
  maxP95LatencyMs: number;
  /** MAX_ERROR_RATE, likewise. */
  maxErrorRate: number;
  /** MAX_PREDICTION_DRIFT (PSI). */
  maxPredictionDrift: number;
}

/** An alarm: `metric` above `threshold` in at least `datapointsToAlarm` of the last `evaluationPeriods` scrapes. */
export interface ServingAlarmRule {
  readonly metric: ServingMetricName;
  readonly threshold: number;
  readonly evaluationPeriods: number;
  readonly datapointsToAlarm: number;
  readonly description: string;
}

/**
 * The serving alarms. Two of the last three periods, not one: one slow minute (a cold pod, a noisy
 * neighbour) or one small window's class mix is not worth waking someone; two of three still fires
 * within two scrapes. Missing data (no traffic, too few predictions) never breaches.
 */
export function servingAlarmRules(t: ServingThresholds): ServingAlarmRule[] {
  const rule = (metric: ServingMetricName, threshold: number, description: string): ServingAlarmRule => ({
    metric,
    threshold,
    evaluationPeriods: 3,
    datapointsToAlarm: 2,
    description,
  });
  return [
    rule('LatencyP95', t.maxP95LatencyMs, `p95 latency of predict requests above ${t.maxP95LatencyMs} ms`),
    rule('ErrorRate', t.maxErrorRate, `share of predict requests answered 5xx above ${t.maxErrorRate}`),
    rule('PredictionDrift', t.maxPredictionDrift, `predicted-class distribution drifted from the evaluation's (PSI above ${t.maxPredictionDrift})`),
  ];
}

export const AlarmStateSchema = z.enum(['OK', 'ALARM']);

export const ServingAlarmSchema = z.object({
  metric: z.enum(Object.keys(SERVING_METRICS) as [ServingMetricName, ...ServingMetricName[]]),
  state: AlarmStateSchema,
  threshold: z.number(),
  /** In CloudWatch's words: which datapoints crossed the threshold. */
  reason: z.string(),
  /** When it entered this state (ISO 8601). */
  since: z.string(),
});
export type ServingAlarm = z.infer<typeof ServingAlarmSchema>;

/**
 * The rule on the newest datapoints (oldest first; undefined = missing, treated as not breaching, as the
 * CloudWatch alarms' treatMissingData notBreaching): ALARM when at least datapointsToAlarm of the last
 * evaluationPeriods are above the threshold, else OK.
 */
export function evaluateAlarm(rule: ServingAlarmRule, datapoints: ReadonlyArray<number | undefined>): { state: z.infer<typeof AlarmStateSchema>; reason: string } {
  const recent = datapoints.slice(-rule.evaluationPeriods);
  const breaching = recent.filter((v) => v !== undefined && v > rule.threshold).length;
  const shown = recent.map((v) => (v === undefined ? 'missing' : String(v))).join(', ');
  const state = breaching >= rule.datapointsToAlarm ? 'ALARM' : 'OK';
  const verb = state === 'ALARM' ? 'were' : 'were not';
  return {
    state,
    reason: `${rule.metric}: ${breaching} of the last ${recent.length} datapoints [${shown}] ${breaching === 1 ? verb.replace('were', 'was') : verb} greater than the threshold (${rule.threshold}) (minimum ${rule.datapointsToAlarm} of ${rule.evaluationPeriods} for ALARM)`,
  };
}

// ------------------------------------------------------------------------------------------ snapshot

/** `monitor/<model>/latest.json`: the last scrape, read by `mlpipe status` and the console (local and AWS). */
export const MonitorSnapshotSchema = z.object({
  model: z.string(),
  /** What production.json says serves (the evaluation the drift compares with); null when nothing does. */
  version: z.string().nullable(),
  readAt: z.string(),
  /** Seconds since the previous scrape; null for the first (a baseline: no window yet). */
  windowSeconds: z.number().nullable(),
  pods: z.number(),
  podsRead: z.number(),
  restarts: z.number(),
  requests: z.number(),
  errors: z.number(),
  errorRate: z.number().nullable(),
  latencyMsP50: z.number().nullable(),
  latencyMsP95: z.number().nullable(),
  predictions: z.number(),
  classCounts: z.array(z.number()),
  /** Class names from the evaluation (dataset.json), when it had them. */
  classNames: z.array(z.string()).nullable(),
  drift: z.number().nullable(),
  alarms: z.array(ServingAlarmSchema),
  /** Why a number is missing (no evaluation to compare with, a server without class counts...). */
  notes: z.array(z.string()),
});
export type MonitorSnapshot = z.infer<typeof MonitorSnapshotSchema>;

/** The S3 keys of a model's monitor records (artifacts bucket, prefix `monitor/`). */
export const monitorKeys = {
  prefix: (model: string) => `monitor/${model}/`,
  latest: (model: string) => `monitor/${model}/latest.json`,
  state: (model: string) => `monitor/${model}/state.json`,
};

/**
 * The notification of an alarm's change, as CloudWatch words it for the topic's email subscribers (the
 * local run publishes it to its outbox; on AWS CloudWatch itself publishes).
 */
export function alarmNotification(s: MonitorSnapshot, alarm: ServingAlarm, where: string): { subject: string; message: string } {
  const name = `mlpipe ${s.model} ${alarm.metric}`;
  const value = (n: number | null, unit = '') => (n === null ? 'n/a' : `${n}${unit}`);
  return {
    subject: `${alarm.state}: "${name}" in ${where}`.slice(0, 100),
    message: [
      `${alarm.state === 'ALARM' ? 'The alarm fired' : 'The alarm is OK again'}: "${name}" (production of ${s.model}${s.version ? `, version ${s.version}` : ''}).`,
      '',
      `Reason: ${alarm.reason}.`,
      `Since: ${alarm.since}`,
      '',
      `Last window (${s.windowSeconds ?? 0} s, ${s.podsRead} of ${s.pods} pods read): ${s.requests} requests, error rate ${value(s.errorRate)}, ` +
        `p50 ${value(s.latencyMsP50, ' ms')}, p95 ${value(s.latencyMsP95, ' ms')}, prediction drift (PSI) ${value(s.drift)} over ${s.predictions} predictions.`,
      `Numbers: mlpipe status (the serving monitor's latest), or ${monitorKeys.latest(s.model)} in the artifact bucket.`,
    ].join('\n'),
  };
}

/** One line of a snapshot for people: the window's numbers and the alarms in ALARM. */
export function snapshotLine(s: MonitorSnapshot): string {
  const ms = (n: number | null) => (n === null ? 'n/a' : `${n < 10 ? n.toFixed(1) : n.toFixed(0)} ms`);
  const firing = s.alarms.filter((a) => a.state === 'ALARM').map((a) => a.metric);
  if (s.windowSeconds === null) return `${s.readAt}: a first scrape (baseline) of ${s.podsRead}/${s.pods} pods; numbers from the next one`;
  return (
    `${s.requests} requests in ${s.windowSeconds} s to ${s.readAt}, errors ${s.errorRate === null ? 'n/a' : `${(s.errorRate * 100).toFixed(2)} %`}, ` +
    `p50 ${ms(s.latencyMsP50)}, p95 ${ms(s.latencyMsP95)}, drift ${s.drift === null ? 'n/a' : `${s.drift} PSI`} over ${s.predictions} predictions; ` +
    (firing.length ? `ALARM: ${firing.join(', ')}` : 'alarms OK')
  );
}
