/**
 * Namespaced RBAC in the local Kubernetes API (local/kube/rbac.ts) for a token whose identity is a
 * Kubernetes group, as an EKS access entry with kubernetesGroups and no access policy gives it: the Roles
 * `mlpipe monitor-rbac` and `mlpipe monitor-rbac --rotation --model fm` print (lib/monitor-rbac.ts),
 * applied as a cluster admin would, allow exactly their rules; everything else answers the 403 a real
 * kube-apiserver answers (test/fixtures/k8s/13-rbac-serviceaccount-edit.json, the same body with this
 * user's name). The Monitor handler and the rotation module working LIVE with those Roles only are
 * test/functions-kube/serving-monitor.test.ts and token-rotation.test.ts.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadAllYaml, type KubernetesObject } from '@kubernetes/client-node';
import { monitorRbacYaml, rotationRbacYaml } from '../../lib/monitor-rbac';
import { ruleAllows } from '../../local/kube/rbac';
import { typeOf } from '../../local/kube/resources';
import { startHarness, type Harness } from './helpers';
import { FIXTURES, type Transcript } from './transcripts';

const STAGING = 'rbac-staging';
const PRODUCTION = 'rbac-production';
/** How an EKS access entry names an assumed IAM role: the user a real 403 then names. */
const MONITOR_USER = 'arn:aws:sts::123456789012:assumed-role/mlpipe-MonitorRole/monitor';
const ROTATION_USER = 'arn:aws:sts::123456789012:assumed-role/mlpipe-TokenRotationRole/rotation';

let h: Harness;
let monitorToken: string;
let rotationToken: string;

