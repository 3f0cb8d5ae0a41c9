/**
 * EvaluateModel against local S3 (held-out IDX files) and a loopback TF Serving stand-in whose answers
 * are right for an exact, known set of images — so accuracy and error rate are asserted exactly, and a
 * server that answers 404 can never pass.
 */
import { getJson } from '../../functions/shared/clients';
import { CHAMPION_LATENCY_BATCHES, knownAccuracy, percentile, PIXEL_JSON, predictBody, selectIndices } from '../../functions/shared/evaluation';
import type { EvaluationReport } from '../../functions/shared/registry';
import type { EvaluationResult } from '../../functions/shared/types';
import { BUCKET, putObject, putHeldOutSet, runContext, startLocalAws, startModelServer, type LocalAws, type ModelServer } from './fixtures';
import { captureLogs } from '../logging/capture';

type Handler = (event: unknown) => Promise<EvaluationResult>;

const MODEL = 'fashion';
const DATA_PREFIX = 'datasets/fashion-mnist/v1/';
const COUNT = 1000;

/**
 * Loads the handler with these settings (it reads them once, at module load). The latency gate is opened
 * wide except where a test is about latency: the client and the fixture server share one event loop on a
 * busy 2-core machine, so absolute latencies here say nothing about a model.
 */
function loadHandler(env: Record<string, string> = {}): Handler {
  Object.assign(process.env, { EVAL_SAMPLES: '1000', EVAL_BATCH_SIZE: '100', EVAL_REQUEST_TIMEOUT_MS: '10000', MAX_P95_LATENCY_MS: '60000' }, env);
  let handler: Handler | undefined;
  jest.isolateModules(() => {
    handler = (require('../../functions/evaluate-model') as { handler: Handler }).handler;
  });
  return handler!;
}

