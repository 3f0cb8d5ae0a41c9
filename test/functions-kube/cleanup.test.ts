/**
 * Cleanup against the local Kubernetes API: what a run leaves in staging goes; on the failure path its
 * unswitched production Deployment goes too; production keeps the newest KEEP_PRODUCTION_VERSIONS and
 * always what the Service selects. Deletes tolerate 404, so a second call is harmless.
 */
import type { V1Deployment } from '@kubernetes/client-node';
import { handler as cleanup } from '../../functions/cleanup';
import { handler as deployProduction } from '../../functions/deploy-production';
import { handler as deployStaging } from '../../functions/deploy-staging';
import { handler as exposeStaging } from '../../functions/expose-staging';
import { handler as submitTraining } from '../../functions/submit-training';
import { handler as switchProductionTraffic } from '../../functions/switch-production-traffic';
import { listObjects, readObject, type ManagedKind } from '../../functions/shared/kube';
import { LABELS } from '../../functions/shared/names';
import type { RunContext } from '../../functions/shared/types';
import { IMAGES, startTestEnv, type TestEnv } from './env';

let env: TestEnv;

beforeAll(async () => {
  env = await startTestEnv();
});
afterAll(async () => {
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

  it('on failure after the switch keeps the production Deployment that serves traffic', async () => {
    const run = await runThroughStaging('2026-01-06T08:02:00Z', 'clean-switched');
    await switchProductionTraffic({ run, production: await deployProduction({ run }) });
    const { deleted } = await cleanup({ run, error: { Error: 'EndpointUnavailableError', Cause: 'never answered' } });
    expect(deleted).not.toContain(`Deployment/mlpipe-production/${run.names.productionDeployment}`);
    expect(await exists('Deployment', 'mlpipe-production', run.names.productionDeployment)).toBe(true);
  });

  it('does nothing when Prepare failed and there is no run', async () => {
    await expect(cleanup({ image: 'bad', error: { Error: 'InvalidInputError', Cause: 'image: ...' } })).resolves.toEqual({ deleted: [] });
  });

  it('prunes production to the newest three versions, never the selected one or its predecessor', async () => {
    // Prepare: five versions of one model deployed; production serves v2, switched from v1
    const runs: RunContext[] = [];
    for (let day = 1; day <= 5; day++) {
      const run = await env.prepare(`2026-02-0${day}T12:00:00Z`, { modelName: 'prune' });
      await deployProduction({ run });
      runs.push(run);
    }
    const [v1, v2, v3, v4, v5] = runs as [RunContext, RunContext, RunContext, RunContext, RunContext];
    await switchProductionTraffic({ run: v1, production: await deployProduction({ run: v1 }) });
    await switchProductionTraffic({ run: v2, production: await deployProduction({ run: v2 }) }); // serves v2, previous v1
    // Act: v5's run failed before its switch
    const { deleted } = await cleanup({ run: v5, error: FAILURE });
    // Assess: v5 (unswitched) deleted; v2 + v1 kept as live + previous; newest remaining (v4) fills the third place
    expect(await productionVersions('prune')).toEqual([v1.version, v2.version, v4.version].sort());
    expect(deleted.sort()).toEqual([`Deployment/mlpipe-production/${v3.names.productionDeployment}`, `Deployment/mlpipe-production/${v5.names.productionDeployment}`].sort());
  });
});
