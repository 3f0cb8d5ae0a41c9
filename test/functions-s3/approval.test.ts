/**
 * The approval round trip over real HTTP: RequestApproval stores the request in local S3 and emails signed
 * links through local SNS; the approval page (functions/approval-api.ts behind local/approval-server.ts)
 * shows them without side effects and decides on POST, which reaches a loopback Step Functions endpoint
 * speaking the awsJson1_0 protocol.
 */
import { createHash } from 'node:crypto';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { approvalId, signLink } from '../../functions/shared/approval-link';
import { decideApproval, getApproval } from '../../functions/shared/approvals';
import { getJson, resetClients } from '../../functions/shared/clients';
import type { RequestApprovalInput } from '../../functions/shared/types';
import { startApprovalServer, type ApprovalServer } from '../../local/approval-server';
import { captureLogs, type CapturedLogs } from '../logging/capture';
import { BUCKET, passedEvaluation, putObject, runContext, startFakeSfn, startLocalAws, type FakeSfn, type LocalAws } from './fixtures';
import { withClockAhead } from '../wall-clock';

const SECRET = 'approval-test-secret-0123456789';
type ApiHandler = (e: APIGatewayProxyEventV2) => Promise<APIGatewayProxyStructuredResultV2>;

describe('approval: request, page, decision', () => {
  let aws: LocalAws;
  let sfn: FakeSfn;
  let server: ApprovalServer;
  let requestApproval: (e: unknown) => Promise<void>;
  let api: ApiHandler;
  let logs: CapturedLogs;

  beforeAll(async () => {
    sfn = await startFakeSfn();
    aws = await startLocalAws({ AWS_ENDPOINT_URL_SFN: sfn.endpoint, APPROVAL_SECRET: SECRET });
    api = (require('../../functions/approval-api') as { handler: ApiHandler }).handler;
    server = await startApprovalServer(api as never);
    process.env.APPROVAL_BASE_URL = server.url;
    requestApproval = (require('../../functions/request-approval') as { handler: (e: unknown) => Promise<void> }).handler;
    logs = captureLogs();
    // Production: an earlier version with its own evaluation, shown next to the candidate.
    await putObject('models/fashion/production.json', JSON.stringify({ modelName: 'fashion', version: 'v-old', previousVersion: null, endpoint: 'http://prod', switchedAt: '', history: [] }));
    await putObject('models/fashion/v-old/evaluation.json', JSON.stringify({ accuracy: 0.8812, latencyMsP95: 7.25, errorRate: 0.002 }));
  });
  afterAll(async () => {
    logs.restore();
    await server.stop();
    await sfn.stop();
    await aws.stop();
  });

  /** Runs RequestApproval for a fresh execution and returns its token, id and emailed links. */
  async function request(version: string, token = `token-${version}-${'x'.repeat(40)}`) {
    const run = runContext({ version, image: 'registry.example/fashion@sha256:<b>&"' });
    sfn.live.add(token);
    const before = aws.messages().length;
    // Production measured alongside, as EvaluateModel does when a version serves.
    const evaluation = passedEvaluation({
      accuracy: 0.9123,
      latencyMsP50: 5,
      latencyMsP95: 11.5,
      production: { version: 'v-old', accuracy: 0.8812, latencyMsP50: 3.5, latencyMsP95: 7.25, errorRate: 0.002 },
    });
    const input: RequestApprovalInput = { taskToken: token, state: { run, evaluation } };
    await requestApproval(input);
    const email = aws.messages()[before]!;
    const link = (action: string) => new RegExp(`(http://127\\.0\\.0\\.1:\\d+/approvals/[0-9a-f]{32}\\?action=${action}&exp=\\d+&sig=[0-9a-f]{64})`).exec(email.message)?.[1];
    return { token, run, input, id: approvalId(run.executionArn), email, approve: link('approve')!, reject: link('reject')! };
  }

  const post = (url: string, fields: Record<string, string> = {}) =>
    fetch(url, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(fields).toString() });

  it('stores a pending request and emails approve/reject links with metrics next to production\'s', async () => {
    const r = await request('v-email');
    expect(r.email.subject).toBe('[mlpipe] Approve fashion v-email for production?');
    expect(r.email.topicArn).toBe('arn:aws:sns:us-east-1:000000000000:mlpipe-notifications');
    expect(r.email.message).toContain('registry.example/fashion@sha256:<b>&"');
    expect(r.email.message).toMatch(/accuracy\s+0\.9123\s+0\.8812/);
    expect(r.email.message).toMatch(/p50 latency\s+5 ms\s+3\.5 ms/);
    expect(r.email.message).toMatch(/p95 latency\s+11\.5 ms\s+7\.25 ms/);
    expect(r.email.message).toContain('(both measured in this evaluation, on the same images, requests interleaved)');
    expect(r.email.message).toMatch(/error rate\s+0%\s+0\.2%/);
    expect(r.email.message).toContain('nothing is decided until you press it');
    expect(r.email.message).toContain(`mlpipe approve ${r.run.executionArn.split(':').pop()}`);
    expect(r.approve).toBeDefined();
    expect(r.reject).toBeDefined();
    expect(r.email.message).not.toContain(r.token);

    const stored = await getJson<Record<string, unknown>>(BUCKET, `approvals/${r.id}.json`);
    expect(stored).toMatchObject({ id: r.id, status: 'pending', taskToken: r.token, modelName: 'fashion', version: 'v-email' });
    expect(stored!.production).toEqual({ version: 'v-old', accuracy: 0.8812, latencyMsP95: 7.25, errorRate: 0.002, endpoint: 'http://prod' });
    expect(await getApproval(r.id)).not.toHaveProperty('taskToken');

    // A retried invocation (same token) neither rewrites the request nor sends a second email.
    const count = aws.messages().length;
    await requestApproval(r.input);
    expect(aws.messages()).toHaveLength(count);
  });

  it('GET shows a confirmation page and changes nothing; POST approves via SendTaskSuccess; a second POST gets 409', async () => {
    const r = await request('v-approve');
    const page = await fetch(r.approve);
    const html = await page.text();
    expect(page.status).toBe(200);
    expect(page.headers.get('referrer-policy')).toBe('no-referrer');
    expect(html).toContain('Approve fashion v-approve?');
    expect(html).toContain('registry.example/fashion@sha256:&#60;b&#62;&#38;&#34;');
    expect(html).toMatch(/0\.9123[\s\S]*0\.8812/);
    expect(html).toMatch(/<form method="post" action="\?action=approve&#38;exp=\d+&#38;sig=[0-9a-f]{64}">/);
    expect(html).toContain('name="approver"');
    expect(html).not.toContain(r.token);
    // A second GET (a mail scanner's prefetch) still changes nothing.
    expect((await fetch(r.approve)).status).toBe(200);
    expect(sfn.calls).toHaveLength(0);
    expect((await getApproval(r.id))!.status).toBe('pending');

    const done = await post(r.approve, { approver: 'Alice <ops>', comment: 'ship it <script>' });
    const doneHtml = await done.text();
    expect(done.status).toBe(200);
    expect(doneHtml).toContain('<h1>You approved fashion v-approve</h1>');
    expect(doneHtml).toContain('Alice &#60;ops&#62;');
    expect(doneHtml).toContain('ship it &#60;script&#62;');
    expect(doneHtml).not.toContain('<script>');
    expect(sfn.calls).toHaveLength(1);
    expect(sfn.calls[0]!.target).toBe('AWSStepFunctions.SendTaskSuccess');
    expect(sfn.calls[0]!.body.taskToken).toBe(r.token);
    const output = JSON.parse(sfn.calls[0]!.body.output!) as Record<string, string>;
    expect(output).toEqual({ decision: 'approve', by: 'Alice <ops>', at: expect.any(String), from: expect.stringMatching(/127\.0\.0\.1/), comment: 'ship it <script>' });
    expect(await getApproval(r.id)).toMatchObject({ status: 'approved', decision: output });

    const again = await post(r.approve, { name: 'Mallory' });
    const againHtml = await again.text();
    expect(again.status).toBe(409);
    expect(againHtml).toContain('<h1>fashion v-approve was already approved</h1>');
    expect(againHtml).toContain(`By <strong>Alice &#60;ops&#62;</strong> on <time datetime="${output.at}">`);
    // Looking at a decided request again is no conflict: GET answers 200 with who decided, and decides nothing.
    for (const link of [r.approve, r.reject]) {
      const look = await fetch(link);
      expect(look.status).toBe(200);
      expect(await look.text()).toContain('was already approved');
    }
    expect(sfn.calls).toHaveLength(1);
    sfn.calls.length = 0;
  });

  it('POST reject sends SendTaskFailure with error ApprovalRejected and the decision as cause', async () => {
    const r = await request('v-reject');
    const res = await post(r.reject, {});
    expect(res.status).toBe(200);
    expect(await res.text()).toContain('<h1>You rejected fashion v-reject</h1>');
    expect(sfn.calls.map((c) => [c.target, c.body.taskToken, c.body.error])).toEqual([['AWSStepFunctions.SendTaskFailure', r.token, 'ApprovalRejected']]);
    expect(JSON.parse(sfn.calls[0]!.body.cause!)).toEqual({ decision: 'reject', by: 'someone with the approval link', at: expect.any(String), from: expect.stringMatching(/127\.0\.0\.1/) });
    expect((await getApproval(r.id))!.status).toBe('rejected');
    sfn.calls.length = 0;
  });

  it.each([
    ['a tampered action (approve signature, reject action)', (u: string) => u.replace('action=approve', 'action=reject'), 403, 'not valid'],
    ['a missing signature', (u: string) => u.replace(/&sig=[0-9a-f]+/, ''), 400, 'incomplete'],
    ['a truncated signature', (u: string) => u.slice(0, -4), 400, 'incomplete'],
    ['a repeated parameter', (u: string) => `${u}&action=approve`, 400, 'incomplete'],
  ])('refuses %s on GET and POST, deciding nothing', async (_what, tamper, status, words) => {
    const r = await request(`v-bad-${status}-${words.length}-${_what.length}`);
    for (const res of [await fetch(tamper(r.approve)), await post(tamper(r.approve))]) {
      expect(res.status).toBe(status);
      expect(await res.text()).toContain(words);
    }
    expect(sfn.calls).toHaveLength(0);
    expect((await getApproval(r.id))!.status).toBe('pending');
  });

  it('answers 410 for an expired link, 404 for an unknown request, 405 for other methods', async () => {
    const r = await request('v-misc');
    const past = Math.floor(Date.now() / 1000) - 10;
    const expired = signLink({ baseUrl: server.url, id: r.id, action: 'approve', expiresAt: past, secret: SECRET });
    expect((await post(expired)).status).toBe(410);
    const unknown = signLink({ baseUrl: server.url, id: approvalId('no-such-execution'), action: 'approve', expiresAt: past + 3600, secret: SECRET });
    const res404 = await fetch(unknown);
    expect(res404.status).toBe(404);
    expect(await res404.text()).toContain('No such approval request');
    const put = await fetch(r.approve, { method: 'PUT' });
    expect(put.status).toBe(405);
    expect(put.headers.get('allow')).toBe('GET, POST');
    expect((await fetch(`${server.url}/elsewhere`)).status).toBe(404);
    expect(sfn.calls).toHaveLength(0);
  });

  it('marks the request expired when Step Functions no longer knows the token (TaskTimedOut) and answers 410', async () => {
    const r = await request('v-timeout');
    sfn.live.delete(r.token);
    const res = await post(r.approve, { name: 'Late Larry' });
    expect(res.status).toBe(410);
    expect(await res.text()).toContain('no longer waiting');
    expect(sfn.calls.map((c) => c.target)).toEqual(['AWSStepFunctions.SendTaskSuccess']);
    expect((await getApproval(r.id))!.status).toBe('expired');
    expect((await fetch(r.approve)).status).toBe(410);
    sfn.calls.length = 0;
  });

  it('lets the CLI decide with decideApproval, and reads a plain (not base64) form body', async () => {
    const r = await request('v-cli');
    const decided = await decideApproval({ id: r.id, decision: 'approve', by: 'arn:aws:iam::000000000000:user/bob', from: 'cli' });
    expect(decided).toMatchObject({ status: 'approved', decision: { decision: 'approve', by: 'arn:aws:iam::000000000000:user/bob', from: 'cli' } });
    expect(decided).not.toHaveProperty('taskToken');
    await expect(decideApproval({ id: r.id, decision: 'reject', by: 'carol', from: 'cli' })).rejects.toMatchObject({ name: 'ApprovalLinkError', reason: 'decided' });
    await expect(decideApproval({ id: approvalId('nothing'), decision: 'reject', by: 'carol', from: 'cli' })).rejects.toMatchObject({ reason: 'unknown' });
    await expect(decideApproval({ id: 'nope', decision: 'approve', by: '', from: 'cli' })).rejects.toThrow(/id must be a 32-character hex approval id; by must name who decides/);

    const r2 = await request('v-plain');
    const url = new URL(r2.reject);
    const res = await api({
      version: '2.0',
      routeKey: 'POST /approvals/{id}',
      rawPath: url.pathname,
      rawQueryString: url.search.slice(1),
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      requestContext: { http: { method: 'POST', path: url.pathname, protocol: 'HTTP/1.1', sourceIp: '203.0.113.9', userAgent: 'test' } },
      body: 'name=Dana&comment=too+slow',
      isBase64Encoded: false,
    } as unknown as APIGatewayProxyEventV2);
    expect(res.statusCode).toBe(200);
    expect((await getApproval(r2.id))!.decision).toMatchObject({ decision: 'reject', by: 'Dana', from: '203.0.113.9', comment: 'too slow' });
    sfn.calls.length = 0;
  });

  it('answers 502 and decides nothing when Step Functions cannot be reached', async () => {
    const r = await request('v-sfn-down');
    const saved = process.env.AWS_ENDPOINT_URL_SFN;
    process.env.AWS_ENDPOINT_URL_SFN = 'http://127.0.0.1:9'; // discard port: nothing listens
    resetClients();
    try {
      const res = await post(r.approve, { approver: 'alice' });
      expect(res.status).toBe(502);
      expect(await res.text()).toContain('Nothing was decided');
      expect((await getApproval(r.id))!.status).toBe('pending');
    } finally {
      process.env.AWS_ENDPOINT_URL_SFN = saved;
      resetClients();
    }
    // Once Step Functions is back, the same link still works.
    expect((await post(r.approve, { approver: 'alice' })).status).toBe(200);
    sfn.calls.length = 0;
  });

  it('the confirmation page reads as a person needs: production next to the model, the limits, labels, expiry, the other action', async () => {
    const r = await request('v-page');
    const page = await fetch(r.approve);
    const html = await page.text();
    expect(page.status).toBe(200);
    expect(html).toMatch(/^<!doctype html>\n<html lang="en">/);
    expect(html).toContain('<meta name="viewport" content="width=device-width, initial-scale=1">');
    // Columns: this model, production (with its version), the gate's limit; differences say better or worse.
    expect(html).toMatch(/<th scope="col">In production<small>v-old<\/small><\/th><th scope="col">Required<\/th>/);
    expect(html).toMatch(/<th scope="row">Accuracy<\/th><td>0\.9123 <span class="better">\(\+0\.0311 better\)<\/span><\/td><td>0\.8812<\/td><td>≥ 0\.8500\u00a0\*<\/td>/);
    expect(html).toMatch(/<th scope="row">p95 latency<\/th><td>11\.5 ms <span class="worse">\(\+4\.25 ms worse\)<\/span><\/td><td>7\.25 ms<\/td><td>≤ 250 ms<\/td>/);
    // Every field has a label; the name is required so the record says who decided.
    expect(html).toContain('<label for="approver">');
    expect(html).toMatch(/<input type="text" id="approver" name="approver"[^>]* required>/);
    expect(html).toContain('<label for="comment">');
    // The expiry in words and in UTC, with the machine-readable time alongside.
    const record = (await getApproval(r.id))!;
    expect(html).toContain(`<time datetime="${record.expiresAt}">`);
    expect(html).toMatch(/expires on <time[^>]*>\d{1,2} [A-Z][a-z]{2} \d{4}, \d{2}:\d{2} UTC<\/time> \(in 60 minutes\)/);
    // The other action is one click away, signed, and opens its own confirmation page.
    const other = /Opened the wrong link\? <a href="([^"]+)">reject it instead<\/a>/.exec(html)?.[1];
    expect(other).toMatch(/^\?action=reject&#38;exp=\d+&#38;sig=[0-9a-f]{64}$/);
    const rejectPage = await fetch(new URL(other!.replace(/&#38;/g, '&'), r.approve));
    expect(rejectPage.status).toBe(200);
    expect(await rejectPage.text()).toContain('<button type="submit" class="reject">Reject this model</button>');
    expect(sfn.calls).toHaveLength(0);
  });

  it('never compares latency measured at another time: an older state shows production\'s accuracy only', async () => {
    const run = runContext({ version: 'v-older-state' });
    const token = `token-v-older-${'w'.repeat(40)}`;
    sfn.live.add(token);
    const before = aws.messages().length;
    // A state from before production was measured alongside: no `production` in the evaluation.
    await requestApproval({ taskToken: token, state: { run, evaluation: passedEvaluation({ accuracy: 0.9123, latencyMsP95: 11.5 }) } });
    const email = aws.messages()[before]!.message;
    expect(email).toMatch(/accuracy\s+0\.9123\s+0\.8812/);
    expect(email).toMatch(/p95 latency\s+11\.5 ms\s+n\/a/);
    expect(email).not.toContain('7.25');
    expect(email).toContain("production's latency was not measured alongside this model");
    const html = await (await fetch(/(http:\/\/\S+action=approve\S+)/.exec(email)![1]!)).text();
    expect(html).toMatch(/<th scope="row">p95 latency<\/th><td>11\.5 ms<\/td><td>n\/a<\/td>/);
    expect(html).not.toContain('7.25 ms');
  });

  it('emails per-class accuracy with the worse classes marked, the confusion matrix, and the run\'s data, digest, trigger and training time', async () => {
    const classNames = ['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot'];
    const files = { 't10k-images-idx3-ubyte': { bytes: 7840016, sha256: 'a'.repeat(64) }, 't10k-labels-idx1-ubyte': { bytes: 10008, sha256: 'b'.repeat(64) } };
    await putObject('datasets/facts/v7/dataset.json', JSON.stringify({ name: 'fashion-mnist', version: 'v7', classNames, files }));
    const run = runContext({
      version: 'v-facts',
      dataUri: `s3://${BUCKET}/datasets/facts/v7/`,
      trigger: { source: 'cli', detail: { by: 'local:alice' } },
      hyperparameters: { epochs: 5, learningRate: 0.001 },
    });
    const token = `token-v-facts-${'f'.repeat(40)}`;
    sfn.live.add(token);
    const before = aws.messages().length;
    const evaluation = passedEvaluation({
      classes: classNames,
      perClassAccuracy: [0.85, 0.97, 0.8, 0.88, 0.82, 0.96, 0.64, 0.95, 0.97, 0.96],
      confusion: Array.from({ length: 10 }, (_, t) => Array.from({ length: 10 }, (_, c) => (t === c ? 90 : t === 6 && c === 0 ? 7 : 0))),
      production: { version: 'v-old', accuracy: 0.8812, perClassAccuracy: [0.86, 0.97, 0.79, 0.88, 0.82, 0.96, 0.66, 0.95, 0.97, 0.96], latencyMsP50: 3.5, latencyMsP95: 7.25, errorRate: 0 },
    });
    const training = { jobName: 'j', namespace: 'mlpipe-staging', status: 'succeeded' as const, submittedAt: '2026-01-01T12:00:00.000Z', completedAt: '2026-01-01T12:04:10.000Z' };
    await requestApproval({ taskToken: token, state: { run, training, evaluation } });
    const email = aws.messages()[before]!.message;
    expect(email).toMatch(/T-shirt\/top\s+0\.8500\s+0\.8600\s+-0\.0100\s+WORSE/);
    expect(email).toMatch(/Shirt\s+0\.6400\s+0\.6600\s+-0\.0200\s+WORSE, below 0\.8500/);
    expect(email).toMatch(/Pullover\s+0\.8000\s+0\.7900\s+\+0\.0100\s+below 0\.8500\n/);
    expect(email).toMatch(/Trouser\s+0\.9700\s+0\.9700\n/);
    expect(email).toMatch(/6 Shirt\s+7\s+0\s+0\s+0\s+0\s+0\s+90\s+0\s+0\s+0\n/);
    const sha = createHash('sha256').update(`${'a'.repeat(64)}  t10k-images-idx3-ubyte\n${'b'.repeat(64)}  t10k-labels-idx1-ubyte\n`).digest('hex');
    expect(email).toContain(`Data:            s3://${BUCKET}/datasets/facts/v7/ (version v7)`);
    expect(email).toContain(`Data sha256:     ${sha}`);
    expect(email).toContain('Trigger:         mlpipe run, by local:alice');
    expect(email).toContain('Hyperparameters: epochs=5, learningRate=0.001');
    expect(email).toContain('Training time:   4 min 10 s');
    expect(email).toContain(`Image digest:    sha256:${'a'.repeat(64)}`);
    // The record keeps them for the page (approval-page tests in test/browser check what a person sees).
    expect((await getApproval(approvalId(run.executionArn)))!.facts).toEqual({
      imageDigest: run.imageDigest,
      trigger: run.trigger,
      data: { uri: run.dataUri, evalUri: run.evalDataUri, version: 'v7', sha256: sha },
      hyperparameters: run.hyperparameters,
      trainingSeconds: 250,
    });
  });

  it('says so when nothing serves production yet, and the decided page shows who, when, from where and how to follow the run', async () => {
    // Another model: no production.json.
    const run = runContext({ modelName: 'shoes', version: 'v-first' });
    const token = `token-v-first-${'y'.repeat(40)}`;
    sfn.live.add(token);
    const before = aws.messages().length;
    await requestApproval({ taskToken: token, state: { run, evaluation: passedEvaluation() } });
    const email = aws.messages()[before]!;
    expect(email.message).toContain('(nothing serves production yet: this would be the first release)');
    const approve = /(http:\/\/\S+action=approve\S+)/.exec(email.message)![1]!;
    const html = await (await fetch(approve)).text();
    expect(html).toContain('Nothing serves production yet: this would be the first release of this model.');
    expect(html).not.toContain('In production');

    const done = await post(approve, { approver: 'Ana', comment: 'first one' });
    const doneHtml = await done.text();
    expect(done.status).toBe(200);
    expect(doneHtml).toMatch(/By <strong>Ana<\/strong> on <time datetime="[^"]+">[^<]+ UTC<\/time>, from IP address [0-9a-f.:]+\./);
    expect(doneHtml).toContain('Comment: “first one”');
    expect(doneHtml).toContain(`<code>mlpipe status ${run.executionArn.split(':').pop()}</code>`);
    // Locally (a custom Step Functions endpoint) there is no console page to link to.
    expect(doneHtml).not.toContain('console.aws.amazon.com');
    sfn.calls.length = 0;
  });

  it.each([
    ['forged', (u: string) => u.replace(/sig=[0-9a-f]/, (m) => (m.endsWith('0') ? 'sig=1' : 'sig=0')), 403, '<code>mlpipe approve &#60;run&#62;</code>'],
    ['malformed', (u: string) => u.replace(/&sig=.*/, ''), 400, 'break long links over two lines'],
  ])('a %s link gets a page that says nothing was decided and what to do', async (_what, tamper, status, help) => {
    const r = await request(`v-help-${status}`);
    const res = await fetch(tamper(r.approve));
    const html = await res.text();
    expect(res.status).toBe(status);
    expect(html).toContain('<li>Nothing was decided.</li>');
    expect(html).toContain(help);
  });

  it('an expired request says when it ran out and that production is unchanged', async () => {
    const run = runContext({ version: 'v-short', approvalTimeoutSeconds: 1 });
    const token = `token-v-short-${'z'.repeat(40)}`;
    sfn.live.add(token);
    const before = aws.messages().length;
    await requestApproval({ taskToken: token, state: { run, evaluation: passedEvaluation() } });
    const approve = /(http:\/\/\S+action=approve\S+)/.exec(aws.messages()[before]!.message)![1]!;
    // The request expires a second after it was made: read the link two seconds later, by the clock.
    const { res, html } = await withClockAhead(2_000, async () => {
      const res = await fetch(approve);
      return { res, html: await res.text() };
    });
    expect(res.status).toBe(410);
    expect(html).toMatch(/Nobody decided on fashion v-short before \d{1,2} [A-Z][a-z]{2} \d{4}, \d{2}:\d{2} UTC, so the run ended without releasing it\./);
    expect(html).toContain('production is unchanged');
    expect(sfn.calls).toHaveLength(0);
  });

  it('refuses an evaluation that did not pass, naming the field, and sends nothing', async () => {
    const before = aws.messages().length;
    const token = `token-v-failed-${'x'.repeat(40)}`;
    const input = { taskToken: token, state: { run: runContext({ version: 'v-failed' }), evaluation: { ...passedEvaluation(), passed: false } } };
    const err = (await requestApproval(input).then(() => undefined, (e: unknown) => e)) as Error;
    expect(err.name).toBe('InvalidInputError');
    expect(err.message).toMatch(/^RequestApproval input is invalid: state\.evaluation\.passed: must be true/);
    expect(err.message).not.toContain(token);
    expect(aws.messages()).toHaveLength(before);
  });

  it('never logs a task token (test/logging/no-secrets.test.ts tries harder)', async () => {
    // A request and its page of its own: the lines checked do not depend on which tests ran before.
    const before = logs.lines.length;
    const r = await request('v-logs');
    expect((await fetch(r.approve)).status).toBe(200);
    expect(logs.lines.length).toBeGreaterThan(before);
    expect(logs.text()).not.toContain('token-v');
  });
});
