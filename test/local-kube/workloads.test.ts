/**
 * Controllers and the local kubelet of the local Kubernetes API: Jobs that succeed and that hit their
 * backoffLimit (with pods/log tailLines), unknown images, Deployments with readiness probes rolling to a
 * new ReplicaSet, CrashLoopBackOff, LoadBalancer Services switching with their selector, and stop().
 */
import * as k8s from '@kubernetes/client-node';
import { apiError, isAlive, startHarness, waitFor, type Harness } from './helpers';

const NS = 'work';
const MERGE = k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch);

function job(name: string, image: string, backoffLimit?: number): k8s.V1Job {
  return {
    metadata: { name },
    spec: {
      ...(backoffLimit !== undefined ? { backoffLimit } : {}),
      template: { spec: { restartPolicy: 'Never', containers: [{ name: 'main', image, env: [{ name: 'FROM_SPEC', value: '1' }] }] } },
    },
  };
}

function deployment(name: string, color: string, image = 'example.com/server'): k8s.V1Deployment {
  return {
    metadata: { name },
    spec: {
      selector: { matchLabels: { app: name } },
      template: {
        metadata: { labels: { app: name, color } },
        spec: {
          containers: [
            {
              name: 'server',
              image,
              env: [{ name: 'NAME', value: color }],
              ports: [{ containerPort: 8501, name: 'http' }],
              readinessProbe: { httpGet: { path: '/ready', port: 8501 } },
            },
          ],
        },
      },
    },
  };
}

