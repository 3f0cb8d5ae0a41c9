/**
 * Pods that cannot be created (here: the ServiceAccount they name is missing, refused by admission as on a
 * real cluster — transcripts 11 and 12): the local API answers as kube-apiserver does (Deployment
 * ReplicaFailure/FailedCreate, a Job with FailedCreate events only), and AwaitTraining and both rollout
 * waits fail in their first round — not after their deadline — with the API's own reason.
 */
import { handler as submitTraining } from '../../functions/submit-training';
import { handler as awaitTraining } from '../../functions/await-training';
import { handler as deployStaging } from '../../functions/deploy-staging';
import { handler as awaitStagingRollout } from '../../functions/await-staging-rollout';
import { handler as deployProduction } from '../../functions/deploy-production';
import { handler as awaitProductionRollout } from '../../functions/await-production-rollout';
import { getKubeConfig, kubeApis } from '../../functions/shared/kube';
import { startTestEnv, type TestEnv } from './env';

describe('failures-create', () => {
  let env: TestEnv;

  beforeAll(async () => {
    env = await startTestEnv({ WATCH_BUDGET_SECONDS: '20' });
  });
  afterAll(async () => {
    await env?.stop();
  });

  const failure = (p: Promise<unknown>) => p.then(() => { throw new Error('expected a failure'); }, (e: unknown) => e as Error);

  async function getApi<T>(path: string): Promise<T> {
    const kc = await getKubeConfig();
    const res = await fetch(`${kc.getCurrentCluster()!.server}${path}`, { headers: { Authorization: `Bearer ${kc.getCurrentUser()!.token}` } });
    return (await res.json()) as T;
  }

  it('AwaitTraining fails in its first round with the FailedCreate event the Job gets (missing ServiceAccount)', async () => {
    const run = await env.prepare('2026-03-01T00:00:00Z');
    const ns = run.namespaces.staging;
    await (await kubeApis()).core.deleteNamespacedServiceAccount({ namespace: ns, name: 'mlpipe-trainer' });
    const submitted = await submitTraining({ run });
    const started = Date.now();
    const err = await failure(awaitTraining({ run, training: submitted }));
    expect(Date.now() - started).toBeLessThan(20_000); // within one watch budget
    expect(err.name).toBe('TrainingFailedError');
    expect(err.message).toContain(`FailedCreate: pods "${run.names.trainingJob}-" is forbidden: error looking up service account ${ns}/mlpipe-trainer: serviceaccount "mlpipe-trainer" not found`);

    // What the handler read is what kube-apiserver answers (transcript 12): no Job condition, only events.
    const job = await getApi<{ status: Record<string, unknown> }>(`/apis/batch/v1/namespaces/${ns}/jobs/${run.names.trainingJob}`);
    expect(job.status.conditions).toBeUndefined();
    const core = await getApi<{ kind: string; items: Array<Record<string, unknown>> }>(`/api/v1/namespaces/${ns}/events?fieldSelector=involvedObject.name%3D${run.names.trainingJob},reason%3DFailedCreate`);
    expect(core.items[0]).toMatchObject({
      involvedObject: { kind: 'Job', namespace: ns, name: run.names.trainingJob, apiVersion: 'batch/v1' },
      reason: 'FailedCreate',
      message: `Error creating: pods "${run.names.trainingJob}-" is forbidden: error looking up service account ${ns}/mlpipe-trainer: serviceaccount "mlpipe-trainer" not found`,
      source: { component: 'job-controller' },
      type: 'Warning',
      eventTime: null,
      reportingComponent: 'job-controller',
      reportingInstance: '',
    });
    const v1 = await getApi<{ apiVersion: string; items: Array<Record<string, unknown>> }>(`/apis/events.k8s.io/v1/namespaces/${ns}/events?fieldSelector=regarding.name%3D${run.names.trainingJob}`);
    expect(v1.apiVersion).toBe('events.k8s.io/v1');
    expect(v1.items[0]).toMatchObject({ reportingController: 'job-controller', reason: 'FailedCreate', regarding: { kind: 'Job', name: run.names.trainingJob }, note: core.items[0]!.message, deprecatedSource: { component: 'job-controller' } });
  }, 40_000);

  it.each([
    ['staging', deployStaging],
    ['production', deployProduction],
  ] as const)('the %s rollout wait fails in its first round on the Deployment ReplicaFailure (missing ServiceAccount)', async (stage, deploy) => {
    const run = await env.prepare(stage === 'staging' ? '2026-03-01T00:01:00Z' : '2026-03-01T00:02:00Z');
    const ns = run.namespaces[stage];
    await (await kubeApis()).core.deleteNamespacedServiceAccount({ namespace: ns, name: 'mlpipe-server' });
    const deployed = await deploy({ run });
    const started = Date.now();
    const err = await failure(stage === 'staging' ? awaitStagingRollout({ run, staging: deployed }) : awaitProductionRollout({ run, production: deployed }));
    expect(Date.now() - started).toBeLessThan(20_000);
    expect(err.name).toBe('RolloutFailedError');
    expect(err.message).toMatch(/failed to roll out: FailedCreate: pods ".+-" is forbidden: error looking up service account .+\/mlpipe-server: serviceaccount "mlpipe-server" not found \(no pod could be created/);

    // The condition as kube-controller-manager writes it (transcript 11).
    const d = await getApi<{ status: { conditions: Array<Record<string, unknown>> } }>(`/apis/apps/v1/namespaces/${ns}/deployments/${deployed.deploymentName}`);
    expect(d.status.conditions.find((c) => c.type === 'ReplicaFailure')).toEqual({
      type: 'ReplicaFailure',
      status: 'True',
      lastUpdateTime: expect.any(String),
      lastTransitionTime: expect.any(String),
      reason: 'FailedCreate',
      message: expect.stringMatching(/^pods "[a-z0-9-]+-" is forbidden: error looking up service account [a-z-]+\/mlpipe-server: serviceaccount "mlpipe-server" not found$/),
    });
  }, 40_000);
});
