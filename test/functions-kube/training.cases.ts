/**
 * SubmitTraining and AwaitTraining against the local Kubernetes API over HTTP: the Job really runs the
 * test trainer as a process, which writes metrics.json to the local S3.
 */
import type { V1Job, V1Pod } from '@kubernetes/client-node';
import { handler as submitTraining } from '../../functions/submit-training';
import { handler as awaitTraining } from '../../functions/await-training';
import { listObjects } from '../../functions/shared/kube';
import { labelSelector, workloadLabels } from '../../functions/shared/names';
import { IMAGES, awaitTrainingDone, startTestEnv, type TestEnv } from './env';
import { reloadSettings } from '../../functions/shared/settings';

describe('training', () => {
  let env: TestEnv;

  beforeAll(async () => {
    env = await startTestEnv();
  });
  afterAll(async () => {
    await env?.stop();
  });

  describe('training', () => {
    it('submits once even when retried: no 409, one Job, one pod; then succeeds with the trainer metrics', async () => {
      // Prepare
      const run = await env.prepare('2026-01-02T03:00:00Z', { hyperparameters: { epochs: 3 } });
      // Act
      const first = await submitTraining({ run });
      const retried = await submitTraining({ run });
      const done = await awaitTrainingDone(run, retried);
      // Assess
      expect(first).toMatchObject({ jobName: run.names.trainingJob, namespace: 'mlpipe-staging', status: 'pending' });
      expect(retried.submittedAt).toBe(first.submittedAt);
      const jobs = await listObjects<V1Job>('Job', 'mlpipe-staging');
      expect(jobs.items.filter((j) => j.metadata?.name === run.names.trainingJob)).toHaveLength(1);
      const pods = await listObjects<V1Pod>('Pod', 'mlpipe-staging', { labelSelector: labelSelector(workloadLabels(run.modelName, run.version, 'training')) });
      expect(pods.items).toHaveLength(1);
      expect(done.status).toBe('succeeded');
      expect(done.metrics).toEqual({ accuracy: 0.875, loss: 0.36, epochs: 3 });
      expect(Date.parse(done.completedAt!)).toBeGreaterThanOrEqual(Date.parse(first.submittedAt));
      // The Job is hardened as the manifest says, as stored by the API server.
      const spec = jobs.items.find((j) => j.metadata?.name === run.names.trainingJob)!.spec!;
      expect(spec.backoffLimit).toBe(1);
      expect(spec.template.spec?.securityContext?.runAsNonRoot).toBe(true);
      expect(spec.template.spec?.containers[0]?.securityContext).toMatchObject({ readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } });
      expect(spec.template.spec?.containers[0]?.resources).toEqual({ requests: { cpu: '1', memory: '2Gi' }, limits: { memory: '2Gi' } });
    });

    it('fails with the Kubernetes reason and the failed pod log tail', async () => {
      const run = await env.prepare('2026-01-02T03:01:00Z', { image: IMAGES.trainerFail });
      const submitted = await submitTraining({ run });
      const err = await awaitTrainingDone(run, submitted).catch((e: unknown) => e as Error);
      expect(err).toBeInstanceOf(Error);
      const e = err as Error;
      expect(e.name).toBe('TrainingFailedError');
      expect(e.message).toMatch(/BackoffLimitExceeded/);
      expect(e.message).toContain('Error: loss diverged (test trainer --fail)');
      expect(e.message).toContain('epoch 25: loss=nan');
      expect(e.message).not.toContain('epoch 1: loss=nan\n'); // a tail (~20 lines), not the whole log
    });

    it('fails fast on an image that cannot be pulled', async () => {
      const run = await env.prepare('2026-01-02T03:02:00Z', { image: IMAGES.unmapped });
      const submitted = await submitTraining({ run });
      const err = (await awaitTrainingDone(run, submitted).catch((e: unknown) => e)) as Error;
      expect(err.name).toBe('TrainingFailedError');
      expect(err.message).toMatch(/ErrImagePull|ImagePullBackOff/);
      expect(err.message).toContain(run.names.trainingJob);
      expect(err.message).toContain('the container never started');
    });

    it('returns pending when its watch budget runs out first', async () => {
      process.env.WATCH_BUDGET_SECONDS = '0.2';
      reloadSettings(); // handlers read settings at load
      try {
        const run = await env.prepare('2026-01-02T03:03:00Z', { image: IMAGES.trainerSlow });
        const submitted = await submitTraining({ run });
        const result = await awaitTraining({ run, training: submitted });
        // ...and plans the next check as CheckTraining does: no progress.json, so a back-off Wait.
        expect(result).toEqual({ ...submitted, status: 'pending', waitSeconds: 10 });
      } finally {
        process.env.WATCH_BUDGET_SECONDS = '15';
        reloadSettings(); // handlers read settings at load
      }
    });

    it('throws PhaseTimeoutError past the training deadline', async () => {
      const run = await env.prepare('2026-01-02T03:04:00Z');
      const submitted = await submitTraining({ run });
      const old = { ...submitted, submittedAt: new Date(Date.now() - 14_401_000).toISOString() };
      await expect(awaitTraining({ run, training: old })).rejects.toMatchObject({ name: 'PhaseTimeoutError', message: expect.stringMatching(/TRAINING_TIMEOUT_SECONDS/) });
    });
  });
});