describe('local Kubernetes API: controllers and local processes', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness();
    await h.core.createNamespace({ body: { metadata: { name: NS } } });
  });
  afterAll(async () => {
    await h.close();
  });

  it('runs a Job to completion with the pod labels, ownerReference and status of batch/v1', async () => {
    await h.batch.createNamespacedJob({ namespace: NS, body: job('ok', 'example.com/ok:1') });
    const done = await waitFor(
      h.kube,
      () => h.batch.readNamespacedJob({ namespace: NS, name: 'ok' }),
      (j) => j.status?.conditions?.some((c) => c.type === 'Complete' && c.status === 'True') ?? false,
    );
    expect(done.status).toEqual(expect.objectContaining({ succeeded: 1, startTime: expect.any(Date), completionTime: expect.any(Date) }));
    expect(done.status?.active ?? 0).toBe(0);
    const pods = await h.core.listNamespacedPod({ namespace: NS, labelSelector: 'job-name=ok' });
    expect(pods.items).toHaveLength(1);
    const pod = pods.items[0]!;
    expect(pod.metadata?.name).toMatch(/^ok-[a-z0-9]{5}$/);
    expect(pod.metadata?.labels?.['batch.kubernetes.io/job-name']).toBe('ok');
    expect(pod.metadata?.ownerReferences?.[0]).toEqual(expect.objectContaining({ kind: 'Job', name: 'ok', uid: done.metadata?.uid, controller: true }));
    expect(pod.status?.phase).toBe('Succeeded');
    expect(pod.status?.containerStatuses?.[0]?.state?.terminated).toEqual(expect.objectContaining({ exitCode: 0, reason: 'Completed' }));
    const log = await h.core.readNamespacedPodLog({ namespace: NS, name: pod.metadata!.name! });
    expect(log).toBe('trained\n');
  });

  it('retries a failing Job until backoffLimit, then fails it with BackoffLimitExceeded; pods/log tailLines works', async () => {
    await h.batch.createNamespacedJob({ namespace: NS, body: job('bad', 'example.com/fail:1', 1) });
    const failed = await waitFor(
      h.kube,
      () => h.batch.readNamespacedJob({ namespace: NS, name: 'bad' }),
      (j) => j.status?.conditions?.some((c) => c.type === 'Failed' && c.status === 'True') ?? false,
    );
    expect(failed.status?.failed).toBe(2);
    expect(failed.status?.conditions?.find((c) => c.type === 'Failed')?.reason).toBe('BackoffLimitExceeded');
    const pods = await h.core.listNamespacedPod({ namespace: NS, labelSelector: 'job-name=bad', fieldSelector: 'status.phase=Failed' });
    expect(pods.items).toHaveLength(2);
    const pod = pods.items[0]!;
    expect(pod.status?.containerStatuses?.[0]?.state?.terminated).toEqual(expect.objectContaining({ exitCode: 3, reason: 'Error' }));
    const tail = await h.core.readNamespacedPodLog({ namespace: NS, name: pod.metadata!.name!, container: 'main', tailLines: 2 });
    expect(tail).toBe('line 5\nboom\n');
  });

  it('keeps a pod with an unknown image Pending with ErrImagePull then ImagePullBackOff naming the image', async () => {
    await h.batch.createNamespacedJob({ namespace: NS, body: job('pull', 'registry.example.com/missing@sha256:' + 'a'.repeat(64)) });
    const pod = await waitFor(
      h.kube,
      async () => (await h.core.listNamespacedPod({ namespace: NS, labelSelector: 'job-name=pull' })).items[0],
      (p) => p?.status?.containerStatuses?.[0]?.state?.waiting?.reason === 'ImagePullBackOff',
    );
    expect(pod?.status?.phase).toBe('Pending');
    expect(pod?.status?.containerStatuses?.[0]?.state?.waiting?.message).toContain('registry.example.com/missing@sha256:');
    const log = await apiError(h.core.readNamespacedPodLog({ namespace: NS, name: pod!.metadata!.name! }));
    expect(log.code).toBe(400);
  });

  it('rolls a Deployment out once its readiness probe passes, then rolls a template change to a new ReplicaSet', async () => {
    await h.apps.createNamespacedDeployment({ namespace: NS, body: deployment('web', 'blue') });
    const available = await waitFor(
      h.kube,
      () => h.apps.readNamespacedDeployment({ namespace: NS, name: 'web' }),
      (d) => d.status?.conditions?.some((c) => c.type === 'Progressing' && c.reason === 'NewReplicaSetAvailable') ?? false,
    );
    expect(available.status).toEqual(expect.objectContaining({ observedGeneration: 1, replicas: 1, updatedReplicas: 1, readyReplicas: 1, availableReplicas: 1 }));
    expect(available.status?.conditions?.find((c) => c.type === 'Available')?.status).toBe('True');
    const [firstRs] = (await h.apps.listNamespacedReplicaSet({ namespace: NS, labelSelector: 'app=web' })).items;
    const hash = firstRs?.metadata?.labels?.['pod-template-hash'];
    expect(firstRs?.metadata?.name).toBe(`web-${hash}`);
    const pod = (await h.core.listNamespacedPod({ namespace: NS, labelSelector: `app=web,pod-template-hash=${hash}` })).items[0]!;
    expect(pod.status?.containerStatuses?.[0]?.ready).toBe(true);
    // The pod's process really serves on the local port the kubelet recorded.
    const port = pod.metadata?.annotations?.['mlpipe.dev/local-port'];
    expect(await (await fetch(`http://127.0.0.1:${port}/x`)).text()).toBe('blue /x');

    await h.apps.patchNamespacedDeployment(
      { namespace: NS, name: 'web', body: { spec: { template: { metadata: { labels: { app: 'web', color: 'green' } }, spec: { containers: [{ ...deployment('web', 'green').spec!.template.spec!.containers[0]! }] } } } } },
      MERGE,
    );
    const rolled = await waitFor(
      h.kube,
      () => h.apps.readNamespacedDeployment({ namespace: NS, name: 'web' }),
      (d) => d.status?.observedGeneration === 2 && d.status?.conditions?.some((c) => c.reason === 'NewReplicaSetAvailable') === true && d.status?.replicas === 1,
    );
    expect(rolled.metadata?.annotations?.['deployment.kubernetes.io/revision']).toBe('2');
    const rss = (await h.apps.listNamespacedReplicaSet({ namespace: NS, labelSelector: 'app=web' })).items;
    expect(rss).toHaveLength(2);
    expect(rss.find((rs) => rs.metadata?.name === firstRs?.metadata?.name)?.spec?.replicas).toBe(0);
    const pods = await waitFor(
      h.kube,
      () => h.core.listNamespacedPod({ namespace: NS, labelSelector: 'app=web' }),
      (l) => l.items.length === 1,
    );
    expect(pods.items[0]?.metadata?.labels?.color).toBe('green');
  });

  it('reports CrashLoopBackOff with restartCount for a crashing container', async () => {
    const body = deployment('crash', 'red', 'example.com/crash:1');
    delete body.spec!.template.spec!.containers[0]!.readinessProbe;
    await h.apps.createNamespacedDeployment({ namespace: NS, body });
    const pod = await waitFor(
      h.kube,
      async () => (await h.core.listNamespacedPod({ namespace: NS, labelSelector: 'app=crash' })).items[0],
      (p) => (p?.status?.containerStatuses?.[0]?.restartCount ?? 0) >= 1 && p?.status?.containerStatuses?.[0]?.state?.waiting?.reason === 'CrashLoopBackOff',
    );
    expect(pod?.status?.containerStatuses?.[0]?.lastState?.terminated).toEqual(expect.objectContaining({ exitCode: 1, reason: 'Error' }));
    expect(pod?.status?.phase).toBe('Running');
    const d = await h.apps.readNamespacedDeployment({ namespace: NS, name: 'crash' });
    expect(d.status?.availableReplicas ?? 0).toBe(0);
    await h.apps.deleteNamespacedDeployment({ namespace: NS, name: 'crash', propagationPolicy: 'Background' });
  });

  it('proxies a LoadBalancer Service to ready pods and switches traffic when the selector changes', async () => {
    await h.apps.createNamespacedDeployment({ namespace: NS, body: deployment('blue', 'blue') });
    await h.apps.createNamespacedDeployment({ namespace: NS, body: deployment('green', 'green') });
    await h.core.createNamespacedService({
      namespace: NS,
      body: { metadata: { name: 'model' }, spec: { type: 'LoadBalancer', selector: { app: 'blue' }, ports: [{ name: 'http', port: 80, targetPort: 8501 }] } },
    });
    const svc = await waitFor(
      h.kube,
      () => h.core.readNamespacedService({ namespace: NS, name: 'model' }),
      (s) => (s.status?.loadBalancer?.ingress?.length ?? 0) > 0,
    );
    const ingress = svc.status!.loadBalancer!.ingress![0]!;
    expect(ingress.ip).toBe('127.0.0.1');
    const endpoint = `http://${ingress.ip}:${ingress.ports![0]!.port}`;
    for (const name of ['blue', 'green']) {
      await waitFor(h.kube, () => h.apps.readNamespacedDeployment({ namespace: NS, name }), (d) => d.status?.availableReplicas === 1);
    }
    // Like a cloud NLB, the proxy picks a pod per TCP connection: close it so that the next request reconnects.
    const get = async () => (await fetch(`${endpoint}/v1/models/m`, { headers: { Connection: 'close' } })).text();
    expect(await get()).toBe('blue /v1/models/m');
    await h.core.patchNamespacedService({ namespace: NS, name: 'model', body: { spec: { selector: { app: 'green' } } } }, MERGE);
    expect(await get()).toBe('green /v1/models/m');
    // The API server's service proxy reaches the same pods.
    const proxied = await fetch(`${h.kube.url}/api/v1/namespaces/${NS}/services/model:http/proxy/hello`, { headers: { Authorization: `Bearer ${h.kube.token}` } });
    expect(await proxied.text()).toBe('green /hello');
  });

  it('a pod stopped by a scale-down leaves the Service at once but serves through its preStop sleep, then gets SIGTERM', async () => {
    // Arrange: one pod whose container sleeps 3 s before stopping (as servingDeployment's drain), behind a Service
    const body = deployment('drained', 'drained');
    body.spec!.template.spec!.containers[0]!.lifecycle = { preStop: { sleep: { seconds: 3 } } };
    body.spec!.template.spec!.terminationGracePeriodSeconds = 33;
    await h.apps.createNamespacedDeployment({ namespace: NS, body });
    await h.core.createNamespacedService({ namespace: NS, body: { metadata: { name: 'drained' }, spec: { selector: { app: 'drained' }, ports: [{ name: 'http', port: 80, targetPort: 8501 }] } } });
    await waitFor(h.kube, () => h.apps.readNamespacedDeployment({ namespace: NS, name: 'drained' }), (d) => d.status?.availableReplicas === 1);
    const [pod] = (await h.core.listNamespacedPod({ namespace: NS, labelSelector: 'app=drained' })).items;
    const auth = { headers: { Authorization: `Bearer ${h.kube.token}` } };
    const viaService = () => fetch(`${h.kube.url}/api/v1/namespaces/${NS}/services/drained:http/proxy/x`, auth);
    const viaPod = () => fetch(`${h.kube.url}/api/v1/namespaces/${NS}/pods/${pod!.metadata!.name}:8501/proxy/x`, auth);
    expect((await viaService()).status).toBe(200);
    // Act: the canary's scale-down
    const deleted = performance.now();
    await h.apps.patchNamespacedDeployment({ namespace: NS, name: 'drained', body: { spec: { replicas: 0 } } }, MERGE);
    await waitFor(h.kube, () => h.core.readNamespacedPod({ namespace: NS, name: pod!.metadata!.name! }), (p) => p.metadata?.deletionTimestamp !== undefined);
    // Assess: out of the Service's endpoints, yet its process still answers; it is gone only after the sleep
    expect((await viaService()).status).toBe(503);
    const during = await viaPod();
    expect([during.status, await during.text()]).toEqual([200, 'drained /x']);
    await waitFor(h.kube, () => h.core.listNamespacedPod({ namespace: NS, labelSelector: 'app=drained' }), (l) => l.items.length === 0);
    expect(performance.now() - deleted).toBeGreaterThanOrEqual(3000);
  });

  it('deleting a Deployment deletes its ReplicaSets and pods and stops their processes', async () => {
    await h.apps.createNamespacedDeployment({ namespace: NS, body: deployment('doomed', 'doomed') });
    await waitFor(h.kube, () => h.apps.readNamespacedDeployment({ namespace: NS, name: 'doomed' }), (d) => d.status?.availableReplicas === 1);
    const pods = (await h.core.listNamespacedPod({ namespace: NS, labelSelector: 'app=doomed' })).items;
    const pids = h.kube.runningPids();
    expect(pods).toHaveLength(1);
    await h.apps.deleteNamespacedDeployment({ namespace: NS, name: 'doomed', propagationPolicy: 'Background' });
    await waitFor(h.kube, () => h.core.listNamespacedPod({ namespace: NS, labelSelector: 'app=doomed' }), (l) => l.items.length === 0);
    expect((await h.apps.listNamespacedReplicaSet({ namespace: NS, labelSelector: 'app=doomed' })).items).toHaveLength(0);
    expect(h.kube.runningPids().length).toBe(pids.length - 1);
  });

  it('stop() leaves no pod process running', async () => {
    // A local API of its own: stopping the shared one would break the tests that run after this one.
    const own = await startHarness();
    try {
      await own.core.createNamespace({ body: { metadata: { name: NS } } });
      await own.batch.createNamespacedJob({ namespace: NS, body: job('sleeper', 'example.com/sleeper:1') });
      await own.apps.createNamespacedDeployment({ namespace: NS, body: deployment('server', 'server') });
      await waitFor(
        own.kube,
        async () => (await own.core.listNamespacedPod({ namespace: NS })).items,
        (pods) => pods.length === 2 && pods.every((p) => p.status?.phase === 'Running'),
      );
      const pids = own.kube.runningPids();
      expect(pids).toHaveLength(2);
      expect(pids.every(isAlive)).toBe(true);
      await own.kube.stop();
      expect(pids.filter(isAlive)).toEqual([]);
    } finally {
      await own.close();
    }
  });
});
