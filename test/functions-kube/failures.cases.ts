/**
 * The Kubernetes task handlers on the paths the happy-path tests do not take, against the local
 * Kubernetes API over HTTP: objects that are not found (never created, or deleted while watched), a
 * namespace that does not exist, each remaining failure reason (DeadlineExceeded, ProgressDeadlineExceeded,
 * a trainer that breaks the container contract), and retried creates in production.
 */
import type { V1Deployment } from '@kubernetes/client-node';
import { handler as submitTraining } from '../../functions/submit-training';
import { handler as awaitTraining } from '../../functions/await-training';
import { handler as deployStaging } from '../../functions/deploy-staging';
import { handler as awaitStagingRollout } from '../../functions/await-staging-rollout';
import { handler as exposeStaging } from '../../functions/expose-staging';
import { handler as awaitStagingEndpoint } from '../../functions/await-staging-endpoint';
import { handler as deployProduction } from '../../functions/deploy-production';
import { handler as awaitProductionRollout } from '../../functions/await-production-rollout';
import { handler as awaitProductionEndpoint } from '../../functions/await-production-endpoint';
import { deleteObject, listObjects } from '../../functions/shared/kube';
import { labelSelector, workloadLabels } from '../../functions/shared/names';
import { serviceEndpoint } from '../../functions/shared/workloads';
import type { RunContext, StageResult, TrainingResult } from '../../functions/shared/types';
import { IMAGES, startTestEnv, withSettings, type TestEnv } from './env';
import { nextWatchOpened } from '../local-kube/watch-opened';

