/**
 * A steady stream of prediction requests to a model endpoint, as live traffic during a local canary
 * rollout: held-out Fashion-MNIST images (t10k, never trained on), one per request, at a fixed rate, each
 * on a NEW TCP connection so a load balancer that picks a pod per connection (local/kube/lb-proxy.ts, a
 * cloud NLB) spreads them over every pod behind the Service — both versions' during a canary step.
 *
 * Every answer is tallied by the version that gave it (the `X-Model-Version` header the example server
 * sends), with its status and latency, so the local run can show what each version served and a test can
 * check that no request failed outside the canary. It measures the client's view; the canary analysis
 * itself reads the servers' own counters (functions/shared/canary-analysis.ts).
 *
 *   const traffic = new TrafficGenerator({ url, modelName: 'fashion', ratePerSecond: 20 });
 *   traffic.start(); …; const s = traffic.snapshot({ since }); await traffic.stop();
 *
 * Also a command: `npx tsx local/traffic.ts <url> <model> [rate]` prints a tally every 2 s until Ctrl-C; it
 * sends the token in MLPIPE_ENDPOINT_TOKEN (an environment variable: `ps` shows a command's arguments).
 */
import { request, type IncomingMessage } from 'node:http';
import { decodeIdx } from '../examples/fashion-mnist/idx';
import { percentile } from '../functions/shared/evaluation';
import { FILES, loadDataset } from '../examples/fashion-mnist/stage-data';

/** The tally key for requests that got no HTTP answer at all (refused, reset, timed out). */
export const NO_ANSWER = '(no answer)';
/** The tally key for answers without an X-Model-Version header. */
export const UNKNOWN_VERSION = '(unknown)';

const PIXELS = 28 * 28;
/** The log of results is bounded: at 20 requests/s this is over an hour. */
const MAX_RESULTS = 100_000;

export interface TrafficOptions {
  /** Base URL of the endpoint, e.g. `http://127.0.0.1:31234` (the production Service's load balancer). */
  url: string;
  modelName: string;
  /** Requests started per second, whatever the answers' latency (an open-loop load). @default 20 */
  ratePerSecond?: number;
  /** Images, 784 bytes (0-255) each; @default the held-out Fashion-MNIST test set from the dataset cache */
  images?: Uint8Array;
  /** A request without an answer by then counts as failed with NO_ANSWER. @default 5000 */
  timeoutMs?: number;
  /** The model's endpoint token, sent as `Authorization: Bearer` (endpoint auth). @default none */
  token?: string;
}

/** One request's outcome. */
export interface TrafficResult {
  /** When it was sent, ms since the generator's time origin (performance.now()). */
  sentAt: number;
  /** Who answered: the X-Model-Version header, UNKNOWN_VERSION, or NO_ANSWER. */
  version: string;
  /** HTTP status; 0 when there was no answer. */
  status: number;
  ok: boolean;
  latencyMs: number;
  /** Why it failed, when it did: the status and body's error, or the network error. */
  error?: string;
}

export interface VersionTally {
  ok: number;
  failed: number;
  /** Share of the window's requests this version answered (NO_ANSWER included in the total). */
  share: number;
  p50Ms: number | null;
  p95Ms: number | null;
  maxMs: number | null;
}

export interface TrafficSnapshot {
  /** Requests answered (or given up on) in the window. */
  done: number;
  inFlight: number;
  byVersion: Record<string, VersionTally>;
  /** The window's failed requests, oldest first (at most 50: enough to say what went wrong). */
  failures: TrafficResult[];
}

export class TrafficGenerator {
  private readonly rate: number;
  private readonly timeoutMs: number;
  private readonly target: URL;
  private readonly path: string;
  private images: Uint8Array | undefined;
  private imageCount = 0;
  private nextImage = 0;
  private readonly results: TrafficResult[] = [];
  private readonly inFlight = new Set<Promise<void>>();
  private readonly listeners = new Set<(r: TrafficResult) => void>();
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  private started = 0;
  private sent = 0;

