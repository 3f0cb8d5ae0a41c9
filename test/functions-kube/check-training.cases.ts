/**
 * CheckTraining against the local Kubernetes API and a local S3 over HTTP: one look (no watch) at a real
 * Job. Running → the next Wait planned from the progress.json the trainer wrote (or backed off without
 * one); done → `succeeded` with metrics.json; and each failure AwaitTraining's watch reports — a failed Job
 * with exit code and log tail, ImagePullBackOff, FailedCreate, a missing Job, the phase deadline — in the
 * same words; and AwaitTraining after a `watch` plan. The test waits for each state on the API's own
 * watch, never by sleeping.
 */
import type { CoreV1Event, V1Job, V1Pod } from '@kubernetes/client-node';
import { handler as submitTraining } from '../../functions/submit-training';
import { handler as checkTraining } from '../../functions/check-training';
import { handler as awaitTraining } from '../../functions/await-training';
import { DeleteObjectCommand } from '@aws-sdk/client-s3';
import { putJson, s3Client } from '../../functions/shared/clients';
import { collectionPath, kubeApis, watchUntil } from '../../functions/shared/kube';
import { labelSelector, workloadLabels } from '../../functions/shared/names';
import { progressLocation } from '../../functions/shared/progress';
import { setPhaseClock } from '../../functions/shared/phase';
import { reloadSettings } from '../../functions/shared/settings';
import type { RunContext, TrainingResult } from '../../functions/shared/types';
import { IMAGES, startTestEnv, type TestEnv } from './env';

