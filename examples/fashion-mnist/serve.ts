/**
 * The example serving image's entry point (the container contract in docs/architecture.md): loads the
 * tfjs layers model at MODEL_URI and answers TensorFlow Serving's REST API for MODEL_NAME on PORT (8501),
 * so the pipeline's probes and evaluator work the same against this server or a stock TF Serving image.
 * It listens on HOST: every interface by default, as a pod must (the Service reaches it at the pod's IP);
 * the local runner passes 127.0.0.1, so nothing of a local run is reachable from another machine.
 *
 *   GET  /v1/models/<name>           model status; 503 + state LOADING until the model is loaded (readiness)
 *   POST /v1/models/<name>:predict   {"instances": [[784 floats 0..1], ...]} → {"predictions": [[10 probs], ...]}
 *   GET  /metrics                    Prometheus text: requests, errors, latency histogram, instances,
 *                                    predicted classes (mlpipe_predictions_total{class="<index>"})
 *   GET  /healthz                    liveness: 200 while the process runs
 *
 * AUTH_TOKEN_FILE (optional): every request on PORT must carry `Authorization: Bearer <token>`, a token
 * listed in that file (one per line; auth.ts): else 401 with `WWW-Authenticate`. The probes (status,
 * /healthz) and /metrics are then served without a token on ADMIN_PORT (default 8502), which the
 * Service never exposes: the kubelet and the pipeline (through the API server's pod proxy, which drops
 * the caller's Authorization header) reach it, clients of the load balancer cannot.
 *
 * Every answer carries `X-Model-Version: <MODEL_VERSION>` when that env is set (the pipeline sets it), so
 * a client behind a Service that spans two versions (a canary step) can tell which one answered.
 *
 * FAULT (optional, a drill knob; grammar in functions/shared/fault.ts): e.g. `error-rate=0.2,latency-ms=50`
 * makes that share of prediction requests answer 500 and delays every prediction; probes, /metrics and
 * status reads are never faulted, so a faulty candidate still becomes ready and serves its share.
 *
 * The port opens before the model loads (so a slow S3 read shows as "not ready", not "refused"); a model
 * that cannot be loaded ends the process with exit 1, which Kubernetes reports as CrashLoopBackOff.
 * SIGTERM/SIGINT: stop accepting connections, finish requests in flight, exit 0.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { z } from 'zod';
import { FaultInjector, FaultSpecError, formatFault, parseFault, type Fault } from '../../functions/shared/fault';
import { s3LoadHandler } from './model-io';
import { S3_URI } from './s3';
import { ServingMetrics } from './serving-metrics';
import { renderAuthMetrics, TokenFile, wwwAuthenticate } from './auth';

/** One request's instance limit: bounds memory per request (1,000 × 784 floats is ~16 MB of JSON). */
export const MAX_INSTANCES = 1000;
const MAX_BODY_BYTES = 24 * 1024 * 1024;
const SHUTDOWN_GRACE_MS = 10_000;

const envSchema = z.object({
  MODEL_URI: z.string().regex(S3_URI, 'must be an S3 URI like s3://bucket/models/<model>/<version>/'),
  MODEL_NAME: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,252}$/, 'must be a model name (letters, digits, ".", "_", "-")'),
  PORT: z.coerce.number().int().min(0).max(65535).default(8501),
  HOST: z.union([z.ipv4(), z.ipv6()], { error: 'must be an IP address to listen on, e.g. 127.0.0.1 or 0.0.0.0' }).default('0.0.0.0'),
  MODEL_VERSION: z
    .string()
    .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/, 'must be a version name (letters, digits, ".", "_", "-"; at most 128)')
    .optional(),
  AUTH_TOKEN_FILE: z.string().min(1).optional(),
  ADMIN_PORT: z.coerce.number().int().min(0).max(65535).default(8502),
  FAULT: z
    .string()
    .optional()
    .transform((text, ctx): Fault => {
      try {
        return parseFault(text);
      } catch (err) {
        if (!(err instanceof FaultSpecError)) throw err;
        ctx.addIssue({ code: 'custom', message: err.message });
        return z.NEVER;
      }
    }),
});

/** OPTIONAL variables: absent is fine, so their problems are reported as the value's, never "is not set". */
const OPTIONAL_VARIABLES = new Set(['PORT', 'HOST', 'MODEL_VERSION', 'FAULT', 'AUTH_TOKEN_FILE', 'ADMIN_PORT']);

