/**
 * Cleanup against the local Kubernetes API: what a run leaves in staging goes; on the failure path its
 * unswitched production Deployment goes too, and a run that failed after its switch hands traffic back to
 * the version that served before (or, when it cannot, keeps it and says why); the versions production
 * replaced are retired (0 replicas, mlpipe.dev/retired-at) and pruned after RETENTION_HOURS, never the
 * newest retired one nor what the Service selects or selected before (planRetention's rules, with cases of
 * their own). Deletes tolerate 404 and retiring is idempotent, so a second call is harmless.
 */
import type { V1Deployment } from '@kubernetes/client-node';
import { handler as cleanup } from '../../functions/cleanup';
import { handler as awaitProductionEndpoint } from '../../functions/await-production-endpoint';
import { handler as awaitProductionRollout } from '../../functions/await-production-rollout';
import { handler as deployProduction } from '../../functions/deploy-production';
import { handler as deployStaging } from '../../functions/deploy-staging';
import { handler as exposeStaging } from '../../functions/expose-staging';
import { handler as submitTraining } from '../../functions/submit-training';
import { handler as switchProductionTraffic } from '../../functions/switch-production-traffic';
import { applyObject, deleteObject, listObjects, patchObject, readObject, type ManagedKind } from '../../functions/shared/kube';
import { RETIRED_AT_ANNOTATION, planRetention, type ProductionVersion } from '../../functions/shared/retention';
import { splitOf, splitService } from '../../functions/shared/canary';
import { CANARY_VERSION_ANNOTATION, LABELS, PREVIOUS_VERSION_ANNOTATION } from '../../functions/shared/names';
import type { PipelineState, RunContext, StageResult } from '../../functions/shared/types';
import { getFresh, readService } from '../../functions/shared/workloads';
import { IMAGES, startTestEnv, type TestEnv } from './env';
import { captureLogs } from '../logging/capture';

let env: TestEnv;

beforeAll(async () => {
  env = await startTestEnv();
  // Cleanup logs each switch-back decision; the assertions read its result instead.
  captureLogs();
});
afterAll(async () => {
  jest.restoreAllMocks();
  await env?.stop();
});

const FAILURE = { Error: 'EvaluationGateFailed', Cause: 'accuracy 0.70 < 0.85' };

async function exists(kind: ManagedKind, namespace: string, name: string): Promise<boolean> {
  return (await readObject({ kind, namespace, name })) !== undefined;
}

/** A run that got as far as staging (Job, Deployment, Service) and a production Deployment. */
async function runThroughStaging(startTime: string, modelName: string): Promise<RunContext> {
  const run = await env.prepare(startTime, { modelName, image: IMAGES.trainerSlow });
  await submitTraining({ run });
  const staging = await deployStaging({ run });
  await exposeStaging({ run, staging });
  await deployProduction({ run });
  return run;
}

type StageHandler = (state: PipelineState) => Promise<StageResult>;

/** Loops an Await handler as the state machine does while it answers `pending`. */
async function loop(handler: StageHandler, state: PipelineState, maxRounds = 4): Promise<StageResult> {
  let result = await handler(state);
  for (let i = 1; i < maxRounds && result.status === 'pending'; i++) result = await handler({ ...state, production: result });
  return result;
}

/** Deploys a run to production, waits for its rollout and switches traffic to it (the `$.production` after the switch). */
async function switchTo(run: RunContext): Promise<StageResult> {
  const ready = await loop(awaitProductionRollout, { run, production: await deployProduction({ run }) });
  expect(ready.status).toBe('ready');
  return switchProductionTraffic({ run, production: ready });
}

/** The version the test server behind `endpoint` reports, on a new connection. */
async function servedVersion(endpoint: string, model: string): Promise<string | undefined> {
  const res = await getFresh(`${endpoint}/v1/models/${model}`, 5000);
  return (JSON.parse(res.text) as { model_version_status?: Array<{ version: string }> }).model_version_status?.[0]?.version;
}

const selectedVersion = async (model: string) => (await readService('mlpipe-production', model))?.spec?.selector?.[LABELS.version];

