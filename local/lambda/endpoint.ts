/**
 * The Lambda Invoke API on 127.0.0.1 for the local run (`POST /2015-03-31/functions/<name>/invocations`,
 * what @aws-sdk/client-lambda sends), so the `mlpipe` CLI invokes the rollback function of the local run
 * exactly as it invokes the deployed one (AWS_ENDPOINT_URL_LAMBDA). Function errors come back as on AWS:
 * 200 with `X-Amz-Function-Error: Unhandled` and the error payload.
 */
import { createServer } from 'node:http';
import { listenOnLoopback, readBody } from '../http';
import { FunctionNotFoundError, LambdaInvocationError, type LocalLambdaRuntime } from './runtime';

type Invoker = Pick<LocalLambdaRuntime, 'invokeRaw'>;

export interface LocalLambdaEndpoint {
  endpoint: string;
  stop(): Promise<void>;
}

const INVOKE_PATH = /^\/2015-03-31\/functions\/([^/]+)\/invocations$/;

export async function startLocalLambdaEndpoint(runtime: Invoker, opts: { port?: number } = {}): Promise<LocalLambdaEndpoint> {
  const server = createServer((req, res) => {
    void (async () => {
      const match = INVOKE_PATH.exec(new URL(req.url ?? '/', 'http://127.0.0.1').pathname);
      const json = (status: number, body: unknown, headers: Record<string, string> = {}) => {
        res.writeHead(status, { 'content-type': 'application/json', ...headers });
        res.end(JSON.stringify(body));
      };
      if (req.method !== 'POST' || !match) return json(404, { Type: 'User', message: 'Only Invoke (POST /2015-03-31/functions/<name>/invocations) is served locally.' }, { 'x-amzn-errortype': 'UnknownOperationException' });
      if (req.headers['x-amz-invocation-type'] && req.headers['x-amz-invocation-type'] !== 'RequestResponse') {
        return json(400, { Type: 'User', message: 'Only RequestResponse invocations are served locally.' }, { 'x-amzn-errortype': 'InvalidParameterValueException' });
      }
      const body = await readBody(req, 6 * 1024 * 1024);
      if (body === undefined) return json(413, { Type: 'User', message: 'Request must be smaller than 6291456 bytes for the InvokeFunction operation' }, { 'x-amzn-errortype': 'RequestTooLargeException' });
      try {
        const payload = await runtime.invokeRaw(decodeURIComponent(match[1]!), body.length ? body.toString('utf8') : '{}');
        res.writeHead(200, { 'content-type': 'application/json', 'x-amz-executed-version': '$LATEST' });
        res.end(payload);
      } catch (err) {
        if (err instanceof FunctionNotFoundError) return json(404, { Type: 'User', message: err.message }, { 'x-amzn-errortype': 'ResourceNotFoundException' });
        if (err instanceof LambdaInvocationError) return json(200, err.payload, { 'x-amz-function-error': 'Unhandled', 'x-amz-executed-version': '$LATEST' });
        throw err;
      }
    })().catch((err: unknown) => {
      if (!res.headersSent) {
        res.writeHead(500, { 'content-type': 'application/json', 'x-amzn-errortype': 'ServiceException' });
        res.end(JSON.stringify({ Type: 'Service', message: (err as Error).message }));
      }
    });
  });
  const { endpoint, stop } = await listenOnLoopback(server, opts.port);
  return { endpoint, stop };
}
