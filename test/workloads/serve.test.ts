/**
 * examples/fashion-mnist/serve.ts as a child process serving a small model trained here: TF Serving's REST
 * API (status, predict, errors), Prometheus metrics, X-Model-Version, the FAULT drill setting, readiness
 * while loading, load failure, SIGTERM; bearer-token auth (AUTH_TOKEN_FILE, the admin port, rotation).
 */
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { tokenFingerprint } from '../../examples/fashion-mnist/auth';
import { decodeIdx } from '../../examples/fashion-mnist/idx';
import { saveModelToS3, toTfjsModel } from '../../examples/fashion-mnist/model-io';
import { getBytes, s3 } from '../../examples/fashion-mnist/s3';
import { stageFashionMnist } from '../../examples/fashion-mnist/stage-data';
import { trainMlp } from '../../examples/fashion-mnist/trainer';
import { BUCKET, bundleScripts, finished, removeScriptBundles, runScript, startScript, startTestS3, waitForOutput, type TestS3 } from './helpers';

const SERVE = 'examples/fashion-mnist/serve.ts';
const MODEL_URI = `s3://${BUCKET}/models/fm/v1/`;

describe('serve.ts', () => {
  let local: TestS3;
  let server: ReturnType<typeof startScript>;
  let base: string;
  let testImages: Uint8Array;
  let testLabels: Uint8Array;

  beforeAll(async () => {
    local = await startTestS3();
    await bundleScripts();
    const { uri } = await stageFashionMnist({ bucket: BUCKET });
    const prefix = uri.replace(`s3://${BUCKET}/`, '');
    const images = decodeIdx(await getBytes(BUCKET, `${prefix}train-images-idx3-ubyte`));
    const labels = decodeIdx(await getBytes(BUCKET, `${prefix}train-labels-idx1-ubyte`));
    testImages = decodeIdx(await getBytes(BUCKET, `${prefix}t10k-images-idx3-ubyte`)).data;
    testLabels = decodeIdx(await getBytes(BUCKET, `${prefix}t10k-labels-idx1-ubyte`)).data;
    // A small model, trained in-process (one thread: jest cannot start TypeScript workers) and saved the
    // way train.ts saves it.
    const trained = await trainMlp(
      { images: images.data, labels: labels.data, count: 3000, inputs: 784, classes: 10 },
      { epochs: 2, batchSize: 64, learningRate: 0.003, hiddenUnits: 32, seed: 1, validationSplit: 0.1, threads: 1, learningRateSchedule: 'linear', finalLearningRateFraction: 0.05 },
    );
    await saveModelToS3(toTfjsModel(trained.shape, trained.params), MODEL_URI);

    server = startScript(SERVE, { ...local.env, MODEL_URI, MODEL_NAME: 'fm', MODEL_VERSION: 'v1', PORT: '0' });
    const [, port] = await waitForOutput(server, /serving fm on port (\d+)/);
    base = `http://127.0.0.1:${port}`;
    await waitForOutput(server, /model fm AVAILABLE/);
  });

  afterAll(async () => {
    if (server.exitCode === null) {
      server.kill('SIGKILL');
      await finished(server);
    }
    s3().destroy();
    await local.stop();
    removeScriptBundles();
  });

  const post = (path: string, body: unknown): Promise<Response> =>
    fetch(base + path, { method: 'POST', body: typeof body === 'string' ? body : JSON.stringify(body), headers: { 'content-type': 'application/json' } });
  const image = (i: number): number[] => Array.from(testImages.subarray(i * 784, (i + 1) * 784), (v) => v / 255);
  const metric = (text: string, series: string): number => {
    const line = text.split('\n').find((l) => l.startsWith(`${series} `));
    return line === undefined ? 0 : Number(line.slice(series.length + 1));
  };

  it('reports the model AVAILABLE in TF Serving\'s shape', async () => {
    const res = await fetch(`${base}/v1/models/fm`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({
      model_version_status: [{ version: '1', state: 'AVAILABLE', status: { error_code: 'OK', error_message: '' } }],
    });
    expect((await fetch(`${base}/v1/models/fm/versions/1`)).status).toBe(200);
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
  });

  it('predicts 100 held-out images: one probability vector of 10 per instance, mostly right', async () => {
    // Act
    const res = await post('/v1/models/fm:predict', { instances: Array.from({ length: 100 }, (_, i) => image(i)) });

    // Assess
    expect(res.status).toBe(200);
    const { predictions } = (await res.json()) as { predictions: number[][] };
    expect(predictions).toHaveLength(100);
    let correct = 0;
    predictions.forEach((p, i) => {
      expect(p).toHaveLength(10);
      expect(p.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 4);
      for (const v of p) expect(v).toBeGreaterThanOrEqual(0);
      if (p.indexOf(Math.max(...p)) === testLabels[i]) correct++;
    });
    expect(correct).toBeGreaterThan(60); // chance is 10
  });

  it.each([
    ['a body that is not JSON', '{"instances": [', /^Request body is not JSON/],
    ['no instances field', { inputs: [[0]] }, /^instances: /],
    ['an empty instances list', { instances: [] }, /^instances: must hold at least one instance/],
    ['an instance of the wrong size', { instances: [new Array(784).fill(0), [0.5, 0.5]] }, /^instances\[1\]: has 2 values, expected 784/],
    ['values that are not numbers', { instances: [['0.5', ...new Array(783).fill(0)]] }, /^instances\[0\]\[0\]: .*expected number/],
    ['an instance that is not a list', { instances: [5] }, /^instances\[0\]: /],
    ['too many instances', { instances: Array.from({ length: 1001 }, () => [0]) }, /at most 1000 instances/],
  ])('answers 400 with an error for %s', async (_, body, message) => {
    const res = await post('/v1/models/fm:predict', body);
    expect(res.status).toBe(400);
    const json = (await res.json()) as { error: string };
    expect(json.error).toMatch(message);
  });

  it('names its version in X-Model-Version on every answer (so a client can tell canary from stable)', async () => {
    const answers = [
      await post('/v1/models/fm:predict', { instances: [image(0)] }),
      await post('/v1/models/fm:predict', { instances: [] }),
      await fetch(`${base}/v1/models/fm`),
      await fetch(`${base}/metrics`),
      await fetch(`${base}/nowhere`),
    ];
    expect(answers.map((r) => [r.status, r.headers.get('x-model-version')])).toEqual([
      [200, 'v1'],
      [400, 'v1'],
      [200, 'v1'],
      [200, 'v1'],
      [404, 'v1'],
    ]);
  });

  it('answers 404 for another model or version, 405 for a wrong method', async () => {
    const other = await fetch(`${base}/v1/models/other`);
    expect(other.status).toBe(404);
    expect(await other.json()).toEqual({ error: 'Servable not found for request: Latest(other)' });
    expect((await post('/v1/models/other:predict', { instances: [image(0)] })).status).toBe(404);
    expect((await fetch(`${base}/v1/models/fm/versions/2`)).status).toBe(404);
    expect((await fetch(`${base}/v1/models/fm:predict`)).status).toBe(405);
  });

  it('counts requests, errors, latency and instances in /metrics', async () => {
    // Prepare
    const before = await (await fetch(`${base}/metrics`)).text();

    // Act
    await post('/v1/models/fm:predict', { instances: [image(0), image(1), image(2)] });
    await post('/v1/models/fm:predict', { instances: [[1, 2]] });
    const after = await (await fetch(`${base}/metrics`)).text();

    // Assess
    expect(after).toMatch(/^# TYPE serving_request_duration_seconds histogram$/m);
    expect(metric(after, 'serving_instances_predicted_total') - metric(before, 'serving_instances_predicted_total')).toBe(3);
    const ok = 'serving_requests_total{route="predict",code="200"}';
    const bad = 'serving_requests_total{route="predict",code="400"}';
    expect(metric(after, ok) - metric(before, ok)).toBe(1);
    expect(metric(after, bad) - metric(before, bad)).toBe(1);
    const errors = 'serving_request_errors_total{route="predict"}';
    expect(metric(after, errors) - metric(before, errors)).toBe(1);
    const count = 'serving_request_duration_seconds_count{route="predict"}';
    expect(metric(after, count) - metric(before, count)).toBe(2);
    const inf = 'serving_request_duration_seconds_bucket{route="predict",le="+Inf"}';
    expect(metric(after, inf)).toBe(metric(after, count));
    expect(metric(after, 'serving_model_available')).toBe(1);
  });

  it('counts each instance under its predicted class (mlpipe_predictions_total{class})', async () => {
    // Prepare
    const instances = Array.from({ length: 20 }, (_, i) => image(i));
    const before = await (await fetch(`${base}/metrics`)).text();

    // Act
    const { predictions } = (await (await post('/v1/models/fm:predict', { instances })).json()) as { predictions: number[][] };
    const after = await (await fetch(`${base}/metrics`)).text();

    // Assess: per class, exactly the instances whose highest probability is that class
    expect(after).toMatch(/^# TYPE mlpipe_predictions_total counter$/m);
    const expected = new Map<number, number>();
    for (const p of predictions) expected.set(p.indexOf(Math.max(...p)), (expected.get(p.indexOf(Math.max(...p))) ?? 0) + 1);
    for (let c = 0; c < 10; c++) {
      const series = `mlpipe_predictions_total{class="${c}"}`;
      expect([c, metric(after, series) - metric(before, series)]).toEqual([c, expected.get(c) ?? 0]);
    }
  });

  it('is not ready (503, LOADING) while the model is still loading', async () => {
    // An "S3" that accepts connections and never answers keeps the server in its loading phase.
    const sockets: Socket[] = [];
    const silent: Server = createServer((socket) => sockets.push(socket));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const port = (silent.address() as { port: number }).port;
    const loading = startScript(SERVE, { ...local.env, AWS_ENDPOINT_URL_S3: `http://127.0.0.1:${port}`, MODEL_URI, MODEL_NAME: 'fm', PORT: '0' });
    try {
      const [, servePort] = await waitForOutput(loading, /serving fm on port (\d+)/);
      const res = await fetch(`http://127.0.0.1:${servePort}/v1/models/fm`);
      expect(res.status).toBe(503);
      const body = (await res.json()) as { model_version_status: { state: string }[] };
      expect(body.model_version_status[0]!.state).toBe('LOADING');
      expect((await fetch(`http://127.0.0.1:${servePort}/healthz`)).status).toBe(200);
    } finally {
      loading.kill('SIGKILL');
      await finished(loading);
      for (const s of sockets) s.destroy();
      await new Promise((resolve) => silent.close(resolve));
    }
  });

  it('exits 1 with a message when the model cannot be loaded, 2 on invalid environment', async () => {
    const missing = await finished(startScript(SERVE, { ...local.env, MODEL_URI: `s3://${BUCKET}/models/none/v9/`, MODEL_NAME: 'fm', PORT: '0' }));
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/could not load the model from s3:\/\/mlpipe-workloads-test\/models\/none\/v9\/: .*model\.json does not exist/);

    const invalid = await finished(startScript(SERVE, { ...local.env, MODEL_NAME: 'fm', PORT: 'http', FAULT: 'error-rate=2', MODEL_VERSION: 'v 1' }));
    expect(invalid.code).toBe(2);
    expect(invalid.stderr).toMatch(/MODEL_URI: is not set/);
    expect(invalid.stderr).toMatch(/PORT: /);
    expect(invalid.stderr).toMatch(/FAULT: error-rate must be a fraction between 0 and 1, not "2"/);
    expect(invalid.stderr).toMatch(/MODEL_VERSION: must be a version name/);
  });

  it('with FAULT fails that share of predictions (500) and delays them, never probes or metrics; exits 0 on SIGTERM', async () => {
    // A server of its own (the shared one keeps serving the other tests, whatever order they run in); it
    // also serves the SIGTERM check, which needs a server to stop anyway.
    const own = startScript(SERVE, { ...local.env, MODEL_URI, MODEL_NAME: 'fm', MODEL_VERSION: 'v2', PORT: '0', FAULT: 'error-rate=0.5,latency-ms=40' });
    const [, port] = await waitForOutput(own, /serving fm on port (\d+) of \S+ \(\/v1\/models\/fm\), version v2;/);
    await waitForOutput(own, /model fm AVAILABLE/);
    const at = `http://127.0.0.1:${port}`;
    expect(own.output.stdout).toMatch(/FAULT error-rate=0\.5,latency-ms=40: prediction requests fail or slow down on purpose/);

    // Act: six predictions in a row, timed; then a status read and /metrics.
    const outcomes: Array<[number, string | null]> = [];
    for (let i = 0; i < 6; i++) {
      const started = performance.now();
      const res = await fetch(`${at}/v1/models/fm:predict`, { method: 'POST', body: JSON.stringify({ instances: [image(i)] }) });
      const body = (await res.json()) as { error?: string };
      expect(performance.now() - started).toBeGreaterThanOrEqual(40);
      outcomes.push([res.status, body.error ?? null]);
    }
    const status = await fetch(`${at}/v1/models/fm`);
    const metrics = await (await fetch(`${at}/metrics`)).text();

    // Assess: every second one fails (exactly half, evenly), with a message saying it was on purpose.
    const injected = 'Injected fault (FAULT error-rate=0.5,latency-ms=40): this request fails on purpose.';
    expect(outcomes).toEqual([[200, null], [500, injected], [200, null], [500, injected], [200, null], [500, injected]]);
    expect(status.status).toBe(200);
    expect(metric(metrics, 'serving_requests_total{route="predict",code="500"}')).toBe(3);
    expect(metric(metrics, 'serving_requests_total{route="predict",code="200"}')).toBe(3);
    expect(metric(metrics, 'serving_request_duration_seconds_bucket{route="predict",le="0.025"}')).toBe(0);
    // Injected failures are not logged as server errors (a drill would flood the log).
    expect(own.output.stderr).not.toMatch(/Injected fault/);

    own.kill('SIGTERM');
    const end = await finished(own);
    expect(end.code).toBe(0);
    expect(end.stdout).toMatch(/SIGTERM: finishing requests in flight/);
  });

  it('with AUTH_TOKEN_FILE: 401 without or with a wrong token, 200 with it; probes and /metrics on the admin port only; a rotation keeps both tokens valid, then the old one stops', async () => {
    // Arrange: the token file as a mounted Secret is updated (a new file renamed over the old one).
    const dir = mkdtempSync(join(tmpdir(), 'serve-auth-'));
    const file = join(dir, 'tokens');
    const writeTokens = (...tokens: string[]): void => {
      writeFileSync(`${file}.new`, `${tokens.join('\n')}\n`);
      renameSync(`${file}.new`, file);
    };
    const [oldToken, newToken] = ['old-token-AbC123', 'new-token-that-is-longer-XyZ789'];
    writeTokens(oldToken);
    const own = startScript(SERVE, { ...local.env, MODEL_URI, MODEL_NAME: 'fm', PORT: '0', ADMIN_PORT: '0', AUTH_TOKEN_FILE: file });
    try {
      const [, port] = await waitForOutput(own, /serving fm on port (\d+)/);
      const [, adminPort] = await waitForOutput(own, /endpoint auth on: 1 token\(s\) accepted from AUTH_TOKEN_FILE; probes and \/metrics without a token on admin port (\d+)/);
      await waitForOutput(own, /model fm AVAILABLE/);
      const at = `http://127.0.0.1:${port}`;
      const admin = `http://127.0.0.1:${adminPort}`;
      const predict = (token?: string, scheme = 'Bearer') =>
        fetch(`${at}/v1/models/fm:predict`, { method: 'POST', body: JSON.stringify({ instances: [image(0)] }), headers: token === undefined ? {} : { authorization: `${scheme} ${token}` } });

      // Act + Assess: the Service port wants the token, on every path.
      const none = await predict();
      expect(none.status).toBe(401);
      expect(none.headers.get('www-authenticate')).toBe('Bearer realm="mlpipe"');
      const wrong = await predict('not-the-token');
      expect(wrong.status).toBe(401);
      expect(wrong.headers.get('www-authenticate')).toBe('Bearer realm="mlpipe", error="invalid_token"');
      expect((await predict(oldToken.slice(0, -1))).status).toBe(401); // a prefix is not the token
      expect((await predict(oldToken, 'Basic')).status).toBe(401);
      expect((await predict(oldToken)).status).toBe(200);
      expect((await predict(oldToken, 'bearer')).status).toBe(200); // the scheme is case-insensitive (RFC 7235)
      for (const path of ['/v1/models/fm', '/metrics', '/healthz']) expect((await fetch(`${at}${path}`)).status).toBe(401);
      expect((await fetch(`${at}/v1/models/fm`, { headers: { authorization: `Bearer ${oldToken}` } })).status).toBe(200);

      // The admin port: probes and /metrics without a token, never a prediction.
      expect((await fetch(`${admin}/v1/models/fm`)).status).toBe(200);
      expect((await fetch(`${admin}/healthz`)).status).toBe(200);
      expect((await fetch(`${admin}/v1/models/fm:predict`, { method: 'POST', body: '{"instances":[[0]]}' })).status).toBe(404);
      const metrics = await (await fetch(`${admin}/metrics`)).text();
      expect(metric(metrics, 'serving_requests_total{route="unauthorized",code="401"}')).toBe(7);
      expect(metric(metrics, 'serving_requests_total{route="predict",code="401"}')).toBe(0); // scanners are not the model's errors
      expect(metric(metrics, `serving_auth_token_loaded{fingerprint="${tokenFingerprint(oldToken)}"}`)).toBe(1);
      expect(metrics).not.toContain(oldToken);

      // Rotation: the new token is added; both work, no restart.
      writeTokens(newToken, oldToken);
      expect((await predict(newToken)).status).toBe(200);
      expect((await predict(oldToken)).status).toBe(200);
      expect(metric(await (await fetch(`${admin}/metrics`)).text(), `serving_auth_token_loaded{fingerprint="${tokenFingerprint(newToken)}"}`)).toBe(1);
      // Finished: only the new one.
      writeTokens(newToken);
      expect((await predict(oldToken)).status).toBe(401);
      expect((await predict(newToken)).status).toBe(200);
      expect(own.output.stdout + own.output.stderr).not.toMatch(new RegExp(`${oldToken}|${newToken}`));
    } finally {
      own.kill('SIGTERM');
      await finished(own);
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('exits 2 naming AUTH_TOKEN_FILE when it is missing or holds no token', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'serve-auth-'));
    try {
      writeFileSync(join(dir, 'empty'), '\n \n');
      const run = (f: string) => runScript(SERVE, { ...local.env, MODEL_URI, MODEL_NAME: 'fm', PORT: '0', AUTH_TOKEN_FILE: join(dir, f) });
      const [missing, empty] = await Promise.all([run('absent'), run('empty')]);
      expect([missing.code, empty.code]).toEqual([2, 2]);
      expect(missing.stderr).toMatch(/AUTH_TOKEN_FILE: AUTH_TOKEN_FILE .*absent cannot be read: ENOENT/);
      expect(empty.stderr).toMatch(/AUTH_TOKEN_FILE: AUTH_TOKEN_FILE .*empty holds no token/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