/** A prediction failed on purpose (FAULT): answered 500 like a real failure, but not logged as one. */
class InjectedFault extends Error {}

type ModelState =
  | { state: 'LOADING' }
  | { state: 'AVAILABLE'; model: tf.LayersModel; features: number; classes: number }
  | { state: 'FAILED'; error: string };

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

function parseEnvironment(env: NodeJS.ProcessEnv): z.output<typeof envSchema> {
  const parsed = envSchema.safeParse(env);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => {
      const variable = String(i.path[0] ?? 'environment');
      return `${variable}: ${(env[variable] ?? '').trim() === '' && !OPTIONAL_VARIABLES.has(variable) ? 'is not set' : i.message}`;
    });
    process.stderr.write(`serve: Invalid environment:\n  ${lines.join('\n  ')}\n`);
    process.exit(2);
  }
  return parsed.data;
}

/** What JSON.parse gave, named as zod names types in its messages ("expected number, received string"). */
function jsonType(value: unknown): string {
  return value === null ? 'null' : Array.isArray(value) ? 'array' : typeof value;
}

/**
 * A predict body's `instances` as the model's input: checked and copied into one Float32Array in a single
 * pass. A zod schema did the same check: measured on an evaluation request (100 images, 78,400 numbers),
 * its check took 4.4 ms of CPU and the copy from the checked arrays another 5.3 ms; this pass ~1 ms.
 */
function readInstances(body: unknown, features: number): { count: number; input: Float32Array } {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new HttpError(400, 'body: must be {"instances": [[...], ...]}');
  const instances = (body as { instances?: unknown }).instances;
  if (!Array.isArray(instances)) throw new HttpError(400, 'instances: must be an array of instances');
  if (instances.length < 1) throw new HttpError(400, 'instances: must hold at least one instance');
  if (instances.length > MAX_INSTANCES) throw new HttpError(400, `instances: must hold at most ${MAX_INSTANCES} instances per request`);
  const input = new Float32Array(instances.length * features);
  for (let i = 0; i < instances.length; i++) {
    const instance: unknown = instances[i];
    if (!Array.isArray(instance)) throw new HttpError(400, `instances[${i}]: Invalid input: expected array, received ${jsonType(instance)}`);
    if (instance.length !== features) {
      throw new HttpError(400, `instances[${i}]: has ${instance.length} values, expected ${features} (a flattened 28x28 image scaled to 0..1).`);
    }
    const offset = i * features;
    for (let k = 0; k < features; k++) {
      const v: unknown = instance[k];
      if (typeof v !== 'number' || !Number.isFinite(v)) throw new HttpError(400, `instances[${i}][${k}]: Invalid input: expected number, received ${jsonType(v)}`);
      input[offset + k] = v;
    }
  }
  return { count: instances.length, input };
}