  constructor(private readonly opts: TrafficOptions) {
    const rate = opts.ratePerSecond ?? 20;
    if (!(rate > 0 && rate <= 1000)) throw new RangeError(`ratePerSecond must be between 0 and 1000 (got ${rate})`);
    if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(opts.modelName)) throw new RangeError(`modelName "${opts.modelName}" is not a model name`);
    this.rate = rate;
    this.timeoutMs = opts.timeoutMs ?? 5000;
    this.target = new URL(opts.url);
    if (this.target.protocol !== 'http:') throw new RangeError(`url must be http:// (got ${opts.url})`);
    this.path = `${this.target.pathname.replace(/\/$/, '')}/v1/models/${opts.modelName}:predict`;
    if (opts.images) this.useImages(opts.images);
  }

  /** Starts sending (idempotent). Loads the held-out images first if none were given. */
  start(): void {
    if (this.running) return;
    if (!this.images) {
      const { files } = loadDataset();
      this.useImages(decodeIdx(files.testImages, FILES.testImages.name).data);
    }
    this.running = true;
    this.started = performance.now();
    this.sent = 0;
    this.schedule();
  }

  /** Stops sending and waits for the requests still in flight (each ends by its timeout at the latest). */
  async stop(): Promise<void> {
    this.running = false;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    await Promise.all([...this.inFlight]);
  }

  /** Calls `listener` with every result as it comes; returns the function that unsubscribes it. */
  onResult(listener: (r: TrafficResult) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Time origin of `sentAt` and `since`: performance.now(). */
  now(): number {
    return performance.now();
  }

  /**
   * The tally of the requests sent at or after `since` and before `until` (performance.now() ms; default:
   * all), as far as they are answered now: after stop(), every one sent in the window is.
   */
  snapshot(opts: { since?: number; until?: number } = {}): TrafficSnapshot {
    const since = opts.since ?? Number.NEGATIVE_INFINITY;
    const until = opts.until ?? Number.POSITIVE_INFINITY;
    const window = this.results.filter((r) => r.sentAt >= since && r.sentAt < until);
    const byVersion: Record<string, VersionTally> = {};
    const latencies = new Map<string, number[]>();
    for (const r of window) {
      const t = (byVersion[r.version] ??= { ok: 0, failed: 0, share: 0, p50Ms: null, p95Ms: null, maxMs: null });
      if (r.ok) t.ok++;
      else t.failed++;
      if (r.status !== 0) {
        const list = latencies.get(r.version) ?? [];
        list.push(r.latencyMs);
        latencies.set(r.version, list);
      }
    }
    for (const [version, t] of Object.entries(byVersion)) {
      t.share = round3((t.ok + t.failed) / window.length);
      const sorted = (latencies.get(version) ?? []).sort((a, b) => a - b);
      // Nearest rank, as the evaluation measures latency (evaluation.ts percentile).
      t.p50Ms = sorted.length ? round3(percentile(sorted, 50)) : null;
      t.p95Ms = sorted.length ? round3(percentile(sorted, 95)) : null;
      t.maxMs = sorted.length ? round3(sorted[sorted.length - 1]!) : null;
    }
    return { done: window.length, inFlight: this.inFlight.size, byVersion, failures: window.filter((r) => !r.ok).slice(0, 50) };
  }

  private useImages(images: Uint8Array): void {
    if (images.length < PIXELS || images.length % PIXELS !== 0) throw new RangeError(`images must be whole 28x28 images (${images.length} bytes)`);
    this.images = images;
    this.imageCount = images.length / PIXELS;
  }

  /** Open loop: request n is due at start + n/rate, however long earlier ones take. */
  private schedule(): void {
    if (!this.running) return;
    const due = this.started + (this.sent * 1000) / this.rate;
    this.timer = setTimeout(() => {
      if (!this.running) return;
      // Catch up after a stall (a busy event loop) without a burst of more than a second's worth.
      const behind = Math.min(Math.floor(((performance.now() - this.started) * this.rate) / 1000) + 1 - this.sent, this.rate);
      for (let i = 0; i < Math.max(1, behind); i++) this.send();
      this.schedule();
    }, Math.max(0, due - performance.now()));
  }

  private send(): void {
    this.sent++;
    const index = this.nextImage++ % this.imageCount;
    const pixels = this.images!.subarray(index * PIXELS, (index + 1) * PIXELS);
    const body = `{"instances":[[${Array.from(pixels, (v) => +(v / 255).toFixed(4)).join(',')}]]}`;
    const sentAt = performance.now();
    const done = new Promise<void>((resolve) => {
      const finish = (r: Omit<TrafficResult, 'sentAt' | 'latencyMs'>) => {
        this.record({ sentAt, latencyMs: round3(performance.now() - sentAt), ...r });
        resolve();
      };
      const req = request(
        {
          host: this.target.hostname,
          port: this.target.port,
          method: 'POST',
          path: this.path,
          // A new connection per request (no keep-alive agent): the load balancer picks a pod per connection.
          agent: false,
          headers: {
            'content-type': 'application/json',
            'content-length': Buffer.byteLength(body),
            connection: 'close',
            ...(this.opts.token === undefined ? {} : { authorization: `Bearer ${this.opts.token}` }),
          },
          timeout: this.timeoutMs,
        },
        (res: IncomingMessage) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            const status = res.statusCode ?? 0;
            const header = res.headers['x-model-version'];
            const version = (Array.isArray(header) ? header[0] : header) ?? UNKNOWN_VERSION;
            const ok = status >= 200 && status < 300;
            finish({ version, status, ok, ...(ok ? {} : { error: `HTTP ${status}: ${errorText(Buffer.concat(chunks).toString('utf8'))}` }) });
          });
          res.on('error', (err) => finish({ version: NO_ANSWER, status: 0, ok: false, error: err.message }));
        },
      );
      req.on('timeout', () => req.destroy(new Error(`no answer within ${this.timeoutMs} ms`)));
      req.on('error', (err: NodeJS.ErrnoException) => finish({ version: NO_ANSWER, status: 0, ok: false, error: err.code ?? err.message }));
      req.end(body);
    });
    this.inFlight.add(done);
    void done.then(() => this.inFlight.delete(done));
  }

  private record(r: TrafficResult): void {
    this.results.push(r);
    if (this.results.length > MAX_RESULTS) this.results.splice(0, this.results.length - MAX_RESULTS);
    for (const l of this.listeners) l(r);
  }
}

