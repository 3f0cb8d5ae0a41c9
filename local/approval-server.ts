/**
 * Serves the approval links on 127.0.0.1 through the very handler API Gateway calls in AWS
 * (functions/approval-api.ts): each HTTP request becomes an HTTP API payload v2 event.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { listenOnLoopback, readBody } from './http';
import type { APIGatewayProxyEventV2, APIGatewayProxyResultV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';

export type HttpApiHandler = (event: APIGatewayProxyEventV2) => Promise<APIGatewayProxyResultV2>;

export interface ApprovalServer {
  /** e.g. http://127.0.0.1:8787 — the APPROVAL_BASE_URL of the local run. */
  url: string;
  stop(): Promise<void>;
}

const MAX_BODY_BYTES = 64 * 1024;

export function toHttpApiEvent(req: IncomingMessage, body: Buffer): APIGatewayProxyEventV2 {
  const url = new URL(req.url ?? '/', 'http://127.0.0.1');
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(req.headers)) {
    if (value !== undefined) headers[name] = Array.isArray(value) ? value.join(',') : value;
  }
  const query: Record<string, string> = {};
  for (const [k, v] of url.searchParams) query[k] = query[k] === undefined ? v : `${query[k]},${v}`;
  const method = req.method ?? 'GET';
  const match = /^\/approvals\/([^/]+)$/.exec(url.pathname);
  const now = new Date();
  return {
    version: '2.0',
    routeKey: match ? `${method} /approvals/{id}` : '$default',
    rawPath: url.pathname,
    rawQueryString: url.search.replace(/^\?/, ''),
    headers,
    queryStringParameters: Object.keys(query).length ? query : undefined,
    pathParameters: match ? { id: decodeURIComponent(match[1]!) } : undefined,
    requestContext: {
      accountId: '000000000000',
      apiId: 'local',
      domainName: headers.host ?? '127.0.0.1',
      domainPrefix: 'local',
      http: {
        method,
        path: url.pathname,
        protocol: `HTTP/${req.httpVersion}`,
        sourceIp: req.socket.remoteAddress ?? '127.0.0.1',
        userAgent: headers['user-agent'] ?? '',
      },
      requestId: `local-${now.getTime()}`,
      routeKey: match ? `${method} /approvals/{id}` : '$default',
      stage: '$default',
      time: now.toISOString(),
      timeEpoch: now.getTime(),
    },
    body: body.length ? body.toString('base64') : undefined,
    isBase64Encoded: body.length > 0,
  };
}

export async function startApprovalServer(handler: HttpApiHandler, opts: { port?: number } = {}): Promise<ApprovalServer> {
  const server: Server = createServer((req, res) => {
    void (async () => {
      try {
        const body = await readBody(req, MAX_BODY_BYTES);
        if (body === undefined) {
          res.writeHead(413, { 'content-type': 'text/plain; charset=utf-8' });
          res.end('Request body too large.\n');
          return;
        }
        const raw = await handler(toHttpApiEvent(req, body));
        const result: APIGatewayProxyStructuredResultV2 =
          typeof raw === 'string' ? { statusCode: 200, body: raw } : (raw as APIGatewayProxyStructuredResultV2);
        const headers: Record<string, string> = {};
        for (const [k, v] of Object.entries(result.headers ?? {})) headers[k] = String(v);
        res.writeHead(result.statusCode ?? 200, headers);
        res.end(result.body === undefined ? '' : Buffer.from(result.body, result.isBase64Encoded ? 'base64' : 'utf8'));
      } catch (err) {
        res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' });
        res.end(`Internal error: ${(err as Error).message}\n`);
      }
    })();
  });
  const { endpoint, stop } = await listenOnLoopback(server, opts.port);
  return { url: endpoint, stop };
}
