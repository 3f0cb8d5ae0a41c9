/**
 * Loopback fixtures for the functions-s3 suites: local S3 and local SNS (the real local-mode servers), a
 * model server that answers TF Serving predict requests with controlled correctness, and transport-level
 * fakes of Step Functions and Secrets Manager (their JSON protocols, recording calls). Everything listens
 * on 127.0.0.1:0 and stops in afterAll.
 */
import { mkdtempSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { startLocalS3, LOCAL_AWS_ENV, type LocalS3 } from '../../local/s3';
import { startLocalSns, parseSnsLog, type LocalSns, type LocalSnsMessage } from '../../local/sns';
import { resetClients, s3Client } from '../../functions/shared/clients';
import { encodeIdx } from '../../functions/shared/idx';
import type { EvaluationResult, PipelineState, RunContext } from '../../functions/shared/types';
import { reloadSettings } from '../../functions/shared/settings';

export const BUCKET = 'artifacts';
export const TOPIC = 'arn:aws:sns:us-east-1:000000000000:mlpipe-notifications';

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

async function listen(server: Server): Promise<{ endpoint: string; stop(): Promise<void> }> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

// ---------------------------------------------------------------------------------------------------
// Local AWS: S3 + SNS, with the environment the handlers read.

export interface LocalAws {
  dir: string;
  s3: LocalS3;
  sns: LocalSns;
  snsFile: string;
  messages(): LocalSnsMessage[];
  stop(): Promise<void>;
}

export async function startLocalAws(extraEnv: Record<string, string> = {}): Promise<LocalAws> {
  const saved = { ...process.env };
  const dir = mkdtempSync(join(tmpdir(), 'mlpipe-fs3-'));
  const s3 = await startLocalS3({ dir: join(dir, 's3'), buckets: [BUCKET] });
  const snsFile = join(dir, 'sns.jsonl');
  const sns = await startLocalSns({ file: snsFile });
  Object.assign(process.env, LOCAL_AWS_ENV, {
    AWS_ENDPOINT_URL_S3: s3.endpoint,
    AWS_ENDPOINT_URL_SNS: sns.endpoint,
    ARTIFACT_BUCKET: BUCKET,
    NOTIFICATION_TOPIC_ARN: TOPIC,
    ...extraEnv,
  });
  reloadSettings(); // the shared modules read the loaded settings
  resetClients();
  return {
    dir,
    s3,
    sns,
    snsFile,
    messages: () => (existsSync(snsFile) ? parseSnsLog(readFileSync(snsFile, 'utf8')) : []),
    async stop() {
      await sns.stop();
      await s3.stop();
      rmSync(dir, { recursive: true, force: true });
      process.env = saved;
      reloadSettings();
      resetClients();
    },
  };
}

export async function putObject(key: string, body: Uint8Array | string): Promise<void> {
  await s3Client().send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: body }));
}

// ---------------------------------------------------------------------------------------------------
// Held-out data whose pixels encode the image index, so the model server knows which image it sees.

export const FEATURES = 28 * 28;

/** Label of image i: i % 10. Pixels 0-1 hold the index (big-endian), the rest a pattern. */
export function labelOf(index: number): number {
  return index % 10;
}

export async function putHeldOutSet(prefix: string, count: number): Promise<void> {
  const images = new Uint8Array(count * FEATURES);
  const labels = new Uint8Array(count);
  for (let i = 0; i < count; i++) {
    images[i * FEATURES] = i >> 8;
    images[i * FEATURES + 1] = i & 0xff;
    for (let p = 2; p < FEATURES; p++) images[i * FEATURES + p] = (i + p) % 256;
    labels[i] = labelOf(i);
  }
  await putObject(`${prefix}t10k-images-idx3-ubyte`, encodeIdx([count, 28, 28], images));
  await putObject(`${prefix}t10k-labels-idx1-ubyte`, encodeIdx([count], labels));
}

export interface PredictRequestSeen {
  instances: number;
  width: number;
  inRange: boolean;
  indices: number[];
}

export interface ModelServer {
  endpoint: string;
  requests: PredictRequestSeen[];
  paths: string[];
  stop(): Promise<void>;
}

