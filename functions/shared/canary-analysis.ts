/**
 * Canary analysis: what each model version served during a canary step, measured rather than assumed,
 * and the verdict on it (DESIGN decision 14, docs/architecture.md "Progressive delivery").
 *
 * - readVersionCounters: reads `/metrics` (Prometheus text, the serving container contract) from EVERY
 *   running pod of one version through the API server's pod proxy and sums them. The only impure part.
 * - counterDelta: what happened since a baseline reading (the step's start), per pod where it can, so a
 *   pod whose container restarted (its counters start again from 0) or that appeared since is counted
 *   from its own zero instead of making the sum go down.
 * - statsOf / judge: error rate, p95 from the latency histogram, request count; pass, fail or
 *   inconclusive against the thresholds, with the reasons in words.
 *
 * What is counted: the PREDICTION route only (`serving_requests_total{route="predict"}` and
 * `serving_request_duration_seconds{route="predict"}`): probes, /metrics scrapes and model-status reads
 * would dilute both the error rate and the latency. An error is a 5xx answer (the server or model
 * failed); a 4xx is the client's malformed request and says nothing about the model.
 *
 * Everything that goes into the state ($) is compact: counters hold finite histogram bounds in
 * milliseconds with cumulative counts (the +Inf bucket equals `requests`, and JSON has no Infinity).
 */
import type { KubernetesObject } from '@kubernetes/client-node';
import { InvalidInputError } from './errors';
import { listObjects, PodProxyError, proxyGet } from './kube';
import { ADMIN_PORT_NAME } from './manifests';

/** One pod's counters, kept in a baseline so a later reading can tell a restarted pod from a busy one. */
export interface PodCounters {
  requests: number;
  errors: number;
  /** [upper bound in ms, cumulative count], ascending, finite bounds only. */
  buckets: Array<[number, number]>;
  /** Sum of the pod's container restart counts when read: a change means its counters started again. */
  restarts: number;
}

export interface VersionCounters {
  /** Prediction requests answered (any status). */
  requests: number;
  /** Prediction requests answered with a 5xx status. */
  errors: number;
  /** Latency histogram of prediction requests: [upper bound in ms, cumulative count], finite bounds, ascending. */
  buckets: Array<[number, number]>;
  /** Running pods of the version (not terminating) when read. */
  pods: number;
  /** Of those, how many answered /metrics (an unreachable pod is skipped, not guessed). */
  podsRead: number;
  /**
   * Each read pod's counters, by pod name, so counterDelta can handle counter resets per pod. Absent in a
   * delta (not needed there) and in counters made by hand; counterDelta then works on the sums.
   */
  byPod?: Record<string, PodCounters>;
  /**
   * In a delta of two per-pod readings only: container restarts since the baseline, summed over the pods.
   * A version whose pods restart under traffic is crashing, whatever its counters say (they lose what a
   * crashed process served, and requests refused while it was down never reach them): worth a fail.
   */
  restarts?: number;
}

export interface VersionStats {
  requests: number;
  errors: number;
  /** errors / requests; 0 without requests. */
  errorRate: number;
  /** 95th percentile latency in ms from the histogram (interpolated within a bucket); null without requests. */
  p95Ms: number | null;
}

export interface CanaryThresholds {
  /** Fail when the canary's error rate is above this (0..1). */
  maxErrorRate: number;
  /** Fail when the canary's error rate exceeds the stable's by more than this (0..1, absolute). */
  maxErrorRateIncrease: number;
  /** Fail when the canary's p95 latency is above this many ms. */
  maxP95LatencyMs: number;
  /** Fail when the canary's p95 is more than this multiple of the stable's (≥ 1). */
  maxP95Ratio: number;
  /** Below this many requests in the step (per version) the evidence is too thin: inconclusive. */
  minRequests: number;
}

