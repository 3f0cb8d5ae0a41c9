/**
 * Local startup restore (local/restore-production.ts) against the local Kubernetes API and a local S3:
 * production.json and each version's manifest.json, written by the real RecordRelease handler, bring back
 * the production Deployments (the previous version retired: 0 replicas, marked since it was replaced) and the
 * Service; versions without model files are skipped with a note; a
 * serving image that cannot start fails the restore at once instead of holding up the start.
 */
import { handler as recordRelease } from '../../functions/record-release';
import { putJson } from '../../functions/shared/clients';
import { readObject } from '../../functions/shared/kube';
import { LABELS, PREVIOUS_VERSION_ANNOTATION } from '../../functions/shared/names';
import { readProduction, registryKeys } from '../../functions/shared/registry';
import { RETIRED_AT_ANNOTATION } from '../../functions/shared/retention';
import type { V1Deployment } from '@kubernetes/client-node';
import type { RunContext } from '../../functions/shared/types';
import { getFresh, readService } from '../../functions/shared/workloads';
import { restoreProduction } from '../../local/restore-production';
import { BUCKET, IMAGES, startTestEnv, type TestEnv } from './env';
import { captureLogs } from '../logging/capture';

let env: TestEnv;

beforeAll(async () => {
  env = await startTestEnv();
  captureLogs(); // handler log lines stay out of the test output
});
afterAll(async () => {
  jest.restoreAllMocks();
  await env?.stop();
});

/** A version as a past release left it in S3: model files (unless `withModel` is false), manifest.json, production.json. */
async function released(startTime: string, modelName: string, opts: { servingImage?: string; withModel?: boolean; previous?: RunContext } = {}): Promise<RunContext> {
  const run = await env.prepare(startTime, { modelName, ...(opts.servingImage ? { servingImage: opts.servingImage } : {}) });
  if (opts.withModel !== false) await putJson(BUCKET, `${registryKeys.versionPrefix(modelName, run.version)}model.json`, { format: 'layers-model' });
  await recordRelease({
    run,
    production: {
      stage: 'production',
      namespace: run.namespaces.production,
      deploymentName: run.names.productionDeployment,
      serviceName: run.names.productionService,
      deployedAt: startTime,
      status: 'serving',
      endpoint: 'http://127.0.0.1:9/gone-with-the-old-cluster',
      previousVersion: opts.previous?.version ?? null,
      switchedAt: startTime,
    },
  });
  return run;
}

async function servedVersion(endpoint: string, model: string): Promise<string | undefined> {
  const res = await getFresh(`${endpoint}/v1/models/${model}`, 5000);
  return (JSON.parse(res.text) as { model_version_status?: Array<{ version: string }> }).model_version_status?.[0]?.version;
}

describe('restoreProduction', () => {
  it('brings back the current and previous version and serves the current one where production.json now says', async () => {
    // Prepare: v1 released, then v2 (another server build) released over it
    const v1 = await released('2026-03-01T10:00:00Z', 'restore-ok');
    const v2 = await released('2026-03-02T10:00:00Z', 'restore-ok', { servingImage: IMAGES.serverV2, previous: v1 });
    const notes: string[] = [];
    // Act
    const restored = await restoreProduction('restore-ok', (l) => notes.push(l));
    // Assess
    expect(notes).toEqual([]);
    expect(restored).toEqual({ modelName: 'restore-ok', version: v2.version, previousVersion: v1.version, endpoint: expect.stringMatching(/^http:\/\/127\.0\.0\.1:\d+$/) });
    expect(await servedVersion(restored!.endpoint, 'restore-ok')).toBe('2');
    const svc = await readService('mlpipe-production', 'restore-ok');
    expect(svc?.spec?.selector?.[LABELS.version]).toBe(v2.version);
    expect(svc?.metadata?.annotations?.[PREVIOUS_VERSION_ANNOTATION]).toBe(v1.version);
    const deployment = (run: RunContext) => readObject<V1Deployment>({ kind: 'Deployment', namespace: 'mlpipe-production', name: run.names.productionDeployment });
    expect((await deployment(v2))?.spec?.replicas).toBe(1);
    // v1 is a retained version, as Cleanup left it when v2 replaced it: no pods, retired since v2's switch.
    const previous = await deployment(v1);
    expect(previous?.spec?.replicas).toBe(0);
    expect(previous?.metadata?.annotations?.[RETIRED_AT_ANNOTATION]).toBe(new Date('2026-03-02T10:00:00Z').toISOString());
    expect(await readProduction('restore-ok')).toMatchObject({ version: v2.version, previousVersion: v1.version, endpoint: restored!.endpoint });
    // Again (a second start on the same cluster): the same objects, the same answer.
    await expect(restoreProduction('restore-ok', (l) => notes.push(l))).resolves.toEqual(restored);
  });

  it('skips a version whose model files are gone, with a note', async () => {
    const v1 = await released('2026-03-03T10:00:00Z', 'restore-skip', { withModel: false });
    const v2 = await released('2026-03-04T10:00:00Z', 'restore-skip', { previous: v1 });
    const notes: string[] = [];
    const restored = await restoreProduction('restore-skip', (l) => notes.push(l));
    expect(restored).toMatchObject({ version: v2.version, previousVersion: null });
    expect(notes).toEqual([expect.stringMatching(new RegExp(`previous version not restored .*${v1.version}: no model files`))]);
    expect(await readObject({ kind: 'Deployment', namespace: 'mlpipe-production', name: v1.names.productionDeployment })).toBeUndefined();
  });

  it('restores nothing when the current version has no model files, or nothing was ever released', async () => {
    const v1 = await released('2026-03-05T10:00:00Z', 'restore-none', { withModel: false });
    const notes: string[] = [];
    await expect(restoreProduction('restore-none', (l) => notes.push(l))).resolves.toBeUndefined();
    expect(notes).toEqual([`production restore-none not restored: ${v1.version}: no model files under models/restore-none/${v1.version}/`]);
    expect(await readService('mlpipe-production', 'restore-none')).toBeUndefined();
    await expect(restoreProduction('never-released', (l) => notes.push(l))).resolves.toBeUndefined();
    expect(notes).toHaveLength(1);
  });

  it('fails at once when the serving image cannot start', async () => {
    await released('2026-03-06T10:00:00Z', 'restore-bad', { servingImage: IMAGES.unmapped });
    await expect(restoreProduction('restore-bad', () => undefined)).rejects.toThrow(/cannot start: (ErrImagePull|ImagePullBackOff)/);
  });
});