/** A request with `token` → status and parsed body. */
async function call(token: string, method: string, path: string, body?: unknown, contentType = 'application/json'): Promise<{ status: number; body: { message?: string; [k: string]: unknown } }> {
  const res = await fetch(`${h.kube.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': contentType }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text ? (JSON.parse(text) as { message?: string }) : {} };
}

/** Applies printed YAML as a cluster admin (`kubectl apply -f -`): each document POSTed to its collection. */
async function applyAsAdmin(yaml: string): Promise<void> {
  for (const doc of loadAllYaml(yaml) as KubernetesObject[]) {
    const plural = doc.kind === 'Role' ? 'roles' : 'rolebindings';
    const res = await call(h.kube.token, 'POST', `/apis/rbac.authorization.k8s.io/v1/namespaces/${doc.metadata!.namespace}/${plural}`, doc);
    expect(res.status).toBe(201);
  }
}

const secretApply = (name: string) => ({ apiVersion: 'v1', kind: 'Secret', metadata: { name }, stringData: { tokens: 'x' } });
const SSA = 'application/apply-patch+yaml';

beforeAll(async () => {
  h = await startHarness();
  for (const ns of [STAGING, PRODUCTION]) await h.core.createNamespace({ body: { metadata: { name: ns } } });
  await applyAsAdmin(monitorRbacYaml(PRODUCTION, 'mlpipe-monitor'));
  await applyAsAdmin(rotationRbacYaml([STAGING, PRODUCTION], 'mlpipe-token-rotation', ['fm']));
  // Access entries with a group and no access policy: no namespaces of edit-like access, only the group.
  monitorToken = h.kube.mintScopedKubeconfig([], { username: MONITOR_USER, groups: ['mlpipe-monitor'] }).token;
  rotationToken = h.kube.mintScopedKubeconfig([], { username: ROTATION_USER, groups: ['mlpipe-token-rotation'] }).token;
});
afterAll(async () => {
  await h?.close();
});

it("the printed monitor Role: list pods and get pods/proxy in production; the recorded 403 body, with this user's name, for anything else", async () => {
  // Allowed: the list answers; the proxy of a missing pod gets past authorization to its 404.
  expect((await call(monitorToken, 'GET', `/api/v1/namespaces/${PRODUCTION}/pods?labelSelector=app.kubernetes.io%2Fname%3Dfm`)).status).toBe(200);
  expect((await call(monitorToken, 'GET', `/api/v1/namespaces/${PRODUCTION}/pods/fm-x:8501/proxy/metrics`)).status).toBe(404);

  // The real answer to pods/log in a namespace the identity has nothing in, recorded for a ServiceAccount.
  const recorded = (JSON.parse(readFileSync(join(FIXTURES, '13-rbac-serviceaccount-edit.json'), 'utf8')) as Transcript).requests.find((r) => r.status === 403 && r.path.endsWith('/pods/x/log'))!;
  const other = recorded.path.split('/')[4]!;
  await h.core.createNamespace({ body: { metadata: { name: other } } });
  const got = await call(monitorToken, 'GET', recorded.path);
  expect(got.status).toBe(403);
  expect(got.body).toEqual(JSON.parse(JSON.stringify(recorded.response).replace('system:serviceaccount:tx-13:mlpipe-runner', MONITOR_USER)));

  // Nothing the Role does not name: pods/log and watch in production, staging at all, Secrets, writes.
  const forbidden: Array<[string, string, string]> = [
    ['GET', `/api/v1/namespaces/${PRODUCTION}/pods/fm-x/log`, `pods "fm-x" is forbidden: User "${MONITOR_USER}" cannot get resource "pods/log" in API group "" in the namespace "${PRODUCTION}"`],
    ['GET', `/api/v1/namespaces/${PRODUCTION}/pods?watch=true`, `pods is forbidden: User "${MONITOR_USER}" cannot watch resource "pods" in API group "" in the namespace "${PRODUCTION}"`],
    ['GET', `/api/v1/namespaces/${STAGING}/pods`, `pods is forbidden: User "${MONITOR_USER}" cannot list resource "pods" in API group "" in the namespace "${STAGING}"`],
    ['GET', `/api/v1/namespaces/${PRODUCTION}/secrets/fm-endpoint-token`, `secrets "fm-endpoint-token" is forbidden: User "${MONITOR_USER}" cannot get resource "secrets" in API group "" in the namespace "${PRODUCTION}"`],
    ['DELETE', `/api/v1/namespaces/${PRODUCTION}/pods/fm-x`, `pods "fm-x" is forbidden: User "${MONITOR_USER}" cannot delete resource "pods" in API group "" in the namespace "${PRODUCTION}"`],
    ['GET', `/apis/rbac.authorization.k8s.io/v1/namespaces/${PRODUCTION}/roles`, `roles.rbac.authorization.k8s.io is forbidden: User "${MONITOR_USER}" cannot list resource "roles" in API group "rbac.authorization.k8s.io" in the namespace "${PRODUCTION}"`],
  ];
  for (const [method, path, message] of forbidden) {
    const res = await call(monitorToken, method, path);
    expect({ path, status: res.status, message: res.body.message }).toEqual({ path, status: 403, message });
  }
});

it('the printed rotation Role (--model fm): get/apply (create included) fm-endpoint-token in both namespaces, no other Secret, no POST; list pods, get pods/proxy', async () => {
  for (const ns of [STAGING, PRODUCTION]) {
    const secret = `/api/v1/namespaces/${ns}/secrets/fm-endpoint-token`;
    expect((await call(rotationToken, 'GET', secret)).status).toBe(404); // allowed, not there yet
    // A server-side apply that creates needs patch AND create, both authorized with the name: 201, then 200.
    expect((await call(rotationToken, 'PATCH', `${secret}?fieldManager=mlpipe&force=true`, secretApply('fm-endpoint-token'), SSA)).status).toBe(201);
    expect((await call(rotationToken, 'PATCH', `${secret}?fieldManager=mlpipe&force=true`, secretApply('fm-endpoint-token'), SSA)).status).toBe(200);
    expect((await call(rotationToken, 'GET', secret)).status).toBe(200);
    expect((await call(rotationToken, 'GET', `/api/v1/namespaces/${ns}/pods`)).status).toBe(200);
    expect((await call(rotationToken, 'GET', `/api/v1/namespaces/${ns}/pods/fm-x:8502/proxy/metrics`)).status).toBe(404); // past authorization
  }
  // resourceNames: another model's token is refused on get and on apply; a list is never named, so refused.
  const other = `/api/v1/namespaces/${PRODUCTION}/secrets/other-endpoint-token`;
  expect((await call(rotationToken, 'GET', other)).body.message).toBe(`secrets "other-endpoint-token" is forbidden: User "${ROTATION_USER}" cannot get resource "secrets" in API group "" in the namespace "${PRODUCTION}"`);
  expect((await call(rotationToken, 'PATCH', `${other}?fieldManager=mlpipe&force=true`, secretApply('other-endpoint-token'), SSA)).status).toBe(403);
  expect((await call(rotationToken, 'GET', `/api/v1/namespaces/${PRODUCTION}/secrets`)).status).toBe(403);
  // (a list whose field selector pins metadata.name is a named request: the next test; this Role has no list)
  expect((await call(rotationToken, 'GET', `/api/v1/namespaces/${PRODUCTION}/secrets?fieldSelector=metadata.name%3Dfm-endpoint-token`)).status).toBe(403);
  // A POST create has no name in its URL, so the named create does not cover it (the rotation never POSTs).
  expect((await call(rotationToken, 'POST', `/api/v1/namespaces/${PRODUCTION}/secrets`, secretApply('fm-endpoint-token'))).body.message).toBe(
    `secrets is forbidden: User "${ROTATION_USER}" cannot create resource "secrets" in API group "" in the namespace "${PRODUCTION}"`,
  );
  // A Secret of another namespace, and deleting its own: refused.
  expect((await call(rotationToken, 'GET', '/api/v1/namespaces/default/secrets/fm-endpoint-token')).status).toBe(403);
  expect((await call(rotationToken, 'DELETE', `/api/v1/namespaces/${PRODUCTION}/secrets/fm-endpoint-token`)).status).toBe(403);
});

it('an apply that would create is also authorized for create (with its name); a binding to a missing Role puts RBAC\'s reason in the 403', async () => {
  // A group allowed to patch one Secret but not to create any: updating it works, creating it does not.
  const ns = PRODUCTION;
  await applyAsAdmin(
    [
      'apiVersion: rbac.authorization.k8s.io/v1',
      'kind: Role',
      `metadata: { name: patch-only, namespace: ${ns} }`,
      'rules: [{ apiGroups: [""], resources: [secrets], verbs: [patch], resourceNames: [patch-only, absent] }]',
      '---',
      'apiVersion: rbac.authorization.k8s.io/v1',
      'kind: RoleBinding',
      `metadata: { name: patch-only, namespace: ${ns} }`,
      'roleRef: { apiGroup: rbac.authorization.k8s.io, kind: Role, name: patch-only }',
      'subjects: [{ apiGroup: rbac.authorization.k8s.io, kind: Group, name: patch-only }, { apiGroup: rbac.authorization.k8s.io, kind: Group, name: dangling }]',
      '---',
      'apiVersion: rbac.authorization.k8s.io/v1',
      'kind: RoleBinding',
      `metadata: { name: dangling, namespace: ${ns} }`,
      'roleRef: { apiGroup: rbac.authorization.k8s.io, kind: Role, name: never-created }',
      'subjects: [{ apiGroup: rbac.authorization.k8s.io, kind: Group, name: dangling }]',
    ].join('\n'),
  );
  const token = h.kube.mintScopedKubeconfig([], { username: 'patcher', groups: ['patch-only'] }).token;
  await call(h.kube.token, 'PATCH', `/api/v1/namespaces/${ns}/secrets/patch-only?fieldManager=admin`, secretApply('patch-only'), SSA);
  expect((await call(token, 'PATCH', `/api/v1/namespaces/${ns}/secrets/patch-only?fieldManager=mlpipe&force=true`, secretApply('patch-only'), SSA)).status).toBe(200);
  const created = await call(token, 'PATCH', `/api/v1/namespaces/${ns}/secrets/absent?fieldManager=mlpipe&force=true`, secretApply('absent'), SSA);
  // apiserver's withAuthorization: NewForbidden(group/resource, name, RBAC's reason), empty without evaluation errors.
  expect(created).toEqual({ status: 403, body: { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: 'secrets "absent" is forbidden: ', reason: 'Forbidden', details: { name: 'absent', kind: 'secrets' }, code: 403 } });
  expect((await call(h.kube.token, 'GET', `/api/v1/namespaces/${ns}/secrets/absent`)).status).toBe(404);

  const dangling = h.kube.mintScopedKubeconfig([], { username: 'dangler', groups: ['dangling'] }).token;
  expect((await call(dangling, 'GET', `/api/v1/namespaces/${ns}/pods`)).body.message).toBe(
    `pods is forbidden: User "dangler" cannot list resource "pods" in API group "" in the namespace "${ns}": RBAC: role.rbac.authorization.k8s.io "never-created" not found`,
  );
});

it('a list whose field selector pins metadata.name is authorized with that name (requestinfo.go), so resourceNames rules allow it', async () => {
  const ns = STAGING;
  await applyAsAdmin(
    [
      'apiVersion: rbac.authorization.k8s.io/v1',
      'kind: Role',
      `metadata: { name: lister, namespace: ${ns} }`,
      'rules: [{ apiGroups: [""], resources: [secrets], verbs: [list, watch], resourceNames: [watched] }]',
      '---',
      'apiVersion: rbac.authorization.k8s.io/v1',
      'kind: RoleBinding',
      `metadata: { name: lister, namespace: ${ns} }`,
      'roleRef: { apiGroup: rbac.authorization.k8s.io, kind: Role, name: lister }',
      'subjects: [{ apiGroup: rbac.authorization.k8s.io, kind: Group, name: lister }]',
    ].join('\n'),
  );
  const token = h.kube.mintScopedKubeconfig([], { username: 'lister', groups: ['lister'] }).token;
  const list = (selector?: string) => call(token, 'GET', `/api/v1/namespaces/${ns}/secrets${selector === undefined ? '' : `?fieldSelector=${encodeURIComponent(selector)}`}`);
  expect((await list('metadata.name=watched')).status).toBe(200);
  expect((await list('metadata.name==watched,type=Opaque')).status).toBe(200); // AND-ed with another term: still pinned
  expect((await list('metadata.name = watched')).status).toBe(200); // spaces, as the list itself parses them
  expect((await list()).body.message).toBe(`secrets is forbidden: User "lister" cannot list resource "secrets" in API group "" in the namespace "${ns}"`);
  expect((await list('metadata.name!=watched')).status).toBe(403); // not an exact match
  expect((await list('metadata.name=other')).body.message).toBe(`secrets "other" is forbidden: User "lister" cannot list resource "secrets" in API group "" in the namespace "${ns}"`);
});

it('validates Roles and RoleBindings as the real registry does: rules need verbs, groups and resources; roleRef is fixed', async () => {
  const base = `/apis/rbac.authorization.k8s.io/v1/namespaces/${STAGING}`;
  const bad = await call(h.kube.token, 'POST', `${base}/roles`, { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'Role', metadata: { name: 'bad' }, rules: [{ resources: ['pods'] }] });
  expect(bad.status).toBe(422);
  expect((bad.body.details as { causes: Array<{ field: string }> }).causes.map((c) => c.field)).toEqual(['rules[0].verbs', 'rules[0].apiGroups']);
  const badRef = await call(h.kube.token, 'POST', `${base}/rolebindings`, { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'RoleBinding', metadata: { name: 'b' }, roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Secret', name: 'r' }, subjects: [{ kind: 'Robot', name: 'x' }] });
  expect(badRef.status).toBe(422);
  expect(badRef.body.message).toContain('roleRef.kind: Unsupported value: "Secret": supported values: "Role", "ClusterRole"');
  expect(badRef.body.message).toContain('subjects[0].kind: Unsupported value: "Robot"');

  // apiGroup left out of roleRef and of User/Group subjects: defaulted to RBAC's (rbac/v1 defaults), as kubectl users write them.
  // A ServiceAccount subject without a namespace is accepted too: it is the binding's namespace's (appliesToUser).
  const terse = await call(h.kube.token, 'POST', `${base}/rolebindings`, { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'RoleBinding', metadata: { name: 'terse' }, roleRef: { kind: 'Role', name: 'a' }, subjects: [{ kind: 'Group', name: 'g' }, { kind: 'ServiceAccount', name: 'sa' }] });
  expect(terse.status).toBe(201);
  expect(terse.body).toMatchObject({ roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'a' }, subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'Group', name: 'g' }, { kind: 'ServiceAccount', name: 'sa' }] });
  expect((terse.body.subjects as Array<{ apiGroup?: string }>)[1]!.apiGroup).toBeUndefined();

  const binding = { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'RoleBinding', metadata: { name: 'fixed' }, roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'a' }, subjects: [] };
  expect((await call(h.kube.token, 'POST', `${base}/rolebindings`, binding)).status).toBe(201);
  const changed = await call(h.kube.token, 'PATCH', `${base}/rolebindings/fixed`, { roleRef: { ...binding.roleRef, name: 'b' } }, 'application/merge-patch+json');
  expect(changed.status).toBe(422);
  expect(changed.body.message).toContain('cannot change roleRef');
});

it('rule matching as rbac RuleAllows: *, */subresource, a subresource only by its full name, resourceNames only for named requests', () => {
  const pods = typeOf('pods');
  const get = { verb: 'get', type: pods, namespace: 'n', name: 'p' };
  expect(ruleAllows({ apiGroups: ['*'], resources: ['*'], verbs: ['*'] }, { ...get, subresource: 'proxy' })).toBe(true);
  expect(ruleAllows({ apiGroups: [''], resources: ['*/proxy'], verbs: ['get'] }, { ...get, subresource: 'proxy' })).toBe(true);
  expect(ruleAllows({ apiGroups: [''], resources: ['pods'], verbs: ['get'] }, { ...get, subresource: 'proxy' })).toBe(false);
  expect(ruleAllows({ apiGroups: [''], resources: ['pods/proxy'], verbs: ['get'] }, get)).toBe(false);
  expect(ruleAllows({ apiGroups: ['apps'], resources: ['pods'], verbs: ['get'] }, get)).toBe(false);
  expect(ruleAllows({ apiGroups: [''], resources: ['pods'], verbs: ['get'], resourceNames: ['p'] }, get)).toBe(true);
  expect(ruleAllows({ apiGroups: [''], resources: ['pods'], verbs: ['list'], resourceNames: ['p'] }, { verb: 'list', type: pods, namespace: 'n' })).toBe(false);
});