export interface CanaryVerdict {
  verdict: 'pass' | 'fail' | 'inconclusive';
  /** Why, in words with the numbers: each failed rule for a fail, what is missing for inconclusive. */
  reasons: string[];
  canary: VersionStats;
  stable: VersionStats | null;
  /** Share of prediction requests the canary actually served (0..1); null when nothing was served. */
  servedShare: number | null;
}

/** The version's /metrics could not be used: it answered, but not with the serving metrics this needs. */
export class ServingMetricsError extends Error {
  override readonly name = 'ServingMetricsError';
}

/**
 * Below this p95 (ms) the ratio rule is not applied: the histogram's buckets there (1, 2.5, 5 ms) are each
 * 2-2.5× wide, so a ratio of two interpolated values within them is noise, not a regression. The absolute
 * limit (maxP95LatencyMs) still applies.
 */
export const P95_RATIO_FLOOR_MS = 5;

const PREDICT_ROUTE = 'predict';

// ---------------------------------------------------------------------------------------------- reading

/**
 * Reads and sums the counters of every running pod carrying `labels` in `namespace`, each through the
 * API server's pod proxy on its metrics port (`GET …/pods/<name>:<port>/proxy/metrics`): the containerPort
 * named `admin` where the pod declares one (endpoint auth: /metrics needs no token there, and the proxy
 * drops the caller's Authorization header), else `port`. A pod the API server
 * cannot reach (503), that has no address yet or is gone is left out of `podsRead`; a pod that answers
 * something other than the serving metrics is an error (ServingMetricsError), as is a refused request
 * (KubernetesRequestError: the role lacks `get pods/proxy`).
 */
export async function readVersionCounters(namespace: string, labels: Record<string, string>, port: number): Promise<VersionCounters> {
  const { pods, read } = await readPodMetrics(namespace, labels, port);
  const byPod: Record<string, PodCounters> = {};
  for (const r of read) byPod[r.name] = { ...parseServingMetrics(r.text, `pod ${namespace}/${r.name}`), restarts: r.restarts };
  const total = sumCounters(Object.values(byPod));
  return { ...total, pods, podsRead: read.length, byPod };
}

/** One running pod's /metrics text, as read through the pod proxy, with its containers' restart count. */
export interface PodMetricsText {
  name: string;
  text: string;
  restarts: number;
}

/**
 * The /metrics text of every running (not terminating) pod carrying `labels`, through the pod proxy;
 * `pods` counts them all and `running` names them, `read` holds those that answered (an unreachable one is
 * skipped, see readVersionCounters). Shared with the serving monitor (serving-monitor-read.ts), which parses more of it.
 */
export async function readPodMetrics(namespace: string, labels: Record<string, string>, port: number): Promise<{ pods: number; read: PodMetricsText[]; running: string[] }> {
  const labelSelector = selectorOf(labels);
  const list = await listObjects<PodLike>('Pod', namespace, { labelSelector });
  const running = list.items.filter((p) => p.metadata?.deletionTimestamp === undefined && p.status?.phase === 'Running' && p.metadata?.name);
  const readings = await Promise.all(
    running.map(async (pod): Promise<PodMetricsText | undefined> => {
      const name = pod.metadata!.name!;
      let text: string;
      try {
        text = await proxyGet(namespace, name, metricsPort(pod, port), 'metrics');
      } catch (err) {
        if (err instanceof PodProxyError && err.unreachable) return undefined;
        if (err instanceof PodProxyError) {
          throw new ServingMetricsError(`${err.message} (the serving image must answer GET /metrics with Prometheus text: docs/architecture.md, container contract)`);
        }
        throw err;
      }
      const restarts = (pod.status?.containerStatuses ?? []).reduce((n, c) => n + (c.restartCount ?? 0), 0);
      return { name, text, restarts };
    }),
  );
  return { pods: running.length, read: readings.filter((r): r is PodMetricsText => r !== undefined), running: running.map((p) => p.metadata!.name!) };
}

