/**
 * Staging and production serving against the local Kubernetes API over HTTP: Deployments run the test
 * model server as processes, LoadBalancer Services get a real local port, and endpoints are probed over
 * HTTP. Blue/green: v1 then v2 behind the stable production Service, v1 retired (0 replicas) by the
 * success path's Cleanup, then a rollback that scales v1 back up, waits until ready and switches to it.
 */
import { loadAllYaml, type KubernetesObject, type V1Deployment, type V1Pod } from '@kubernetes/client-node';
import { handler as deployStaging } from '../../functions/deploy-staging';
import { handler as awaitStagingRollout } from '../../functions/await-staging-rollout';
import { handler as exposeStaging } from '../../functions/expose-staging';
import { handler as awaitStagingEndpoint } from '../../functions/await-staging-endpoint';
import { handler as deployProduction } from '../../functions/deploy-production';
import { handler as awaitProductionRollout } from '../../functions/await-production-rollout';
import { handler as switchProductionTraffic } from '../../functions/switch-production-traffic';
import { handler as awaitProductionEndpoint } from '../../functions/await-production-endpoint';
import { handler as rollback } from '../../functions/rollback';
import { handler as cleanup } from '../../functions/cleanup';
import { applyObject, listObjects, patchObject, readObject } from '../../functions/shared/kube';
import { RETIRED_AT_ANNOTATION } from '../../functions/shared/retention';
import { LABELS, PREVIOUS_VERSION_ANNOTATION, labelSelector, workloadLabels } from '../../functions/shared/names';
import { getFresh, readService } from '../../functions/shared/workloads';
import { readProduction, recordProductionRelease } from '../../functions/shared/registry';
import type { PipelineState, RunContext, StageResult } from '../../functions/shared/types';
import { asKubernetesGroup, IMAGES, startTestEnv, type TestEnv } from './env';
import { reloadSettings } from '../../functions/shared/settings';
import { rollbackRbacYaml, tasksRbacYaml } from '../../lib/monitor-rbac';

let env: TestEnv;

beforeAll(async () => {
  env = await startTestEnv();
});
afterAll(async () => {
  await env?.stop();
});

type StageHandler = (state: PipelineState) => Promise<StageResult>;

/** Loops an Await handler as the state machine does while it answers `pending`. */
async function loop(handler: StageHandler, state: PipelineState, key: 'staging' | 'production', maxRounds = 4): Promise<StageResult> {
  let result = await handler(state);
  for (let i = 1; i < maxRounds && result.status === 'pending'; i++) result = await handler({ ...state, [key]: result });
  return result;
}

/** What a new client connection to the endpoint gets (the test servers report their version). */
async function modelStatus(endpoint: string, model: string): Promise<{ status: number; version?: string }> {
  const res = await getFresh(`${endpoint}/v1/models/${model}`, 5000);
  const body = JSON.parse(res.text) as { model_version_status?: Array<{ version: string }> };
  return { status: res.status, version: body.model_version_status?.[0]?.version };
}

const deployment = (run: RunContext) => readObject<V1Deployment>({ kind: 'Deployment', namespace: 'mlpipe-production', name: run.names.productionDeployment });

/** Deploys a run to production and switches traffic to it, through the handlers. */
async function release(run: RunContext): Promise<StageResult> {
  const deployed = await deployProduction({ run });
  const ready = await loop(awaitProductionRollout, { run, production: deployed }, 'production');
  expect(ready.status).toBe('ready');
  const switched = await switchProductionTraffic({ run, production: ready });
  return loop(awaitProductionEndpoint, { run, production: switched }, 'production');
}

/** A printed Role or RoleBinding created or deleted as a cluster admin (kubectl apply -f -, kubectl delete -f -). */
const rbacAsAdmin = (method: 'POST' | 'DELETE', doc: KubernetesObject) =>
  fetch(`${env.kube.url}/apis/rbac.authorization.k8s.io/v1/namespaces/${doc.metadata!.namespace}/${doc.kind === 'Role' ? 'roles' : 'rolebindings'}${method === 'DELETE' ? `/${doc.metadata!.name}` : ''}`, {
    method,
    headers: { authorization: `Bearer ${env.kube.token}`, 'content-type': 'application/json' },
    ...(method === 'POST' ? { body: JSON.stringify(doc) } : {}),
  });

