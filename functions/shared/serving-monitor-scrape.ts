/**
 * One scrape of the serving monitor (functions/monitor.ts): reads every production pod's /metrics of the
 * model through the API server's pod proxy, compares with the previous scrape's per-pod counters (kept in
 * S3, `monitor/<model>/state.json`: a scheduled Lambda keeps nothing between invocations), computes the
 * window's numbers and the drift from the serving version's evaluation.json, evaluates the alarm rules on
 * the last datapoints, writes the snapshot (`monitor/<model>/latest.json`, what `mlpipe status` shows) and
 * prints the EMF line CloudWatch turns into the `mlpipe/Serving` metrics. The arithmetic is in serving-monitor.ts.
 */
import { readPodMetrics } from './canary-analysis';
import { getJson, putJson } from './clients';
import { logger } from './logger';
import { LABELS } from './names';
import { artifactBucket, readEvaluation, readProduction } from './registry';
import {
  emfRecord,
  evaluateAlarm,
  monitorKeys,
  MonitorSnapshotSchema,
  nextBaselines,
  podCounters,
  predictedCounts,
  servingAlarmRules,
  servingStats,
  servingValues,
  windowSince,
  type MonitorPodCounters,
  type MonitorSnapshot,
  type ServingAlarm,
  type ServingThresholds,
  type ServingValues,
} from './serving-monitor';

/** `monitor/<model>/state.json`: what the next scrape needs. */
interface MonitorState {
  readAt: string;
  byPod: Record<string, MonitorPodCounters>;
  /** The datapoints of the last scrapes, oldest first (the alarm rules look at the newest few). */
  history: ServingValues[];
  alarms: ServingAlarm[];
  /** What the serving version's evaluation predicted (read once per version, not every scrape). */
  expected?: ExpectedClasses;
}

interface ExpectedClasses {
  version: string;
  counts: number[] | null;
  classNames: string[] | null;
}

/** The version's predicted-class counts from its evaluation.json; the state's copy when it is of that version. */
async function expectedClasses(model: string, version: string, kept: ExpectedClasses | undefined): Promise<ExpectedClasses> {
  if (kept?.version === version) return kept;
  const evaluation = await readEvaluation(model, version);
  return {
    version,
    counts: evaluation?.details?.confusion ? predictedCounts(evaluation.details.confusion) : null,
    classNames: evaluation?.classes ?? null,
  };
}

/** Enough datapoints for every rule's evaluationPeriods. */
const HISTORY = 10;

export interface ScrapeOptions {
  model: string;
  namespace: string;
  port: number;
  thresholds: ServingThresholds;
  now: Date;
  /** Where the EMF line goes: stdout straight (not the console Lambda's JSON log format wraps), as Powertools Metrics writes it. */
  emit?: (line: string) => void;
}

export async function scrapeServing(opts: ScrapeOptions): Promise<MonitorSnapshot> {
  const { model, namespace, now } = opts;
  const bucket = artifactBucket();
  const notes: string[] = [];
  const labels = { [LABELS.name]: model, [LABELS.stage]: 'production', [LABELS.managedBy]: 'mlpipe' };
  const [production, previous, metrics] = await Promise.all([
    readProduction(model),
    getJson<MonitorState>(bucket, monitorKeys.state(model)),
    readPodMetrics(namespace, labels, opts.port),
  ]);
  const version = production?.version ?? null;
  const known = version ? await expectedClasses(model, version, previous?.expected) : undefined;
  const expected = known?.counts ?? null;
  if (version && !expected) notes.push(`no evaluation.json with a confusion matrix for ${version}: no drift to compute`);

  const byPod: Record<string, MonitorPodCounters> = {};
  for (const pod of metrics.read) byPod[pod.name] = podCounters(pod.text, pod.restarts, `pod ${namespace}/${pod.name}`);
  if (metrics.read.length > 0 && metrics.read.every((p) => Object.keys(byPod[p.name]!.classes).length === 0) && Object.values(byPod).some((p) => p.requests > 0)) {
    notes.push('the servers report no mlpipe_predictions_total{class}: no drift to compute (container contract, docs/architecture.md)');
  }

  const window = previous ? windowSince(byPod, previous.byPod) : null;
  if (!window) notes.push('first scrape: a baseline, numbers from the next one');
  const stats = servingStats(window ?? { requests: 0, errors: 0, buckets: [], classes: {}, restarts: 0 }, expected);
  const values = window ? servingValues(stats) : {};
  const history = [...(previous?.history ?? []), values].slice(-HISTORY);

  const alarms = servingAlarmRules(opts.thresholds).map((rule): ServingAlarm => {
    const { state, reason } = evaluateAlarm(rule, history.map((v) => v[rule.metric]));
    const before = previous?.alarms.find((a) => a.metric === rule.metric);
    return { metric: rule.metric, state, threshold: rule.threshold, reason, since: before?.state === state ? before.since : now.toISOString() };
  });

  const snapshot: MonitorSnapshot = {
    model,
    version,
    readAt: now.toISOString(),
    windowSeconds: previous ? Math.max(0, Math.round((now.getTime() - Date.parse(previous.readAt)) / 1000)) : null,
    pods: metrics.pods,
    podsRead: metrics.read.length,
    restarts: window?.restarts ?? 0,
    requests: stats.requests,
    errors: stats.errors,
    errorRate: stats.errorRate,
    latencyMsP50: stats.latencyMsP50,
    latencyMsP95: stats.latencyMsP95,
    predictions: stats.predictions,
    classCounts: stats.classCounts,
    classNames: known?.classNames ?? null,
    drift: stats.drift,
    alarms,
    notes,
  };
  // A running pod not read this time keeps its old baseline: its traffic counts in the next window it is read.
  const state: MonitorState = { readAt: now.toISOString(), byPod: nextBaselines(byPod, previous?.byPod, metrics.running), history, alarms, ...(known ? { expected: known } : {}) };
  await Promise.all([putJson(bucket, monitorKeys.state(model), state), putJson(bucket, monitorKeys.latest(model), snapshot)]);
  if (window) (opts.emit ?? ((line: string) => process.stdout.write(`${line}\n`)))(emfRecord(model, values, now.getTime()));
  logger.info('serving monitored', {
    model,
    version,
    pods: `${snapshot.podsRead}/${snapshot.pods}`,
    requests: snapshot.requests,
    errorRate: snapshot.errorRate,
    latencyMsP95: snapshot.latencyMsP95,
    drift: snapshot.drift,
    alarms: alarms.filter((a) => a.state === 'ALARM').map((a) => a.metric),
  });
  return snapshot;
}

/** The model's latest snapshot (`monitor/<model>/latest.json`), undefined before the first scrape or when it does not parse. */
export async function readServingSnapshot(model: string): Promise<MonitorSnapshot | undefined> {
  const raw = await getJson<unknown>(artifactBucket(), monitorKeys.latest(model));
  const parsed = MonitorSnapshotSchema.safeParse(raw);
  return parsed.success ? parsed.data : undefined;
}