async function replicasAndRetiredAt(run: RunContext): Promise<{ replicas: number | undefined; retiredAt: string | undefined }> {
  const d = await readObject<V1Deployment>({ kind: 'Deployment', namespace: 'mlpipe-production', name: run.names.productionDeployment });
  return { replicas: d?.spec?.replicas, retiredAt: d?.metadata?.annotations?.[RETIRED_AT_ANNOTATION] };
}

async function productionVersions(modelName: string): Promise<string[]> {
  const list = await listObjects<V1Deployment>('Deployment', 'mlpipe-production', { labelSelector: `${LABELS.name}=${modelName}` });
  return list.items.map((d) => d.metadata!.labels![LABELS.version]!).sort();
}

describe('cleanup', () => {
  it('on success deletes the staging objects, keeps the released production Deployment, and is idempotent', async () => {
    // Prepare
    const run = await runThroughStaging('2026-01-06T08:00:00Z', 'clean-ok');
    const production = await switchProductionTraffic({ run, production: await deployProduction({ run }) });
    // Act
    const first = await cleanup({ run, production });
    const second = await cleanup({ run, production });
    // Assess
    expect(first.deleted.sort()).toEqual(
      [`Deployment/mlpipe-staging/${run.names.stagingDeployment}`, `Job/mlpipe-staging/${run.names.trainingJob}`, `Service/mlpipe-staging/${run.names.stagingService}`].sort(),
    );
    expect(second.deleted).toEqual([]);
    expect(await exists('Job', 'mlpipe-staging', run.names.trainingJob)).toBe(false);
    expect(await exists('Deployment', 'mlpipe-staging', run.names.stagingDeployment)).toBe(false);
    expect(await exists('Service', 'mlpipe-staging', run.names.stagingService)).toBe(false);
    expect(await exists('Deployment', 'mlpipe-production', run.names.productionDeployment)).toBe(true);
  });

  it('on failure also deletes the production Deployment traffic was never switched to', async () => {
    const run = await runThroughStaging('2026-01-06T08:01:00Z', 'clean-fail');
    const { deleted } = await cleanup({ run, error: FAILURE });
    expect(deleted).toContain(`Deployment/mlpipe-production/${run.names.productionDeployment}`);
    expect(await exists('Deployment', 'mlpipe-production', run.names.productionDeployment)).toBe(false);
    expect((await cleanup({ run, error: FAILURE })).deleted).toEqual([]);
  });

  it('on failure after the switch of a first release keeps traffic and its Deployment, and says why', async () => {
    // Prepare: the model's first release got its switch, then its endpoint never answered
    const run = await runThroughStaging('2026-01-06T08:02:00Z', 'clean-switched');
    const production = await switchProductionTraffic({ run, production: await deployProduction({ run }) });
    expect(production.previousVersion).toBeNull();
    // Act
    const result = await cleanup({ run, production, error: { Error: 'EndpointUnavailableError', Cause: 'never answered' } });
    // Assess
    expect(result.deleted).not.toContain(`Deployment/mlpipe-production/${run.names.productionDeployment}`);
    expect(result.switchedBack).toBeUndefined();
    expect(result.trafficKept).toEqual({ version: run.version, reason: expect.stringMatching(/first release/) });
    expect(await selectedVersion('clean-switched')).toBe(run.version);
    expect(await exists('Deployment', 'mlpipe-production', run.names.productionDeployment)).toBe(true);
  });

  it('on failure after the switch puts traffic back on the previous version and deletes the failed Deployment', async () => {
    // Prepare: v1 serves; v2 (another server build) is switched to, then the run fails
    const v1 = await env.prepare('2026-01-07T09:00:00Z', { modelName: 'clean-back' });
    const v2 = await env.prepare('2026-01-08T09:00:00Z', { modelName: 'clean-back', servingImage: IMAGES.serverV2 });
    const first = await loop(awaitProductionEndpoint, { run: v1, production: await switchTo(v1) });
    expect(first.status).toBe('serving');
    const production = await switchTo(v2);
    expect(production.previousVersion).toBe(v1.version);
    expect(await servedVersion(first.endpoint!, 'clean-back')).toBe('2');
    const failure = { Error: 'EndpointUnavailableError', Cause: 'v2 never answered on the production endpoint' };
    // Act
    const result = await cleanup({ run: v2, production, error: failure });
    // Assess: traffic is on v1 again (the endpoint answers from v1's pods), v2's Deployment is gone, v1's stays
    expect(result.switchedBack).toEqual({ from: v2.version, to: v1.version });
    expect(result.trafficKept).toBeUndefined();
    expect(result.deleted).toContain(`Deployment/mlpipe-production/${v2.names.productionDeployment}`);
    const svc = await readService('mlpipe-production', 'clean-back');
    expect(svc?.spec?.selector?.[LABELS.version]).toBe(v1.version);
    expect(svc?.metadata?.annotations?.[PREVIOUS_VERSION_ANNOTATION]).toBeUndefined(); // the failed run is no rollback target
    expect(await exists('Deployment', 'mlpipe-production', v2.names.productionDeployment)).toBe(false);
    expect(await exists('Deployment', 'mlpipe-production', v1.names.productionDeployment)).toBe(true);
    expect(await servedVersion(first.endpoint!, 'clean-back')).toBe('1');
    // A retried Cleanup (say the first attempt timed out after the switch) deletes nothing and still reports it.
    expect(await cleanup({ run: v2, production, error: failure })).toEqual({ deleted: [], switchedBack: { from: v2.version, to: v1.version } });
    // Without $.production (SwitchProductionTraffic's own result lost) it still finds the previous version on the Service.
    await switchTo(v2);
    expect((await cleanup({ run: v2, error: failure })).switchedBack).toEqual({ from: v2.version, to: v1.version });
    expect(await selectedVersion('clean-back')).toBe(v1.version);
  });

  it.each([
    ['a split step (the Service selects both versions)', 'clean-canary', false],
    ['its 100 % step (the Service selects the canary alone)', 'clean-canary-all', true],
  ])('on failure during a canary at %s gives the stable version all traffic back, keeping its own previous version', async (_step, model, canaryOnly) => {
    // Prepare: v1 serves; v2 is the canary, the Service split between them as ShiftCanaryTraffic leaves it
    const v1 = await env.prepare('2026-01-08T10:00:00Z', { modelName: model });
    const v2 = await env.prepare('2026-01-08T11:00:00Z', { modelName: model, servingImage: IMAGES.serverV2 });
    const first = await loop(awaitProductionEndpoint, { run: v1, production: await switchTo(v1) });
    const deployed = await loop(awaitProductionRollout, { run: v2, production: await deployProduction({ run: v2 }) });
    expect(deployed.status).toBe('ready');
    // v1's own predecessor, which rollback from v1 would go back to: a canary over v1 must not lose it.
    const beforeV1 = '20260101-000000-0000000';
    await applyObject(splitService(v2, v1.version, { annotations: {}, sourceRanges: [] }, beforeV1, canaryOnly));
    expect(splitOf(await readService('mlpipe-production', model))).toEqual({ canaryVersion: v2.version, stableVersion: v1.version });
    const failure = { Error: 'KubernetesUnavailableError', Cause: 'AnalyzeCanary could not reach the API' };
    // Act
    const result = await cleanup({ run: v2, production: deployed, error: failure });
    // Assess: the Service selects v1 alone again (no canary annotations), v2's Deployment is gone
    expect(result.switchedBack).toEqual({ from: v2.version, to: v1.version });
    const svc = await readService('mlpipe-production', model);
    expect(svc?.spec?.selector?.[LABELS.version]).toBe(v1.version);
    expect(splitOf(svc)).toBeUndefined();
    expect(svc?.metadata?.annotations?.[CANARY_VERSION_ANNOTATION]).toBeUndefined();
    expect(svc?.metadata?.annotations?.[PREVIOUS_VERSION_ANNOTATION]).toBe(beforeV1);
    expect(await exists('Deployment', 'mlpipe-production', v2.names.productionDeployment)).toBe(false);
    expect(await servedVersion(first.endpoint!, model)).toBe('1');
    // A retried Cleanup still reports the switch-back and deletes nothing more.
    expect(await cleanup({ run: v2, production: deployed, error: failure })).toEqual({ deleted: [], switchedBack: { from: v2.version, to: v1.version } });
  });

  it('on failure after the switch keeps traffic when the previous version cannot serve, and says why', async () => {
    // Prepare: v1 served, v2 switched to, then v1's Deployment disappeared (deleted by hand)
    const v1 = await env.prepare('2026-01-09T09:00:00Z', { modelName: 'clean-stuck' });
    const v2 = await env.prepare('2026-01-10T09:00:00Z', { modelName: 'clean-stuck' });
    await switchTo(v1);
    const production = await switchTo(v2);
    await deleteObject('Deployment', 'mlpipe-production', v1.names.productionDeployment);
    // Act
    const result = await cleanup({ run: v2, production, error: { Error: 'S3UnavailableError', Cause: 'RecordRelease could not write' } });
    // Assess
    expect(result.switchedBack).toBeUndefined();
    expect(result.trafficKept).toEqual({ version: v2.version, reason: expect.stringMatching(new RegExp(`previous version ${v1.version} .*no longer exists`)) });
    expect(await selectedVersion('clean-stuck')).toBe(v2.version);
    expect(await exists('Deployment', 'mlpipe-production', v2.names.productionDeployment)).toBe(true);
  });

  it('does nothing when Prepare failed and there is no run', async () => {
    await expect(cleanup({ image: 'bad', error: { Error: 'InvalidInputError', Cause: 'image: ...' } })).resolves.toEqual({ deleted: [] });
  });

  it('retires the versions production replaced (0 replicas, marked, idempotently) and leaves a newer release in flight alone', async () => {
    // Prepare: v1 → v2 → v3 released through the switch; v4 deployed, its run still going
    const runs: RunContext[] = [];
    for (let day = 1; day <= 4; day++) runs.push(await env.prepare(`2026-02-0${day}T12:00:00Z`, { modelName: 'retire' }));
    const [v1, v2, v3, v4] = runs as [RunContext, RunContext, RunContext, RunContext];
    for (const run of [v1, v2, v3]) await switchProductionTraffic({ run, production: await deployProduction({ run }) });
    await deployProduction({ run: v4 });
    const production = { ...(await deployProduction({ run: v3 })), status: 'serving' as const, previousVersion: v2.version };
    // Act: v3's CleanupStaging, twice (a retried task)
    const before = Date.now();
    const first = await cleanup({ run: v3, production });
    const second = await cleanup({ run: v3, production });
    // Assess: v1 and v2 at 0 replicas since this call, v3 (selected) and v4 (newer, in flight) untouched, nothing deleted
    expect(first.retired?.sort()).toEqual([v1.version, v2.version].sort());
    expect(second.retired).toBeUndefined();
    expect(await productionVersions('retire')).toEqual([v1, v2, v3, v4].map((r) => r.version).sort());
    const state = Object.fromEntries(await Promise.all(runs.map(async (r) => [r.version, await replicasAndRetiredAt(r)] as const)));
    for (const r of [v1, v2]) {
      expect(state[r.version]!.replicas).toBe(0);
      expect(Date.parse(state[r.version]!.retiredAt!)).toBeGreaterThanOrEqual(before - 1000);
    }
    expect(state[v3.version]).toEqual({ replicas: 1, retiredAt: undefined });
    expect(state[v4.version]).toEqual({ replicas: 1, retiredAt: undefined });
    // The second call kept the first retired-at: the window counts from when a version stopped serving.
    expect(first.retired && (await replicasAndRetiredAt(v1)).retiredAt).toBe(state[v1.version]!.retiredAt);
  });

  it('prunes retired versions past RETENTION_HOURS, keeping the previous version and those within the window', async () => {
    // Prepare: v1..v4 released in turn (v4 serves, previous v3); v1, v2 retired 100 h and 80 h ago, v3 1 h ago
    const runs: RunContext[] = [];
    for (let day = 1; day <= 4; day++) runs.push(await env.prepare(`2026-03-0${day}T12:00:00Z`, { modelName: 'expire' }));
    const [v1, v2, v3, v4] = runs as [RunContext, RunContext, RunContext, RunContext];
    for (const run of runs) await switchProductionTraffic({ run, production: await deployProduction({ run }) });
    const hoursAgo = (h: number) => new Date(Date.now() - h * 3_600_000).toISOString();
    const retire = (run: RunContext, at: string) =>
      patchObject({ kind: 'Deployment', namespace: 'mlpipe-production', name: run.names.productionDeployment }, { metadata: { annotations: { [RETIRED_AT_ANNOTATION]: at } }, spec: { replicas: 0 } });
    await retire(v1, hoursAgo(100));
    await retire(v2, hoursAgo(80));
    await retire(v3, hoursAgo(1)); // replaced by v4: the Service's previous version, rollback's default target
    // Act: a failed run (v5, never switched) cleans up
    const v5 = await env.prepare('2026-03-05T12:00:00Z', { modelName: 'expire' });
    await deployProduction({ run: v5 });
    const { deleted, retired } = await cleanup({ run: v5, error: FAILURE });
    // Assess
    expect(retired).toBeUndefined();
    expect(deleted.filter((d) => d.startsWith('Deployment/mlpipe-production/')).sort()).toEqual(
      [v1, v2, v5].map((r) => `Deployment/mlpipe-production/${r.names.productionDeployment}`).sort(),
    );
    expect(await productionVersions('expire')).toEqual([v3.version, v4.version]);
    expect(await replicasAndRetiredAt(v4)).toEqual({ replicas: 1, retiredAt: undefined });
  });
});

