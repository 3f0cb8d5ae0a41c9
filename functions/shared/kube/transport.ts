/**
 * HTTP to the API server as client-node's KubeConfig says: its `applyToHTTPSOptions` supplies the bearer
 * token (or exec credential, client certificate), the CA and the agent (TLS, HTTP proxy), and the request
 * goes out through node:http(s). Why not client-node's typed *V1Api classes, ObjectSerializer or fetch:
 * they bring undici (~740 KB) and every generated model and API class (~1.2 MB) into each Lambda bundle
 * and add 100+ ms to a cold start (bench/bundles.ts), for requests whose answers we only read as JSON.
 * Nothing here logs headers: they carry the token.
 */
import { request as httpRequest, type IncomingHttpHeaders, type IncomingMessage } from 'node:http';
import { request as httpsRequest, type RequestOptions } from 'node:https';
import { ConfigurationError } from '../errors';
import { getKubeConfig } from './config';
import { parseStatus, type StatusBody } from './errors';

export interface KubeRequest {
  method: 'GET' | 'POST' | 'PATCH' | 'PUT' | 'DELETE';
  /** API path, e.g. `/apis/batch/v1/namespaces/ns/jobs/x`. */
  path: string;
  query?: Record<string, string | undefined>;
  /** Sent as JSON text (valid YAML too, so also for server-side apply). */
  body?: unknown;
  /** @default application/json when there is a body */
  contentType?: string;
  /** @default application/json */
  accept?: string;
}

export interface KubeResponse {
  status: number;
  headers: IncomingHttpHeaders;
  text: string;
}

/** The API server answered, but not with 2xx; `status` is the parsed Status body (when it sent one). */
export class KubeHttpError extends Error {
  override readonly name = 'KubeHttpError';
  readonly status: StatusBody;
  constructor(
    readonly code: number,
    readonly body: string,
    readonly headers: IncomingHttpHeaders = {},
  ) {
    const status = parseStatus(body);
    super(`HTTP ${code}${status.reason ? ` ${status.reason}` : ''}: ${status.message ?? ''}`.trimEnd());
    this.status = status;
  }
}

/** Sends a request and resolves with the response stream (any status); rejects only when there is none. */
export async function openRequest(req: KubeRequest, signal?: AbortSignal): Promise<IncomingMessage> {
  const kc = await getKubeConfig();
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new ConfigurationError('The kubeconfig has no current cluster.');
  const url = new URL(cluster.server.replace(/\/$/, '') + req.path);
  for (const [k, v] of Object.entries(req.query ?? {})) if (v !== undefined) url.searchParams.set(k, v);
  const options: RequestOptions = {};
  await kc.applyToHTTPSOptions(options);
  const body = req.body === undefined ? undefined : typeof req.body === 'string' ? req.body : JSON.stringify(req.body);
  const headers: Record<string, string | number> = {
    ...(options.headers as Record<string, string> | undefined),
    Accept: req.accept ?? 'application/json',
    'User-Agent': 'mlpipe',
  };
  if (body !== undefined) {
    headers['Content-Type'] = req.contentType ?? 'application/json';
    headers['Content-Length'] = Buffer.byteLength(body);
  }
  const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise<IncomingMessage>((resolve, reject) => {
    const request = send(url, { ...options, method: req.method, headers, signal }, (res) => {
      clearTimeout(timer);
      resolve(res);
    });
    // Node has no connect timeout: an API server that is cut off (packets dropped, not refused) would hold
    // the request for the kernel's ~2 minutes, longer than an Await invocation may wait.
    const timer = setTimeout(() => {
      request.destroy(Object.assign(new Error(`no answer from the API server within ${ANSWER_TIMEOUT_MS / 1000} s`), { code: 'ETIMEDOUT' }));
    }, ANSWER_TIMEOUT_MS);
    request.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    request.end(body);
  });
}

/**
 * How long a request may wait for the response to begin (a watch then streams for as long as it likes).
 * An Await invocation may start one just before its budget ends: budget (≤ 270 s) + this stays under the
 * Await functions' 300 s timeout.
 */
const ANSWER_TIMEOUT_MS = 20_000;

/** Sends a request and reads the whole answer; a non-2xx answer rejects with KubeHttpError. */
export async function sendRequest(req: KubeRequest, signal?: AbortSignal): Promise<KubeResponse> {
  const res = await openRequest(req, signal);
  const text = await readText(res);
  const status = res.statusCode ?? 0;
  if (status < 200 || status >= 300) throw new KubeHttpError(status, text, res.headers);
  return { status, headers: res.headers, text };
}

/** The whole body of a response as text. */
export function readText(res: IncomingMessage): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    const chunks: Buffer[] = [];
    res.on('data', (c: Buffer) => chunks.push(c));
    res.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    res.on('error', reject);
  });
}
