/**
 * pods/proxy on the local Kubernetes API, over HTTP, and the canary analysis reading through it: each
 * version's /metrics summed over its pods (functions/shared/canary-analysis.ts readVersionCounters with
 * the functions' own Kubernetes client), RBAC (a token bound to another namespace gets the real 403),
 * and the API server's own answers for a pod it cannot reach (503), that is gone (404), or a port the
 * pod does not serve (503).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { build } from 'esbuild';
import { startLocalKube, type LocalKube } from '../../local/kube';
import { counterDelta, judge, readVersionCounters, statsOf } from '../../functions/shared/canary-analysis';
import { KubernetesRequestError } from '../../functions/shared/errors';
import { PodProxyError, proxyGet, resetKube } from '../../functions/shared/kube';
import { reloadSettings } from '../../functions/shared/settings';
import { waitFor } from './helpers';

const NS = 'canary';
const DEAF = 'test.local/deaf:1';

function deployment(name: string, version: string, replicas: number, image: string, env: Record<string, string> = {}): k8s.V1Deployment {
  const labels = { model: 'm', version };
  return {
    metadata: { name },
    spec: {
      replicas,
      selector: { matchLabels: labels },
      template: {
        metadata: { labels },
        spec: {
          containers: [
            {
              name: 'server',
              image,
              env: Object.entries({ MODEL_NAME: 'm', MODEL_VERSION: version, ...env }).map(([n, value]) => ({ name: n, value })),
              ports: [{ containerPort: 8501, name: 'http' }],
              ...(image === DEAF ? {} : { readinessProbe: { httpGet: { path: '/v1/models/m', port: 8501 }, periodSeconds: 1 } }),
            },
          ],
        },
      },
    },
  };
}

describe('pods/proxy and reading canary metrics through it', () => {
  let kube: LocalKube;
  let dir: string;
  let core: k8s.CoreV1Api;
  const savedEnv = { ...process.env };
  const pods: Record<string, string[]> = {};

  const proxyUrl = (pod: string, path: string, port = 8501) => `${kube.url}/api/v1/namespaces/${NS}/pods/${pod}:${port}/proxy/${path}`;
  const admin = () => ({ Authorization: `Bearer ${kube.token}` });
  const predict = (pod: string) => fetch(proxyUrl(pod, 'v1/models/m:predict'), { method: 'POST', body: '{"instances":[[0]]}', headers: admin() });

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'mlpipe-proxy-'));
    // The fixture bundled once (~0.1 s) rather than run through tsx in each pod (~1 s of CPU per pod).
    const server = join(dir, 'metrics-server.cjs');
    await build({ entryPoints: [join(__dirname, 'fixtures', 'metrics-server.ts')], bundle: true, platform: 'node', format: 'cjs', outfile: server, logLevel: 'silent' });
    kube = await startLocalKube({
      stateDir: join(dir, 'state'),
      images: {
        'test.local/metrics:1': { command: process.execPath, args: [server] },
        // Declares the port but never listens on it: the API server cannot reach it.
        [DEAF]: { command: process.execPath, args: ['-e', 'setInterval(() => {}, 1000)'] },
      },
    });
    const kc = new k8s.KubeConfig();
    kc.loadFromFile(kube.kubeconfigPath);
    core = kc.makeApiClient(k8s.CoreV1Api);
    const apps = kc.makeApiClient(k8s.AppsV1Api);
    await core.createNamespace({ body: { metadata: { name: NS } } });
    await core.createNamespace({ body: { metadata: { name: 'elsewhere' } } });
    await apps.createNamespacedDeployment({ namespace: NS, body: deployment('stable', 'v1', 2, 'test.local/metrics:1') });
    await apps.createNamespacedDeployment({ namespace: NS, body: deployment('candidate', 'v2', 1, 'test.local/metrics:1', { FAULT: 'error-rate=0.5' }) });
    await apps.createNamespacedDeployment({ namespace: NS, body: deployment('deaf', 'v3', 1, DEAF) });
    for (const [version, n] of [['v1', 2], ['v2', 1], ['v3', 1]] as const) {
      // Servers ready (answering through their readiness probe); the deaf one merely running.
      const ready = (p: k8s.V1Pod) => version === 'v3' ? p.status?.phase === 'Running' : (p.status?.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True');
      const list = await waitFor(
        kube,
        () => core.listNamespacedPod({ namespace: NS, labelSelector: `version=${version}` }),
        (l) => l.items.length === n && l.items.every(ready),
        45_000,
      );
      pods[version] = list.items.map((p) => p.metadata!.name!);
    }
    process.env.KUBECONFIG = kube.kubeconfigPath;
    reloadSettings();
    resetKube();
  });

  afterAll(async () => {
    await kube.stop();
    rmSync(dir, { recursive: true, force: true });
    process.env = savedEnv;
    reloadSettings();
    resetKube();
  });

  it('forwards GET and POST to the pod, with its status, headers and body', async () => {
    const res = await predict(pods.v2![0]!);
    expect([200, 500]).toContain(res.status);
    expect(res.headers.get('x-model-version')).toBe('v2');
    const metrics = await fetch(proxyUrl(pods.v1![0]!, 'metrics'), { headers: admin() });
    expect(metrics.status).toBe(200);
    expect(metrics.headers.get('content-type')).toMatch(/^text\/plain/);
    expect(await metrics.text()).toMatch(/^# TYPE serving_requests_total counter$/m);
  });

  it('answers 403 with the real Status body to a token bound to another namespace, and proxies for one bound to this one', async () => {
    const other = kube.mintScopedKubeconfig(['elsewhere'], { username: 'someone-else' });
    const res = await fetch(proxyUrl(pods.v1![0]!, 'metrics'), { headers: { Authorization: `Bearer ${other.token}` } });
    expect(res.status).toBe(403);
    expect(await res.json()).toEqual({
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Failure',
      message: `pods "${pods.v1![0]}:8501" is forbidden: User "someone-else" cannot get resource "pods/proxy" in API group "" in the namespace "${NS}"`,
      reason: 'Forbidden',
      details: { name: `${pods.v1![0]}:8501`, kind: 'pods' },
      code: 403,
    });
    const mine = kube.mintScopedKubeconfig([NS], { username: 'pipeline' });
    expect((await fetch(proxyUrl(pods.v1![0]!, 'metrics'), { headers: { Authorization: `Bearer ${mine.token}` } })).status).toBe(200);
  });

  it("answers for the pod itself when it cannot reach it (503), it is gone (404) or the port is not served (503)", async () => {
    const deaf = await fetch(proxyUrl(pods.v3![0]!, 'metrics'), { headers: admin() });
    expect(deaf.status).toBe(503);
    expect(await deaf.json()).toEqual(
      expect.objectContaining({ kind: 'Status', reason: 'ServiceUnavailable', code: 503, message: 'error trying to reach service: dial tcp 127.0.0.1:8501: connect: connection refused' }),
    );
    const gone = await fetch(proxyUrl('no-such-pod', 'metrics'), { headers: admin() });
    expect(gone.status).toBe(404);
    expect(await gone.json()).toEqual(expect.objectContaining({ reason: 'NotFound', message: 'pods "no-such-pod" not found', details: { name: 'no-such-pod', kind: 'pods' } }));
    const port = await fetch(proxyUrl(pods.v1![0]!, 'metrics', 9999), { headers: admin() });
    expect(port.status).toBe(503);
    expect(((await port.json()) as { message: string }).message).toBe('error trying to reach service: dial tcp 127.0.0.1:9999: connect: connection refused');
  });

  it('proxyGet tells the API server answering for a pod from a refused request', async () => {
    await expect(proxyGet(NS, pods.v3![0]!, 8501, 'metrics')).rejects.toMatchObject({ name: 'PodProxyError', code: 503, unreachable: true });
    await expect(proxyGet(NS, 'no-such-pod', 8501, '/metrics')).rejects.toMatchObject({ name: 'PodProxyError', code: 404, unreachable: true });
    // The pod's own 404 (a path it does not serve) is the pod's answer, not the API server's.
    const own = await proxyGet(NS, pods.v1![0]!, 8501, 'nothing-here').catch((e: unknown) => e);
    expect(own).toBeInstanceOf(PodProxyError);
    expect(own).toMatchObject({ code: 404, unreachable: false });
  });

  it("sums each version's counters over its pods, deltas them against a baseline and judges the canary", async () => {
    // Prepare: baselines, then 8 predictions on each stable pod and 10 on the canary's (FAULT error-rate=0.5).
    const stableBefore = await readVersionCounters(NS, { model: 'm', version: 'v1' }, 8501);
    const canaryBefore = await readVersionCounters(NS, { model: 'm', version: 'v2' }, 8501);
    expect(stableBefore).toMatchObject({ pods: 2, podsRead: 2 });
    for (const pod of pods.v1!) for (let i = 0; i < 8; i++) expect((await predict(pod)).status).toBe(200);
    const canaryCodes: number[] = [];
    for (let i = 0; i < 10; i++) canaryCodes.push((await predict(pods.v2![0]!)).status);

    // Act
    const stable = statsOf(counterDelta(await readVersionCounters(NS, { model: 'm', version: 'v1' }, 8501), stableBefore));
    const canaryNow = await readVersionCounters(NS, { model: 'm', version: 'v2' }, 8501);
    const canary = statsOf(counterDelta(canaryNow, canaryBefore));

    // Assess: exactly what was sent (status reads and the /metrics scrapes themselves are not counted).
    expect(canaryCodes.filter((c) => c === 500)).toHaveLength(5);
    expect(stable).toMatchObject({ requests: 16, errors: 0, errorRate: 0 });
    expect(canary).toMatchObject({ requests: 10, errors: 5, errorRate: 0.5 });
    expect(canary.p95Ms).toEqual(expect.any(Number));
    expect(canaryNow.byPod?.[pods.v2![0]!]).toMatchObject({ restarts: 0 });
    const verdict = judge(canary, stable, { maxErrorRate: 0.05, maxErrorRateIncrease: 0.02, maxP95LatencyMs: 1000, maxP95Ratio: 1.5, minRequests: 5 });
    expect(verdict.verdict).toBe('fail');
    expect(verdict.reasons[0]).toMatch(/^canary error rate 50\.0 % \(5\/10\) is above maxErrorRate 5\.0 %/);
    expect(verdict.servedShare).toBeCloseTo(10 / 26, 3);
  });

  it('leaves a pod it cannot reach out of podsRead; a role without access to the namespace gets KubernetesRequestError', async () => {
    expect(await readVersionCounters(NS, { model: 'm', version: 'v3' }, 8501)).toMatchObject({ pods: 1, podsRead: 0, requests: 0 });

    const other = kube.mintScopedKubeconfig(['elsewhere'], { username: 'no-proxy-here' });
    process.env.KUBECONFIG = other.kubeconfigPath;
    reloadSettings();
    resetKube();
    try {
      const err = await readVersionCounters(NS, { model: 'm', version: 'v1' }, 8501).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(KubernetesRequestError);
      expect((err as Error).message).toMatch(/HTTP 403 Forbidden: pods is forbidden: User "no-proxy-here" cannot list resource "pods"/);
      const proxied = await proxyGet(NS, pods.v1![0]!, 8501, 'metrics').catch((e: unknown) => e);
      expect(proxied).toBeInstanceOf(KubernetesRequestError);
      expect((proxied as Error).message).toMatch(/cannot get resource "pods\/proxy" in API group "" in the namespace "canary"/);
    } finally {
      process.env.KUBECONFIG = kube.kubeconfigPath;
      reloadSettings();
      resetKube();
    }
  });
});
