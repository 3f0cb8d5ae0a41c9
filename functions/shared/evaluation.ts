/**
 * The evaluation gate: sends held-out images to the staging endpoint (TF Serving REST predict), measures
 * accuracy, per-request latency and error rate, and compares them with thresholds and with production.
 * A request counts only if it answered 200 with one well-formed prediction per instance: the design this
 * replaces "passed" its accuracy test on HTTP 404.
 */
import { performance } from 'node:perf_hooks';
import { getObjectBytes, parseS3Uri } from './clients';
import { EvaluationError } from './errors';
import { decodeIdx } from './idx';
import { seededRandom } from './random';
import type { EvaluationResult } from './types';

export interface Thresholds {
  minAccuracy: number;
  maxP95LatencyMs: number;
  maxErrorRate: number;
  maxAccuracyDrop: number;
}

export interface HeldOutSet {
  /** One row of `features` bytes (0..255) per image. */
  images: Uint8Array;
  labels: Uint8Array;
  count: number;
  features: number;
}

const IMAGES = 't10k-images-idx3-ubyte';
const LABELS = 't10k-labels-idx1-ubyte';

/** Reads the held-out IDX pair under `evalDataUri`; missing or malformed data is an EvaluationError. */
export async function loadHeldOutSet(evalDataUri: string): Promise<HeldOutSet> {
  const { bucket, key } = parseS3Uri(evalDataUri, 'run.evalDataUri');
  const prefix = key === '' || key.endsWith('/') ? key : `${key}/`;
  const [imageBytes, labelBytes] = await Promise.all([
    getObjectBytes(bucket, `${prefix}${IMAGES}`),
    getObjectBytes(bucket, `${prefix}${LABELS}`),
  ]);
  if (!imageBytes || !labelBytes) {
    const missing = [!imageBytes && IMAGES, !labelBytes && LABELS].filter(Boolean).join(' and ');
    throw new EvaluationError(`Held-out data missing: no ${missing} under s3://${bucket}/${prefix}.`);
  }
  try {
    const images = decodeIdx(imageBytes, IMAGES);
    const labels = decodeIdx(labelBytes, LABELS);
    if (images.dims.length < 2 || labels.dims.length !== 1) {
      throw new Error(`expected images [n, ...] and labels [n], got [${images.dims.join(', ')}] and [${labels.dims.join(', ')}]`);
    }
    const count = images.dims[0]!;
    if (labels.dims[0] !== count) throw new Error(`${count} images but ${labels.dims[0]} labels`);
    const features = images.dims.slice(1).reduce((a, b) => a * b, 1);
    return { images: images.data, labels: labels.data, count, features };
  } catch (err) {
    throw new EvaluationError(`Held-out data under s3://${bucket}/${prefix} is unusable: ${(err as Error).message}`);
  }
}

/**
 * Which `samples` images to send: all of them, or a fixed pseudo-random subset (ascending). Not a prefix
 * or an even stride: held-out files may be sorted or interleaved by class (Fashion-MNIST as staged here
 * has label = index mod 10, so a stride of 20 would pick one class only); a seeded sample is
 * representative whatever the order, and identical on every run.
 */
export function selectIndices(count: number, samples: number, seed = 0x6d6c7069): number[] {
  const n = Math.min(count, Math.max(0, Math.floor(samples)));
  if (n === count) return Array.from({ length: count }, (_, i) => i);
  const order = Int32Array.from({ length: count }, (_, i) => i);
  const random = seededRandom(seed);
  for (let i = 0; i < n; i++) {
    const j = i + Math.floor(random() * (count - i));
    const t = order[i]!;
    order[i] = order[j]!;
    order[j] = t;
  }
  return Array.from(order.subarray(0, n)).sort((a, b) => a - b);
}

/** Nearest-rank percentile of unsorted values; 0 for none. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[rank - 1]!;
}

function argmax(row: readonly number[]): number {
  let best = 0;
  for (let i = 1; i < row.length; i++) if (row[i]! > row[best]!) best = i;
  return best;
}

export interface RequestOutcome {
  latencyMs: number;
  /** Predicted class per instance; undefined when the request failed. */
  predictions?: number[];
  error?: string;
  /** The server was never reached (connection refused, DNS, timeout): distinguishes "down" from "wrong". */
  unreachable?: boolean;
}