describe('failures', () => {
  let env: TestEnv;

  beforeAll(async () => {
    env = await startTestEnv();
  });
  afterAll(async () => {
    await env?.stop();
  });

  /** Loops AwaitTraining as the state machine does until it stops answering `pending`. */
  async function awaitTrainingDone(run: RunContext, training: TrainingResult, maxRounds = 4): Promise<TrainingResult> {
    let result = training;
    for (let i = 0; i < maxRounds && result.status === 'pending'; i++) result = await awaitTraining({ run, training: result });
    return result;
  }

  async function awaitStagingDone(run: RunContext, staging: StageResult, maxRounds = 4): Promise<StageResult> {
    let result = staging;
    for (let i = 0; i < maxRounds && result.status === 'pending'; i++) result = await awaitStagingRollout({ run, staging: result });
    return result;
  }

  const failure = (p: Promise<unknown>) => p.then(() => { throw new Error('expected a failure'); }, (e: unknown) => e as Error);

  describe('not found', () => {
    it('SubmitTraining into a namespace that does not exist fails with KubernetesRequestError naming it', async () => {
      const run = await env.prepare('2026-02-01T00:00:00Z');
      const err = await failure(submitTraining({ run: { ...run, namespaces: { ...run.namespaces, staging: 'no-such-namespace' } } }));
      expect(err.name).toBe('KubernetesRequestError');
      expect(err.message).toMatch(/no-such-namespace/);
      expect(err.message).toMatch(/404|NotFound|not found/);
    });

    it('AwaitTraining on a Job that is not there fails at once (no wait for the deadline)', async () => {
      const run = await env.prepare('2026-02-01T00:01:00Z');
      const err = await failure(awaitTraining({ run, training: { jobName: run.names.trainingJob, namespace: 'mlpipe-staging', submittedAt: new Date().toISOString(), status: 'pending' } }));
      expect(err.name).toBe('TrainingFailedError');
      expect(err.message).toContain(`Training Job mlpipe-staging/${run.names.trainingJob} does not exist`);
    });

    it('AwaitTraining fails when the Job is deleted while it watches', async () => {
      const run = await env.prepare('2026-02-01T00:02:00Z', { image: IMAGES.trainerSlow });
      const submitted = await submitTraining({ run });
      const watching = nextWatchOpened(env.kube);
      const waiting = failure(awaitTraining({ run, training: submitted }));
      await watching;
      expect(await deleteObject('Job', 'mlpipe-staging', run.names.trainingJob)).toBe(true);
      const err = await waiting;
      expect(err.name).toBe('TrainingFailedError');
      expect(err.message).toMatch(/Deleted/);
    });

    it.each([
      ['AwaitStagingRollout', 'staging'],
      ['AwaitProductionRollout', 'production'],
    ] as const)('%s on a Deployment that is not there fails at once', async (_name, stage) => {
      const run = await env.prepare(stage === 'staging' ? '2026-02-01T00:03:00Z' : '2026-02-01T00:04:00Z');
      const result: StageResult = {
        stage,
        namespace: run.namespaces[stage],
        deploymentName: stage === 'staging' ? run.names.stagingDeployment : run.names.productionDeployment,
        serviceName: stage === 'staging' ? run.names.stagingService : run.names.productionService,
        deployedAt: new Date().toISOString(),
        status: 'pending',
      };
      const err = await failure(stage === 'staging' ? awaitStagingRollout({ run, staging: result }) : awaitProductionRollout({ run, production: result }));
      expect(err.name).toBe('RolloutFailedError');
      expect(err.message).toContain(`Deployment ${result.namespace}/${result.deploymentName} does not exist`);
    });

    it('AwaitStagingEndpoint on a Service that is not there fails at once', async () => {
      const run = await env.prepare('2026-02-01T00:11:00Z');
      const deployed = await deployStaging({ run });
      const err = await failure(awaitStagingEndpoint({ run, staging: { ...deployed, status: 'exposed', switchedAt: new Date().toISOString() } }));
      expect(err.name).toBe('EndpointUnavailableError');
      expect(err.message).toContain(`Service mlpipe-staging/${run.names.stagingService} does not exist`);
    });

    it('AwaitProductionEndpoint on a production Service that is not there fails at once, like staging', async () => {
      const run = await env.prepare('2026-02-01T00:13:00Z');
      let deployed = await deployProduction({ run });
      while (deployed.status !== 'ready') deployed = await awaitProductionRollout({ run, production: deployed });
      // The Deployment serves, but SwitchProductionTraffic's Service is not there.
      const err = await failure(awaitProductionEndpoint({ run, production: { ...deployed, status: 'exposed', switchedAt: new Date().toISOString() } }));
      expect(err.name).toBe('EndpointUnavailableError');
      expect(err.message).toContain(`Service ${run.namespaces.production}/${run.names.productionService} does not exist`);
    });

    it('AwaitProductionEndpoint fails at once when this version has no Deployment, or none of its replicas is available', async () => {
      const run = await env.prepare('2026-02-01T00:12:00Z', { servingImage: IMAGES.serverNeverReady });
      const result: StageResult = {
        stage: 'production',
        namespace: run.namespaces.production,
        deploymentName: run.names.productionDeployment,
        serviceName: run.names.productionService,
        deployedAt: new Date().toISOString(),
        status: 'ready',
        switchedAt: new Date().toISOString(),
      };
      const absent = await failure(awaitProductionEndpoint({ run, production: result }));
      expect(absent.name).toBe('EndpointUnavailableError');
      expect(absent.message).toContain(`Deployment ${result.namespace}/${result.deploymentName} no longer exists`);
      await deployProduction({ run });
      const unready = await failure(awaitProductionEndpoint({ run, production: result }));
      expect(unready.name).toBe('EndpointUnavailableError');
      expect(unready.message).toContain(`Deployment ${result.namespace}/${result.deploymentName} has no available replicas, so nothing of version ${run.version} is behind the production Service`);
    });

    it('AwaitStagingRollout fails when the Deployment is deleted during the rollout', async () => {
      const run = await env.prepare('2026-02-01T00:05:00Z', { servingImage: IMAGES.serverNeverReady });
      const deployed = await deployStaging({ run });
      const watching = nextWatchOpened(env.kube);
      const waiting = failure(awaitStagingRollout({ run, staging: deployed }));
      await watching;
      expect(await deleteObject('Deployment', 'mlpipe-staging', run.names.stagingDeployment)).toBe(true);
      const err = await waiting;
      expect(err.name).toBe('RolloutFailedError');
      expect(err.message).toMatch(/Deleted/);
    });
  });

  describe('failure reasons', () => {
    it('training past its activeDeadlineSeconds: DeadlineExceeded, with the pod log tail while it terminates', async () => {
      const run = await env.prepare('2026-02-01T00:06:00Z', { image: IMAGES.trainerSlow });
      // The Job gets activeDeadlineSeconds from TRAINING_TIMEOUT_SECONDS when it is applied. 3 s, not 1: on a
      // busy host the pod's process had not written its first line 1 s after the Job started (seen once).
      const submitted = await withSettings({ TRAINING_TIMEOUT_SECONDS: '3' }, () => submitTraining({ run }));
      const jobs = await listObjects('Job', 'mlpipe-staging', { fieldSelector: `metadata.name=${run.names.trainingJob}` });
      expect((jobs.items[0] as { spec?: { activeDeadlineSeconds?: number } }).spec?.activeDeadlineSeconds).toBe(3);
      const err = await failure(awaitTrainingDone(run, submitted));
      expect(err.name).toBe('TrainingFailedError');
      expect(err.message).toMatch(/DeadlineExceeded/);
      // Kubernetes terminates a Job's pods at the deadline. The failure is read at FailureTarget, while they
      // are terminating, so the message has the pod's state and its log tail; a pod already gone (before it
      // is listed, or between listing and reading its log) is said so instead.
      expect(err.message).toMatch(/pod \S+: .*\n--- last log lines ---\ntraining on |\(no pod found\)|\(log unavailable: .*not found\)/);
    });

    it('a trainer that exits 0 without metrics.json breaks the contract: TrainingFailedError naming the file', async () => {
      const run = await env.prepare('2026-02-01T00:07:00Z', { image: IMAGES.trainerNoMetrics });
      const submitted = await submitTraining({ run });
      const err = await failure(awaitTrainingDone(run, submitted));
      expect(err.name).toBe('TrainingFailedError');
      expect(err.message).toMatch(/metrics\.json is missing|metrics\.json.*missing/);
      expect(err.message).toContain('MODEL_OUTPUT_URI');
    });

    it('a server that never gets ready: ProgressDeadlineExceeded with its log tail', async () => {
      const run = await env.prepare('2026-02-01T00:08:00Z', { servingImage: IMAGES.serverNeverReady });
      // progressDeadlineSeconds comes from ROLLOUT_TIMEOUT_SECONDS when the Deployment is applied.
      const deployed = await withSettings({ ROLLOUT_TIMEOUT_SECONDS: '1' }, () => deployStaging({ run }));
      const err = await failure(awaitStagingDone(run, deployed));
      expect(err.name).toBe('RolloutFailedError');
      expect(err.message).toContain(`Deployment mlpipe-staging/${run.names.stagingDeployment}`);
      expect(err.message).toMatch(/ProgressDeadlineExceeded/);
      expect(err.message).toContain('loading fashion on');
    });
  });

  describe('retried creates', () => {
    it('DeployProduction retried: no 409, one Deployment, same deployedAt, the previous version untouched', async () => {
      const run = await env.prepare('2026-02-01T00:09:00Z');
      const first = await deployProduction({ run });
      const again = await deployProduction({ run });
      expect(again).toEqual(first);
      const list = await listObjects<V1Deployment>('Deployment', 'mlpipe-production', { labelSelector: labelSelector(workloadLabels(run.modelName, run.version, 'production')) });
      expect(list.items.map((d) => d.metadata?.name)).toEqual([run.names.productionDeployment]);
    });

    it('ExposeStaging retried: one Service, same resourceVersion (nothing changed)', async () => {
      const run = await env.prepare('2026-02-01T00:10:00Z');
      const deployed = await deployStaging({ run });
      await exposeStaging({ run, staging: deployed });
      const before = await listObjects('Service', 'mlpipe-staging', { fieldSelector: `metadata.name=${run.names.stagingService}` });
      const again = await exposeStaging({ run, staging: deployed });
      const after = await listObjects('Service', 'mlpipe-staging', { fieldSelector: `metadata.name=${run.names.stagingService}` });
      expect(again.status).toBe('exposed');
      expect(after.items).toHaveLength(1);
      expect(after.items[0]?.metadata?.resourceVersion).toBe(before.items[0]?.metadata?.resourceVersion);
    });
  });

  describe('serviceEndpoint (how a LoadBalancer ingress becomes a URL)', () => {
    it.each([
      ['an AWS load balancer hostname, Service port', { hostname: 'k8s-ml-abc.elb.eu-west-1.amazonaws.com' }, 80, 'http://k8s-ml-abc.elb.eu-west-1.amazonaws.com:80'],
      ['the hostname before the IP', { hostname: 'lb.example', ip: '10.0.0.1' }, 80, 'http://lb.example:80'],
      ['an IP with its own ingress port (local API)', { ip: '127.0.0.1', ports: [{ port: 41234, protocol: 'TCP' }] }, 80, 'http://127.0.0.1:41234'],
      ['an IPv6 address, bracketed', { ip: 'fd00::1' }, 8080, 'http://[fd00::1]:8080'],
    ])('%s', (_name, ingress, port, expected) => {
      expect(serviceEndpoint({ spec: { ports: [{ port }] }, status: { loadBalancer: { ingress: [ingress] } } })).toBe(expected);
    });

    it('is undefined until the load balancer has an ingress', () => {
      expect(serviceEndpoint({ spec: { ports: [{ port: 80 }] }, status: { loadBalancer: {} } })).toBeUndefined();
      expect(serviceEndpoint({ spec: { ports: [{ port: 80 }] }, status: { loadBalancer: { ingress: [{}] } } })).toBeUndefined();
    });
  });
});
