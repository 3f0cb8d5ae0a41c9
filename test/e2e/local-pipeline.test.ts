/**
 * End to end, offline: the real ASL on the local Step Functions engine, every Task on its real handler,
 * a real Fashion-MNIST model trained and served by local "pods" of the local Kubernetes API, local S3,
 * approvals through the real approval endpoint. Three runs on one local pipeline: approved, rejected,
 * and one whose training fails.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { startLocalPipeline, type LocalPipeline, type RunOutcome } from '../../local/pipeline';
import { getJson } from '../../functions/shared/clients';

jest.setTimeout(240_000);

describe('local pipeline end to end', () => {
  let dir: string;
  let pipeline: LocalPipeline;
  let kc: k8s.KubeConfig;
  const savedEnv = { ...process.env };
  const lines: string[] = [];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'mlpipe-e2e-'));
    pipeline = await startLocalPipeline({
      stateDir: dir,
      approvalPort: 0,
      log: (l) => lines.push(l),
      // The gate is lowered so the quick second model (rejected on purpose) still reaches a human.
      settings: { MIN_ACCURACY: '0.6', MAX_ACCURACY_DROP: '0.5', EVAL_SAMPLES: '10000' },
    });
    kc = new k8s.KubeConfig();
    kc.loadFromFile(pipeline.kubeconfigPath);
  });

  afterAll(async () => {
    await pipeline?.stop();
    rmSync(dir, { recursive: true, force: true });
    process.env = savedEnv;
  });

  const names = async (api: 'jobs' | 'deployments' | 'services', ns: string): Promise<string[]> => {
    if (api === 'jobs') return (await kc.makeApiClient(k8s.BatchV1Api).listNamespacedJob({ namespace: ns })).items.map((o) => o.metadata!.name!);
    if (api === 'deployments') return (await kc.makeApiClient(k8s.AppsV1Api).listNamespacedDeployment({ namespace: ns })).items.map((o) => o.metadata!.name!);
    return (await kc.makeApiClient(k8s.CoreV1Api).listNamespacedService({ namespace: ns })).items.map((o) => o.metadata!.name!);
  };
  const notifications = (): Array<{ subject?: string; message: string }> =>
    readFileSync(pipeline.notificationsFile, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { subject?: string; message: string });

  let first: RunOutcome;

  it('an approved run trains, evaluates over HTTP, and promotes the model to production', async () => {
    first = await pipeline.run({}, { approval: 'auto-approve' });
    expect(first.error).toBeUndefined();
    expect(first.status).toBe('SUCCEEDED');
    const s = first.output!;
    const { version, modelName } = s.run;

    // Evaluated over HTTP on the held-out set, by EvaluateModel.
    expect(s.evaluation!.samples).toBe(10000);
    expect(s.evaluation!.accuracy).toBeGreaterThanOrEqual(0.85);
    expect(s.evaluation!.errorRate).toBe(0);
    expect(s.approval!.decision).toBe('approve');

    // The production endpoint really serves the model.
    const res = await fetch(`${s.production!.endpoint}/v1/models/${modelName}`);
    expect(res.status).toBe(200);

    // Kubernetes: production Deployment of this version + the stable Service; staging and the Job are gone.
    expect(await names('deployments', 'mlpipe-production')).toContain(s.run.names.productionDeployment);
    const svc = await kc.makeApiClient(k8s.CoreV1Api).readNamespacedService({ name: s.run.names.productionService, namespace: 'mlpipe-production' });
    expect(svc.spec!.selector!['mlpipe.dev/version']).toBe(version);
    expect(await names('deployments', 'mlpipe-staging')).not.toContain(s.run.names.stagingDeployment);
    expect(await names('services', 'mlpipe-staging')).not.toContain(s.run.names.stagingService);
    expect(await names('jobs', 'mlpipe-staging')).not.toContain(s.run.names.trainingJob);

    // S3: model, metrics, evaluation, manifest, and the production pointer.
    const prefix = `models/${modelName}/${version}/`;
    expect(await getJson(pipeline.bucket, `${prefix}metrics.json`)).toEqual(expect.objectContaining({ accuracy: expect.any(Number) }));
    expect(await getJson(pipeline.bucket, `${prefix}evaluation.json`)).toEqual(expect.objectContaining({ passed: true, samples: 10000 }));
    expect(await getJson(pipeline.bucket, `${prefix}manifest.json`)).toEqual(expect.objectContaining({ status: 'released' }));
    expect(await getJson(pipeline.bucket, `models/${modelName}/production.json`)).toEqual(expect.objectContaining({ version }));
    expect(notifications().some((n) => n.message.includes(version) && /succeeded|released/i.test(`${n.subject} ${n.message}`))).toBe(true);
  });

  it('a rejected run leaves production as it was, records the decision and cleans up staging', async () => {
    const run = await pipeline.run({ hyperparameters: { epochs: 1, maxTrainSamples: 6000 } }, { approval: 'reject' });
    expect(run.status).toBe('FAILED');
    expect(run.error).toBe('ApprovalRejected');
    const version = run.lastState!.run.version;
    expect(version).not.toBe(first.output!.run.version);

    const manifest = await getJson<{ status: string }>(pipeline.bucket, `models/fashion-mnist/${version}/manifest.json`);
    expect(manifest!.status).toBe('rejected');
    const prod = await getJson<{ version: string }>(pipeline.bucket, 'models/fashion-mnist/production.json');
    expect(prod!.version).toBe(first.output!.run.version);
    expect(await names('deployments', 'mlpipe-staging')).toEqual([]);
    expect(await names('services', 'mlpipe-staging')).toEqual([]);
    expect(await names('deployments', 'mlpipe-production')).toEqual([first.output!.run.names.productionDeployment]);
    expect(notifications().some((n) => n.message.includes(version) && /reject/i.test(`${n.subject} ${n.message}`))).toBe(true);
  });

  it('a run whose training fails ends in a failure notification carrying the pod log tail, with staging cleaned up', async () => {
    const run = await pipeline.run({ hyperparameters: { failWith: 'simulated out-of-memory in epoch 1' } }, { approval: 'auto-approve' });
    expect(run.status).toBe('FAILED');
    expect(run.error).toBe('TrainingFailedError');
    expect(run.cause).toContain('simulated out-of-memory in epoch 1');
    const failure = notifications().at(-1)!;
    expect(failure.message).toContain('TrainingFailedError');
    expect(failure.message).toContain('simulated out-of-memory in epoch 1');
    expect(await names('jobs', 'mlpipe-staging')).toEqual([]);
    expect(await names('deployments', 'mlpipe-staging')).toEqual([]);
    // Production is untouched.
    const prod = await getJson<{ version: string }>(pipeline.bucket, 'models/fashion-mnist/production.json');
    expect(prod!.version).toBe(first.output!.run.version);
  });
});
