/**
 * The Monitor handler (functions/monitor.ts) against the local Kubernetes API and local S3: real example
 * servers (examples/fashion-mnist/serve.ts, bundled as the local run starts them) in production pods, read
 * through the pod proxy with a token bound to the production namespace, traffic sent between scrapes:
 * normal traffic keeps every alarm OK; then traffic of one class only fires the drift alarm; a slow server
 * (FAULT latency-ms, another model) fires the p95 alarm. Each alarm needs 2 of the last 3 scrapes above
 * its threshold (functions/shared/serving-monitor.ts), as the CloudWatch alarms do.
 *
 * The model is a nearest-template classifier over ten seeded random 28×28 "templates" (a real tfjs
 * layers model, loaded by the real server): an instance near template c is predicted as class c, so the
 * test chooses the class distribution exactly, without the dataset or any training.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { startLocalKube, type LocalKube } from '../../local/kube';
import { LOCAL_AWS_ENV, startLocalS3, type LocalS3 } from '../../local/s3';
import { bundleImages } from '../../local/images';
import { saveModelToS3, toTfjsModel } from '../../examples/fashion-mnist/model-io';
import { seededRandom } from '../../functions/shared/random';
import { getJson, putJson, resetClients } from '../../functions/shared/clients';
import { resetKube } from '../../functions/shared/kube';
import { reloadSettings } from '../../functions/shared/settings';
import { MIN_RATE_REQUESTS, monitorKeys, type MonitorSnapshot } from '../../functions/shared/serving-monitor';
import { handler } from '../../functions/monitor';
import { monitorRbacYaml } from '../../lib/monitor-rbac';
import { asKubernetesGroup } from './env';

const REPO_ROOT = join(__dirname, '..', '..');
const NS = 'mlpipe-production';
const BUCKET = 'mlpipe-monitor-test';
/** The least-privilege case's artifact bucket: its scrapes leave the other tests' monitor state alone. */
const RBAC_BUCKET = 'mlpipe-monitor-rbac-test';
const IMAGE = 'mlpipe/fashion-mnist-serve:test';
const PIXELS = 784;
const CLASSES = 10;

/** Ten seeded random templates in 0..1 (class c = template c). */
const rand = seededRandom(7);
const TEMPLATES = Array.from({ length: CLASSES }, () => Array.from({ length: PIXELS }, () => rand()));

/** An instance of class c: its template with a little noise. */
const instanceOf = (c: number): number[] => TEMPLATES[c]!.map((v) => Math.min(1, Math.max(0, v + (rand() - 0.5) * 0.1)));

/** Nearest template as an MLP: hidden unit c = t_c·x − ½‖t_c‖² + 300 (ReLU never cuts it), output = softmax(0.05·hidden). */
function templateModel() {
  const shape = { inputs: PIXELS, hidden: CLASSES, classes: CLASSES };
  const w1 = new Float32Array(PIXELS * CLASSES);
  const b1 = new Float32Array(CLASSES);
  TEMPLATES.forEach((t, c) => {
    t.forEach((v, i) => (w1[i * CLASSES + c] = v));
    b1[c] = 300 - 0.5 * t.reduce((s, v) => s + v * v, 0);
  });
  const w2 = new Float32Array(CLASSES * CLASSES);
  for (let c = 0; c < CLASSES; c++) w2[c * CLASSES + c] = 0.05;
  return toTfjsModel(shape, { w1, b1, w2, b2: new Float32Array(CLASSES) });
}