async function main(): Promise<void> {
  const env = parseEnvironment(process.env);
  const metrics = new ServingMetrics();
  let model: ModelState = { state: 'LOADING' };
  const modelPath = `/v1/models/${env.MODEL_NAME}`;
  const faults = new FaultInjector(env.FAULT);
  const tokens = readTokenFile(env.AUTH_TOKEN_FILE);

  function status(res: ServerResponse): number {
    const state = model.state === 'FAILED' ? 'END' : model.state;
    const ok = model.state === 'AVAILABLE';
    const error = model.state === 'FAILED' ? model.error : ok ? '' : 'model is loading';
    return sendJson(res, ok ? 200 : 503, {
      model_version_status: [
        { version: '1', state, status: { error_code: ok ? 'OK' : 'UNAVAILABLE', error_message: error } },
      ],
    });
  }

  async function predict(req: IncomingMessage, res: ServerResponse): Promise<number> {
    if (model.state !== 'AVAILABLE') throw new HttpError(503, `Model ${env.MODEL_NAME} is not loaded yet.`);
    const { model: net, features, classes } = model;
    if (faults.active) {
      if (faults.fault.latencyMs > 0) await new Promise((resolve) => setTimeout(resolve, faults.fault.latencyMs));
      if (faults.nextFails()) {
        req.resume();
        throw new InjectedFault(`Injected fault (FAULT ${formatFault(faults.fault)}): this request fails on purpose.`);
      }
    }
    let body: unknown;
    try {
      body = JSON.parse(await readBody(req));
    } catch (err) {
      if (err instanceof HttpError) throw err;
      throw new HttpError(400, `Request body is not JSON: ${(err as Error).message}`);
    }
    const { count, input } = readInstances(body, features);
    const probabilities = tf.tidy(() => (net.predict(tf.tensor2d(input, [count, features])) as tf.Tensor).dataSync());
    const predictions: number[][] = [];
    for (let i = 0; i < count; i++) {
      predictions.push(Array.from(probabilities.subarray(i * classes, (i + 1) * classes)));
    }
    metrics.instancesPredicted(count);
    metrics.classesPredicted(predictions.map(argmax));
    return sendJson(res, 200, { predictions });
  }

  async function route(req: IncomingMessage, res: ServerResponse): Promise<{ route: string; code: number }> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const path = url.pathname;
    const method = req.method ?? 'GET';
    if (path === '/healthz') {
      return { route: 'healthz', code: sendJson(res, 200, { status: 'ok', model: model.state }) };
    }
    if (path === '/metrics') {
      if (method !== 'GET') return { route: 'metrics', code: methodNotAllowed(res, 'GET') };
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' });
      res.end(metrics.render(model.state === 'AVAILABLE') + (tokens ? renderAuthMetrics(tokens) : ''));
      return { route: 'metrics', code: 200 };
    }
    // TF Serving paths, with or without an explicit version (this server has only version 1).
    const match = /^\/v1\/models\/([^/:]+)(?:\/versions\/(\d+))?(:predict)?$/.exec(path);
    if (!match) return { route: 'other', code: sendJson(res, 404, { error: `Not found: ${path}` }) };
    const [, name, version, action] = match;
    const routeName = action ? 'predict' : 'status';
    if (decodeURIComponent(name!) !== env.MODEL_NAME || (version !== undefined && version !== '1')) {
      return {
        route: routeName,
        code: sendJson(res, 404, { error: `Servable not found for request: ${version ? `Specific(${name}, ${version})` : `Latest(${name})`}` }),
      };
    }
    if (action) {
      if (method !== 'POST') return { route: routeName, code: methodNotAllowed(res, 'POST') };
      return { route: routeName, code: await predict(req, res) };
    }
    if (method !== 'GET') return { route: routeName, code: methodNotAllowed(res, 'GET') };
    return { route: routeName, code: status(res) };
  }

  /**
   * With a token file, the request must present a token, on every path: else 401, counted under its own
   * route so that unauthenticated callers (scanners) never count as the model's predict errors.
   */
  function authorized(req: IncomingMessage, res: ServerResponse): boolean {
    if (!tokens || tokens.accepts(req.headers.authorization)) return true;
    req.resume();
    res.setHeader('www-authenticate', wwwAuthenticate(req.headers.authorization !== undefined));
    sendJson(res, 401, { error: 'Unauthorized: send Authorization: Bearer <token> (mlpipe endpoint --show-token prints it for those allowed to read it).' });
    return false;
  }

  /** The admin port: probes and /metrics only (no predictions), no token. */
  function adminRoute(req: IncomingMessage, res: ServerResponse): Promise<{ route: string; code: number }> {
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    if (path === '/healthz' || path === '/metrics' || (path.startsWith('/v1/models/') && !path.includes(':'))) return route(req, res);
    req.resume();
    return Promise.resolve({ route: 'other', code: sendJson(res, 404, { error: `Not found on the admin port (probes and /metrics only): ${path}` }) });
  }

  const handle = (admin: boolean) => (req: IncomingMessage, res: ServerResponse) => {
    const started = process.hrtime.bigint();
    if (env.MODEL_VERSION) res.setHeader('x-model-version', env.MODEL_VERSION);
    if (!admin && !authorized(req, res)) {
      metrics.observe('unauthorized', 401, Number(process.hrtime.bigint() - started) / 1e9);
      return;
    }
    (admin ? adminRoute(req, res) : route(req, res))
      .catch((err: unknown) => {
        const status = err instanceof HttpError ? err.status : 500;
        if (status === 500 && !(err instanceof InjectedFault)) process.stderr.write(`serve: ${req.method} ${req.url}: ${(err as Error).stack ?? String(err)}\n`);
        const isPredict = /:predict$/.test(req.url ?? '');
        return { route: isPredict ? 'predict' : 'other', code: sendJson(res, status, { error: (err as Error).message }) };
      })
      .then(({ route: name, code }) => metrics.observe(name, code, Number(process.hrtime.bigint() - started) / 1e9));
  };
  const server = createServer(handle(false));
  server.keepAliveTimeout = 5000;
  const adminServer = tokens ? createServer(handle(true)) : undefined;

  const port = await listen(server, env.PORT, env.HOST);
  const adminPort = adminServer ? await listen(adminServer, env.ADMIN_PORT, env.HOST) : undefined;
  process.stdout.write(
    `serving ${env.MODEL_NAME} on port ${port} of ${env.HOST} (${modelPath})${env.MODEL_VERSION ? `, version ${env.MODEL_VERSION}` : ''}; loading ${env.MODEL_URI}\n`,
  );
  if (tokens) process.stdout.write(`endpoint auth on: ${tokens.count} token(s) accepted from AUTH_TOKEN_FILE; probes and /metrics without a token on admin port ${adminPort}\n`);
  if (faults.active) process.stdout.write(`FAULT ${formatFault(env.FAULT)}: prediction requests fail or slow down on purpose (a drill)\n`);

  let shuttingDown = false;
  const shutdown = (signal: string): void => {
    if (shuttingDown) return;
    shuttingDown = true;
    process.stdout.write(`${signal}: finishing requests in flight, then exiting\n`);
    adminServer?.close();
    adminServer?.closeIdleConnections();
    server.close(() => process.exit(0));
    server.closeIdleConnections();
    setTimeout(() => process.exit(0), SHUTDOWN_GRACE_MS).unref();
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));

  try {
    const started = performance.now();
    await tf.setBackend('wasm');
    const net = await tf.loadLayersModel(s3LoadHandler(env.MODEL_URI));
    const inputShape = net.inputs[0]?.shape;
    const outputShape = (net.outputs[0]?.shape ?? []) as (number | null)[];
    const features = inputShape?.length === 2 ? inputShape[1] : undefined;
    const classes = outputShape.length === 2 ? outputShape[1] : undefined;
    if (typeof features !== 'number' || typeof classes !== 'number') {
      throw new Error(`model input ${JSON.stringify(inputShape)} / output ${JSON.stringify(outputShape)} is not [batch, features] → [batch, classes].`);
    }
    // One prediction now so the first request does not pay for the backend's kernel setup.
    tf.tidy(() => (net.predict(tf.zeros([1, features])) as tf.Tensor).dataSync());
    model = { state: 'AVAILABLE', model: net, features, classes };
    metrics.modelLoaded((performance.now() - started) / 1000);
    process.stdout.write(
      `model ${env.MODEL_NAME} AVAILABLE (${features} features → ${classes} classes, backend ${tf.getBackend()}) in ${((performance.now() - started) / 1000).toFixed(2)} s\n`,
    );
  } catch (err) {
    model = { state: 'FAILED', error: (err as Error).message };
    process.stderr.write(`serve: could not load the model from ${env.MODEL_URI}: ${(err as Error).message}\n`);
    server.close();
    adminServer?.close();
    process.exit(1);
  }
}