/** Where a pod serves /metrics without a token: its admin port (manifests.ts ADMIN_PORT_NAME), else `fallback`. */
export function metricsPort(pod: PodLike, fallback: number): number {
  for (const c of pod.spec?.containers ?? []) {
    const admin = c.ports?.find((p) => p.name === ADMIN_PORT_NAME);
    if (admin) return admin.containerPort;
  }
  return fallback;
}

interface PodLike extends KubernetesObject {
  spec?: { containers?: Array<{ ports?: Array<{ name?: string; containerPort: number }> }> };
  metadata?: KubernetesObject['metadata'] & { deletionTimestamp?: string | Date };
  status?: { phase?: string; containerStatuses?: Array<{ restartCount?: number }> };
}

const LABEL_KEY = /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;
const LABEL_VALUE = /^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$/;

/** `a=b,c=d`; refuses an empty set (it would select every pod) and anything that is not a label. */
function selectorOf(labels: Record<string, string>): string {
  const entries = Object.entries(labels);
  if (entries.length === 0) throw new InvalidInputError('readVersionCounters: labels must select the version (an empty selector matches every pod).');
  return entries
    .map(([k, v]) => {
      if (!LABEL_KEY.test(k)) throw new InvalidInputError(`readVersionCounters: "${k}" is not a Kubernetes label key.`);
      if (!LABEL_VALUE.test(v)) throw new InvalidInputError(`readVersionCounters: label ${k}="${v}" is not a Kubernetes label value.`);
      return `${k}=${v}`;
    })
    .join(',');
}

// ---------------------------------------------------------------------------------------------- parsing

/**
 * The prediction route's counters in one pod's /metrics text (Prometheus exposition format 0.0.4).
 * `where` names the pod in error messages. A text without the `serving_requests_total` family is not
 * the serving contract's metrics and is refused rather than read as zero traffic.
 */
