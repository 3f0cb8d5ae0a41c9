/**
 * Issue 8, item 8: racing deciders on one approval. However the race goes, exactly one decision reaches Step
 * Functions, its decider gets 200 and every other gets 409 naming the winner — never 410 (a request wrongly
 * marked expired) or 502. Also when reads of the record come back torn (the body cut off mid-transfer): they
 * are retried. Over real HTTP: the approval page behind local/approval-server.ts, local S3 behind a proxy that
 * can cut responses short, and a Step Functions endpoint (awsJson1_0) that can hold an answer in flight.
 */
import { once, EventEmitter } from 'node:events';
import { createServer, request as httpRequest, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { approvalId } from '../../functions/shared/approval-link';
import { CLAIM_TTL_MS, getApproval } from '../../functions/shared/approvals';
import { getJson, resetClients, s3Client } from '../../functions/shared/clients';
import { reloadSettings } from '../../functions/shared/settings';
import { startApprovalServer, type ApprovalServer } from '../../local/approval-server';
import { captureLogs } from '../logging/capture';
import { BUCKET, passedEvaluation, runContext, startLocalAws, type LocalAws } from './fixtures';

const SECRET = 'approval-race-secret-0123456789';

async function readAll(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

async function listen(server: Server): Promise<{ endpoint: string; stop(): Promise<void> }> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    stop: () => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }),
  };
}

/**
 * SendTaskSuccess/Failure as Step Functions answers them: a live token is consumed by its first use (later
 * uses: TaskTimedOut). `holdNext()` keeps the next accepted call's answer back until `release()`: the
 * winner is then in flight, its decision accepted but not yet known to it.
 */
async function startStepFunctions() {
  const calls: { target: string; token: string }[] = [];
  const live = new Set<string>();
  const events = new EventEmitter();
  let hold = false;
  let release: () => void = () => undefined;
  const server = createServer((req, res) => {
    void (async () => {
      const target = String(req.headers['x-amz-target'] ?? '').replace(/^AWSStepFunctions\./, '');
      const { taskToken } = JSON.parse((await readAll(req)).toString('utf8')) as { taskToken: string };
      calls.push({ target, token: taskToken });
      if (!live.delete(taskToken)) {
        res.writeHead(400, { 'content-type': 'application/x-amz-json-1.0', 'x-amzn-errortype': 'TaskTimedOut' });
        return res.end(JSON.stringify({ __type: 'com.amazonaws.swf.service.v2.model#TaskTimedOut', message: 'Task Timed Out' }));
      }
      if (hold) {
        hold = false;
        const released = new Promise<void>((resolve) => (release = resolve));
        events.emit('held');
        await released;
      }
      res.writeHead(200, { 'content-type': 'application/x-amz-json-1.0' });
      res.end('{}');
    })();
  });
  const { endpoint, stop } = await listen(server);
  return {
    endpoint, calls, live, stop,
    /** Resolves once the held call has reached Step Functions (and its token is consumed). */
    holdNext: () => { hold = true; return once(events, 'held'); },
    release: () => release(),
  };
}

/** Local S3 behind a proxy that, while `tear` > 0, cuts GETs of approval records off after half their body. */
async function startTearingProxy(upstream: string) {
  const state = { tear: 0, torn: 0 };
  const server = createServer((req, res) => {
    void (async () => {
      const body = await readAll(req);
      const up = httpRequest(`${upstream}${req.url}`, { method: req.method, headers: req.headers }, (answer) => {
        void (async () => {
          const content = await readAll(answer);
          const tear = req.method === 'GET' && /\/approvals\/[0-9a-f]{32}\.json(\?|$)/.test(req.url ?? '') && answer.statusCode === 200 && state.tear > 0;
          res.writeHead(answer.statusCode ?? 500, answer.headers);
          if (!tear) return res.end(content);
          state.tear--;
          state.torn++;
          // Headers promise the whole object; half of it arrives, then the connection drops.
          res.write(content.subarray(0, Math.floor(content.length / 2)), () => res.socket?.destroy());
        })();
      });
      up.end(body);
    })();
  });
  const { endpoint, stop } = await listen(server);
  return { endpoint, state, stop };
}

type Api = (e: APIGatewayProxyEventV2) => Promise<APIGatewayProxyStructuredResultV2>;