describe('staging', () => {
  it('deploys (idempotently), rolls out, exposes and serves over the LoadBalancer endpoint', async () => {
    // Prepare
    const run = await env.prepare('2026-01-03T10:00:00Z');
    // Act
    const deployed = await deployStaging({ run });
    const again = await deployStaging({ run });
    const ready = await loop(awaitStagingRollout, { run, staging: deployed }, 'staging');
    const exposed = await exposeStaging({ run, staging: ready });
    await exposeStaging({ run, staging: ready }); // retried: no 409, still one Service
    const serving = await loop(awaitStagingEndpoint, { run, staging: exposed }, 'staging');
    // Assess
    expect(again.deployedAt).toBe(deployed.deployedAt);
    expect(ready.status).toBe('ready');
    expect(exposed.status).toBe('exposed');
    expect(serving.status).toBe('serving');
    expect(serving.endpoint).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(await modelStatus(serving.endpoint!, run.modelName)).toEqual({ status: 200, version: '1' });
    const deployments = await listObjects<V1Deployment>('Deployment', 'mlpipe-staging', { labelSelector: labelSelector(workloadLabels(run.modelName, run.version, 'staging')) });
    expect(deployments.items).toHaveLength(1);
    expect(deployments.items[0]?.spec?.template.spec?.containers[0]?.resources).toEqual({ requests: { cpu: '250m', memory: '512Mi' }, limits: { memory: '512Mi' } });
    const pods = await listObjects<V1Pod>('Pod', 'mlpipe-staging', { labelSelector: labelSelector(workloadLabels(run.modelName, run.version, 'staging')) });
    expect(pods.items).toHaveLength(1);
  });

  it('tasksKubernetesGroup: with only the Roles `mlpipe monitor-rbac --tasks` prints bound to its group (no access policy), it deploys, rolls out, exposes, serves and cleans up; unbound, the deploy fails naming what RBAC refused', async () => {
    // Arrange: the tasks' access entry with kubernetesGroups [mlpipe-tasks] and no access policy
    const user = 'arn:aws:sts::123456789012:assumed-role/mlpipe-KubernetesTaskRole/tasks';
    const run = await env.prepare('2026-01-03T10:05:00Z');
    const roles = loadAllYaml(tasksRbacYaml(['mlpipe-staging', 'mlpipe-production'], 'mlpipe-tasks')) as KubernetesObject[];
    try {
      await asKubernetesGroup(env.kube, { user, group: 'mlpipe-tasks' }, async () => {
        await expect(deployStaging({ run })).rejects.toThrow(`HTTP 403 Forbidden: deployments.apps "${run.names.stagingDeployment}" is forbidden: User "${user}" cannot patch resource "deployments" in API group "apps" in the namespace "mlpipe-staging"`);
        for (const doc of roles) expect((await rbacAsAdmin('POST', doc)).status).toBe(201);
        // Act: the staging steps, then the failure path's Cleanup (deletes the Deployment and the Service)
        const deployed = await deployStaging({ run });
        const ready = await loop(awaitStagingRollout, { run, staging: deployed }, 'staging');
        const exposed = await exposeStaging({ run, staging: ready });
        const serving = await loop(awaitStagingEndpoint, { run, staging: exposed }, 'staging');
        const answered = await modelStatus(serving.endpoint!, run.modelName);
        const cleaned = await cleanup({ run, error: { Error: 'Test' } });
        // Assess
        expect(serving.status).toBe('serving');
        expect(answered).toEqual({ status: 200, version: '1' });
        expect(cleaned.deleted).toEqual(expect.arrayContaining([`Deployment/mlpipe-staging/${run.names.stagingDeployment}`, `Service/mlpipe-staging/${run.names.stagingService}`]));
      });
    } finally {
      await Promise.all(roles.map((doc) => rbacAsAdmin('DELETE', doc)));
    }
  });

  it('fails the rollout on CrashLoopBackOff with the crashed container log tail', async () => {
    const run = await env.prepare('2026-01-03T10:01:00Z', { servingImage: IMAGES.serverCrash });
    const deployed = await deployStaging({ run });
    const err = (await loop(awaitStagingRollout, { run, staging: deployed }, 'staging').catch((e: unknown) => e)) as Error;
    expect(err.name).toBe('RolloutFailedError');
    expect(err.message).toContain(`Deployment mlpipe-staging/${run.names.stagingDeployment}`);
    expect(err.message).toMatch(/CrashLoopBackOff/);
    expect(err.message).toContain('Error: model.json not found (test server --crash)');
  });

  it('fails the rollout fast on an image that cannot be pulled', async () => {
    const run = await env.prepare('2026-01-03T10:02:00Z', { servingImage: IMAGES.unmapped });
    const deployed = await deployStaging({ run });
    await expect(loop(awaitStagingRollout, { run, staging: deployed }, 'staging')).rejects.toMatchObject({
      name: 'RolloutFailedError',
      message: expect.stringMatching(/ErrImagePull|ImagePullBackOff/),
    });
  });

  it('answers pending, not serving, while the Service has no endpoint yet', async () => {
    process.env.WATCH_BUDGET_SECONDS = '0.3';
    reloadSettings(); // handlers read settings at load
    try {
      const run = await env.prepare('2026-01-03T10:03:00Z');
      const deployed = await deployStaging({ run }); // pods not ready yet
      // The Service exists but no load balancer has given it an ingress (a ClusterIP Service never gets one).
      await applyObject({ apiVersion: 'v1', kind: 'Service', metadata: { name: run.names.stagingService, namespace: 'mlpipe-staging' }, spec: { type: 'ClusterIP', selector: { app: 'none' }, ports: [{ port: 80 }] } });
      const result = await awaitStagingEndpoint({ run, staging: { ...deployed, status: 'exposed', switchedAt: new Date().toISOString() } });
      expect(result.status).toBe('pending');
      expect(result.endpoint).toBeUndefined();
    } finally {
      process.env.WATCH_BUDGET_SECONDS = '15';
      reloadSettings(); // handlers read settings at load
    }
  });
});