export function parseServingMetrics(text: string, where = 'metrics'): Omit<PodCounters, 'restarts'> {
  let requests = 0;
  let errors = 0;
  let sawRequestsFamily = false;
  const buckets = new Map<number, number>();
  for (const [lineNo, raw] of text.split('\n').entries()) {
    const line = raw.trim();
    if (line === '') continue;
    if (line.startsWith('#')) {
      if (/^#\s*TYPE\s+serving_requests_total\s/.test(line)) sawRequestsFamily = true;
      continue;
    }
    const sample = parseSample(line);
    if (!sample) throw new ServingMetricsError(`${where}: line ${lineNo + 1} is not a Prometheus sample: ${line.slice(0, 120)}`);
    const { name, labels, value } = sample;
    if (name === 'serving_requests_total') {
      sawRequestsFamily = true;
      if (labels.route !== PREDICT_ROUTE) continue;
      const code = Number(labels.code);
      requests += value;
      if (code >= 500 && code <= 599) errors += value;
    } else if (name === 'serving_request_duration_seconds_bucket' && labels.route === PREDICT_ROUTE) {
      const le = labels.le === undefined ? Number.NaN : parseFloatValue(labels.le);
      if (Number.isNaN(le)) throw new ServingMetricsError(`${where}: line ${lineNo + 1}: histogram bucket without a valid "le": ${line.slice(0, 120)}`);
      if (le === Number.POSITIVE_INFINITY) continue;
      buckets.set(toMs(le), (buckets.get(toMs(le)) ?? 0) + value);
    }
  }
  if (!sawRequestsFamily) {
    throw new ServingMetricsError(`${where}: no serving_requests_total in its /metrics (the serving contract's Prometheus metrics, docs/architecture.md)`);
  }
  return { requests, errors, buckets: [...buckets.entries()].sort((a, b) => a[0] - b[0]) };
}

/** Seconds → ms without float noise (0.0025 s → 2.5 ms, not 2.5000000000000004). */
function toMs(seconds: number): number {
  return Number((seconds * 1000).toPrecision(12));
}

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** `name{a="x",b="y\"z"} 1.5 [timestamp]` → sample; undefined when the line is not one. */
export function parseSample(line: string): Sample | undefined {
  const nameMatch = /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(line);
  if (!nameMatch) return undefined;
  const name = nameMatch[0];
  let i = name.length;
  const labels: Record<string, string> = {};
  if (line[i] === '{') {
    i++;
    for (;;) {
      while (line[i] === ' ' || line[i] === ',') i++;
      if (line[i] === '}') {
        i++;
        break;
      }
      const key = /^[a-zA-Z_][a-zA-Z0-9_]*/.exec(line.slice(i));
      if (!key) return undefined;
      i += key[0].length;
      while (line[i] === ' ') i++;
      if (line[i] !== '=') return undefined;
      i++;
      while (line[i] === ' ') i++;
      if (line[i] !== '"') return undefined;
      i++;
      let value = '';
      for (;;) {
        const c = line[i];
        if (c === undefined) return undefined;
        if (c === '"') {
          i++;
          break;
        }
        if (c === '\\') {
          const next = line[i + 1];
          value += next === 'n' ? '\n' : (next ?? '');
          i += 2;
          continue;
        }
        value += c;
        i++;
      }
      labels[key[0]] = value;
    }
  }
  const rest = line.slice(i).trim().split(/\s+/);
  if (rest.length < 1 || rest.length > 2 || rest[0] === '') return undefined;
  const value = parseFloatValue(rest[0]!);
  if (Number.isNaN(value) && rest[0] !== 'NaN') return undefined;
  return { name, labels, value };
}

/** A Prometheus float: Go syntax plus +Inf/-Inf/NaN. */
function parseFloatValue(text: string): number {
  if (text === '+Inf' || text === 'Inf') return Number.POSITIVE_INFINITY;
  if (text === '-Inf') return Number.NEGATIVE_INFINITY;
  if (text === 'NaN') return Number.NaN;
  return /^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(text) ? Number(text) : Number.NaN;
}

// ------------------------------------------------------------------------------------ sums and deltas

type Counts = Pick<VersionCounters, 'requests' | 'errors' | 'buckets'>;

/** Sums counters; a bound one of them lacks counts, for it, what it has at the next bound below (cumulative). */
function sumCounters(all: Counts[]): Counts {
  const bounds = [...new Set(all.flatMap((c) => c.buckets.map(([le]) => le)))].sort((a, b) => a - b);
  return {
    requests: all.reduce((n, c) => n + c.requests, 0),
    errors: all.reduce((n, c) => n + c.errors, 0),
    buckets: bounds.map((le): [number, number] => [le, all.reduce((n, c) => n + cumulativeAt(c.buckets, le), 0)]),
  };
}

function cumulativeAt(buckets: Array<[number, number]>, le: number): number {
  let count = 0;
  for (const [bound, n] of buckets) {
    if (bound > le) break;
    count = n;
  }
  return count;
}

/** now − before, or now alone when a counter went down (it was reset: counting started again from 0). */
function countsDelta(now: Counts, before: Counts): Counts {
  const reset = now.requests < before.requests || now.errors < before.errors || now.buckets.some(([le, n]) => n < cumulativeAt(before.buckets, le));
  if (reset) return { requests: now.requests, errors: now.errors, buckets: now.buckets.map(([le, n]) => [le, n]) };
  return {
    requests: now.requests - before.requests,
    errors: now.errors - before.errors,
    buckets: now.buckets.map(([le, n]) => [le, n - cumulativeAt(before.buckets, le)]),
  };
}

/**
 * What the version served between the `before` reading (the step's baseline) and `now`. Per pod when
 * both readings have `byPod`: a pod whose restarts changed or whose counters went down counts from 0
 * (what it served before its restart but after the baseline is lost with its process: the reading
 * undercounts that pod, never goes negative); a pod that appeared since counts whole; a pod absent
 * from `now` (gone, or unreachable this time) adds nothing. Without `byPod`, the same rule on the sums.
 * `pods` and `podsRead` are `now`'s; `restarts` (per-pod readings only) counts container restarts since.
 */
export function counterDelta(now: VersionCounters, before: VersionCounters): VersionCounters {
  if (now.byPod && before.byPod) {
    let restarts = 0;
    const perPod = Object.entries(now.byPod).map(([name, pod]) => {
      const base = before.byPod![name];
      restarts += Math.max(0, pod.restarts - (base?.restarts ?? 0));
      if (!base || base.restarts !== pod.restarts) return pod;
      return countsDelta(pod, base);
    });
    return { ...sumCounters(perPod), pods: now.pods, podsRead: now.podsRead, restarts };
  }
  return { ...countsDelta(now, before), pods: now.pods, podsRead: now.podsRead };
}

// ---------------------------------------------------------------------------------------- statistics

export function statsOf(d: VersionCounters): VersionStats {
  return {
    requests: d.requests,
    errors: d.errors,
    errorRate: d.requests > 0 ? d.errors / d.requests : 0,
    p95Ms: quantileMs(d, 0.95),
  };
}

/**
 * The q-quantile from the cumulative histogram as Prometheus' histogram_quantile computes it: linear
 * interpolation within the bucket holding the rank (from 0 for the first bucket); a rank beyond the
 * last finite bound gives that bound (the histogram cannot say more).
 */
export function quantileMs(d: Pick<VersionCounters, 'requests' | 'buckets'>, q: number): number | null {
  if (d.requests <= 0 || d.buckets.length === 0) return null;
  const rank = q * d.requests;
  let lowerBound = 0;
  let lowerCount = 0;
  for (const [bound, count] of d.buckets) {
    if (count >= rank) {
      const inBucket = count - lowerCount;
      const value = inBucket <= 0 ? bound : lowerBound + (bound - lowerBound) * ((rank - lowerCount) / inBucket);
      return round3(value);
    }
    lowerBound = bound;
    lowerCount = count;
  }
  return lowerBound;
}

function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}