describe('check-training', () => {
  let env: TestEnv;

  beforeAll(async () => {
    env = await startTestEnv();
  });
  afterAll(async () => {
    await env?.stop();
  });

  const NS = 'mlpipe-staging';
  const failure = (p: Promise<unknown>) => p.then(() => { throw new Error('expected a failure'); }, (e: unknown) => e as Error);

  /** Resolves once the run's training Job satisfies `test` (the API's watch, 30 s at most). */
  async function jobReaches(run: RunContext, test: (job: V1Job) => boolean): Promise<void> {
    const seen = await watchUntil<V1Job, true>(collectionPath('Job', NS), { fieldSelector: `metadata.name=${run.names.trainingJob}` }, (j) => (test(j) ? true : undefined), 30_000);
    if (!seen) throw new Error('the Job never got there');
  }

  async function podReaches(run: RunContext, test: (pod: V1Pod) => boolean): Promise<void> {
    const selector = labelSelector(workloadLabels(run.modelName, run.version, 'training'));
    const seen = await watchUntil<V1Pod, true>(collectionPath('Pod', NS), { labelSelector: selector }, (p) => (test(p) ? true : undefined), 30_000);
    if (!seen) throw new Error('the pod never got there');
  }

  /** Runs `fn` with environment settings changed (handlers read them at load: reloaded), then restores them. */
  async function withSettings<T>(settings: Record<string, string>, fn: () => Promise<T>): Promise<T> {
    const saved = { ...process.env };
    Object.assign(process.env, settings);
    reloadSettings();
    try {
      return await fn();
    } finally {
      process.env = saved;
      reloadSettings();
    }
  }

  const condition = (type: string) => (job: V1Job) => (job.status?.conditions ?? []).some((c) => c.type === type && c.status === 'True');

  describe('a running Job', () => {
    // One slow trainer serves every step (each a trainer process less): the steps follow a run's order.
    let run: RunContext;
    let submitted: TrainingResult;
    let location: { bucket: string; key: string };
    const progress = { fraction: 0.4, epoch: 2, epochs: 5, metrics: { loss: 0.41, accuracy: 0.85 }, etaSeconds: 200, updatedAt: '' };

    beforeAll(async () => {
      run = await env.prepare('2026-05-01T00:00:00Z', { image: IMAGES.trainerSlow });
      submitted = await submitTraining({ run });
      location = progressLocation(run.modelUri);
      await podReaches(run, (p) => p.status?.containerStatuses?.[0]?.state?.running !== undefined);
    });

    it('without progress.json: a backed-off Wait; with it, a Wait until a minute (and 10 % of what is left) before the end it predicts; near the end, a watch', async () => {
      await s3Client().send(new DeleteObjectCommand({ Bucket: location.bucket, Key: location.key })); // whatever ran before
      const blind = await checkTraining({ run, training: submitted });
      const ranFor = (Date.now() - Date.parse(submitted.submittedAt)) / 1000;
      expect(blind).toEqual({ ...submitted, status: 'pending', waitSeconds: expect.any(Number) });
      expect(blind.waitSeconds).toBeGreaterThanOrEqual(10);
      expect(blind.waitSeconds).toBeLessThanOrEqual(Math.max(10, Math.ceil(ranFor) + 1)); // as long as it has run
      expect(Number.isInteger(blind.waitSeconds)).toBe(true);

      const report = { ...progress, updatedAt: new Date().toISOString() };
      await putJson(location.bucket, location.key, report);
      const planned = await checkTraining({ run, training: blind });
      expect(planned).toEqual({ ...submitted, status: 'pending', waitSeconds: expect.any(Number), progress: report });
      // 200 s to go, less the 60 s lead and 10 % of the 200 s, less the seconds this took.
      expect(planned.waitSeconds).toBeGreaterThan(100);
      expect(planned.waitSeconds).toBeLessThanOrEqual(120);

      // The trainer says it is nearly done: watch until a minute after the end (80 s), within the watch
      // budget (this environment's: 15 s).
      await putJson(location.bucket, location.key, { ...progress, fraction: 0.99, etaSeconds: 20, updatedAt: new Date().toISOString() });
      const near = await checkTraining({ run, training: planned });
      expect(near).toMatchObject({ status: 'watch', waitSeconds: 15, progress: { fraction: 0.99 } });
    });

    it('AwaitTraining after a `watch` plan watches only as long as planned, then plans the next wait from progress.json', async () => {
      const report = { fraction: 0.5, etaSeconds: 200, updatedAt: new Date().toISOString() };
      await putJson(location.bucket, location.key, report);
      const started = Date.now();
      const result = await awaitTraining({ run, training: { ...submitted, status: 'watch', waitSeconds: 0.5 } });
      expect(Date.now() - started).toBeLessThan(10_000); // not this environment's 15 s watch budget
      expect(result).toMatchObject({ status: 'pending', progress: report });
      expect(result.waitSeconds).toBeGreaterThan(100);
      expect(result.waitSeconds).toBeLessThanOrEqual(120);
    });

    it('past TRAINING_TIMEOUT_SECONDS: PhaseTimeoutError naming the setting, with the pod state', async () => {
      // Five hours later (the deadline is 4 h), on an injected clock.
      const restore = setPhaseClock({ now: () => Date.parse(submitted.submittedAt) + 5 * 3600_000, sleep: async () => {} });
      try {
        const err = await failure(checkTraining({ run, training: submitted }));
        expect(err.name).toBe('PhaseTimeoutError');
        expect(err.message).toMatch(/TRAINING_TIMEOUT_SECONDS/);
        expect(err.message).toMatch(/pod .*-train-/);
      } finally {
        restore();
      }
    });
  });

  it('a finished Job: succeeded with the metrics the trainer wrote, and no wait left in the state', async () => {
    const run = await env.prepare('2026-05-01T00:02:00Z');
    const submitted = await submitTraining({ run });
    await jobReaches(run, condition('Complete'));
    const result = await checkTraining({ run, training: { ...submitted, status: 'pending', waitSeconds: 10 } });
    expect(result).toEqual({ ...submitted, status: 'succeeded', completedAt: expect.any(String), metrics: { accuracy: 0.875, loss: 0.36, epochs: 1 } });
  });

  describe('failures, as AwaitTraining reports them', () => {
    it('a trainer that exits 1: BackoffLimitExceeded, exit code 1 and its log tail', async () => {
      const run = await env.prepare('2026-05-01T00:03:00Z', { image: IMAGES.trainerFail });
      const submitted = await withSettings({ TRAINING_BACKOFF_LIMIT: '0' }, () => submitTraining({ run })); // one pod, not two
      await jobReaches(run, (j) => condition('Failed')(j) || condition('FailureTarget')(j));
      const err = await failure(checkTraining({ run, training: submitted }));
      expect(err.name).toBe('TrainingFailedError');
      expect(err.message).toMatch(/BackoffLimitExceeded/);
      expect(err.message).toMatch(/container trainer terminated with exit code 1, reason Error/);
      expect(err.message).toContain('Error: loss diverged (test trainer --fail)');
    });

    it('an image that cannot be pulled: ImagePullBackOff/ErrImagePull, no log', async () => {
      const run = await env.prepare('2026-05-01T00:04:00Z', { image: IMAGES.unmapped });
      const submitted = await submitTraining({ run });
      await podReaches(run, (p) => /ImagePullBackOff|ErrImagePull/.test(p.status?.containerStatuses?.[0]?.state?.waiting?.reason ?? ''));
      const err = await failure(checkTraining({ run, training: submitted }));
      expect(err.name).toBe('TrainingFailedError');
      expect(err.message).toMatch(/failed: (ImagePullBackOff|ErrImagePull)/);
      expect(err.message).toContain('(no log: the container never started)');
    });

    it('pods that cannot be created (missing ServiceAccount): the FailedCreate event', async () => {
      const run = await env.prepare('2026-05-01T00:05:00Z');
      await (await kubeApis()).core.deleteNamespacedServiceAccount({ namespace: NS, name: 'mlpipe-trainer' });
      try {
        const submitted = await submitTraining({ run });
        const event = await watchUntil<CoreV1Event, true>(collectionPath('Event', NS), { fieldSelector: `involvedObject.name=${run.names.trainingJob},reason=FailedCreate` }, () => true, 30_000);
        expect(event).toBe(true);
        const err = await failure(checkTraining({ run, training: submitted }));
        expect(err.name).toBe('TrainingFailedError');
        expect(err.message).toContain(`FailedCreate: pods "${run.names.trainingJob}-" is forbidden: error looking up service account ${NS}/mlpipe-trainer`);
      } finally {
        await (await kubeApis()).core.createNamespacedServiceAccount({ namespace: NS, body: { metadata: { name: 'mlpipe-trainer', namespace: NS } } });
      }
    });

    it('a Job that is not there: fails at once', async () => {
      const run = await env.prepare('2026-05-01T00:06:00Z');
      const training: TrainingResult = { jobName: run.names.trainingJob, namespace: NS, submittedAt: new Date().toISOString(), status: 'pending' };
      const err = await failure(checkTraining({ run, training }));
      expect(err.name).toBe('TrainingFailedError');
      expect(err.message).toContain(`Training Job ${NS}/${run.names.trainingJob} does not exist`);
    });
  });
});