describe('production blue/green', () => {
  it('switches v1 → v2 keeping v1, then rolls back to v1', async () => {
    // Prepare: two runs of the same model
    const v1 = await env.prepare('2026-01-04T09:00:00Z');
    const v2 = await env.prepare('2026-01-05T09:00:00Z', { servingImage: IMAGES.serverV2 });

    // Act 1: first release
    const first = await release(v1);
    // Assess 1
    expect(first.status).toBe('serving');
    expect(first.previousVersion).toBeNull();
    expect(await modelStatus(first.endpoint!, 'fashion')).toEqual({ status: 200, version: '1' });
    await recordProductionRelease({ modelName: 'fashion', version: v1.version, previousVersion: null, endpoint: first.endpoint!, switchedAt: first.switchedAt!, executionArn: v1.executionArn });

    // Act 2: second release
    const second = await release(v2);
    // Assess 2: the stable Service now selects v2, v1's Deployment is still there, the endpoint answers from v2
    expect(second.status).toBe('serving');
    expect(second.previousVersion).toBe(v1.version);
    expect(second.endpoint).toBe(first.endpoint);
    const svc = await readService('mlpipe-production', 'fashion');
    expect(svc?.spec?.selector?.[LABELS.version]).toBe(v2.version);
    expect(svc?.metadata?.annotations?.[PREVIOUS_VERSION_ANNOTATION]).toBe(v1.version);
    expect(await readObject({ kind: 'Deployment', namespace: 'mlpipe-production', name: v1.names.productionDeployment })).toBeDefined();
    expect(await modelStatus(second.endpoint!, 'fashion')).toEqual({ status: 200, version: '2' });
    await recordProductionRelease({ modelName: 'fashion', version: v2.version, previousVersion: v1.version, endpoint: second.endpoint!, switchedAt: second.switchedAt!, executionArn: v2.executionArn });

    // A retried switch still reports what served before, from the Service's annotation.
    const retried = await switchProductionTraffic({ run: v2, production: { ...second, status: 'ready', previousVersion: undefined } });
    expect(retried.previousVersion).toBe(v1.version);

    // Act 3: the release's CleanupStaging retires v1: 0 replicas, marked, kept
    const cleaned = await cleanup({ run: v2, production: second });
    // Assess 3
    expect(cleaned.retired).toEqual([v1.version]);
    const retiredV1 = await deployment(v1);
    expect(retiredV1?.spec?.replicas).toBe(0);
    expect(Date.parse(retiredV1?.metadata?.annotations?.[RETIRED_AT_ANNOTATION] ?? '')).toBeGreaterThan(Date.now() - 60_000);
    expect((await deployment(v2))?.spec?.replicas).toBe(1);
    expect((await deployment(v2))?.metadata?.annotations?.[RETIRED_AT_ANNOTATION]).toBeUndefined();

    // Act 4: rollback
    const rolledBack = await rollback({ modelName: 'fashion', by: 'test' });
    // Assess 4: v1 scaled up from 0 and ready before the switch; v2 retired in its turn
    expect(rolledBack).toMatchObject({ modelName: 'fashion', fromVersion: v2.version, toVersion: v1.version, endpoint: first.endpoint, scaledFrom: 0, replicas: 1, retired: v2.version });
    expect(rolledBack.readySeconds).toBeGreaterThan(0);
    expect(rolledBack.tookSeconds).toBeGreaterThanOrEqual(rolledBack.readySeconds);
    expect((await readService('mlpipe-production', 'fashion'))?.spec?.selector?.[LABELS.version]).toBe(v1.version);
    expect(await modelStatus(first.endpoint!, 'fashion')).toEqual({ status: 200, version: '1' });
    const activeV1 = await deployment(v1);
    expect(activeV1?.spec?.replicas).toBe(1);
    expect(activeV1?.status?.availableReplicas).toBe(1);
    expect(activeV1?.metadata?.annotations?.[RETIRED_AT_ANNOTATION]).toBeUndefined();
    expect((await deployment(v2))?.spec?.replicas).toBe(0);
    expect((await deployment(v2))?.metadata?.annotations?.[RETIRED_AT_ANNOTATION]).toBe(rolledBack.switchedAt);
    const record = await readProduction('fashion');
    expect(record).toMatchObject({ version: v1.version, previousVersion: v2.version });
    expect(record?.history.at(-1)).toMatchObject({ version: v1.version, action: 'rollback', by: 'test' });

    // AwaitProductionEndpoint for v2 now refuses: traffic was switched elsewhere (and v2 retired).
    await expect(awaitProductionEndpoint({ run: v2, production: second })).rejects.toMatchObject({
      name: 'EndpointUnavailableError',
      message: expect.stringMatching(/has no available replicas, so nothing of version/),
    });
  });

  it('rollbackKubernetesGroup: with only the Role `mlpipe monitor-rbac --rollback` prints bound to its group (no access policy, nothing in staging), a rollback scales the retired version up, switches and retires the other, and a crashing target is refused with its log; unbound, it fails naming what RBAC refused', async () => {
    // Arrange, as the tasks: v2 serves production; v1's Deployment and a crashing v0's are retired (0 replicas), as Cleanup leaves them
    const v0 = await env.prepare('2026-01-07T21:00:00Z', { modelName: 'rbac-rollback', servingImage: IMAGES.serverCrash });
    const v1 = await env.prepare('2026-01-08T09:00:00Z', { modelName: 'rbac-rollback' });
    const v2 = await env.prepare('2026-01-09T09:00:00Z', { modelName: 'rbac-rollback', servingImage: IMAGES.serverV2 });
    for (const run of [v0, v1]) {
      await deployProduction({ run });
      await patchObject({ kind: 'Deployment', namespace: 'mlpipe-production', name: run.names.productionDeployment }, { metadata: { annotations: { [RETIRED_AT_ANNOTATION]: new Date().toISOString() } }, spec: { replicas: 0 } });
    }
    const served = await release(v2);
    // The rollback's access entry with kubernetesGroups [mlpipe-rollback] and no access policy: the group is all it has.
    const user = 'arn:aws:sts::123456789012:assumed-role/mlpipe-RollbackRole/rollback';
    const roles = loadAllYaml(rollbackRbacYaml('mlpipe-production', 'mlpipe-rollback')) as KubernetesObject[];
    try {
      await asKubernetesGroup(env.kube, { user, group: 'mlpipe-rollback' }, async () => {
        // Before the cluster admin applies the Role: the first read is refused, and the error says so.
        await expect(rollback({ modelName: 'rbac-rollback', toVersion: v1.version })).rejects.toThrow(`HTTP 403 Forbidden: services "rbac-rollback" is forbidden: User "${user}" cannot get resource "services" in API group "" in the namespace "mlpipe-production"`);
        for (const doc of roles) expect((await rbacAsAdmin('POST', doc)).status).toBe(201);
        // A target that crashes: its pods are watched and its log read (pods/log), then it is retired again.
        const crashed = (await rollback({ modelName: 'rbac-rollback', toVersion: v0.version }).catch((e: unknown) => e)) as Error;
        expect(crashed).toMatchObject({ name: 'RollbackError', message: expect.stringMatching(/did not become ready: CrashLoopBackOff[^]*model\.json not found \(test server --crash\)[^]*scaled back to 0 replicas/) });
        // Act
        const rolledBack = await rollback({ modelName: 'rbac-rollback', toVersion: v1.version, by: 'test' });
        // Assess: scaled up from 0 (patch, then the rollout watched), switched (the Service applied), v2 retired (patch)
        expect(rolledBack).toMatchObject({ fromVersion: v2.version, toVersion: v1.version, endpoint: served.endpoint, scaledFrom: 0, replicas: 1, retired: v2.version });
        expect(await modelStatus(served.endpoint!, 'rbac-rollback')).toEqual({ status: 200, version: '1' });
      });
    } finally {
      await Promise.all(roles.map((doc) => rbacAsAdmin('DELETE', doc)));
    }
    expect((await readService('mlpipe-production', 'rbac-rollback'))?.spec?.selector?.[LABELS.version]).toBe(v1.version);
    expect((await deployment(v2))?.spec?.replicas).toBe(0);
    expect((await deployment(v0))?.spec?.replicas).toBe(0);
  });

  it('refuses a rollback to a version that cannot become ready, scales it back to 0 and leaves traffic alone', async () => {
    // Prepare: v1 serves; v0 (an image nobody can pull) is retired since two hours
    const v0 = await env.prepare('2026-01-06T09:00:00Z', { modelName: 'unready', servingImage: IMAGES.unmapped });
    const v1 = await env.prepare('2026-01-07T09:00:00Z', { modelName: 'unready' });
    await deployProduction({ run: v0 });
    const retiredAt = new Date(Date.now() - 2 * 3_600_000).toISOString();
    await patchObject({ kind: 'Deployment', namespace: 'mlpipe-production', name: v0.names.productionDeployment }, { metadata: { annotations: { [RETIRED_AT_ANNOTATION]: retiredAt } }, spec: { replicas: 0 } });
    await release(v1);
    // Act
    const err = (await rollback({ modelName: 'unready', toVersion: v0.version }).catch((e: unknown) => e)) as Error;
    // Assess: the reason is the pod's, production still serves v1, v0 is retired again as it was
    expect(err).toMatchObject({ name: 'RollbackError', message: expect.stringMatching(/did not become ready: (ErrImagePull|ImagePullBackOff).*\nIt was scaled back to 0 replicas\. Production stays on \S+\.$/s) });
    expect((await readService('mlpipe-production', 'unready'))?.spec?.selector?.[LABELS.version]).toBe(v1.version);
    const d = await deployment(v0);
    expect(d?.spec?.replicas).toBe(0);
    expect(d?.metadata?.annotations?.[RETIRED_AT_ANNOTATION]).toBe(retiredAt);
    expect((await deployment(v1))?.spec?.replicas).toBe(1);
  });

  it('refuses a rollback to a version whose Deployment is gone', async () => {
    // A production Service of its own model (serving a version), whatever the other tests did before.
    await applyObject({
      apiVersion: 'v1', kind: 'Service', metadata: { name: 'gone', namespace: 'mlpipe-production' },
      spec: { type: 'ClusterIP', selector: { [LABELS.version]: '20260101-000000-bbbbbbb' }, ports: [{ port: 80 }] },
    });
    await expect(rollback({ modelName: 'gone', toVersion: '20200101-000000-aaaaaaa' })).rejects.toMatchObject({
      name: 'RollbackError',
      message: expect.stringMatching(/no longer exists/),
    });
    await expect(rollback({ modelName: 'Bad_Name' })).rejects.toMatchObject({ name: 'InvalidInputError', message: expect.stringMatching(/modelName/) });
  });
});