describe('Monitor handler: production through the pod proxy', () => {
  let dir: string;
  let kube: LocalKube;
  let s3: LocalS3;
  let apps: k8s.AppsV1Api;
  let core: k8s.CoreV1Api;
  let objects: k8s.KubernetesObjectApi;
  const savedEnv = { ...process.env };

  /** A production Deployment of `model` v1 (the labels DeployProduction gives it), one pod of the example server. */
  const deploy = (model: string, env: Record<string, string> = {}) =>
    apps.createNamespacedDeployment({
      namespace: NS,
      body: {
        metadata: { name: `${model}-v1` },
        spec: {
          replicas: 1,
          selector: { matchLabels: { 'app.kubernetes.io/name': model, 'mlpipe.dev/version': 'v1' } },
          template: {
            metadata: { labels: { 'app.kubernetes.io/name': model, 'app.kubernetes.io/managed-by': 'mlpipe', 'mlpipe.dev/version': 'v1', 'mlpipe.dev/stage': 'production' } },
            spec: {
              containers: [
                {
                  name: 'server',
                  image: IMAGE,
                  env: Object.entries({ MODEL_NAME: model, MODEL_VERSION: 'v1', MODEL_URI: `s3://${BUCKET}/models/shared/v1/`, ...env }).map(([name, value]) => ({ name, value })),
                  ports: [{ containerPort: 8501, name: 'http' }],
                  readinessProbe: { httpGet: { path: `/v1/models/${model}`, port: 8501 }, periodSeconds: 1 },
                },
              ],
            },
          },
        },
      },
    });

  /** The model's pod once it is ready (its readiness probe passed: the model is loaded). */
  async function readyPod(model: string): Promise<string> {
    for (;;) {
      const pods = await core.listNamespacedPod({ namespace: NS, labelSelector: `app.kubernetes.io/name=${model}` });
      const ready = pods.items.find((p) => p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'));
      if (ready) return ready.metadata!.name!;
      await new Promise((r) => setTimeout(r, 100)); // polling the API for a condition, not a sleep-and-hope
    }
  }

  /** `requests` predict requests of `perRequest` instances each, class `classOf(i)` for the i-th instance, through the pod proxy. */
  async function traffic(model: string, requests: number, perRequest: number, classOf: (i: number) => number): Promise<void> {
    const pod = await readyPod(model);
    const url = `${kube.url}/api/v1/namespaces/${NS}/pods/${pod}:8501/proxy/v1/models/${model}:predict`;
    // Four in flight: the latency measured is the server's, not a queue this test builds on a shared machine.
    let next = 0;
    const send = async (): Promise<void> => {
      for (let r = next++; r < requests; r = next++) {
        const instances = Array.from({ length: perRequest }, (_, k) => instanceOf(classOf(r * perRequest + k)));
        const res = await fetch(url, { method: 'POST', body: JSON.stringify({ instances }), headers: { authorization: `Bearer ${kube.token}` } });
        expect(res.status).toBe(200);
        await res.arrayBuffer();
      }
    };
    await Promise.all([send(), send(), send(), send()]);
  }

  /** One scheduled invocation of the Monitor for `model` (MODEL_NAME is the stack's model: one per test here). */
  async function scrape(model: string): Promise<MonitorSnapshot> {
    process.env.MODEL_NAME = model;
    reloadSettings();
    return handler({ source: 'aws.scheduler' });
  }

  /** The model serves v1 in production, and v1's evaluation predicted each class equally often. */
  async function register(model: string, bucket = BUCKET): Promise<void> {
    await putJson(bucket, `models/${model}/production.json`, { modelName: model, version: 'v1', endpoint: 'http://127.0.0.1:1', history: [] });
    const confusion = Array.from({ length: CLASSES }, (_, t) => Array.from({ length: CLASSES }, (_, p) => (t === p ? 90 : 1)));
    await putJson(bucket, `models/${model}/v1/evaluation.json`, { modelName: model, version: 'v1', details: { confusion } });
  }

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'mlpipe-monitor-'));
    s3 = await startLocalS3({ dir: join(dir, 's3'), buckets: [BUCKET, RBAC_BUCKET] });
    Object.assign(process.env, LOCAL_AWS_ENV, { AWS_ENDPOINT_URL_S3: s3.endpoint });
    resetClients();
    const [images] = await Promise.all([
      bundleImages({ [IMAGE]: join(REPO_ROOT, 'examples/fashion-mnist/serve.ts') }, [], join(dir, 'images'), REPO_ROOT),
      saveModelToS3(templateModel(), `s3://${BUCKET}/models/shared/v1/`),
    ]);
    kube = await startLocalKube({ stateDir: join(dir, 'kube'), images, namespaces: [NS], env: { ...LOCAL_AWS_ENV, AWS_ENDPOINT_URL_S3: s3.endpoint } });
    const kc = new k8s.KubeConfig();
    kc.loadFromFile(kube.kubeconfigPath);
    apps = kc.makeApiClient(k8s.AppsV1Api);
    core = kc.makeApiClient(k8s.CoreV1Api);
    objects = k8s.KubernetesObjectApi.makeApiClient(kc);
    await Promise.all([register('fm'), deploy('fm')]);
    // A slow server: every prediction 400 ms late (the drill knob), against the default 250 ms p95 threshold.
    await Promise.all([register('slow'), deploy('slow', { FAULT: 'latency-ms=400' })]);
    // The monitor's access: a token bound to the production namespace only, as its EKS access entry.
    Object.assign(process.env, {
      KUBECONFIG: kube.mintScopedKubeconfig([NS], { username: 'mlpipe:monitor' }).kubeconfigPath,
      ARTIFACT_BUCKET: BUCKET,
      PRODUCTION_NAMESPACE: NS,
      MAX_P95_LATENCY_MS: '250',
      MAX_ERROR_RATE: '0.01',
      MAX_PREDICTION_DRIFT: '0.2',
    });
    resetKube();
    await Promise.all(['fm', 'slow'].map(readyPod));
  }, 60_000);

  afterAll(async () => {
    await kube?.stop();
    await s3?.stop();
    process.env = savedEnv;
    reloadSettings();
    resetClients();
    resetKube();
    rmSync(dir, { recursive: true, force: true });
  });

  it('normal traffic: numbers per window, drift near 0, alarms OK; then traffic of one class only fires the drift alarm (2 of 3)', async () => {
    // Prepare: a baseline scrape
    const baseline = await scrape('fm');
    expect(baseline).toMatchObject({ windowSeconds: null, requests: 0, pods: 1, podsRead: 1 });
    // Act: two windows of 20 requests × 10 instances, every class equally often
    const windows: MonitorSnapshot[] = [];
    for (let w = 0; w < 2; w++) {
      await traffic('fm', 20, 10, (i) => i % CLASSES);
      windows.push(await scrape('fm'));
    }
    // Assess
    for (const s of windows) {
      expect(s).toMatchObject({ model: 'fm', version: 'v1', requests: 20, errors: 0, errorRate: 0, predictions: 200 });
      expect(s.classCounts).toEqual(new Array(CLASSES).fill(20));
      expect(s.drift).toBeLessThan(0.05);
      expect(s.latencyMsP95).toBeGreaterThan(0);
      expect(s.latencyMsP95).toBeLessThan(250);
      expect(s.latencyMsP50!).toBeLessThanOrEqual(s.latencyMsP95!);
    }
    expect(windows[1]!.alarms.map((a) => [a.metric, a.state])).toEqual([
      ['LatencyP95', 'OK'],
      ['ErrorRate', 'OK'],
      ['PredictionDrift', 'OK'],
    ]);
    expect(await getJson<MonitorSnapshot>(BUCKET, monitorKeys.latest('fm'))).toEqual(windows[1]);
    // v1's predicted classes are kept in the state: later scrapes do not read evaluation.json again.
    await putJson(BUCKET, 'models/fm/v1/evaluation.json', { modelName: 'fm', version: 'v1' });
    expect(await getJson<{ expected?: unknown }>(BUCKET, monitorKeys.state('fm'))).toMatchObject({ expected: { version: 'v1', counts: Array(CLASSES).fill(99) } });

    // Act: now every instance is of class 3, two windows
    await traffic('fm', 20, 10, () => 3);
    const first = await scrape('fm');
    await traffic('fm', 20, 10, () => 3);
    const second = await scrape('fm');

    // Assess: one window above the threshold is not enough, two of the last three are
    expect(first.classCounts[3]).toBe(200);
    expect(first.drift).toBeGreaterThan(5);
    expect(first.alarms.find((a) => a.metric === 'PredictionDrift')?.state).toBe('OK');
    const drift = second.alarms.find((a) => a.metric === 'PredictionDrift');
    expect(drift).toMatchObject({ state: 'ALARM', threshold: 0.2, since: second.readAt });
    expect(drift?.reason).toMatch(/^PredictionDrift: 2 of the last 3 datapoints \[[\d.]+, [\d.]+, [\d.]+\] were greater than the threshold \(0\.2\)/);
    expect(second.alarms.find((a) => a.metric === 'LatencyP95')?.state).toBe('OK');
  }, 60_000);

  it('a slow server fires the p95 alarm; its predictions are still counted', async () => {
    await scrape('slow');
    // MIN_RATE_REQUESTS per window: fewer give no LatencyP95 datapoint
    await traffic('slow', MIN_RATE_REQUESTS, 1, (i) => i % CLASSES);
    await scrape('slow');
    await traffic('slow', MIN_RATE_REQUESTS, 1, (i) => i % CLASSES);
    const second = await scrape('slow');

    expect(second.latencyMsP95).toBeGreaterThan(400);
    expect(second.alarms.find((a) => a.metric === 'LatencyP95')).toMatchObject({ state: 'ALARM', threshold: 250 });
    expect(second.alarms.find((a) => a.metric === 'ErrorRate')?.state).toBe('OK');
    expect(second.predictions).toBe(MIN_RATE_REQUESTS);
  }, 60_000);

  it('monitorKubernetesGroup: with only the Role `mlpipe monitor-rbac` prints bound to its group (no access policy) it scrapes; without the binding, or without pods/proxy, it fails naming what RBAC refused', async () => {
    // An EKS access entry with kubernetesGroups [mlpipe-monitor] and no access policy: the group is all it has.
    const user = 'arn:aws:sts::123456789012:assumed-role/mlpipe-ServingMonitorRole/monitor';
    const role = k8s.loadAllYaml(monitorRbacYaml(NS, 'mlpipe-monitor')) as k8s.KubernetesObject[];
    try {
      await asKubernetesGroup(kube, { user, group: 'mlpipe-monitor' }, async () => {
        await register('fm', RBAC_BUCKET);
        // Before the cluster admin applies the Role: the pod list is refused, and the error says so.
        await expect(scrape('fm')).rejects.toThrow(`HTTP 403 Forbidden: pods is forbidden: User "${user}" cannot list resource "pods" in API group "" in the namespace "${NS}"`);

        // The Role without its pods/proxy rule: the list passes, the /metrics read is refused.
        const [fullRole, binding] = role as [k8s.KubernetesObject & { rules: unknown[] }, k8s.KubernetesObject];
        await objects.create({ ...fullRole, rules: fullRole.rules.slice(0, 1) });
        await objects.create(binding);
        const refused = await scrape('fm').then(() => '', (err: Error) => err.message);
        const pod = await readyPod('fm');
        expect(refused).toBe(`Kubernetes GET pods/proxy ${NS}/${pod}:8501/metrics failed: HTTP 403 Forbidden: pods "${pod}:8501" is forbidden: User "${user}" cannot get resource "pods/proxy" in API group "" in the namespace "${NS}"`);

        // As printed: the scrape reads the pod.
        await objects.replace(fullRole);
        const snapshot = await scrape('fm');
        expect(snapshot).toMatchObject({ model: 'fm', version: 'v1', pods: 1, podsRead: 1 });
      }, { ARTIFACT_BUCKET: RBAC_BUCKET });
    } finally {
      await Promise.all(role.map((o) => objects.delete(o).catch(() => undefined)));
    }
  }, 30_000);
});