/** Checks a predict response: a `predictions` array with one row of finite numbers per instance. */
export function parsePredictions(body: unknown, expected: number): number[] {
  const predictions = (body as { predictions?: unknown } | null)?.predictions;
  if (!Array.isArray(predictions)) throw new Error('response has no "predictions" array');
  if (predictions.length !== expected) throw new Error(`${predictions.length} predictions for ${expected} instances`);
  let width: number | undefined;
  return predictions.map((row: unknown, i) => {
    if (!Array.isArray(row) || row.length < 2 || !row.every((v) => typeof v === 'number' && Number.isFinite(v))) {
      throw new Error(`prediction ${i} is not an array of class scores`);
    }
    width ??= row.length;
    if (row.length !== width) throw new Error(`prediction ${i} has ${row.length} scores, the first had ${width}`);
    return argmax(row as number[]);
  });
}

/**
 * Errors of a connection that closed before an answer came: a pooled keep-alive socket the server (or a
 * load balancer) closed just as the request went out. fetch retries only idempotent methods by itself;
 * a predict POST is idempotent in fact (it changes nothing), so it is sent once more on a new connection
 * rather than counted against the model.
 */
const STALE_CONNECTION = new Set(['ECONNRESET', 'EPIPE', 'UND_ERR_SOCKET', 'UND_ERR_CLOSED']);

async function predict(url: string, instances: number[][], timeoutMs: number): Promise<RequestOutcome> {
  // Serialise before the clock starts: latency is the server's, not the time spent building the request.
  const body = JSON.stringify({ instances });
  let started = performance.now();
  const elapsed = () => performance.now() - started;
  let response: Response | undefined;
  for (let attempt = 1; !response; attempt++) {
    try {
      response = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body,
        signal: AbortSignal.timeout(timeoutMs),
      });
    } catch (err) {
      const e = err as Error & { cause?: { code?: string } };
      const code = e.cause?.code;
      if (attempt === 1 && code && STALE_CONNECTION.has(code)) {
        started = performance.now(); // the latency measured is the answered request's
        continue;
      }
      const why = e.name === 'TimeoutError' ? `no answer within ${timeoutMs} ms` : (code ?? e.message);
      return { latencyMs: elapsed(), error: why, unreachable: true };
    }
  }
  let text: string;
  try {
    text = await response.text();
  } catch (err) {
    return { latencyMs: elapsed(), error: `response body failed: ${(err as Error).message}` };
  }
  const latencyMs = elapsed();
  if (response.status !== 200) return { latencyMs, error: `HTTP ${response.status}` };
  try {
    return { latencyMs, predictions: parsePredictions(JSON.parse(text), instances.length) };
  } catch (err) {
    return { latencyMs, error: err instanceof SyntaxError ? 'response is not JSON' : (err as Error).message };
  }
}

/** Runs `tasks` with at most `limit` in flight, keeping results in order. */
async function pool<T>(count: number, limit: number, task: (i: number) => Promise<T>): Promise<T[]> {
  const results = new Array<T>(count);
  let next = 0;
  const worker = async () => {
    while (next < count) {
      const i = next++;
      results[i] = await task(i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, count) }, worker));
  return results;
}

export interface EvaluationRun {
  endpoint: string;
  modelName: string;
  data: HeldOutSet;
  samples: number;
  batchSize: number;
  concurrency: number;
  timeoutMs: number;
}

export interface Measurements {
  samples: number;
  accuracy: number;
  latencyMsP50: number;
  latencyMsP95: number;
  errorRate: number;
  requests: number;
  failedRequests: number;
  errors: string[];
  perLabelAccuracy: Record<string, number>;
}

