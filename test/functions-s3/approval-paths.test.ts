/**
 * Issue 8, item 8: malformed approval paths answer 400 with a page that says nothing was decided — never a
 * 500. Sent byte for byte over a raw HTTP request to local/approval-server.ts (fetch would normalise the
 * path), and as API Gateway events straight to functions/approval-api.ts. A genuine link still works after.
 */
import { request as httpRequest } from 'node:http';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { approvalId, signLink } from '../../functions/shared/approval-link';
import { getApproval } from '../../functions/shared/approvals';
import { startApprovalServer, toHttpApiEvent, type ApprovalServer } from '../../local/approval-server';
import { captureLogs } from '../logging/capture';
import { passedEvaluation, runContext, startFakeSfn, startLocalAws, type FakeSfn, type LocalAws } from './fixtures';

const SECRET = 'approval-paths-secret-0123456789';
type Api = (e: APIGatewayProxyEventV2) => Promise<APIGatewayProxyStructuredResultV2>;

/** One request with `path` sent exactly as given. */
function raw(base: string, method: string, path: string, body = ''): Promise<{ status: number; text: string }> {
  const { hostname, port } = new URL(base);
  return new Promise((resolve, reject) => {
    const req = httpRequest({ hostname, port, method, path, headers: { 'content-type': 'application/x-www-form-urlencoded', 'content-length': Buffer.byteLength(body) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

describe('approval links with malformed paths', () => {
  let aws: LocalAws;
  let sfn: FakeSfn;
  let server: ApprovalServer;
  let api: Api;
  let id: string;
  let query: string;
  let token: string;

  /** An approval request of its own (each test that decides one makes its own: tests run in any order). */
  async function newApproval(version: string): Promise<{ id: string; query: string; token: string }> {
    const requestApproval = (require('../../functions/request-approval') as { handler: (e: unknown) => Promise<void> }).handler;
    const run = runContext({ version });
    const taskToken = `token-${version}-${'p'.repeat(40)}`;
    sfn.live.add(taskToken);
    await requestApproval({ taskToken, state: { run, evaluation: passedEvaluation() } });
    const approval = approvalId(run.executionArn);
    const link = signLink({ baseUrl: '', id: approval, action: 'approve', expiresAt: Date.now() / 1000 + 3600, secret: SECRET });
    return { id: approval, query: link.slice(link.indexOf('?')), token: taskToken };
  }

  beforeAll(async () => {
    sfn = await startFakeSfn();
    aws = await startLocalAws({ AWS_ENDPOINT_URL_SFN: sfn.endpoint, APPROVAL_SECRET: SECRET });
    captureLogs();
    api = (require('../../functions/approval-api') as { handler: Api }).handler;
    server = await startApprovalServer(api as never);
    process.env.APPROVAL_BASE_URL = server.url;
    ({ id, query, token } = await newApproval('v-paths'));
  });
  afterAll(async () => {
    await server.stop();
    await sfn.stop();
    await aws.stop();
  });

  const malformed = (): [string, string][] => [
    ['a lone %', `/approvals/%${query}`],
    ['a %-escape that is no hex', `/approvals/%zz${query}`],
    ['a %-escape cut short at the end', `/approvals/${id}%${query}`],
    ['a UTF-8 sequence cut short', `/approvals/%E0%A4%A${query}`],
    ['an overlong UTF-8 encoding of "/"', `/approvals/%C0%AF${query}`],
    ['a lone surrogate', `/approvals/%ED%A0%80${query}`],
    ['an encoded NUL', `/approvals/${id}%00${query}`],
    ['an encoded path traversal', `/approvals/..%2F..%2Fetc%2Fpasswd${query}`],
    ['a broken escape in the query', `/approvals/${id}?action=approve&exp=%&sig=%zz`],
  ];

  it.each(['GET', 'POST'])('%s of every malformed path answers 400 saying nothing was decided', async (method) => {
    for (const [what, path] of malformed()) {
      const res = await raw(server.url, method, path, method === 'POST' ? 'approver=Mallory' : '');
      expect([what, res.status]).toEqual([what, 400]);
      expect([what, res.text]).toEqual([what, expect.stringContaining('Nothing was decided.')]);
    }
    expect(sfn.calls.filter((c) => c.body.taskToken === token)).toEqual([]);
    expect((await getApproval(id))!.status).toBe('pending');
  });

  it('a request target that is not a path answers 400', async () => {
    const res = await raw(server.url, 'GET', `http://127.0.0.1/approvals/${id}${query}`);
    expect(res.status).toBe(400);
  });

  it('the handler answers 400 to an API Gateway event whose path does not decode', async () => {
    for (const [what, path] of malformed()) {
      const [rawPath, rawQueryString = ''] = path.split('?');
      const res = await api({
        version: '2.0', routeKey: '$default', rawPath: rawPath!, rawQueryString, headers: {}, isBase64Encoded: false,
        requestContext: { http: { method: 'GET', path: rawPath!, protocol: 'HTTP/1.1', sourceIp: '203.0.113.9', userAgent: 'test' } },
      } as unknown as APIGatewayProxyEventV2);
      expect([what, res.statusCode]).toEqual([what, 400]);
    }
  });

  it('the adapter passes the path on raw, as API Gateway does, and decodes the id only when it can', () => {
    const event = (url: string) => toHttpApiEvent({ url, method: 'GET', headers: {}, httpVersion: '1.1', socket: { remoteAddress: '127.0.0.1' } } as never, Buffer.alloc(0));
    expect(event(`/approvals/%zz${query}`)).toMatchObject({ rawPath: '/approvals/%zz', rawQueryString: query.slice(1), pathParameters: undefined });
    expect(event(`/approvals/${id}${query}`)).toMatchObject({ rawPath: `/approvals/${id}`, pathParameters: { id } });
    // `//host/...` is a path here, not a URL naming another host.
    expect(event(`//evil.example/approvals/${id}`)).toMatchObject({ rawPath: `//evil.example/approvals/${id}` });
  });

  it('a genuine link still works after malformed ones', async () => {
    const genuine = await newApproval('v-paths-genuine');
    for (const [, path] of malformed()) await raw(server.url, 'POST', path.replace(id, genuine.id), 'approver=Mallory');
    const res = await raw(server.url, 'POST', `/approvals/${genuine.id}${genuine.query}`, 'approver=Alice');
    expect(res.status).toBe(200);
    expect(sfn.calls.map((c) => c.body.taskToken).filter((t) => t === genuine.token)).toEqual([genuine.token]);
    expect((await getApproval(genuine.id))!.status).toBe('approved');
  });
});