/**
 * A TF Serving stand-in. `correct(index)` decides whether the answer for image `index` is right; `mode`
 * breaks the protocol in the ways a broken server does.
 */
export async function startModelServer(opts: {
  modelName: string;
  correct?: (index: number) => boolean;
  /** The class a wrong answer names (default: the next class). */
  wrongAs?: (index: number) => number | undefined;
  /** `drop-first` / `drop-all`: the connection closes after the request is read, with no answer (the first one only / every one). */
  mode?: 'ok' | 'not-found' | 'short' | 'not-json' | 'fail-first-batch' | 'drop-first' | 'drop-all';
  delayMs?: number;
  /** Shared between servers: `<name> <first index of the batch>` per predict request, in arrival order. */
  arrivals?: { name: string; log: string[] };
  /** Sent as `X-Model-Version` with every answer (the container contract's optional header). */
  version?: string;
}): Promise<ModelServer> {
  const requests: PredictRequestSeen[] = [];
  const paths: string[] = [];
  const correct = opts.correct ?? (() => true);
  let first = true;
  const server = createServer((req, res) => {
    void (async () => {
      const body = await readBody(req);
      paths.push(`${req.method} ${req.url}`);
      if (opts.delayMs) await new Promise((r) => setTimeout(r, opts.delayMs));
      if (opts.mode === 'not-found' || req.method !== 'POST' || req.url !== `/v1/models/${opts.modelName}:predict`) {
        res.writeHead(404, { 'content-type': 'text/plain' });
        return res.end('Not Found');
      }
      const { instances } = JSON.parse(body) as { instances: number[][] };
      const indices = instances.map((row) => Math.round(row[0]! * 255) * 256 + Math.round(row[1]! * 255));
      opts.arrivals?.log.push(`${opts.arrivals.name} ${indices[0]}`);
      requests.push({
        instances: instances.length,
        width: instances[0]?.length ?? 0,
        inRange: instances.every((r) => r.every((v) => v >= 0 && v <= 1)),
        indices,
      });
      if (opts.mode === 'drop-all' || (opts.mode === 'drop-first' && requests.length === 1)) {
        req.socket.destroy();
        return;
      }
      if (opts.mode === 'fail-first-batch' && indices.includes(0)) {
        res.writeHead(500, { 'content-type': 'application/json' });
        return res.end('{"error":"boom"}');
      }
      if (opts.mode === 'not-json') {
        res.writeHead(200, { 'content-type': 'application/json' });
        return res.end('<html>oops</html>');
      }
      const predictions = indices.map((i) => {
        const cls = correct(i) ? labelOf(i) : (opts.wrongAs?.(i) ?? (labelOf(i) + 1) % 10);
        return Array.from({ length: 10 }, (_, c) => (c === cls ? 0.91 : 0.01));
      });
      if (opts.mode === 'short') predictions.pop();
      res.writeHead(200, { 'content-type': 'application/json', ...(opts.version ? { 'x-model-version': opts.version } : {}) });
      res.end(JSON.stringify({ predictions }));
    })();
  });
  const { endpoint, stop } = await listen(server);
  return { endpoint, requests, paths, stop };
}

// ---------------------------------------------------------------------------------------------------
// Step Functions and Secrets Manager at the transport: the awsJson protocols @aws-sdk clients speak.

export interface SfnCall {
  target: string;
  body: { taskToken: string; output?: string; error?: string; cause?: string };
}

export interface FakeSfn {
  endpoint: string;
  calls: SfnCall[];
  /** Tokens Step Functions would still accept; each is consumed by its first use. */
  live: Set<string>;
  stop(): Promise<void>;
}