/** Sends the selected images in batches and measures. Throws EvaluationError if no request reached the server. */
export async function measureEndpoint(run: EvaluationRun): Promise<Measurements> {
  const indices = selectIndices(run.data.count, run.samples);
  if (indices.length === 0) throw new EvaluationError('The held-out set is empty: nothing to evaluate.');
  const batches: number[][] = [];
  for (let i = 0; i < indices.length; i += run.batchSize) batches.push(indices.slice(i, i + run.batchSize));
  const url = `${run.endpoint.replace(/\/+$/, '')}/v1/models/${encodeURIComponent(run.modelName)}:predict`;
  const { images, labels, features } = run.data;

  const outcomes = await pool(batches.length, run.concurrency, (b) => {
    const instances = batches[b]!.map((idx) => Array.from(images.subarray(idx * features, (idx + 1) * features), (px) => px / 255));
    return predict(url, instances, run.timeoutMs);
  });

  if (outcomes.every((o) => o.unreachable)) {
    throw new EvaluationError(`The staging endpoint ${url} could not be reached by any of ${outcomes.length} requests: ${outcomes[0]!.error}.`);
  }
  let correct = 0;
  const perLabel = new Map<number, { seen: number; correct: number }>();
  const errors: string[] = [];
  outcomes.forEach((o, b) => {
    const batch = batches[b]!;
    if (o.error !== undefined && errors.length < 5) errors.push(`batch ${b}: ${o.error}`);
    batch.forEach((idx, j) => {
      const label = labels[idx]!;
      const stat = perLabel.get(label) ?? { seen: 0, correct: 0 };
      stat.seen++;
      if (o.predictions?.[j] === label) {
        stat.correct++;
        correct++;
      }
      perLabel.set(label, stat);
    });
  });
  const failed = outcomes.filter((o) => o.error !== undefined).length;
  const latencies = outcomes.map((o) => o.latencyMs);
  return {
    samples: indices.length,
    accuracy: correct / indices.length,
    latencyMsP50: round(percentile(latencies, 50), 2),
    latencyMsP95: round(percentile(latencies, 95), 2),
    errorRate: failed / outcomes.length,
    requests: outcomes.length,
    failedRequests: failed,
    errors,
    perLabelAccuracy: Object.fromEntries([...perLabel].sort((a, b) => a[0] - b[0]).map(([l, s]) => [String(l), s.correct / s.seen])),
  };
}

function round(x: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

const pct = (x: number) => `${round(x * 100, 2)}%`;
const acc = (x: number) => x.toFixed(4);

/** The gate: every reason to fail, and the one-line summary a human reads in the email and the console. */
export function judge(
  m: Pick<Measurements, 'accuracy' | 'latencyMsP95' | 'errorRate' | 'samples' | 'errors'>,
  thresholds: Thresholds,
  production: { version: string; accuracy: number } | null,
  /** Why there is no comparison, when production exists but cannot be compared (e.g. no evaluation.json). */
  noComparison = 'no production model to compare with',
): Pick<EvaluationResult, 'passed' | 'summary'> {
  const failures: string[] = [];
  if (m.errorRate > thresholds.maxErrorRate) {
    failures.push(`error rate ${pct(m.errorRate)} > ${pct(thresholds.maxErrorRate)}${m.errors[0] ? ` (${m.errors[0]})` : ''}`);
  }
  if (m.accuracy < thresholds.minAccuracy) failures.push(`accuracy ${acc(m.accuracy)} < ${acc(thresholds.minAccuracy)}`);
  if (m.latencyMsP95 > thresholds.maxP95LatencyMs) failures.push(`p95 latency ${m.latencyMsP95} ms > ${thresholds.maxP95LatencyMs} ms`);
  if (production && m.accuracy < production.accuracy - thresholds.maxAccuracyDrop) {
    failures.push(
      `accuracy ${acc(m.accuracy)} is more than ${acc(thresholds.maxAccuracyDrop)} below production ${production.version} (${acc(production.accuracy)})`,
    );
  }
  const vsProduction = production
    ? `production ${production.version} ${acc(production.accuracy)}`
    : noComparison;
  if (failures.length > 0) {
    return { passed: false, summary: `Failed on ${m.samples} samples: ${failures.join('; ')}.` };
  }
  return {
    passed: true,
    summary:
      `Passed on ${m.samples} samples: accuracy ${acc(m.accuracy)} >= ${acc(thresholds.minAccuracy)}, ` +
      `p95 ${m.latencyMsP95} ms <= ${thresholds.maxP95LatencyMs} ms, error rate ${pct(m.errorRate)} <= ${pct(thresholds.maxErrorRate)}; ${vsProduction}.`,
  };
}