// -------------------------------------------------------------------------------------------- verdict

/**
 * The step's verdict. Rules, each with its threshold:
 * - too few requests: the canary below `minRequests`, or a stable to compare with below it → inconclusive
 *   (unless a rule below already fails on what there is: a conclusive fail is never held back);
 * - canary error rate > maxErrorRate → fail;  canary p95 > maxP95LatencyMs → fail (judged once the canary
 *   has minRequests);
 * - against the stable version (when given and both have minRequests): error rate higher by more than
 *   maxErrorRateIncrease → fail; p95 more than maxP95Ratio × the stable's → fail (only when the canary's
 *   p95 is at least P95_RATIO_FLOOR_MS).
 * With `stable: null`, or a stable that served no request at all in the step (at 100 % it has no pods),
 * there is nothing to compare with: only the absolute rules apply, and the canary's share is 1.
 */
export function judge(canary: VersionStats, givenStable: VersionStats | null, t: CanaryThresholds): CanaryVerdict {
  validateThresholds(t);
  const stable = givenStable && givenStable.requests > 0 ? givenStable : null;
  const fails: string[] = [];
  const missing: string[] = [];
  const canaryEnough = canary.requests >= t.minRequests;
  const stableEnough = stable === null || stable.requests >= t.minRequests;
  if (!canaryEnough) missing.push(`canary served ${canary.requests} requests, fewer than minRequests ${t.minRequests}`);
  if (stable && !stableEnough) missing.push(`stable served ${stable.requests} requests, fewer than minRequests ${t.minRequests}`);
  if (canaryEnough) {
    if (canary.errorRate > t.maxErrorRate) {
      fails.push(`canary error rate ${pct(canary.errorRate)} (${canary.errors}/${canary.requests}) is above maxErrorRate ${pct(t.maxErrorRate)}`);
    }
    if (canary.p95Ms !== null && canary.p95Ms > t.maxP95LatencyMs) {
      fails.push(`canary p95 ${ms(canary.p95Ms)} is above maxP95LatencyMs ${ms(t.maxP95LatencyMs)}`);
    }
    if (stable && stableEnough) {
      const increase = canary.errorRate - stable.errorRate;
      if (increase > t.maxErrorRateIncrease) {
        fails.push(
          `canary error rate ${pct(canary.errorRate)} is ${pct(increase)} above stable's ${pct(stable.errorRate)} (maxErrorRateIncrease ${pct(t.maxErrorRateIncrease)})`,
        );
      }
      if (canary.p95Ms !== null && stable.p95Ms !== null && canary.p95Ms >= P95_RATIO_FLOOR_MS) {
        const ratio = stable.p95Ms > 0 ? canary.p95Ms / stable.p95Ms : Number.POSITIVE_INFINITY;
        if (ratio > t.maxP95Ratio) {
          fails.push(`canary p95 ${ms(canary.p95Ms)} is ${ratio === Number.POSITIVE_INFINITY ? 'far' : `${ratio.toFixed(2)}×`} stable's ${ms(stable.p95Ms)} (maxP95Ratio ${t.maxP95Ratio})`);
        }
      }
    }
  }
  const served = canary.requests + (stable?.requests ?? 0);
  const servedShare = served > 0 ? round3(canary.requests / served) : null;
  if (fails.length > 0) return { verdict: 'fail', reasons: fails, canary, stable: givenStable, servedShare };
  if (missing.length > 0) return { verdict: 'inconclusive', reasons: missing, canary, stable: givenStable, servedShare };
  const summary = `canary ${pct(canary.errorRate)} errors, p95 ${canary.p95Ms === null ? 'n/a' : ms(canary.p95Ms)} over ${canary.requests} requests`;
  const against = stable
    ? `; stable ${pct(stable.errorRate)} errors, p95 ${stable.p95Ms === null ? 'n/a' : ms(stable.p95Ms)} over ${stable.requests} requests`
    : givenStable
      ? '; the stable version served nothing in this step (nothing to compare with)'
      : '';
  return { verdict: 'pass', reasons: [`within thresholds: ${summary}${against}`], canary, stable: givenStable, servedShare };
}

