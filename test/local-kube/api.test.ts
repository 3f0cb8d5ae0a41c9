/**
 * REST semantics of the local Kubernetes API, through the real @kubernetes/client-node client and raw
 * fetch: auth, status codes and Status bodies, server-side apply, optimistic concurrency, selectors,
 * watch (with the client's Watch class), resourceVersion replay and 410 Expired.
 */
import * as k8s from '@kubernetes/client-node';
import { apiError, SSA, startHarness, waitFor, type Harness } from './helpers';

describe('local Kubernetes API: REST semantics', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness();
    await h.core.createNamespace({ body: { metadata: { name: 'rest' } } });
  });
  afterAll(async () => {
    await h.close();
  });

  const cm = (name: string, data: Record<string, string> = { a: '1' }, labels?: Record<string, string>): k8s.V1ConfigMap => ({
    metadata: { name, ...(labels ? { labels } : {}) },
    data,
  });

  it('answers 401 for a token it never issued, and 403 to anonymous requests (transcript 20)', async () => {
    for (const path of ['/api/v1/namespaces', '/version']) {
      const res = await fetch(`${h.kube.url}${path}`, { headers: { Authorization: 'Bearer wrong' } });
      expect(res.status).toBe(401);
      expect(await res.json()).toEqual({ kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: 'Unauthorized', reason: 'Unauthorized', code: 401 });
    }
    for (const headers of [{}, { Authorization: 'Basic YWRtaW46YWRtaW4=' }, { Authorization: 'Bearer' }] as Record<string, string>[]) {
      const res = await fetch(`${h.kube.url}/api/v1/namespaces`, { headers });
      expect(res.status).toBe(403);
      expect(await res.json()).toEqual({
        kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', reason: 'Forbidden', code: 403,
        message: 'namespaces is forbidden: User "system:anonymous" cannot list resource "namespaces" in API group "" at the cluster scope',
        details: { kind: 'namespaces' },
      });
    }
    expect((await fetch(`${h.kube.url}/version`)).status).toBe(200);
    const ok = await fetch(`${h.kube.url}/api/v1/namespaces`, { headers: { Authorization: `bearer ${h.kube.token}` } });
    expect(ok.status).toBe(200);
  });

  it('a token bound to namespaces works in them and gets the real 403 at the cluster scope and elsewhere (transcript 13)', async () => {
    await h.core.createNamespace({ body: { metadata: { name: 'rbac-own' } } });
    await h.core.createNamespace({ body: { metadata: { name: 'rbac-other' } } });
    const { token } = h.kube.mintScopedKubeconfig(['rbac-own'], { username: 'system:serviceaccount:rbac-own:runner' });
    const call = async (method: string, path: string, body?: unknown) => {
      const res = await fetch(`${h.kube.url}${path}`, {
        method,
        headers: { Authorization: `Bearer ${token}`, ...(body ? { 'Content-Type': 'application/json' } : {}) },
        body: body ? JSON.stringify(body) : undefined,
      });
      return { status: res.status, body: (await res.json()) as Record<string, unknown> };
    };
    const forbidden = (message: string, details: Record<string, string>) => ({ kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason: 'Forbidden', details, code: 403 });
    const user = 'User "system:serviceaccount:rbac-own:runner"';
    expect(await call('POST', '/api/v1/namespaces', { metadata: { name: 'x' } })).toEqual({ status: 403, body: forbidden(`namespaces is forbidden: ${user} cannot create resource "namespaces" in API group "" at the cluster scope`, { kind: 'namespaces' }) });
    expect(await call('GET', '/api/v1/namespaces')).toEqual({ status: 403, body: forbidden(`namespaces is forbidden: ${user} cannot list resource "namespaces" in API group "" at the cluster scope`, { kind: 'namespaces' }) });
    expect(await call('GET', '/apis/batch/v1/namespaces/rbac-other/jobs')).toEqual({ status: 403, body: forbidden(`jobs.batch is forbidden: ${user} cannot list resource "jobs" in API group "batch" in the namespace "rbac-other"`, { group: 'batch', kind: 'jobs' }) });
    expect(await call('GET', '/api/v1/namespaces/rbac-other/pods/x/log')).toEqual({ status: 403, body: forbidden(`pods "x" is forbidden: ${user} cannot get resource "pods/log" in API group "" in the namespace "rbac-other"`, { name: 'x', kind: 'pods' }) });
    expect(await call('DELETE', '/api/v1/namespaces/rbac-own')).toEqual({ status: 403, body: forbidden(`namespaces "rbac-own" is forbidden: ${user} cannot delete resource "namespaces" in API group "" in the namespace "rbac-own"`, { name: 'rbac-own', kind: 'namespaces' }) });
    expect((await call('POST', '/api/v1/namespaces/rbac-own/configmaps', { metadata: { name: 'mine' } })).status).toBe(201);
    expect((await call('GET', '/api/v1/namespaces/rbac-own/serviceaccounts')).status).toBe(200);
    expect((await call('GET', '/api/v1/namespaces/rbac-own')).status).toBe(200);
  });

  it('serves discovery that KubernetesObjectApi can build paths from', async () => {
    const res = await fetch(`${h.kube.url}/apis/apps/v1`, { headers: { Authorization: `Bearer ${h.kube.token}` } });
    const list = (await res.json()) as { resources: { name: string; kind: string; namespaced: boolean }[] };
    expect(list.resources).toEqual(expect.arrayContaining([expect.objectContaining({ name: 'deployments', kind: 'Deployment', namespaced: true })]));
    const created = await h.objects.create({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'via-object-api', namespace: 'rest' }, data: { x: 'y' } } as k8s.KubernetesObject);
    expect(created.metadata?.uid).toBeTruthy();
  });

  it('creates with 201, refuses a duplicate with 409 AlreadyExists and a missing object with 404 NotFound', async () => {
    const res = await fetch(`${h.kube.url}/api/v1/namespaces/rest/configmaps`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${h.kube.token}`, 'Content-Type': 'application/json' },
      body: JSON.stringify(cm('first')),
    });
    expect(res.status).toBe(201);
    const created = (await res.json()) as k8s.V1ConfigMap;
    expect(created).toEqual(expect.objectContaining({ kind: 'ConfigMap', apiVersion: 'v1' }));
    expect(created.metadata).toEqual(expect.objectContaining({ name: 'first', namespace: 'rest', uid: expect.any(String), resourceVersion: expect.stringMatching(/^\d+$/) }));

    const dup = await apiError(h.core.createNamespacedConfigMap({ namespace: 'rest', body: cm('first') }));
    expect(dup.code).toBe(409);
    expect(dup.body).toEqual(expect.objectContaining({ reason: 'AlreadyExists', message: 'configmaps "first" already exists', details: { name: 'first', kind: 'configmaps' } }));

    const missing = await apiError(h.apps.readNamespacedDeployment({ namespace: 'rest', name: 'nope' }));
    expect(missing.code).toBe(404);
    expect(missing.body).toEqual(expect.objectContaining({ kind: 'Status', reason: 'NotFound', message: 'deployments.apps "nope" not found', details: { name: 'nope', group: 'apps', kind: 'deployments' } }));
  });

  it('answers 422 Invalid naming the field, and 404 for a namespace that does not exist', async () => {
    const badName = await apiError(h.core.createNamespacedConfigMap({ namespace: 'rest', body: cm('Bad_Name') }));
    expect(badName.code).toBe(422);
    expect(badName.body).toEqual(expect.objectContaining({ reason: 'Invalid' }));
    expect(String(badName.body.message)).toMatch(/^ConfigMap "Bad_Name" is invalid: metadata.name: Invalid value: "Bad_Name": a lowercase RFC 1123 subdomain/);

    const noImage = await apiError(
      h.batch.createNamespacedJob({
        namespace: 'rest',
        body: { metadata: { name: 'no-image' }, spec: { template: { spec: { restartPolicy: 'Never', containers: [{ name: 'main' } as k8s.V1Container] } } } },
      }),
    );
    expect(noImage.code).toBe(422);
    const causes = (noImage.body.details as { causes: { field: string; reason: string }[] }).causes;
    expect(causes).toEqual([expect.objectContaining({ field: 'spec.template.spec.containers[0].image', reason: 'FieldValueRequired' })]);

    const noNs = await apiError(h.core.createNamespacedConfigMap({ namespace: 'ghost', body: cm('x') }));
    expect(noNs.code).toBe(404);
    expect(noNs.body).toEqual(expect.objectContaining({ reason: 'NotFound', message: 'namespaces "ghost" not found' }));
  });

  it('answers an oversized body with 400 BadRequest after reading it, not a reset connection', async () => {
    const res = await fetch(`${h.kube.url}/api/v1/namespaces/rest/configmaps`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${h.kube.token}`, 'Content-Type': 'application/json' },
      body: JSON.stringify(cm('huge', { blob: 'x'.repeat(17 * 1024 * 1024) })),
    });
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual(expect.objectContaining({ kind: 'Status', reason: 'BadRequest', message: expect.stringContaining('request body too large') }));
    expect((await apiError(h.core.readNamespacedConfigMap({ namespace: 'rest', name: 'huge' }))).code).toBe(404);
  });

  it('server-side apply creates (201), updates (200), and leaves resourceVersion alone when nothing changed', async () => {
    const manifest = {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'applied', namespace: 'rest', labels: { app: 'applied' } },
      spec: {
        replicas: 0,
        selector: { matchLabels: { app: 'applied' } },
        template: { metadata: { labels: { app: 'applied' } }, spec: { containers: [{ name: 'c', image: 'example.com/server' }] } },
      },
    };
    const raw = await fetch(`${h.kube.url}/apis/apps/v1/namespaces/rest/deployments/applied?fieldManager=mlpipe&force=true`, {
      method: 'PATCH',
      headers: { Authorization: `Bearer ${h.kube.token}`, 'Content-Type': 'application/apply-patch+yaml' },
      body: JSON.stringify(manifest),
    });
    expect(raw.status).toBe(201);
    const first = (await raw.json()) as k8s.V1Deployment;
    expect(first.metadata?.generation).toBe(1);

    // The controllers write status (and the revision annotation); once they settle, re-applying is a no-op.
    const settled = await waitFor(
      h.kube,
      () => h.apps.readNamespacedDeployment({ name: 'applied', namespace: 'rest' }),
      (d) => d.status?.conditions?.some((c) => c.reason === 'NewReplicaSetAvailable') ?? false,
    );
    const again = await h.apps.patchNamespacedDeployment({ name: 'applied', namespace: 'rest', body: manifest, fieldManager: 'mlpipe', force: true }, SSA);
    expect(again.metadata?.resourceVersion).toBe(settled.metadata?.resourceVersion);
    expect(again.metadata?.generation).toBe(1);

    const changed = structuredClone(manifest);
    changed.spec.template.spec.containers[0]!.image = 'example.com/server:2';
    delete (changed.metadata.labels as Record<string, string | undefined>).app;
    const updated = await h.apps.patchNamespacedDeployment({ name: 'applied', namespace: 'rest', body: changed, fieldManager: 'mlpipe', force: true }, SSA);
    expect(Number(updated.metadata?.resourceVersion)).toBeGreaterThan(Number(first.metadata?.resourceVersion));
    expect(updated.metadata?.generation).toBe(2);
    expect(updated.spec?.template.spec?.containers[0]?.image).toBe('example.com/server:2');
    // A field the manager stopped applying is removed, as SSA does.
    expect(updated.metadata?.labels?.app).toBeUndefined();

    // The same through KubernetesObjectApi.patch, as handlers may call it.
    const viaObjects = await h.objects.patch(changed as k8s.KubernetesObject, undefined, undefined, 'mlpipe', true, k8s.PatchStrategy.ServerSideApply);
    expect(viaObjects.metadata?.generation).toBe(2); // same spec: no new generation

    const noManager = await fetch(`${h.kube.url}/apis/apps/v1/namespaces/rest/deployments/applied`, {
      method: 'PATCH',
      headers: { Authorization: `Bearer ${h.kube.token}`, 'Content-Type': 'application/apply-patch+yaml' },
      body: JSON.stringify(manifest),
    });
    // kube-apiserver v1.32 answers 422 (PatchOptions.meta.k8s.io is invalid: fieldManager: Required value), transcript 23.
    expect(noManager.status).toBe(422);
    expect(((await noManager.json()) as { message?: string }).message).toMatch(/fieldManager: Required value/);
  });

  it('status subresource: writes status only; the main resource ignores status; a missing object is 404', async () => {
    const svc: k8s.V1Service = {
      metadata: { name: 'status-svc', labels: { app: 'a' } },
      spec: { type: 'ClusterIP', selector: { app: 'a' }, ports: [{ port: 80, targetPort: 8501 }] },
      status: { loadBalancer: { ingress: [{ ip: '10.9.9.9' }] } },
    };
    const created = await h.core.createNamespacedService({ namespace: 'rest', body: svc });
    expect(created.status?.loadBalancer?.ingress).toBeUndefined(); // status is not set on create

    const ingress = [{ hostname: 'lb.example' }];
    const viaStatus = await h.core.replaceNamespacedServiceStatus({
      namespace: 'rest',
      name: 'status-svc',
      body: { ...created, metadata: { ...created.metadata, labels: { app: 'changed' } }, spec: { ...created.spec, selector: { app: 'changed' } }, status: { loadBalancer: { ingress } } },
    });
    expect(viaStatus.status?.loadBalancer?.ingress).toEqual(ingress);
    expect(viaStatus.metadata?.labels).toEqual({ app: 'a' }); // spec and labels stay as stored
    expect(viaStatus.spec?.selector).toEqual({ app: 'a' });
    expect(Number(viaStatus.metadata?.resourceVersion)).toBeGreaterThan(Number(created.metadata?.resourceVersion));
    expect((await h.core.readNamespacedServiceStatus({ namespace: 'rest', name: 'status-svc' })).status?.loadBalancer?.ingress).toEqual(ingress);

    const viaMain = await h.core.replaceNamespacedService({
      namespace: 'rest',
      name: 'status-svc',
      body: { ...viaStatus, metadata: { ...viaStatus.metadata, labels: { app: 'b' } }, status: { loadBalancer: { ingress: [{ ip: '10.1.1.1' }] } } },
    });
    expect(viaMain.metadata?.labels).toEqual({ app: 'b' });
    expect(viaMain.status?.loadBalancer?.ingress).toEqual(ingress); // status kept as stored

    const patched = await h.core.patchNamespacedServiceStatus(
      { namespace: 'rest', name: 'status-svc', body: { status: { loadBalancer: { ingress: [{ ip: '10.2.2.2' }] } } } },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
    );
    expect(patched.status?.loadBalancer?.ingress).toEqual([{ ip: '10.2.2.2' }]);
    expect(patched.metadata?.labels).toEqual({ app: 'b' });

    const missing = await apiError(h.core.replaceNamespacedServiceStatus({ namespace: 'rest', name: 'no-such-svc', body: { metadata: { name: 'no-such-svc' }, status: {} } }));
    expect(missing.code).toBe(404);
    expect(missing.body).toEqual(expect.objectContaining({ kind: 'Status', reason: 'NotFound' }));
  });

  it('refuses a PUT with a stale resourceVersion with 409 Conflict, and merges merge patches', async () => {
    const created = await h.core.createNamespacedConfigMap({ namespace: 'rest', body: cm('versioned') });
    const fresh = await h.core.replaceNamespacedConfigMap({ namespace: 'rest', name: 'versioned', body: { ...created, data: { a: '2' } } });
    expect(fresh.data).toEqual({ a: '2' });
    const stale = await apiError(h.core.replaceNamespacedConfigMap({ namespace: 'rest', name: 'versioned', body: { ...created, data: { a: '3' } } }));
    expect(stale.code).toBe(409);
    expect(stale.body).toEqual(expect.objectContaining({ reason: 'Conflict', message: expect.stringContaining('the object has been modified') }));

    const merged = await h.core.patchNamespacedConfigMap(
      { namespace: 'rest', name: 'versioned', body: { data: { b: 'x' } } },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
    );
    expect(merged.data).toEqual({ a: '2', b: 'x' });
    // The generated client's default patch type is JSON patch.
    const jsonPatched = await h.core.patchNamespacedConfigMap({ namespace: 'rest', name: 'versioned', body: [{ op: 'remove', path: '/data/a' }] });
    expect(jsonPatched.data).toEqual({ b: 'x' });
  });

  it('filters lists by label selector (equality and set-based) and field selector', async () => {
    await h.core.createNamespacedConfigMap({ namespace: 'rest', body: cm('sel-a', {}, { tier: 'web', env: 'prod' }) });
    await h.core.createNamespacedConfigMap({ namespace: 'rest', body: cm('sel-b', {}, { tier: 'db', env: 'prod' }) });
    await h.core.createNamespacedConfigMap({ namespace: 'rest', body: cm('sel-c', {}, { tier: 'web' }) });
    const names = async (labelSelector?: string, fieldSelector?: string) =>
      (await h.core.listNamespacedConfigMap({ namespace: 'rest', labelSelector, fieldSelector })).items.map((i) => i.metadata?.name).sort();
    expect(await names('tier=web')).toEqual(['sel-a', 'sel-c']);
    expect(await names('tier==web,env=prod')).toEqual(['sel-a']);
    expect(await names('tier!=web,env')).toEqual(['sel-b']);
    expect(await names('tier in (web,db),!env')).toEqual(['sel-c']);
    expect(await names('tier notin (web),env')).toEqual(['sel-b']);
    expect(await names(undefined, 'metadata.name=sel-b')).toEqual(['sel-b']);
    const list = await h.core.listNamespacedConfigMap({ namespace: 'rest', labelSelector: 'tier' });
    expect(list.metadata?.resourceVersion).toMatch(/^\d+$/);
    const bad = await apiError(h.core.listNamespacedConfigMap({ namespace: 'rest', fieldSelector: 'spec.nope=1' }));
    expect(bad.code).toBe(400);
  });

  it('streams ADDED and MODIFIED events to the client Watch class, filtered by label', async () => {
    const events: { type: string; name?: string; value?: string }[] = [];
    const watch = new k8s.Watch(h.kc);
    let resolveSeen!: () => void;
    const seen = new Promise<void>((r) => (resolveSeen = r));
    const controller = await watch.watch(
      '/api/v1/namespaces/rest/configmaps',
      { labelSelector: 'watched=yes' },
      (type, obj: k8s.V1ConfigMap) => {
        events.push({ type, name: obj.metadata?.name, value: obj.data?.v });
        if (type === 'MODIFIED') resolveSeen();
      },
      () => undefined,
    );
    await h.core.createNamespacedConfigMap({ namespace: 'rest', body: cm('ignored', { v: '0' }) });
    await h.core.createNamespacedConfigMap({ namespace: 'rest', body: cm('watched', { v: '1' }, { watched: 'yes' }) });
    await h.core.patchNamespacedConfigMap(
      { namespace: 'rest', name: 'watched', body: { data: { v: '2' } } },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
    );
    await seen;
    controller.abort();
    expect(events).toEqual([
      { type: 'ADDED', name: 'watched', value: '1' },
      { type: 'MODIFIED', name: 'watched', value: '2' },
    ]);
  });

  it('replays history after a resourceVersion, and answers a too-old one with a 410 Expired ERROR event', async () => {
    const created = await h.core.createNamespacedConfigMap({ namespace: 'rest', body: cm('replayed', { v: '1' }) });
    await h.core.deleteNamespacedConfigMap({ namespace: 'rest', name: 'replayed' });
    const res = await fetch(
      `${h.kube.url}/api/v1/namespaces/rest/configmaps?watch=1&resourceVersion=${created.metadata?.resourceVersion}&timeoutSeconds=1&fieldSelector=metadata.name%3Dreplayed`,
      { headers: { Authorization: `Bearer ${h.kube.token}` } },
    );
    const lines = (await res.text()).trim().split('\n').map((l) => JSON.parse(l) as { type: string });
    expect(lines.map((l) => l.type)).toEqual(['DELETED']);

    // Like kube-apiserver after a restart (transcript 09): HTTP 200, one ERROR event, then the end.
    h.kube.restartWatchCache();
    const old = await fetch(`${h.kube.url}/api/v1/namespaces/rest/configmaps?watch=true&resourceVersion=${created.metadata?.resourceVersion}`, { headers: { Authorization: `Bearer ${h.kube.token}` } });
    expect(old.status).toBe(200);
    const lines2 = (await old.text()).trim().split('\n').map((l) => JSON.parse(l) as { type: string; object: { code: number; reason: string } });
    expect(lines2).toEqual([{ type: 'ERROR', object: expect.objectContaining({ kind: 'Status', code: 410, reason: 'Expired', message: expect.stringMatching(/^too old resource version: \d+ \(\d+\)$/) }) }]);
  });

  it('writes a kubeconfig that KubeConfig.loadFromFile reads', () => {
    const kc = new k8s.KubeConfig();
    kc.loadFromFile(h.kube.kubeconfigPath);
    expect(kc.getCurrentContext()).toBe('mlpipe-local');
    expect(kc.getCurrentCluster()?.server).toBe(h.kube.url);
    expect(kc.getCurrentUser()?.token).toBe(h.kube.token);
  });
});