describe('planRetention', () => {
  const NOW = Date.parse('2026-06-10T00:00:00Z');
  const H = 3_600_000;
  const v = (version: string, replicas: number, retiredHoursAgo?: number): ProductionVersion => ({
    name: `m-${version}`, version, replicas, retiredAt: retiredHoursAgo === undefined ? undefined : NOW - retiredHoursAgo * H,
  });
  const plan = (versions: ProductionVersion[], selected: string | undefined, protect: string[] = [], retentionHours = 72) => {
    const p = planRetention(versions, { selected, protect: new Set(protect), retentionHours, now: NOW });
    return { retire: p.retire.map((x) => x.version), prune: p.prune.map((x) => x.version) };
  };

  it.each([
    ['retires running versions older than the selected one, never newer ones (a release in flight)', [v('1', 2), v('2', 2), v('3', 2)], '2', { retire: ['1'], prune: [] }],
    ['marks an older version already at 0 replicas but not yet marked (a canary scaled it down)', [v('1', 0), v('2', 2)], '2', { retire: ['1'], prune: [] }],
    ['leaves a marked version at 0 replicas as it is', [v('1', 0, 5), v('2', 2)], '2', { retire: [], prune: [] }],
    ['retires nothing without a selected version (no Service, or a canary split selector)', [v('1', 2), v('2', 2)], undefined, { retire: [], prune: [] }],
  ] as const)('%s', (_what, versions, selected, expected) => {
    expect(plan([...versions], selected)).toEqual(expected);
  });

  it.each([
    ['prunes retired versions past the window, keeps those within it', [v('1', 0, 100), v('2', 0, 73), v('3', 0, 10), v('4', 2)], '4', [], 72, ['1', '2']],
    ['always keeps the most recently retired one, however old', [v('1', 0, 500), v('2', 0, 400), v('3', 2)], '3', [], 72, ['1']],
    ["never prunes a protected version (the Service's previous one)", [v('1', 0, 500), v('2', 0, 400), v('3', 2)], '3', ['1'], 72, []],
    ['never prunes a marked version someone scaled back up', [v('1', 1, 500), v('2', 0, 400), v('3', 2)], '3', [], 72, []],
    ['with a 0-hour window keeps only the newest retired one', [v('1', 0, 0.1), v('2', 0, 0.01), v('3', 2)], '3', [], 0, ['1']],
  ] as const)('%s', (_what, versions, selected, protect, hours, pruned) => {
    expect(plan([...versions], selected, [...protect], hours).prune).toEqual(pruned);
  });

  it('counts a version retired in this pass as the newest retired, and does not prune it in the same pass', () => {
    expect(plan([v('1', 0, 100), v('2', 2), v('3', 2)], '3')).toEqual({ retire: ['2'], prune: ['1'] });
  });
});