/** The token file, or exit 2 (an invalid environment) naming why it cannot be used. */
function readTokenFile(path: string | undefined): TokenFile | undefined {
  if (path === undefined) return undefined;
  try {
    return new TokenFile(path);
  } catch (err) {
    process.stderr.write(`serve: Invalid environment:\n  AUTH_TOKEN_FILE: ${(err as Error).message}\n`);
    process.exit(2);
  }
}

function listen(server: Server, port: number, host: string): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      const address = server.address();
      resolve(typeof address === 'object' && address ? address.port : port);
    });
  });
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    let chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        // Keep reading and discarding (the client gets the 413 instead of a reset connection).
        chunks = [];
        reject(new HttpError(413, `Request body is larger than ${MAX_BODY_BYTES} bytes; send at most ${MAX_INSTANCES} instances.`));
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function sendJson(res: ServerResponse, status: number, body: unknown): number {
  if (res.headersSent) return status;
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
  return status;
}

function methodNotAllowed(res: ServerResponse, allow: string): number {
  res.setHeader('allow', allow);
  return sendJson(res, 405, { error: `Method not allowed; use ${allow}.` });
}

/** Index of the highest value (the predicted class); the first on a tie. */
function argmax(values: readonly number[]): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i]! > values[best]!) best = i;
  return best;
}

if (require.main === module) {
  main().catch((err: unknown) => {
    process.stderr.write(`serve: failed: ${(err as Error).message}\n`);
    process.exit(1);
  });
}
