/**
 * No secret reaches a log line, however verbose the logger is set: RequestApproval and the approval page
 * loaded at DEBUG with POWERTOOLS_LOGGER_LOG_EVENT=true, over local S3 and SNS and a loopback Step
 * Functions endpoint, through a decision, invalid input (zod) and Step Functions errors that quote the task
 * token. Searched: everything the handlers write to stdout, stderr and the console. Endpoint tokens: read
 * from a local Secrets Manager and presented to a server that echoes them in an error, which is quoted
 * redacted; `mlpipe endpoint` shows a placeholder.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import type { APIGatewayProxyEventV2, APIGatewayProxyResultV2 } from 'aws-lambda';
import { redact } from '../../functions/shared/logger';
import { startApprovalServer, type ApprovalServer } from '../../local/approval-server';
import { passedEvaluation, runContext, startLocalAws, type LocalAws } from '../functions-s3/fixtures';
import { captureLogs, type CapturedLogs } from './capture';
import { endpointLines } from '../../cli/commands/endpoint';
import { presentedToken, resetEndpointAuth } from '../../functions/shared/endpoint-auth';
import { ENDPOINT_TOKENS } from '../../functions/shared/function-settings';
import { defineSettings, loadSettings, reloadSettings } from '../../functions/shared/settings';
import { probeModel } from '../../functions/shared/workloads';
import { LOCAL_AWS_ENV } from '../../local/s3';
import { startLocalSecretsManager, type LocalSecretsManager } from '../../local/secrets';

const SECRET = 'no-secrets-approval-hmac-0123456789';
/** What a Step Functions task token looks like: ~1 KB of base64. */
const LONG_TOKEN = randomBytes(700).toString('base64');
/** A short one: only never logging it keeps it out (no redaction pattern can know it). */
const SHORT_TOKEN = `short-task-token-${'q'.repeat(24)}`;