export async function startFakeSfn(): Promise<FakeSfn> {
  const calls: SfnCall[] = [];
  const live = new Set<string>();
  const server = createServer((req, res) => {
    void (async () => {
      const target = String(req.headers['x-amz-target'] ?? '');
      const body = JSON.parse(await readBody(req)) as SfnCall['body'];
      calls.push({ target, body });
      const op = target.replace(/^AWSStepFunctions\./, '');
      if (op !== 'SendTaskSuccess' && op !== 'SendTaskFailure') {
        res.writeHead(400, { 'content-type': 'application/x-amz-json-1.0', 'x-amzn-errortype': 'UnknownOperationException' });
        return res.end(JSON.stringify({ __type: 'UnknownOperationException', message: op }));
      }
      if (!live.delete(body.taskToken)) {
        res.writeHead(400, { 'content-type': 'application/x-amz-json-1.0', 'x-amzn-errortype': 'TaskTimedOut' });
        return res.end(JSON.stringify({ __type: 'com.amazonaws.swf.service.v2.model#TaskTimedOut', message: 'Task Timed Out' }));
      }
      res.writeHead(200, { 'content-type': 'application/x-amz-json-1.0' });
      res.end('{}');
    })();
  });
  const { endpoint, stop } = await listen(server);
  return { endpoint, calls, live, stop };
}

export async function startFakeSecretsManager(secrets: Record<string, string>): Promise<{ endpoint: string; calls: string[]; stop(): Promise<void> }> {
  const calls: string[] = [];
  const server = createServer((req, res) => {
    void (async () => {
      const body = JSON.parse(await readBody(req)) as { SecretId: string };
      calls.push(`${String(req.headers['x-amz-target'])} ${body.SecretId}`);
      const value = secrets[body.SecretId];
      if (value === undefined) {
        res.writeHead(400, { 'content-type': 'application/x-amz-json-1.1' });
        return res.end(JSON.stringify({ __type: 'ResourceNotFoundException', message: 'Secrets Manager can\'t find the specified secret.' }));
      }
      res.writeHead(200, { 'content-type': 'application/x-amz-json-1.1' });
      res.end(JSON.stringify({ ARN: body.SecretId, Name: 'approval', SecretString: value, VersionId: 'v1' }));
    })();
  });
  const { endpoint, stop } = await listen(server);
  return { endpoint, calls, stop };
}

// ---------------------------------------------------------------------------------------------------
// State builders

export function runContext(overrides: Partial<RunContext> = {}): RunContext {
  const modelName = overrides.modelName ?? 'fashion';
  const version = overrides.version ?? '20260101-120000-abc1234';
  return {
    modelName,
    version,
    image: '123456789012.dkr.ecr.us-east-1.amazonaws.com/fashion-trainer@sha256:' + 'a'.repeat(64),
    imageDigest: 'sha256:' + 'a'.repeat(64),
    servingImage: 'mlpipe/fashion-server:1',
    dataUri: `s3://${BUCKET}/datasets/fashion-mnist/v1/`,
    evalDataUri: `s3://${BUCKET}/datasets/fashion-mnist/v1/`,
    hyperparameters: { epochs: 2, learningRate: 0.001 },
    modelUri: `s3://${BUCKET}/models/${modelName}/${version}/`,
    executionArn: `arn:aws:states:us-east-1:000000000000:execution:mlpipe:${version}`,
    executionName: version,
    startedAt: '2026-01-01T12:00:00.000Z',
    approvalTimeoutSeconds: 3600,
    trigger: { source: 'cli' },
    namespaces: { staging: 'mlpipe-staging', production: 'mlpipe-production' },
    names: {
      trainingJob: `${modelName}-${version}-train`,
      stagingDeployment: `${modelName}-${version}-staging`,
      stagingService: `${modelName}-${version}-staging`,
      productionDeployment: `${modelName}-${version}`,
      productionService: modelName,
    },
    ...overrides,
  };
}

export function passedEvaluation(overrides: Partial<EvaluationResult> = {}): EvaluationResult {
  return {
    passed: true,
    summary: 'Passed on 1000 samples: accuracy 0.9000 >= 0.8500.',
    accuracy: 0.9,
    latencyMsP50: 4,
    latencyMsP95: 9.5,
    errorRate: 0,
    samples: 1000,
    thresholds: { minAccuracy: 0.85, maxP95LatencyMs: 250, maxErrorRate: 0.01, maxAccuracyDrop: 0.01 },
    production: null,
    evaluatedAt: '2026-01-01T12:30:00.000Z',
    reportUri: `s3://${BUCKET}/models/fashion/v/evaluation.json`,
    ...overrides,
  };
}

export function stateFor(run: RunContext, extra: Partial<PipelineState> = {}): PipelineState {
  return { run, ...extra };
}
