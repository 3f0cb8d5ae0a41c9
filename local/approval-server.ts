/**
 * Serves the approval links (and the failure email's retry links) on 127.0.0.1 through the very handler API Gateway calls in AWS
 * (functions/approval-api.ts): each HTTP request becomes an HTTP API payload v2 event. The path is passed
 * on raw, as API Gateway's rawPath is: a link mangled in transit (a broken `%`-escape, a cut UTF-8
 * sequence) is the handler's to refuse with a 400 page, never an error of this adapter.
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

/** `id` decoded, or undefined when it is not valid percent-encoded UTF-8 (the handler then answers 400). */
function decodedOrUndefined(id: string): string | undefined {
  try {
    return decodeURIComponent(id);
  } catch {
    return undefined;
  }
}

/** The request target in origin form (`/path?query`), split as API Gateway splits it; undefined for any other form. */
function splitTarget(target: string): { path: string; query: string } | undefined {
  if (!target.startsWith('/')) return undefined;
  const q = target.indexOf('?');
  return q < 0 ? { path: target, query: '' } : { path: target.slice(0, q), query: target.slice(q + 1) };
}

export function toHttpApiEvent(req: IncomingMessage, body: Buffer): APIGatewayProxyEventV2 {
  const { path, query: rawQuery } = splitTarget(req.url ?? '/') ?? { path: '/', query: '' };
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(req.headers)) {
    if (value !== undefined) headers[name] = Array.isArray(value) ? value.join(',') : value;
  }
  const query: Record<string, string> = {};
  for (const [k, v] of new URLSearchParams(rawQuery)) query[k] = query[k] === undefined ? v : `${query[k]},${v}`;
  const method = req.method ?? 'GET';
  // The approval links' route, and the failure email's retry links' (as the HTTP API's routes name them).
  const match = /^\/(approvals|retries)\/([^/]+)$/.exec(path);
  const param = match?.[1] === 'retries' ? 'run' : 'id';
  const id = match ? decodedOrUndefined(match[2]!) : undefined;
  const routeKey = match ? `${method} /${match[1]}/{${param}}` : '$default';
  const now = new Date();
  return {
    version: '2.0',
    routeKey,
    rawPath: path,
    rawQueryString: rawQuery,
    headers,
    queryStringParameters: Object.keys(query).length ? query : undefined,
    pathParameters: id !== undefined ? { [param]: id } : undefined,
    requestContext: {
      accountId: '000000000000',
      apiId: 'local',
      domainName: headers.host ?? '127.0.0.1',
      domainPrefix: 'local',
      http: {
        method,
        path,
        protocol: `HTTP/${req.httpVersion}`,
        sourceIp: req.socket.remoteAddress ?? '127.0.0.1',
        userAgent: headers['user-agent'] ?? '',
      },
      requestId: `local-${now.getTime()}`,
      routeKey,
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
        // Only origin-form targets (`/approvals/...`): an absolute URL or `*` is no approval link.
        if (!splitTarget(req.url ?? '')) {
          res.writeHead(400, { 'content-type': 'text/plain; charset=utf-8' });
          res.end('Bad request: the request target must be a path.\n');
          return;
        }
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
      } catch {
        // The handler answers every refusal itself; this is a bug, and its message may quote the request.
        if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' });
        res.end('Internal error.\n');
      }
    })();
  });
  const { endpoint, stop } = await listenOnLoopback(server, opts.port);
  return { url: endpoint, stop };
}
