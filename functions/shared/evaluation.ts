/**
 * The evaluation gate: sends held-out images to the staging endpoint (TF Serving REST predict), measures
 * accuracy, per-request latency and error rate, and compares them with thresholds and with production.
 * A request counts only if it answered 200 with one well-formed prediction per instance: the design this
 * replaces "passed" its accuracy test on HTTP 404.
 */
import { createHash } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { getObjectBytes, parseS3Uri } from './clients';
import { readDatasetManifest } from './dataset';
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
  /** Class names, index = label: the held-out data's dataset.json `classNames`, when it has them. */
  classes?: string[];
}

const IMAGES = 't10k-images-idx3-ubyte';
const LABELS = 't10k-labels-idx1-ubyte';

/**
 * Reads the held-out IDX pair under `evalDataUri`, and the class names of the dataset.json beside it if
 * there is one (functions/shared/dataset.ts); missing or malformed data is an EvaluationError.
 */
export async function loadHeldOutSet(evalDataUri: string): Promise<HeldOutSet> {
  const { bucket, key } = parseS3Uri(evalDataUri, 'run.evalDataUri');
  const prefix = key === '' || key.endsWith('/') ? key : `${key}/`;
  const [imageBytes, labelBytes, manifest] = await Promise.all([
    getObjectBytes(bucket, `${prefix}${IMAGES}`),
    getObjectBytes(bucket, `${prefix}${LABELS}`),
    readDatasetManifest(evalDataUri),
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
    const classes = manifest?.classNames;
    return { images: images.data, labels: labels.data, count, features, ...(classes?.length ? { classes } : {}) };
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

/**
 * What identifies the images an evaluation sends: a sha256 of the held-out images and labels and of which
 * of them `samples` selects. Two evaluations with the same fingerprint asked the same questions, so a model
 * gave the same answers to both (the champion's accuracy can then come from its own evaluation).
 */
export function heldOutFingerprint(data: HeldOutSet, samples: number): string {
  const indices = Int32Array.from(selectIndices(data.count, samples));
  return createHash('sha256')
    .update(`${data.count}x${data.features}\0`)
    .update(data.images)
    .update(data.labels)
    .update(new Uint8Array(indices.buffer))
    .digest('hex');
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
  /** The `X-Model-Version` the answer carried (container contract, optional). */
  version?: string;
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

/**
 * `body` is the request for `count` images, serialised before the clock starts: latency is the server's,
 * not the time spent building the request.
 */
async function predict(url: string, body: string, count: number, timeoutMs: number, token?: string): Promise<RequestOutcome> {
  let started = performance.now();
  const elapsed = () => performance.now() - started;
  let response: Response | undefined;
  for (let attempt = 1; !response; attempt++) {
    try {
      response = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...(token === undefined ? {} : { authorization: `Bearer ${token}` }) },
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
  const version = response.headers.get('x-model-version') ?? undefined;
  try {
    return { latencyMs, predictions: parsePredictions(JSON.parse(text), count), ...(version ? { version } : {}) };
  } catch (err) {
    return { latencyMs, error: err instanceof SyntaxError ? 'response is not JSON' : (err as Error).message };
  }
}

/**
 * Each byte's pixel value, byte / 255, as the shortest decimal that is the same float32: the model reads
 * its input as float32 (serve.ts copies it into a Float32Array), so it gets the very same input as from
 * the double's 17 digits, in 40 % fewer bytes (100 images: 0.49 MB of JSON instead of 0.82 MB; parsing it
 * took the server 4.6 ms of CPU instead of 8.7 ms). test/functions-s3/evaluate*.test.ts checks all 256.
 */
export const PIXEL_JSON = Array.from({ length: 256 }, (_, v) => float32Json(v / 255));

/** The shortest decimal text that JSON.parse, then rounding to float32, turns into Math.fround(x). */
export function float32Json(x: number): string {
  const f = Math.fround(x);
  for (let digits = 1; digits < 17; digits++) {
    const text = JSON.stringify(Number(f.toPrecision(digits)));
    if (Math.fround(Number(text)) === f) return text;
  }
  return JSON.stringify(f);
}

/**
 * The predict request for images `indices`: `{"instances":[[byte / 255, ...], ...]}` as float32 values
 * (PIXEL_JSON), put together from PIXEL_JSON's 256 strings: 100 images are ~0.5 MB of JSON;
 * JSON.stringify took 25-30 ms of CPU for them (formatting 78,400 numbers), this 6-7 ms.
 */
export function predictBody(images: Uint8Array, features: number, indices: readonly number[]): string {
  const rows = new Array<string>(indices.length);
  const row = new Array<string>(features);
  indices.forEach((idx, r) => {
    const offset = idx * features;
    for (let k = 0; k < features; k++) row[k] = PIXEL_JSON[images[offset + k]!]!;
    rows[r] = `[${row.join(',')}]`;
  });
  return `{"instances":[${rows.join(',')}]}`;
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
  /** The candidate: the staging endpoint. */
  endpoint: string;
  /** The champion: production's endpoint, measured in the same evaluation when something serves. */
  championEndpoint?: string;
  /**
   * Send the champion only this many of the batches, spread evenly over the evaluation (still interleaved):
   * enough for its latency and error rate now, when its accuracy on these images is known already. Default:
   * every batch.
   */
  championBatches?: number;
  modelName: string;
  data: HeldOutSet;
  samples: number;
  batchSize: number;
  concurrency: number;
  timeoutMs: number;
  /** The model's endpoint token (staging and production share it), when endpoint auth is on. */
  token?: string;
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
  /** Index = label; over every selected image of that label (a failed request counts as wrong). */
  perClassAccuracy: number[];
  /** confusion[true][predicted]: counts of answered predictions (failed requests have none). */
  confusion: number[][];
  /** The versions the answers named (`X-Model-Version`), each once; empty when the server sends none. */
  versions: string[];
}

export interface EndpointMeasurements {
  candidate: Measurements;
  /** The champion's numbers, or why it could not be measured (the candidate's evaluation goes on). */
  champion?: Measurements | { unreachable: string };
}

/**
 * Sends the selected images in batches to the candidate and, when given, to the champion, and measures
 * both. Interleaved: each batch goes to both endpoints back to back, the first one alternating from batch
 * to batch, so both see the same moments of a busy machine or network and a latency difference between
 * them is the models', not the time of day (measuring production at its own release compared numbers
 * hours or weeks apart). Throws EvaluationError if no request reached the candidate.
 */
export async function measureEndpoints(run: EvaluationRun): Promise<EndpointMeasurements> {
  const indices = selectIndices(run.data.count, run.samples);
  if (indices.length === 0) throw new EvaluationError('The held-out set is empty: nothing to evaluate.');
  const batches: number[][] = [];
  for (let i = 0; i < indices.length; i += run.batchSize) batches.push(indices.slice(i, i + run.batchSize));
  const predictUrl = (endpoint: string) => `${endpoint.replace(/\/+$/, '')}/v1/models/${encodeURIComponent(run.modelName)}:predict`;
  const urls = [predictUrl(run.endpoint), ...(run.championEndpoint ? [predictUrl(run.championEndpoint)] : [])];
  const { images, features } = run.data;

  const outcomes = urls.map(() => new Array<RequestOutcome>(batches.length));
  // Which batches the champion gets: every one, or every stride-th.
  const stride = run.championBatches === undefined ? 1 : Math.max(1, Math.ceil(batches.length / Math.max(1, run.championBatches)));
  const toChampion = (b: number) => b % stride === 0;
  // Production that stops answering (refused, or no answer within the timeout) is not asked again: every
  // batch would otherwise wait the timeout for it, and the candidate's evaluation run out of time.
  let championGone: string | undefined;
  await pool(batches.length, run.concurrency, async (b) => {
    const count = batches[b]!.length;
    // Serialised once for both endpoints.
    const body = predictBody(images, features, batches[b]!);
    // The first alternates: from batch to batch, or from champion batch to champion batch.
    const order = (b / stride) % 2 === 0 ? urls.map((_, t) => t) : urls.map((_, t) => urls.length - 1 - t);
    for (const t of order) {
      if (t === 1 && (championGone !== undefined || !toChampion(b))) continue;
      const outcome = await predict(urls[t]!, body, count, run.timeoutMs, run.token);
      outcomes[t]![b] = outcome;
      if (t === 1 && outcome.unreachable) championGone ??= outcome.error ?? 'unreachable';
    }
  });

  const [candidate, champion] = outcomes;
  if (candidate!.every((o) => o.unreachable)) {
    throw new EvaluationError(`The staging endpoint ${urls[0]} could not be reached by any of ${batches.length} requests: ${candidate![0]!.error}.`);
  }
  let classCount = run.data.classes?.length ?? 0;
  for (const l of run.data.labels) if (l >= classCount) classCount = l + 1;
  const result: EndpointMeasurements = { candidate: summarize(candidate!, batches, run.data.labels, classCount) };
  if (champion) {
    const sent = batches.map((_, b) => b).filter(toChampion);
    result.champion = championGone !== undefined
      ? { unreachable: `${urls[1]}: ${championGone}` }
      : summarize(sent.map((b) => champion[b]!), sent.map((b) => batches[b]!), run.data.labels, classCount);
  }
  return result;
}

/** Accuracy overall and per class, the confusion matrix, latency percentiles and failures of one endpoint. */
function summarize(outcomes: RequestOutcome[], batches: number[][], labels: Uint8Array, minClasses: number): Measurements {
  // A model may predict more classes than the held-out labels use: the matrix grows to its widest class.
  let classCount = minClasses;
  for (const o of outcomes) for (const p of o.predictions ?? []) if (p >= classCount) classCount = p + 1;
  const confusion = Array.from({ length: classCount }, () => new Array<number>(classCount).fill(0));
  const seen = new Array<number>(classCount).fill(0);
  const right = new Array<number>(classCount).fill(0);
  const errors: string[] = [];
  let samples = 0;
  outcomes.forEach((o, b) => {
    if (o.error !== undefined && errors.length < 5) errors.push(`batch ${b}: ${o.error}`);
    batches[b]!.forEach((idx, j) => {
      const label = labels[idx]!;
      const predicted = o.predictions?.[j];
      samples++;
      seen[label]!++;
      if (predicted === undefined) return;
      confusion[label]![predicted]!++;
      if (predicted === label) right[label]!++;
    });
  });
  const correct = right.reduce((a, b) => a + b, 0);
  const failed = outcomes.filter((o) => o.error !== undefined).length;
  const latencies = outcomes.map((o) => o.latencyMs);
  return {
    samples,
    accuracy: correct / samples,
    latencyMsP50: round(percentile(latencies, 50), 2),
    latencyMsP95: round(percentile(latencies, 95), 2),
    errorRate: failed / outcomes.length,
    requests: outcomes.length,
    failedRequests: failed,
    errors,
    // A class no selected image has gets 0: the table still lines up with the class names.
    perClassAccuracy: seen.map((n, c) => (n === 0 ? 0 : round(right[c]! / n, 4))),
    confusion,
    versions: [...new Set(outcomes.flatMap((o) => (o.version === undefined ? [] : [o.version])))].sort(),
  };
}

function round(x: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

const pct = (x: number) => `${round(x * 100, 2)}%`;
const acc = (x: number) => x.toFixed(4);

/** Beyond this many classes `$.evaluation` carries no per-class accuracy (evaluation.json does): the state must stay small. */
export const MAX_STATE_CLASSES = 100;
/** Beyond this many classes `$.evaluation` carries no confusion matrix (30 x 30 counts is a few KiB). */
export const MAX_STATE_CONFUSION_CLASSES = 30;

/** The candidate's per-class fields for `$.evaluation`, within the state's limits. */
export function perClassFields(m: Pick<Measurements, 'perClassAccuracy' | 'confusion'>, classes: string[] | undefined): Pick<EvaluationResult, 'classes' | 'perClassAccuracy' | 'confusion'> {
  const count = m.perClassAccuracy.length;
  if (count > MAX_STATE_CLASSES) return {};
  return {
    ...(classes?.length ? { classes: classes.slice(0, count) } : {}),
    perClassAccuracy: m.perClassAccuracy,
    ...(count <= MAX_STATE_CONFUSION_CLASSES ? { confusion: m.confusion } : {}),
  };
}

/** What the gate compares the candidate with: production's numbers, and what the summary says about them. */
export interface ChampionComparison {
  production: NonNullable<EvaluationResult['production']> | null;
  /** Why there is no comparison, or where production's accuracy comes from when it was not measured now. */
  note?: string;
  /** Production's accuracy is its own evaluation's (`known`), not measured now. */
  accuracyFromEvaluation?: boolean;
}

/**
 * Batches sent to a champion whose accuracy is known (knownAccuracy): its p95 is then the 19th of 20
 * latencies, spread over the whole evaluation. Measured locally: 100 champion batches took 2 of
 * EvaluateModel's 5 s.
 */
export const CHAMPION_LATENCY_BATCHES = 20;

/** What EvaluateModel reads of the champion's evaluation.json (older files lack the details). */
export interface StoredEvaluation {
  accuracy: number;
  details?: { failedRequests?: number; perClassAccuracy?: number[]; heldOut?: { sha256?: string } };
}

/** The champion's accuracy on this evaluation's images, known from its own evaluation. */
export interface KnownAccuracy {
  accuracy: number;
  perClassAccuracy: number[];
}

/**
 * The champion's accuracy from its own evaluation.json, when that evaluation sent exactly the images this
 * one sends (the same heldOutFingerprint) and every request of it was answered: the same model files give
 * the same answers to the same images, so measuring them again would only repeat it. Its latency and error
 * rate are not known this way (they are the machine's and the moment's): those are measured now.
 * Undefined otherwise, and the champion gets every batch.
 */
export function knownAccuracy(stored: StoredEvaluation | undefined, fingerprint: string): KnownAccuracy | undefined {
  const d = stored?.details;
  if (!stored || !d || d.heldOut?.sha256 !== fingerprint || d.failedRequests !== 0 || !Array.isArray(d.perClassAccuracy)) return undefined;
  return { accuracy: stored.accuracy, perClassAccuracy: d.perClassAccuracy };
}

/**
 * Production's numbers for `$.evaluation`. Measured now (interleaved with the candidate) when its endpoint
 * answered well enough to judge it, its accuracy taken from `known` when given (the same images, answered
 * by the same model at its own evaluation); else its accuracy from its own evaluation.json, without latency
 * (numbers measured at another time are not comparable), and the summary says so; else no comparison.
 */
export function championComparison(
  champion: { version: string; endpoint: string | null } | undefined,
  measured: EndpointMeasurements['champion'],
  stored: { accuracy: number } | undefined,
  maxErrorRate: number,
  known?: KnownAccuracy,
): ChampionComparison {
  if (!champion) return { production: null };
  if (measured && !('unreachable' in measured) && measured.errorRate <= maxErrorRate) {
    // Its evaluation speaks for it only if the endpoint serves that version: an answer naming another
    // (production switched since production.json was read) makes the accuracy measured now count.
    const other = measured.versions.find((v) => v !== champion.version);
    const reused = other === undefined ? known : undefined;
    const perClassAccuracy = reused?.perClassAccuracy ?? measured.perClassAccuracy;
    return {
      ...(reused ? { accuracyFromEvaluation: true } : {}),
      ...(other !== undefined && known ? { note: `production answered as ${other}, not ${champion.version}: its accuracy is measured now, on the ${measured.samples} images it was sent` } : {}),
      production: {
        // The answers all naming one other version: that is what was measured (status and the console show it).
        version: measured.versions.length === 1 && other !== undefined ? other : champion.version,
        accuracy: reused?.accuracy ?? measured.accuracy,
        ...(perClassAccuracy.length <= MAX_STATE_CLASSES ? { perClassAccuracy } : {}),
        latencyMsP50: measured.latencyMsP50,
        latencyMsP95: measured.latencyMsP95,
        errorRate: measured.errorRate,
      },
    };
  }
  const why = !champion.endpoint
    ? 'production has no endpoint on record'
    : !measured
      ? 'production was not measured'
      : 'unreachable' in measured
        ? `production's endpoint could not be reached (${measured.unreachable})`
        : `production answered ${pct(measured.errorRate)} of requests with errors${measured.errors[0] ? ` (${measured.errors[0]})` : ''}`;
  if (!stored) return { production: null, note: `production ${champion.version} has no evaluation.json to compare with and ${why}` };
  return { production: { version: champion.version, accuracy: stored.accuracy }, note: `accuracy from its own evaluation: ${why}` };
}

/** The gate: every reason to fail, and the one-line summary a human reads in the email and the console. */
export function judge(
  m: Pick<Measurements, 'accuracy' | 'latencyMsP95' | 'errorRate' | 'samples' | 'errors'>,
  thresholds: Thresholds,
  production: { version: string; accuracy: number } | null,
  /**
   * Without production: why there is no comparison (e.g. it has no evaluation.json). With it: where its
   * accuracy comes from when it was not measured alongside the candidate.
   */
  note?: string,
): Pick<EvaluationResult, 'passed' | 'summary'> {
  const failures: string[] = [];
  if (m.errorRate > thresholds.maxErrorRate) {
    failures.push(`error rate ${pct(m.errorRate)} > ${pct(thresholds.maxErrorRate)}${m.errors[0] ? ` (${m.errors[0]})` : ''}`);
  }
  if (m.accuracy < thresholds.minAccuracy) failures.push(`accuracy ${acc(m.accuracy)} < ${acc(thresholds.minAccuracy)}`);
  if (m.latencyMsP95 > thresholds.maxP95LatencyMs) failures.push(`p95 latency ${m.latencyMsP95} ms > ${thresholds.maxP95LatencyMs} ms`);
  if (production && m.accuracy < production.accuracy - thresholds.maxAccuracyDrop) {
    failures.push(
      `accuracy ${acc(m.accuracy)} is more than ${acc(thresholds.maxAccuracyDrop)} below production ${production.version} (${acc(production.accuracy)}${note ? `, ${note}` : ''})`,
    );
  }
  const vsProduction = production
    ? `production ${production.version} ${acc(production.accuracy)}${note ? ` (${note})` : ''}`
    : (note ?? 'no production model to compare with');
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
