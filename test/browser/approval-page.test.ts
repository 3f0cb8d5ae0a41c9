/**
 * The approval page as a person sees it, in headless Chromium: RequestApproval stores a realistic request
 * (Fashion-MNIST's per-class accuracy, with production measured alongside) in local S3, and the page is
 * served by the real approval handler (functions/approval-api.ts) behind local/approval-server.ts, as the
 * local run serves it. Checks what is on screen — table cells, marks and their colours, the confusion
 * matrix, the run's facts — and that the buttons decide (the decision reaches a loopback Step Functions
 * endpoint and is recorded). One browser for the file, a page per test.
 */
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import type { Page } from 'puppeteer-core';
import { approvalId } from '../../functions/shared/approval-link';
import { getApproval } from '../../functions/shared/approvals';
import type { EvaluationResult, RequestApprovalInput } from '../../functions/shared/types';
import { startApprovalServer, type ApprovalServer } from '../../local/approval-server';
import { captureLogs, type CapturedLogs } from '../logging/capture';
import { BUCKET, passedEvaluation, putObject, runContext, startFakeSfn, startLocalAws, type FakeSfn, type LocalAws } from '../functions-s3/fixtures';
import { launchChromium, type TestBrowser } from './chromium';

const SECRET = 'approval-browser-test-secret-0123';
const CLASSES = ['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot'];
// A 784-128-10 MLP after 5 epochs (candidate) against one after 2 (production), 1,000 images per class.
const CANDIDATE = [0.853, 0.968, 0.806, 0.884, 0.821, 0.957, 0.641, 0.951, 0.969, 0.957];
const PRODUCTION = [0.861, 0.962, 0.781, 0.872, 0.799, 0.949, 0.652, 0.936, 0.963, 0.948];
/** Shirt (6) is taken for T-shirt/top (0) 152 times: the confusion an approver should see. */
const CONFUSION = CLASSES.map((_, t) => CLASSES.map((_, c) => (t === c ? Math.round(CANDIDATE[t]! * 1000) : t === 6 && c === 0 ? 152 : t === 6 && c === 2 ? 1000 - 641 - 152 : (t * 7 + c * 3) % 11 === 0 ? 5 : 0)));
const DATA_PREFIX = 'datasets/fashion-mnist/v1/';
const DATASET_SHA = 'c0ffee'.padEnd(64, '0');

type ApiHandler = (e: APIGatewayProxyEventV2) => Promise<APIGatewayProxyStructuredResultV2>;

function evaluation(): EvaluationResult {
  return passedEvaluation({
    accuracy: 0.8807,
    latencyMsP50: 4.12,
    latencyMsP95: 9.87,
    samples: 10_000,
    summary: 'Passed on 10000 samples: accuracy 0.8807 >= 0.8500, p95 9.87 ms <= 250 ms, error rate 0% <= 1%; production v-prod 0.8723.',
    classes: CLASSES,
    perClassAccuracy: CANDIDATE,
    confusion: CONFUSION,
    production: { version: '20260101-090000-prod123', accuracy: 0.8723, perClassAccuracy: PRODUCTION, latencyMsP50: 4.31, latencyMsP95: 14.2, errorRate: 0 },
  });
}