/** Refuses thresholds that cannot mean anything, naming the one at fault. */
export function validateThresholds(t: CanaryThresholds): void {
  const problems: string[] = [];
  const rate = (key: 'maxErrorRate' | 'maxErrorRateIncrease') => {
    const v = t[key];
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || v > 1) problems.push(`${key} must be a fraction between 0 and 1 (got ${String(v)})`);
  };
  rate('maxErrorRate');
  rate('maxErrorRateIncrease');
  if (typeof t.maxP95LatencyMs !== 'number' || Number.isNaN(t.maxP95LatencyMs) || t.maxP95LatencyMs <= 0) {
    problems.push(`maxP95LatencyMs must be a number of milliseconds above 0 (got ${String(t.maxP95LatencyMs)})`);
  }
  if (typeof t.maxP95Ratio !== 'number' || Number.isNaN(t.maxP95Ratio) || t.maxP95Ratio < 1) {
    problems.push(`maxP95Ratio must be at least 1 (got ${String(t.maxP95Ratio)})`);
  }
  if (typeof t.minRequests !== 'number' || !Number.isInteger(t.minRequests) || t.minRequests < 1) {
    problems.push(`minRequests must be a whole number of at least 1 (got ${String(t.minRequests)})`);
  }
  if (problems.length > 0) throw new InvalidInputError(`Invalid canary thresholds: ${problems.join('; ')}.`);
}

function pct(x: number): string {
  return `${(x * 100).toFixed(x !== 0 && Math.abs(x) < 0.01 ? 2 : 1)} %`;
}

function ms(x: number): string {
  return x === Number.POSITIVE_INFINITY ? 'unlimited' : `${x < 10 ? x.toFixed(2) : x.toFixed(0)} ms`;
}