/** A loopback Step Functions endpoint whose answers quote the token, as AWS validation errors do. */
async function startQuotingSfn(): Promise<{ endpoint: string; quote: Set<string>; stop(): Promise<void> }> {
  const quote = new Set<string>();
  const read = async (req: IncomingMessage) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    return JSON.parse(Buffer.concat(chunks).toString('utf8')) as { taskToken: string };
  };
  const server = createServer((req, res) => {
    void read(req).then(({ taskToken }) => {
      if (!quote.has(taskToken)) {
        res.writeHead(200, { 'content-type': 'application/x-amz-json-1.0' });
        return res.end('{}');
      }
      const message =
        taskToken.length < 400
          ? `1 validation error detected: Value '${taskToken}' at 'taskToken' failed to satisfy constraint: Member must satisfy regular expression pattern`
          : `Cannot process task ${taskToken} right now`;
      res.writeHead(400, { 'content-type': 'application/x-amz-json-1.0', 'x-amzn-errortype': 'ValidationException' });
      res.end(JSON.stringify({ __type: 'com.amazon.coral.validate#ValidationException', message }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return {
    endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    quote,
    stop: () => new Promise<void>((resolve) => (server.closeAllConnections(), server.close(() => resolve()))),
  };
}

/** A fresh container's module, loaded at the most verbose settings. */
function load<T>(path: string): T {
  const saved = { level: process.env.POWERTOOLS_LOG_LEVEL, event: process.env.POWERTOOLS_LOGGER_LOG_EVENT };
  Object.assign(process.env, { POWERTOOLS_LOG_LEVEL: 'DEBUG', POWERTOOLS_LOGGER_LOG_EVENT: 'true' });
  let mod: T | undefined;
  jest.isolateModules(() => {
    mod = require(path) as T;
  });
  for (const [name, value] of [['POWERTOOLS_LOG_LEVEL', saved.level], ['POWERTOOLS_LOGGER_LOG_EVENT', saved.event]] as const) {
    if (value === undefined) delete process.env[name];
    else process.env[name] = value;
  }
  return mod!;
}

type RequestApproval = (event: unknown) => Promise<void>;

describe('no token, secret or signature in any log line', () => {
  let aws: LocalAws;
  let sfn: Awaited<ReturnType<typeof startQuotingSfn>>;
  let server: ApprovalServer;
  let requestApproval: RequestApproval;
  let logs: CapturedLogs;
  const consoleOutput: string[] = [];
  /** Every link signature the emails carried: each lets its holder decide. */
  const signatures: string[] = [];
  const tokens = [LONG_TOKEN, SHORT_TOKEN];

  beforeAll(async () => {
    sfn = await startQuotingSfn();
    aws = await startLocalAws({ AWS_ENDPOINT_URL_SFN: sfn.endpoint, APPROVAL_SECRET: SECRET });
    const api = load<{ handler: (e: APIGatewayProxyEventV2) => Promise<APIGatewayProxyResultV2> }>('../../functions/approval-api').handler;
    server = await startApprovalServer(api);
    process.env.APPROVAL_BASE_URL = server.url;
    requestApproval = load<{ handler: RequestApproval }>('../../functions/request-approval').handler;
    logs = captureLogs();
    for (const level of ['log', 'info', 'warn', 'error', 'debug'] as const) {
      jest.spyOn(console, level).mockImplementation((...args: unknown[]) => void consoleOutput.push(args.map(String).join(' ')));
    }
  });
  afterAll(async () => {
    jest.restoreAllMocks();
    logs?.restore();
    await server?.stop();
    await aws?.stop();
    await sfn?.stop();
  });

  /** RequestApproval for a fresh version; returns the approve link from the email. */
  async function request(version: string, taskToken: string): Promise<string> {
    const before = aws.messages().length;
    await requestApproval({ taskToken, state: { run: runContext({ version }), evaluation: passedEvaluation() } });
    const approve = /(http:\/\/127\.0\.0\.1:\d+\/approvals\/\S+action=approve\S+)/.exec(aws.messages()[before]!.message)![1]!;
    signatures.push(new URL(approve).searchParams.get('sig')!);
    return approve;
  }

  const post = (url: string) => fetch(url, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'approver=Ada' });

  it('request, page and decision are logged with their run, without the token', async () => {
    const since = logs.lines.length;
    const approve = await request('v-decided', LONG_TOKEN);
    expect((await fetch(approve)).status).toBe(200);
    expect((await post(approve)).status).toBe(200);
    const run = { executionName: 'v-decided', model: 'fashion', version: 'v-decided', state: 'RequestApproval' };
    const lines = logs.lines.slice(since);
    expect(lines.map((l) => l.message)).toEqual(['approval requested', 'approval page shown', 'approval decided']);
    lines.forEach((line) => expect(line).toMatchObject(run));
  });

  it.each([
    ['short, quoted in an AWS validation message', 'short', 'v-quoted-short'],
    ['of realistic length, quoted anywhere', 'long', 'v-quoted-long'],
  ] as const)('a Step Functions error quoting the token (%s) is logged redacted', async (_what, kind, version) => {
    // A token per execution: the approval record keeps the first one it was given.
    const token = kind === 'short' ? `${SHORT_TOKEN}-${version}` : randomBytes(700).toString('base64');
    tokens.push(token);
    const approve = await request(version, token);
    sfn.quote.add(token);
    const since = logs.lines.length;
    expect((await post(approve)).status).toBe(502);
    expect(logs.lines.slice(since)).toEqual([
      expect.objectContaining({
        level: 'ERROR',
        message: 'approval failed',
        version,
        state: 'RequestApproval',
        error: { name: 'ValidationException', message: expect.stringContaining('[redacted]') },
      }),
    ]);
  });

  it('invalid input: the logged failure names the field, not the value', async () => {
    const since = logs.lines.length;
    const tooLong = `too-long-token-${'z'.repeat(9000)}`;
    await expect(requestApproval({ taskToken: tooLong, state: { run: runContext({ version: 'v-too-long' }), evaluation: passedEvaluation() } })).rejects.toThrow(
      'taskToken: is too long',
    );
    const notPassed = { ...passedEvaluation(), passed: false };
    await expect(requestApproval({ taskToken: SHORT_TOKEN, state: { run: runContext({ version: 'v-not-passed' }), evaluation: notPassed } })).rejects.toThrow(
      'state.evaluation.passed: must be true',
    );
    const failures = logs.lines.slice(since).filter((l) => l.message === 'invocation failed');
    expect(failures.map((l) => [l.version, (l.error as { name: string }).name])).toEqual([
      ['v-too-long', 'InvalidInputError'],
      ['v-not-passed', 'InvalidInputError'],
    ]);
    expect(logs.text()).not.toContain('too-long-token');
  });

  it('nothing written anywhere holds a token, the HMAC secret or a link signature', async () => {
    // A decision and a refused one of its own (the other tests' lines, if they ran first, are checked too).
    const since = logs.lines.length;
    const decided = `${SHORT_TOKEN}-v-everywhere`;
    const quoted = randomBytes(700).toString('base64');
    tokens.push(decided, quoted);
    const approve = await request('v-everywhere', decided);
    expect((await fetch(approve)).status).toBe(200);
    expect((await post(approve)).status).toBe(200);
    const refused = await request('v-everywhere-quoted', quoted);
    sfn.quote.add(quoted);
    expect((await post(refused)).status).toBe(502);
    // request, page, decision; request, failed decision
    expect(logs.lines.length - since).toBeGreaterThanOrEqual(5);
    const written = `${logs.text()}\n${consoleOutput.join('\n')}`;
    for (const secret of [...tokens, SECRET, ...signatures]) expect(written).not.toContain(secret);
  });
});

describe('endpoint tokens stay out of logs, messages and the CLI', () => {
  const TOKEN = 'endpoint-token-no-secrets-0123456789abcdef';
  const ARN = 'arn:aws:secretsmanager:us-east-1:000000000000:secret:EndpointToken-local';
  let dir: string;
  let secrets: LocalSecretsManager;
  let echo: Server;
  let endpoint: string;
  const saved = { ...process.env };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'mlpipe-token-'));
    writeFileSync(join(dir, 'secrets.json'), JSON.stringify({ [ARN]: TOKEN }));
    secrets = await startLocalSecretsManager({ secrets: [{ arn: ARN, name: 'EndpointToken' }], file: join(dir, 'secrets.json') });
    Object.assign(process.env, { ...LOCAL_AWS_ENV, AWS_ENDPOINT_URL_SECRETS_MANAGER: secrets.endpoint, ENDPOINT_AUTH: 'true', ENDPOINT_TOKEN_SECRETS: JSON.stringify({ fashion: ARN }) });
    // A careless server: its errors echo the request, Authorization header included.
    echo = createServer((req, res) => {
      res.writeHead(503, { 'content-type': 'text/plain' });
      res.end(`upstream down; you sent ${JSON.stringify(req.headers)}`);
    });
    await new Promise<void>((resolve) => echo.listen(0, '127.0.0.1', () => resolve()));
    endpoint = `http://127.0.0.1:${(echo.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    process.env = saved;
    reloadSettings();
    resetEndpointAuth();
    await secrets?.stop();
    await new Promise<void>((resolve) => (echo ? (echo.closeAllConnections(), echo.close(() => resolve())) : resolve()));
    rmSync(dir, { recursive: true, force: true });
  });

  it('an endpoint probe presents the token from Secrets Manager and never quotes it back, even from an echoing server', async () => {
    loadSettings(defineSettings(ENDPOINT_TOKENS));
    resetEndpointAuth();
    const logs = captureLogs();
    try {
      const token = await presentedToken('fashion');
      expect(token).toBe(TOKEN);
      const problem = await probeModel(endpoint, 'fashion', 2000, token);
      // The server did get it (it echoed it), and the message says so without it.
      expect(problem).toMatch(/HTTP 503 upstream down; you sent .*"authorization":"Bearer \[redacted\]"/);
      expect(problem).not.toContain(TOKEN);
      expect(logs.text()).not.toContain(TOKEN);
    } finally {
      logs.restore();
    }
  });

  it('`mlpipe endpoint` prints how to call, with a placeholder, never the token', () => {
    const lines = endpointLines('fashion', 'http://lb.example:80', ARN).join('\n');
    expect(lines).toContain('-H "Authorization: Bearer $TOKEN"');
    expect(lines).toContain('http://lb.example:80/v1/models/fashion:predict');
    expect(lines).not.toContain(TOKEN);
  });
});

describe('redact (the last line of defence)', () => {
  it.each([
    ['taskToken', 'anything at all', '[redacted]'],
    ['APPROVAL_SECRET', 'hmac-key', '[redacted]'],
    ['sessionToken', 'IQoJb3JpZ2luX2VjE', '[redacted]'],
    ['authorization', 'Bearer abc', '[redacted]'],
    ['message', 'GET /api with Authorization: Bearer eyJhbGciOi.x.y failed', 'GET /api with Authorization: Bearer [redacted] failed'],
    ['message', 'token k8s-aws-v1.aHR0cHM6Ly9zdHMuYW1hem9uYXdzLmNvbS8_QWN0aW9u refused', 'token k8s-aws-v1.[redacted] refused'],
    ['url', 'https://sts.amazonaws.com/?X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F2026&X-Amz-Signature=abc123', 'https://sts.amazonaws.com/?X-Amz-Credential=[redacted]&X-Amz-Signature=[redacted]'],
    ['message', 'key AKIAIOSFODNN7EXAMPLE leaked', 'key [redacted] leaked'],
    ['message', 'see http://h/approvals/abc?action=approve&exp=1&sig=0123abcd', 'see http://h/approvals/abc?action=approve&exp=1&sig=[redacted]'],
    ['model', 'fashion', 'fashion'],
    ['modelUri', `s3://${'b'.repeat(63)}/models/${'m'.repeat(63)}/20260101-120000-abc1234/`, `s3://${'b'.repeat(63)}/models/${'m'.repeat(63)}/20260101-120000-abc1234/`],
  ])('%s: %s', (key, value, expected) => {
    expect(redact(key, value)).toBe(expected);
  });
});