describe('approval page in a browser', () => {
  let aws: LocalAws;
  let sfn: FakeSfn;
  let server: ApprovalServer;
  let chromium: TestBrowser;
  let requestApproval: (e: unknown) => Promise<void>;
  let logs: CapturedLogs;
  let page: Page;

  beforeAll(async () => {
    [sfn, chromium] = await Promise.all([startFakeSfn(), launchChromium()]);
    aws = await startLocalAws({ AWS_ENDPOINT_URL_SFN: sfn.endpoint, APPROVAL_SECRET: SECRET });
    server = await startApprovalServer((require('../../functions/approval-api') as { handler: ApiHandler }).handler as never);
    process.env.APPROVAL_BASE_URL = server.url;
    requestApproval = (require('../../functions/request-approval') as { handler: (e: unknown) => Promise<void> }).handler;
    logs = captureLogs();
    await putObject(`${DATA_PREFIX}dataset.json`, JSON.stringify({ name: 'fashion-mnist', version: 'v1', classNames: CLASSES, sha256: DATASET_SHA }));
    await putObject('models/fashion/production.json', JSON.stringify({ modelName: 'fashion', version: '20260101-090000-prod123', previousVersion: null, endpoint: 'http://127.0.0.1:9', switchedAt: '', history: [] }));
  });
  beforeEach(async () => {
    page = await chromium.browser.newPage();
    await page.setViewport({ width: 1280, height: 900 });
  });
  afterEach(async () => {
    await page.close();
  });
  afterAll(async () => {
    logs?.restore();
    await chromium?.close();
    await server?.stop();
    await sfn?.stop();
    await aws?.stop();
  });

  /** A pending request for a fresh execution, as RequestApproval makes it; returns its emailed links. */
  async function request(version: string, hyperparameters: Record<string, string | number | boolean> = { epochs: 5, learningRate: 0.001, hidden: 128 }) {
    const run = runContext({ version, hyperparameters, trigger: { source: 'cli', detail: { by: 'local:alice' } } });
    const token = `token-${version}-${'t'.repeat(48)}`;
    sfn.live.add(token);
    const before = aws.messages().length;
    const input: RequestApprovalInput = {
      taskToken: token,
      state: {
        run,
        training: { jobName: 'j', namespace: 'mlpipe-staging', status: 'succeeded', submittedAt: '2026-01-01T12:00:00.000Z', completedAt: '2026-01-01T12:01:05.000Z' },
        evaluation: evaluation(),
      },
    };
    await requestApproval(input);
    const email = aws.messages()[before]!.message;
    const link = (action: string) => new RegExp(`(http://127\\.0\\.0\\.1:\\d+/approvals/[0-9a-f]{32}\\?action=${action}&exp=\\d+&sig=[0-9a-f]{64})`).exec(email)![1]!;
    return { run, token, id: approvalId(run.executionArn), approve: link('approve'), reject: link('reject') };
  }

  /** The text of each cell of each body row of `table`. */
  const rowsOf = (table: string) =>
    page.$$eval(`${table} tbody tr`, (rows) => rows.map((r) => Array.from(r.children, (c) => (c.textContent ?? '').trim())));

  it('shows each class\'s accuracy against production\'s, the worse classes marked in words and in red', async () => {
    const r = await request('v-classes');
    await page.goto(r.approve);
    const rows = await rowsOf('#per-class');
    expect(rows).toHaveLength(10);
    expect(rows[6]).toEqual(['Shirt', '0.6410', '0.6520', '−0.0110', 'worse below 0.8500']);
    expect(rows[2]).toEqual(['Pullover', '0.8060', '0.7810', '+0.0250', 'below 0.8500']);
    expect(rows[1]).toEqual(['Trouser', '0.9680', '0.9620', '+0.0060', '']);
    // The worse classes: T-shirt/top and Shirt, and only they, each with a red "worse" mark on a tinted row.
    const marked = await page.$$eval('#per-class tbody tr', (trs) =>
      trs.filter((tr) => tr.querySelector('.tag.worse')).map((tr) => ({
        name: tr.querySelector('th')!.textContent,
        tag: getComputedStyle(tr.querySelector('.tag.worse')!).color,
        row: getComputedStyle(tr.querySelector('td')!).backgroundColor,
      })),
    );
    expect(marked).toEqual([
      { name: 'T-shirt/top', tag: 'rgb(164, 14, 38)', row: 'rgb(255, 245, 245)' },
      { name: 'Shirt', tag: 'rgb(164, 14, 38)', row: 'rgb(255, 245, 245)' },
    ]);
    expect(await page.$eval('#per-class caption', (c) => c.textContent)).toBe('2 classes got worse than production 20260101-090000-prod123 on the same images');
  });

  it('draws the confusion matrix: true classes down, predictions across, right answers green, confusions red', async () => {
    const r = await request('v-matrix');
    await page.goto(r.approve);
    const head = await page.$$eval('#confusion thead th', (ths) => ths.map((th) => th.textContent));
    expect(head.slice(1)).toEqual(CLASSES);
    const rows = await rowsOf('#confusion');
    expect(rows.map((row) => row[0])).toEqual(CLASSES);
    expect(rows[6]!.slice(1).map(Number)).toEqual(CONFUSION[6]);
    // Shirt row: taken for T-shirt/top 152 times (red), right 641 times (green); an empty cell has no fill.
    const shade = (row: number, col: number) =>
      page.$eval(`#confusion tbody tr:nth-child(${row + 1}) td:nth-of-type(${col + 1})`, (td) => getComputedStyle(td).backgroundColor);
    expect(await shade(6, 0)).toMatch(/^rgba\(207, 34, 46, 0\.2\d\)$/);
    expect(await shade(6, 6)).toMatch(/^rgba\(26, 127, 55, 0\.5\d?\)$/);
    expect(await shade(6, 9)).toBe('rgba(0, 0, 0, 0)');
  });

  it('shows latency p50 and p95 of both models side by side, the run\'s trigger, data, digest, hyperparameters and training time', async () => {
    const r = await request('v-facts');
    await page.goto(r.approve);
    const metrics = await rowsOf('#metrics');
    expect(metrics).toEqual([
      ['Accuracy', '0.8807 (+0.0084 better)', '0.8723', '≥ 0.8500\u00a0*'],
      // 0.19 ms apart is within what the same model moves between measurements; 4.33 ms of 14.2 is not.
      ['p50 latency', '4.12 ms (−0.19 ms, same within noise)', '4.31 ms', ''],
      ['p95 latency', '9.87 ms (−4.33 ms better)', '14.2 ms', '≤ 250 ms'],
      ['Error rate', '0%', '0%', '≤ 1%'],
    ]);
    const facts = await page.$$eval('#facts dt', (dts) => Object.fromEntries(dts.map((dt) => [dt.textContent, (dt.nextElementSibling?.textContent ?? '').trim()])));
    expect(facts).toMatchObject({
      'Triggered by': 'mlpipe run, by local:alice',
      'Image digest': `sha256:${'a'.repeat(64)}`,
      'Training data': `s3://${BUCKET}/${DATA_PREFIX} version v1`,
      'Data sha256': DATASET_SHA,
      'Hyperparameters': 'epochs=5 learningRate=0.001 hidden=128',
      'Training time': '1 min 5 s',
    });
    // No task token anywhere a person (or a page script) could read it.
    expect(await page.content()).not.toContain(r.token);
  });

  it('shows a hostile hyperparameter as text: nothing from the state runs or becomes markup', async () => {
    const r = await request('v-hostile', { note: '<img src=x onerror="document.title=\'pwned\'">' });
    await page.goto(r.approve);
    expect(await page.$eval('#hyperparameters', (dd) => dd.textContent)).toBe('note="<img src=x onerror=\\"document.title=\'pwned\'\\">"');
    expect(await page.$$('#hyperparameters img')).toHaveLength(0);
    expect(await page.title()).not.toBe('pwned');
  });

  it('approves with the button: the decision is sent to Step Functions and recorded, with the approver\'s name', async () => {
    const r = await request('v-approve');
    await page.goto(r.approve);
    await page.type('#approver', 'Alice <alice@example.com>');
    await page.type('#comment', 'Shirt is 0.011 worse; acceptable');
    await Promise.all([page.waitForNavigation(), page.click('button.approve')]);
    expect(await page.$eval('h1', (h) => h.textContent)).toBe('You approved fashion v-approve');
    expect(await page.$eval('.banner', (b) => getComputedStyle(b).backgroundColor)).toBe('rgb(218, 251, 225)');
    const call = sfn.calls.find((c) => c.body.taskToken === r.token)!;
    expect(call.target).toBe('AWSStepFunctions.SendTaskSuccess');
    expect(JSON.parse(call.body.output!)).toMatchObject({ decision: 'approve', by: 'Alice <alice@example.com>', comment: 'Shirt is 0.011 worse; acceptable' });
    expect(await getApproval(r.id)).toMatchObject({ status: 'approved', decision: { decision: 'approve', by: 'Alice <alice@example.com>' } });
  });

  it('rejects with the button after switching from the approve link: production is left as it is', async () => {
    const r = await request('v-reject');
    await page.goto(r.approve);
    // Opened the approve link by mistake: the page offers the other action.
    await Promise.all([page.waitForNavigation(), page.click('a[href^="?action=reject"]')]);
    expect(await page.$eval('button[type=submit]', (b) => b.textContent)).toBe('Reject this model');
    await page.type('#approver', 'Bob');
    await page.type('#comment', 'Shirt got worse');
    await Promise.all([page.waitForNavigation(), page.click('button.reject')]);
    expect(await page.$eval('h1', (h) => h.textContent)).toBe('You rejected fashion v-reject');
    const call = sfn.calls.find((c) => c.body.taskToken === r.token)!;
    expect(call.target).toBe('AWSStepFunctions.SendTaskFailure');
    expect(await getApproval(r.id)).toMatchObject({ status: 'rejected', decision: { decision: 'reject', by: 'Bob', comment: 'Shirt got worse' } });
  });
});