/** The `error` of a JSON error body (TF Serving's shape), else the body's start. */
function errorText(body: string): string {
  try {
    const parsed = JSON.parse(body) as { error?: unknown };
    if (typeof parsed.error === 'string') return parsed.error.slice(0, 200);
  } catch {
    // not JSON
  }
  return body.slice(0, 200);
}

function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}

/** One line per version: `v2  12 ok  3 failed  25.0 %  p95 4.1 ms`. */
export function formatSnapshot(s: TrafficSnapshot): string {
  return Object.entries(s.byVersion)
    .map(([v, t]) => `${v}  ${t.ok} ok  ${t.failed} failed  ${(t.share * 100).toFixed(1)} %  p95 ${t.p95Ms === null ? 'n/a' : `${t.p95Ms} ms`}`)
    .join('\n');
}

if (require.main === module) {
  const [url, modelName, rate] = process.argv.slice(2);
  if (!url || !modelName) {
    process.stderr.write(
      'usage: [MLPIPE_ENDPOINT_TOKEN=<token>] npx tsx local/traffic.ts <url> <model> [requests per second]\n' +
        '  MLPIPE_ENDPOINT_TOKEN: the endpoint token (mlpipe endpoint --show-token), sent as Authorization: Bearer;\n' +
        '  without it an endpoint with auth on answers every request 401. An environment variable, not an argument: ps shows arguments.\n',
    );
    process.exit(2);
  }
  const token = process.env.MLPIPE_ENDPOINT_TOKEN || undefined;
  const traffic = new TrafficGenerator({ url, modelName, ratePerSecond: rate ? Number(rate) : undefined, token });
  traffic.start();
  const every = setInterval(() => process.stdout.write(`${formatSnapshot(traffic.snapshot())}\n--\n`), 2000);
  process.on('SIGINT', () => {
    clearInterval(every);
    void traffic.stop().then(() => {
      process.stdout.write(`${formatSnapshot(traffic.snapshot())}\n`);
      process.exit(0);
    });
  });
}