describe('racing deciders on one approval', () => {
  let aws: LocalAws;
  let sfn: Awaited<ReturnType<typeof startStepFunctions>>;
  let proxy: Awaited<ReturnType<typeof startTearingProxy>>;
  let server: ApprovalServer;
  let requestApproval: (e: unknown) => Promise<void>;

  beforeAll(async () => {
    sfn = await startStepFunctions();
    aws = await startLocalAws({ AWS_ENDPOINT_URL_SFN: sfn.endpoint, APPROVAL_SECRET: SECRET });
    proxy = await startTearingProxy(aws.s3.endpoint);
    process.env.AWS_ENDPOINT_URL_S3 = proxy.endpoint;
    reloadSettings();
    resetClients();
    captureLogs();
    server = await startApprovalServer((require('../../functions/approval-api') as { handler: Api }).handler as never);
    process.env.APPROVAL_BASE_URL = server.url;
    requestApproval = (require('../../functions/request-approval') as { handler: (e: unknown) => Promise<void> }).handler;
  });
  afterAll(async () => {
    await server.stop();
    await proxy.stop();
    await sfn.stop();
    await aws.stop();
  });

  /** A pending approval for a fresh execution, with its emailed links. */
  async function request(version: string) {
    const run = runContext({ version });
    const token = `token-${version}-${'r'.repeat(40)}`;
    sfn.live.add(token);
    const before = aws.messages().length;
    await requestApproval({ taskToken: token, state: { run, evaluation: passedEvaluation() } });
    const message = aws.messages()[before]!.message;
    const link = (action: string) => new RegExp(`(http://127\\.0\\.0\\.1:\\d+/approvals/[0-9a-f]{32}\\?action=${action}&\\S+)`).exec(message)![1]!;
    return { token, id: approvalId(run.executionArn), approve: link('approve'), reject: link('reject') };
  }
  const post = (url: string, approver: string) =>
    fetch(url, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ approver }).toString() });
  const callsFor = (token: string) => sfn.calls.filter((c) => c.token === token).map((c) => c.target);

  it('a decider racing one whose decision is still in flight gets 409 naming it, and never reaches Step Functions', async () => {
    // GIVEN Alice's approval has reached Step Functions and its answer is still on the way back
    const r = await request('v-inflight');
    const held = sfn.holdNext();
    const alice = post(r.approve, 'Alice');
    await held;

    // WHEN Bob rejects meanwhile
    const bob = await post(r.reject, 'Bob');

    // THEN Bob is told Alice decided; the request was never called expired
    expect(bob.status).toBe(409);
    expect(await bob.text()).toContain('fashion v-inflight is being approved');
    expect((await getApproval(r.id))!.status).toBe('deciding');
    sfn.release();
    const aliceRes = await alice;
    expect(aliceRes.status).toBe(200);
    expect(await aliceRes.text()).toContain('You approved fashion v-inflight');
    expect(await getApproval(r.id)).toMatchObject({ status: 'approved', decision: { decision: 'approve', by: 'Alice' } });
    expect(callsFor(r.token)).toEqual(['SendTaskSuccess']);
  });

  it('of many concurrent deciders exactly one wins (200), every other gets 409, Step Functions is asked once', async () => {
    for (let round = 0; round < 4; round++) {
      const r = await request(`v-burst-${round}`);
      const answers = await Promise.all(Array.from({ length: 6 }, (_, i) => post(i % 2 ? r.reject : r.approve, `racer-${i}`)));
      const statuses = answers.map((a) => a.status);
      expect([round, [...statuses].sort()]).toEqual([round, [200, 409, 409, 409, 409, 409]]);
      const winner = statuses.indexOf(200);
      const record = (await getApproval(r.id))!;
      expect(record).toMatchObject({ status: winner % 2 ? 'rejected' : 'approved', decision: { by: `racer-${winner}` } });
      expect(callsFor(r.token)).toEqual([winner % 2 ? 'SendTaskFailure' : 'SendTaskSuccess']);
    }
  });

  it('retries torn reads of the record: the decider gets 200, a later one 409, a page view 200', async () => {
    const r = await request('v-torn');
    proxy.state.tear = 2;
    const page = await fetch(r.approve);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('Approve fashion v-torn?');

    proxy.state.tear = 2;
    const winner = await post(r.approve, 'Alice');
    expect(winner.status).toBe(200);

    proxy.state.tear = 2;
    const loser = await post(r.reject, 'Bob');
    expect(loser.status).toBe(409);
    expect(await loser.text()).toContain('fashion v-torn was already approved');
    expect(proxy.state.tear).toBe(0);
    expect(callsFor(r.token)).toEqual(['SendTaskSuccess']);
  });

  it('reads that stay torn are S3 being unavailable: 502, nothing decided, and the link works once reads are whole', async () => {
    const r = await request('v-torn-long');
    proxy.state.tear = 100;
    const res = await post(r.approve, 'Alice');
    expect(res.status).toBe(502);
    expect(await res.text()).toContain('Nothing was decided');
    proxy.state.tear = 0;
    expect((await getApproval(r.id))!.status).toBe('pending');
    expect(callsFor(r.token)).toEqual([]);
    expect((await post(r.approve, 'Alice')).status).toBe(200);
  });

  it('a claim whose decider vanished is taken over after CLAIM_TTL_MS; a fresh one is not', async () => {
    for (const [age, status] of [[CLAIM_TTL_MS + 60_000, 200], [1_000, 409]] as const) {
      const r = await request(`v-claim-${status}`);
      const stored = (await getJson<Record<string, unknown>>(BUCKET, `approvals/${r.id}.json`))!;
      const at = new Date(Date.now() - age).toISOString();
      const stale = { ...stored, status: 'deciding', claimedAt: at, decision: { decision: 'reject', by: 'Gone', at, from: 'lambda' } };
      await s3Client().send(new PutObjectCommand({ Bucket: BUCKET, Key: `approvals/${r.id}.json`, Body: JSON.stringify(stale) }));
      const res = await post(r.approve, 'Alice');
      expect([age, res.status]).toEqual([age, status]);
      expect((await getApproval(r.id))!.decision!.by).toBe(status === 200 ? 'Alice' : 'Gone');
    }
  });
});
