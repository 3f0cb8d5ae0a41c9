/**
 * The one transient-error classifier (functions/shared/errors.ts isTransient) over the error shapes the
 * pipeline really meets: client-node's ApiException and our KubeHttpError (HTTP codes), fetch/undici and
 * Node socket failures (codes, also as a fetch `cause`), and AWS SDK errors as the SDK builds them from
 * the wire ($metadata.httpStatusCode, name, $retryable), got from a loopback server, not hand-made.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ApiException } from '@kubernetes/client-node';
import { SFNClient, StartExecutionCommand, ExecutionAlreadyExists } from '@aws-sdk/client-sfn';
import { S3Client, GetObjectCommand } from '@aws-sdk/client-s3';
import { errors as undiciErrors } from 'undici';
import { isTransient, KubernetesRequestError, KubernetesUnavailableError, S3UnavailableError } from '../../functions/shared/errors';
import { KubeHttpError } from '../../functions/shared/kube/transport';
import { toKubeError } from '../../functions/shared/kube';

/** A loopback AWS endpoint that answers every request with `status`, `headers` and `body`. */
async function awsAnswer(status: number, headers: Record<string, string>, body: string): Promise<{ url: string; close(): Promise<void> }> {
  const server: Server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      res.writeHead(status, headers);
      res.end(body);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, close: () => new Promise((r) => server.close(() => r())) };
}

const credentials = { accessKeyId: 'AKIDTEST', secretAccessKey: 'secret' };

async function sfnError(status: number, type: string): Promise<unknown> {
  const server = await awsAnswer(status, { 'content-type': 'application/x-amz-json-1.0', 'x-amzn-errortype': type }, JSON.stringify({ __type: type, message: `${type} (test)` }));
  try {
    const sfn = new SFNClient({ endpoint: server.url, region: 'us-east-1', credentials, maxAttempts: 1 });
    return await sfn.send(new StartExecutionCommand({ stateMachineArn: 'arn:aws:states:us-east-1:123456789012:stateMachine:x', name: 'n' })).catch((e: unknown) => e);
  } finally {
    await server.close();
  }
}

async function s3Error(status: number, code: string): Promise<unknown> {
  const server = await awsAnswer(status, { 'content-type': 'application/xml' }, `<?xml version="1.0"?><Error><Code>${code}</Code><Message>${code} (test)</Message></Error>`);
  try {
    const s3 = new S3Client({ endpoint: server.url, region: 'us-east-1', credentials, forcePathStyle: true, maxAttempts: 1 });
    return await s3.send(new GetObjectCommand({ Bucket: 'b', Key: 'k' })).catch((e: unknown) => e);
  } finally {
    await server.close();
  }
}

/** A real fetch failure: a loopback port that was just closed refuses the connection. */
async function fetchRefused(): Promise<unknown> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  await new Promise((r) => server.close(r));
  const err = (await fetch(`http://127.0.0.1:${port}/`).catch((e: unknown) => e)) as { cause?: { code?: string } };
  expect(err.cause?.code).toBe('ECONNREFUSED');
  return err;
}

describe('isTransient', () => {
  it.each<[string, () => unknown | Promise<unknown>, boolean]>([
    ['client-node ApiException 503', () => new ApiException(503, 'Service Unavailable', '{}', {}), true],
    ['client-node ApiException 429', () => new ApiException(429, 'Too Many Requests', '{}', {}), true],
    ['client-node ApiException 504 (list at a future resourceVersion)', () => new ApiException(504, 'Timeout', '{}', {}), true],
    ['client-node ApiException 403', () => new ApiException(403, 'Forbidden', '{}', {}), false],
    ['client-node ApiException 422', () => new ApiException(422, 'Invalid', '{}', {}), false],
    ['KubeHttpError 500', () => new KubeHttpError(500, '{"kind":"Status","code":500}'), true],
    ['KubeHttpError 409', () => new KubeHttpError(409, '{"kind":"Status","code":409,"reason":"Conflict"}'), false],
    ['fetch: connection refused (TypeError with cause.code ECONNREFUSED)', fetchRefused, true],
    ['undici SocketError (UND_ERR_SOCKET)', () => new undiciErrors.SocketError('other side closed'), true],
    ['undici HeadersTimeoutError', () => new undiciErrors.HeadersTimeoutError(), true],
    ['undici RequestAbortedError (we aborted)', () => new undiciErrors.RequestAbortedError(), false],
    ['node socket: ECONNRESET', () => Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }), true],
    ['node dns: EAI_AGAIN', () => Object.assign(new Error('getaddrinfo EAI_AGAIN'), { code: 'EAI_AGAIN' }), true],
    ['TLS: self-signed certificate', () => Object.assign(new Error('self-signed certificate'), { code: 'DEPTH_ZERO_SELF_SIGNED_CERT' }), false],
    ['AWS SFN ThrottlingException (HTTP 400)', () => sfnError(400, 'ThrottlingException'), true],
    ['AWS SFN ServiceUnavailable (HTTP 503)', () => sfnError(503, 'ServiceUnavailable'), true],
    ['AWS SFN ExecutionAlreadyExists (HTTP 400)', () => sfnError(400, 'ExecutionAlreadyExists'), false],
    ['AWS S3 SlowDown (HTTP 503)', () => s3Error(503, 'SlowDown'), true],
    ['AWS S3 AccessDenied (HTTP 403)', () => s3Error(403, 'AccessDenied'), false],
    ['KubernetesUnavailableError', () => new KubernetesUnavailableError('x'), true],
    ['S3UnavailableError', () => new S3UnavailableError('x'), true],
    ['KubernetesRequestError', () => new KubernetesRequestError('x'), false],
    ['a programming error', () => new TypeError("Cannot read properties of undefined (reading 'x')"), false],
    ['not an error', () => 'ECONNRESET', false],
  ])('%s', async (_what, make, expected) => {
    const err = await make();
    expect(err).toBeDefined();
    expect(isTransient(err)).toBe(expected);
  });

  it('the SDK really built the errors above from the wire (name and status)', async () => {
    const err = (await sfnError(400, 'ExecutionAlreadyExists')) as { name: string; $metadata: { httpStatusCode: number } };
    expect(err).toBeInstanceOf(ExecutionAlreadyExists);
    expect(err.$metadata.httpStatusCode).toBe(400);
  });
});

describe('toKubeError uses the same rule', () => {
  it.each<[string, () => unknown | Promise<unknown>, string]>([
    ['HTTP 503', () => new KubeHttpError(503, '{"kind":"Status","code":503,"reason":"ServiceUnavailable","message":"etcd leader changed"}'), 'KubernetesUnavailableError'],
    ['HTTP 403', () => new KubeHttpError(403, '{"kind":"Status","code":403,"reason":"Forbidden","message":"no"}'), 'KubernetesRequestError'],
    ['connection refused', fetchRefused, 'KubernetesUnavailableError'],
    ['a rejected certificate', () => Object.assign(new Error('self-signed certificate'), { code: 'DEPTH_ZERO_SELF_SIGNED_CERT' }), 'KubernetesRequestError'],
  ])('%s', async (_what, make, name) => {
    expect(toKubeError(await make(), 'GET /x').name).toBe(name);
  });
});