describe('EvaluateModel', () => {
  let aws: LocalAws;
  const servers: ModelServer[] = [];
  const serve = async (opts: Parameters<typeof startModelServer>[0]) => {
    const s = await startModelServer(opts);
    servers.push(s);
    return s;
  };
  const stateFor = (endpoint: string, version = '20260101-120000-abc1234', modelName = MODEL) => ({
    run: runContext({ modelName, version }),
    staging: { stage: 'staging', namespace: 'mlpipe-staging', deploymentName: 'd', serviceName: 's', deployedAt: '', status: 'serving', endpoint },
  });

  let baseEnv: NodeJS.ProcessEnv;
  beforeAll(async () => {
    aws = await startLocalAws();
    await putHeldOutSet(DATA_PREFIX, COUNT);
    captureLogs(); // handler log lines stay out of the test output
    baseEnv = { ...process.env };
  });
  afterEach(() => {
    process.env = { ...baseEnv };
  });
  afterAll(async () => {
    jest.restoreAllMocks();
    await Promise.all(servers.map((s) => s.stop()));
    await aws.stop();
  });

  it('measures exact accuracy over every batch, passes the gate and writes evaluation.json', async () => {
    const server = await serve({ modelName: MODEL, correct: (i) => i % 10 !== 0 });
    const result = await loadHandler()(stateFor(server.endpoint));

    expect(result).toMatchObject({ passed: true, accuracy: 0.9, errorRate: 0, samples: 1000, production: null });
    expect(result.summary).toMatch(
      /^Passed on 1000 samples: accuracy 0\.9000 >= 0\.8500, p95 [\d.]+ ms <= 60000 ms, error rate 0% <= 1%; no production model to compare with\.$/,
    );
    expect(result.latencyMsP95).toBeGreaterThanOrEqual(result.latencyMsP50);
    expect(result.latencyMsP50).toBeGreaterThan(0);
    // Ten batches of 100 images of 784 values in 0..1, every image exactly once.
    expect(server.requests.map((r) => [r.instances, r.width, r.inRange])).toEqual(Array(10).fill([100, 784, true]));
    expect(server.requests.flatMap((r) => r.indices).sort((a, b) => a - b)).toEqual(Array.from({ length: 1000 }, (_, i) => i));

    const report = await getJson<EvaluationReport>(BUCKET, `models/${MODEL}/20260101-120000-abc1234/evaluation.json`);
    expect(result.reportUri).toBe(`s3://${BUCKET}/models/${MODEL}/20260101-120000-abc1234/evaluation.json`);
    expect(report).toMatchObject({ ...result, details: { requests: 10, failedRequests: 0, batchSize: 100, errors: [] } });
    // Per class: class 0 always answered as class 1; no dataset.json here, so no class names (label numbers).
    expect(result.perClassAccuracy).toEqual([0, 1, 1, 1, 1, 1, 1, 1, 1, 1]);
    expect(result).not.toHaveProperty('classes');
    expect(result.confusion).toHaveLength(10);
    expect(result.confusion![0]).toEqual([0, 100, 0, 0, 0, 0, 0, 0, 0, 0]);
    expect(result.confusion![3]).toEqual([0, 0, 0, 100, 0, 0, 0, 0, 0, 0]);
    expect(report!.details).toMatchObject({ perClassAccuracy: result.perClassAccuracy, confusion: result.confusion });
    expect(report!.details).not.toHaveProperty('production');
  });

  it('names the classes from the held-out data\'s dataset.json and counts the confusion matrix per true and predicted class', async () => {
    const prefix = 'datasets/named/v2/';
    await putHeldOutSet(prefix, 200);
    const classNames = ['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot'];
    await putObject(`${prefix}dataset.json`, JSON.stringify({ name: 'fashion-mnist', version: 'v2', classNames }));
    // Shirt (6) is taken for T-shirt/top (0) one time in two (odd image indices of class 6).
    const server = await serve({ modelName: MODEL, correct: (i) => !(i % 10 === 6 && i % 20 === 16), wrongAs: (i) => (i % 10 === 6 ? 0 : undefined) });
    const state = stateFor(server.endpoint, 'v-named');
    state.run.evalDataUri = `s3://${BUCKET}/${prefix}`;
    const result = await loadHandler({ EVAL_SAMPLES: '200', EVAL_BATCH_SIZE: '50' })(state);
    expect(result.classes).toEqual(classNames);
    expect(result.perClassAccuracy).toEqual([1, 1, 1, 1, 1, 1, 0.5, 1, 1, 1]);
    expect(result.confusion![6]).toEqual([10, 0, 0, 0, 0, 0, 10, 0, 0, 0]);
    expect(result.confusion![0]).toEqual([20, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    expect(result.confusion!.flat().reduce((a, b) => a + b, 0)).toBe(200);
  });

  it('measures production in the same evaluation, interleaving requests, so per-class accuracy and latency compare like with like', async () => {
    const MODEL = 'fashion-champion';
    const arrivals: string[] = [];
    // Production is right on everything but class 3, and slower: every answer takes 300 ms more: several
    // times what a busy host adds to a 250-image request (~100 ms seen in CI), so noise cannot swap the medians.
    const prod = await serve({ modelName: MODEL, correct: (i) => i % 10 !== 3, delayMs: 300, arrivals: { name: 'production', log: arrivals } });
    const candidate = await serve({ modelName: MODEL, correct: (i) => i % 10 !== 5, arrivals: { name: 'candidate', log: arrivals } });
    await putObject(`models/${MODEL}/production.json`, JSON.stringify({ modelName: MODEL, version: 'v-champ', previousVersion: null, endpoint: prod.endpoint, switchedAt: '', history: [] }));
    // What production measured at its own release, long ago: not what the comparison uses.
    await putObject(`models/${MODEL}/v-champ/evaluation.json`, JSON.stringify({ accuracy: 0.5, latencyMsP95: 1, errorRate: 0 }));

    const result = await loadHandler({ EVAL_SAMPLES: '1000', EVAL_BATCH_SIZE: '250', EVAL_CONCURRENCY: '1' })(stateFor(candidate.endpoint, 'v-challenger', MODEL));

    // Both got the very same four batches, one after the other, the first alternating from batch to batch.
    const firsts = candidate.requests.map((r) => r.indices[0]);
    expect(prod.requests.map((r) => r.indices[0])).toEqual(firsts);
    expect(arrivals).toEqual(firsts.flatMap((f, b) => (b % 2 === 0 ? [`candidate ${f}`, `production ${f}`] : [`production ${f}`, `candidate ${f}`])));
    expect(result.production).toEqual({
      version: 'v-champ',
      accuracy: 0.9,
      perClassAccuracy: [1, 1, 1, 0, 1, 1, 1, 1, 1, 1],
      latencyMsP50: expect.any(Number),
      latencyMsP95: expect.any(Number),
      errorRate: 0,
    });
    expect(result.perClassAccuracy).toEqual([1, 1, 1, 1, 1, 0, 1, 1, 1, 1]);
    expect(result.production!.latencyMsP50).toBeGreaterThanOrEqual(300);
    expect(result.latencyMsP50).toBeLessThan(result.production!.latencyMsP50!);
    expect(result.summary).toMatch(/; production v-champ 0\.9000\.$/);
    const report = await getJson<EvaluationReport>(BUCKET, `models/${MODEL}/v-challenger/evaluation.json`);
    expect(report!.details.production).toEqual({ requests: 4, failedRequests: 0, errors: [], errorRate: 0 });
  });

  it('takes production\'s accuracy from its own evaluation of the very same images, and sends it only a few batches for its latency', async () => {
    const MODEL = 'fashion-champion-known';
    // The champion's own evaluation, when it was the candidate: wrong on class 3.
    const before = await serve({ modelName: MODEL, correct: (i) => i % 10 !== 3 });
    const env = { EVAL_SAMPLES: '400', EVAL_BATCH_SIZE: '10', EVAL_CONCURRENCY: '1' };
    const own = await loadHandler(env)(stateFor(before.endpoint, 'v-known', MODEL));
    expect(own).toMatchObject({ production: null, perClassAccuracy: [1, 1, 1, 0, 1, 1, 1, 1, 1, 1] });
    const ownReport = await getJson<EvaluationReport>(BUCKET, `models/${MODEL}/v-known/evaluation.json`);
    expect(ownReport!.details.heldOut).toEqual({ sha256: expect.stringMatching(/^[0-9a-f]{64}$/) });

    // Production now answers everything right: were it measured again on every image, it would score 1.
    const arrivals: string[] = [];
    const prod = await serve({ modelName: MODEL, arrivals: { name: 'production', log: arrivals } });
    const candidate = await serve({ modelName: MODEL, correct: (i) => i % 10 !== 5, arrivals: { name: 'candidate', log: arrivals } });
    await putObject(`models/${MODEL}/production.json`, JSON.stringify({ modelName: MODEL, version: 'v-known', previousVersion: null, endpoint: prod.endpoint, switchedAt: '', history: [] }));
    const result = await loadHandler(env)(stateFor(candidate.endpoint, 'v-next', MODEL));

    expect(result.production).toEqual({
      version: 'v-known',
      accuracy: own.accuracy,
      perClassAccuracy: [1, 1, 1, 0, 1, 1, 1, 1, 1, 1],
      latencyMsP50: expect.any(Number),
      latencyMsP95: expect.any(Number),
      errorRate: 0,
    });
    expect(own.accuracy).toBeLessThan(0.95);
    expect(result.summary).toMatch(new RegExp(`; production v-known ${own.accuracy.toFixed(4).replace('.', '\\.')}\\.$`));
    // 40 batches to the candidate; every second one, the same, to production, interleaved as before.
    const firsts = candidate.requests.map((r) => r.indices[0]);
    expect(firsts).toHaveLength(40);
    expect(prod.requests.map((r) => r.indices[0])).toEqual(firsts.filter((_, b) => b % 2 === 0));
    expect(arrivals.filter((a) => a.startsWith('production'))).toHaveLength(CHAMPION_LATENCY_BATCHES);
    expect(arrivals.slice(0, 5)).toEqual([`candidate ${firsts[0]}`, `production ${firsts[0]}`, `candidate ${firsts[1]}`, `production ${firsts[2]}`, `candidate ${firsts[2]}`]);
    const report = await getJson<EvaluationReport>(BUCKET, `models/${MODEL}/v-next/evaluation.json`);
    expect(report!.details.production).toEqual({ requests: 20, failedRequests: 0, errors: [], errorRate: 0, accuracyFrom: `models/${MODEL}/v-known/evaluation.json` });
    expect(report!.details.heldOut).toEqual(ownReport!.details.heldOut);

    // Other images (another sample size): its evaluation does not say how it answers them, so it is measured on every batch.
    prod.requests.length = 0;
    const other = await loadHandler({ ...env, EVAL_SAMPLES: '320' })(stateFor(candidate.endpoint, 'v-other', MODEL));
    expect(prod.requests).toHaveLength(32);
    expect(other.production).toMatchObject({ version: 'v-known', accuracy: 1, perClassAccuracy: Array(10).fill(1) });
    const otherReport = await getJson<EvaluationReport>(BUCKET, `models/${MODEL}/v-other/evaluation.json`);
    expect(otherReport!.details.production).not.toHaveProperty('accuracyFrom');
  });

  it('measures production\'s accuracy when its endpoint answers as another version than production.json names, and takes it from the evaluation when it answers as that version', async () => {
    const MODEL = 'fashion-champion-switched';
    const env = { EVAL_SAMPLES: '400', EVAL_BATCH_SIZE: '10', EVAL_CONCURRENCY: '1' };
    const before = await serve({ modelName: MODEL, correct: (i) => i % 10 !== 3 });
    const own = await loadHandler(env)(stateFor(before.endpoint, 'v-recorded', MODEL));
    // production.json still names v-recorded, but the endpoint now serves v-newer, which answers everything right.
    const prod = await serve({ modelName: MODEL, version: 'v-newer' });
    const candidate = await serve({ modelName: MODEL });
    await putObject(`models/${MODEL}/production.json`, JSON.stringify({ modelName: MODEL, version: 'v-recorded', previousVersion: null, endpoint: prod.endpoint, switchedAt: '', history: [] }));
    const result = await loadHandler(env)(stateFor(candidate.endpoint, 'v-next', MODEL));
    expect(own.accuracy).toBeLessThan(0.95);
    expect(result.production).toMatchObject({ version: 'v-newer', accuracy: 1 }); // what answered, not what production.json names
    expect(result.summary).toContain(`production answered as v-newer, not v-recorded: its accuracy is measured now, on the ${CHAMPION_LATENCY_BATCHES * 10} images it was sent`);
    const report = await getJson<EvaluationReport>(BUCKET, `models/${MODEL}/v-next/evaluation.json`);
    expect(report!.details.production).not.toHaveProperty('accuracyFrom');

    // The endpoint answering as the recorded version: its evaluation speaks for it.
    const same = await serve({ modelName: MODEL, version: 'v-recorded' });
    await putObject(`models/${MODEL}/production.json`, JSON.stringify({ modelName: MODEL, version: 'v-recorded', previousVersion: null, endpoint: same.endpoint, switchedAt: '', history: [] }));
    const reused = await loadHandler(env)(stateFor(candidate.endpoint, 'v-again', MODEL));
    expect(reused.production).toMatchObject({ version: 'v-recorded', accuracy: own.accuracy });
    expect((await getJson<EvaluationReport>(BUCKET, `models/${MODEL}/v-again/evaluation.json`))!.details.production).toHaveProperty('accuracyFrom', `models/${MODEL}/v-recorded/evaluation.json`);
  });

  it('does not take production\'s accuracy from an evaluation that failed requests or predates the fingerprint', () => {
    const details = { failedRequests: 0, perClassAccuracy: [1, 0.5], heldOut: { sha256: 'abc' } };
    expect(knownAccuracy({ accuracy: 0.75, details }, 'abc')).toEqual({ accuracy: 0.75, perClassAccuracy: [1, 0.5] });
    expect(knownAccuracy({ accuracy: 0.75, details }, 'abd')).toBeUndefined();
    // A failed request counted its images as wrong: that accuracy is not the model's answer to them.
    expect(knownAccuracy({ accuracy: 0.75, details: { ...details, failedRequests: 1 } }, 'abc')).toBeUndefined();
    expect(knownAccuracy({ accuracy: 0.75, details: { failedRequests: 0, perClassAccuracy: [1, 0.5] } }, 'abc')).toBeUndefined();
    expect(knownAccuracy({ accuracy: 0.75 }, 'abc')).toBeUndefined();
    expect(knownAccuracy(undefined, 'abc')).toBeUndefined();
  });

  it('falls back to production\'s own evaluation, without latency, when its endpoint cannot be reached, and says so', async () => {
    const MODEL = 'fashion-champion-down';
    const prod = await serve({ modelName: MODEL });
    await prod.stop();
    await putObject(`models/${MODEL}/production.json`, JSON.stringify({ modelName: MODEL, version: 'v-gone', previousVersion: null, endpoint: prod.endpoint, switchedAt: '', history: [] }));
    await putObject(`models/${MODEL}/v-gone/evaluation.json`, JSON.stringify({ accuracy: 0.88, latencyMsP95: 3, errorRate: 0 }));
    const candidate = await serve({ modelName: MODEL });
    const result = await loadHandler({ EVAL_SAMPLES: '200' })(stateFor(candidate.endpoint, 'v-alone', MODEL));
    expect(result).toMatchObject({ passed: true, production: { version: 'v-gone', accuracy: 0.88 } });
    expect(result.production).not.toHaveProperty('latencyMsP95');
    expect(result.summary).toMatch(/production v-gone 0\.8800 \(accuracy from its own evaluation: production's endpoint could not be reached \(http:\/\/127\.0\.0\.1:\d+\/v1\/models\/fashion-champion-down:predict: ECONNREFUSED\)\)\.$/);
  });

  it('selects EVAL_SAMPLES images deterministically and representatively, whatever the file order', async () => {
    const picked = selectIndices(1000, 500);
    expect(selectIndices(1000, 500)).toEqual(picked);
    expect(new Set(picked).size).toBe(500);
    expect(picked.every((i, k) => i >= 0 && i < 1000 && (k === 0 || i > picked[k - 1]!))).toBe(true);
    // Labels are index mod 10 (as in the staged Fashion-MNIST): every class is represented near 50 times.
    const perClass = Array.from({ length: 10 }, (_, c) => picked.filter((i) => i % 10 === c).length);
    expect(Math.min(...perClass)).toBeGreaterThanOrEqual(30);
    expect(Math.max(...perClass)).toBeLessThanOrEqual(70);
    expect(selectIndices(10, 50)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);

    // Wrong on class 0 and class 1: accuracy is exactly the share of the sample in classes 2..9.
    const server = await serve({ modelName: MODEL, correct: (i) => i % 10 > 1 });
    const result = await loadHandler({ EVAL_SAMPLES: '500', EVAL_BATCH_SIZE: '64' })(stateFor(server.endpoint, 'v-sampled'));
    const expected = picked.filter((i) => i % 10 > 1).length / 500;
    expect(result).toMatchObject({ passed: false, accuracy: expected, samples: 500, errorRate: 0 });
    expect(result.summary).toBe(`Failed on 500 samples: accuracy ${expected.toFixed(4)} < 0.8500.`);
    expect(server.requests.flatMap((r) => r.indices).sort((a, b) => a - b)).toEqual(picked);
    expect(server.requests.map((r) => r.instances).sort((a, b) => a - b)).toEqual([52, 64, 64, 64, 64, 64, 64, 64]);
  });

  it('fails a server that answers 404: error rate 1, accuracy 0, never a pass', async () => {
    const server = await serve({ modelName: MODEL, mode: 'not-found' });
    const result = await loadHandler()(stateFor(server.endpoint, 'v-404'));
    expect(result).toMatchObject({ passed: false, accuracy: 0, errorRate: 1 });
    expect(result.summary).toMatch(/error rate 100% > 1% \(batch 0: HTTP 404\)/);
  });

  it.each([
    ['one prediction too few', 'short' as const, /99 predictions for 100 instances/],
    ['a body that is not JSON', 'not-json' as const, /response is not JSON/],
  ])('counts %s as a failed request', async (_what, mode, error) => {
    const server = await serve({ modelName: MODEL, mode });
    const result = await loadHandler()(stateFor(server.endpoint, `v-${mode}`));
    expect(result).toMatchObject({ passed: false, accuracy: 0, errorRate: 1 });
    expect(result.summary).toMatch(error);
  });

  it('counts every instance of a failed request as wrong, never as right', async () => {
    const server = await serve({ modelName: MODEL, mode: 'fail-first-batch' });
    const result = await loadHandler({ MAX_ERROR_RATE: '0.2', MIN_ACCURACY: '0.5' })(stateFor(server.endpoint, 'v-partial'));
    expect(result).toMatchObject({ passed: true, accuracy: 0.9, errorRate: 0.1 });
  });

  it('sends a predict request whose connection closed before any answer once more, not counting it against the model', async () => {
    const server = await serve({ modelName: MODEL, mode: 'drop-first' });
    const result = await loadHandler()(stateFor(server.endpoint, 'v-dropped'));
    expect(result).toMatchObject({ passed: true, accuracy: 1, errorRate: 0 });
    expect(server.requests).toHaveLength(11); // 10 batches, the dropped one twice
  });

  it('retries a dropped connection only once: a server that always drops is unreachable', async () => {
    const server = await serve({ modelName: MODEL, mode: 'drop-all' });
    await expect(loadHandler({ EVAL_SAMPLES: '200' })(stateFor(server.endpoint, 'v-drop-all'))).rejects.toThrow(/could not be reached by any of 2 requests: UND_ERR_SOCKET|ECONNRESET/);
    expect(server.requests).toHaveLength(4);
  });

  it('fails on p95 latency over MAX_P95_LATENCY_MS', async () => {
    const server = await serve({ modelName: MODEL, delayMs: 150 });
    const result = await loadHandler({ EVAL_SAMPLES: '400', MAX_P95_LATENCY_MS: '100' })(stateFor(server.endpoint, 'v-slow'));
    expect(result.passed).toBe(false);
    expect(result.latencyMsP95).toBeGreaterThanOrEqual(150);
    expect(result.summary).toMatch(/p95 latency [\d.]+ ms > 100 ms/);
  });

  it('fails a model that is worse than production by more than MAX_ACCURACY_DROP', async () => {
    // A model of its own: the production.json written here must not reach the other tests.
    const MODEL = 'fashion-vs-production';
    await putObject(`models/${MODEL}/production.json`, JSON.stringify({ modelName: MODEL, version: 'v-prod', previousVersion: null, endpoint: null, switchedAt: '', history: [] }));
    await putObject(`models/${MODEL}/v-prod/evaluation.json`, JSON.stringify({ accuracy: 0.95, latencyMsP95: 5, errorRate: 0 }));
    const server = await serve({ modelName: MODEL, correct: (i) => i % 10 !== 0 });
    const result = await loadHandler()(stateFor(server.endpoint, 'v-worse', MODEL));
    expect(result).toMatchObject({ passed: false, accuracy: 0.9, production: { version: 'v-prod', accuracy: 0.95 } });
    expect(result.summary).toBe('Failed on 1000 samples: accuracy 0.9000 is more than 0.0100 below production v-prod (0.9500, accuracy from its own evaluation: production has no endpoint on record).');

    // Production without an evaluation.json: no comparison, and the summary says why.
    await putObject(`models/${MODEL}/production.json`, JSON.stringify({ modelName: MODEL, version: 'v-unmeasured', previousVersion: null, endpoint: null, switchedAt: '', history: [] }));
    const unmeasured = await loadHandler()(stateFor(server.endpoint, 'v-vs-unmeasured', MODEL));
    expect(unmeasured).toMatchObject({ passed: true, production: null });
    expect(unmeasured.summary).toMatch(/; production v-unmeasured has no evaluation\.json to compare with and production has no endpoint on record\.$/);
    await putObject(`models/${MODEL}/production.json`, JSON.stringify({ modelName: MODEL, version: 'v-prod', previousVersion: null, endpoint: null, switchedAt: '', history: [] }));

    const better = await serve({ modelName: MODEL });
    const ok = await loadHandler()(stateFor(better.endpoint, 'v-better', MODEL));
    expect(ok).toMatchObject({ passed: true, accuracy: 1 });
    expect(ok.summary).toMatch(/production v-prod 0\.9500 \(accuracy from its own evaluation: production has no endpoint on record\)\.$/);
  });

  it('throws EvaluationError when no request reaches the endpoint', async () => {
    const server = await serve({ modelName: MODEL });
    await server.stop();
    await expect(loadHandler()(stateFor(server.endpoint, 'v-down'))).rejects.toMatchObject({
      name: 'EvaluationError',
      message: expect.stringMatching(/could not be reached by any of 10 requests: ECONNREFUSED/),
    });
  });

  it('throws EvaluationError when the held-out data is missing', async () => {
    const server = await serve({ modelName: MODEL });
    const state = stateFor(server.endpoint, 'v-nodata');
    state.run.evalDataUri = `s3://${BUCKET}/datasets/absent/`;
    await expect(loadHandler()(state)).rejects.toMatchObject({
      name: 'EvaluationError',
      message: `Held-out data missing: no t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte under s3://${BUCKET}/datasets/absent/.`,
    });
    expect(server.requests).toHaveLength(0);
  });

  it('refuses a state without a serving staging endpoint, naming the field', async () => {
    const state = stateFor('not a url', 'v-bad');
    await expect(loadHandler()(state)).rejects.toMatchObject({ name: 'InvalidInputError', message: expect.stringMatching(/staging\.endpoint/) });
  });

  it('writes a predict request whose pixels are the very float32 values of byte / 255, in the fewest digits', () => {
    const images = Uint8Array.from({ length: 4 * 784 }, (_, i) => (i * 7) % 256);
    const indices = [3, 0, 2];
    const body = predictBody(images, 784, indices);
    // The server reads the numbers into a Float32Array: the model's input is exactly byte / 255 as float32.
    const sent = (JSON.parse(body) as { instances: number[][] }).instances;
    expect(sent.map((row) => Array.from(Float32Array.from(row)))).toEqual(indices.map((i) => Array.from(Float32Array.from(images.subarray(i * 784, (i + 1) * 784), (px) => px / 255))));
    // Every byte value: the same float32, and never longer than the double's text (1/255: 0.003921569 instead of 0.00392156862745098).
    for (let v = 0; v < 256; v++) {
      expect(Math.fround(Number(PIXEL_JSON[v]))).toBe(Math.fround(v / 255));
      expect(PIXEL_JSON[v]!.length).toBeLessThanOrEqual(JSON.stringify(v / 255).length);
    }
    expect(PIXEL_JSON[1]).toBe('0.003921569');
    expect(body.length).toBeLessThan(0.7 * JSON.stringify({ instances: sent.map((row) => row.map((x) => Math.round(x * 255) / 255)) }).length);
    expect(predictBody(images, 784, [])).toBe('{"instances":[]}');
  });

  it('computes nearest-rank percentiles', () => {
    expect(percentile([5, 1, 4, 2, 3], 50)).toBe(3);
    expect(percentile(Array.from({ length: 100 }, (_, i) => i + 1), 95)).toBe(95);
    expect(percentile([], 95)).toBe(0);
  });
});
