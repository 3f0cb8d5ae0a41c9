/**
 * Issue 8 item 6: a failure message says how the container ended — exit code, signal, the kubelet's
 * reason (Error, OOMKilled, a pod's Evicted or DeadlineExceeded) — and shows its log tail, phase timeouts
 * included. Against the local Kubernetes API, whose kubelet reports terminated containers as the real one
 * does (exit code 128 + signal, reason OOMKilled past the memory limit); pod shapes the local node cannot
 * produce (eviction) are checked on the status objects the API serves.
 */
import type { V1Pod } from '@kubernetes/client-node';
import { handler as submitTraining } from '../../functions/submit-training';
import { handler as awaitTraining } from '../../functions/await-training';
import { handler as deployStaging } from '../../functions/deploy-staging';
import { handler as awaitStagingRollout } from '../../functions/await-staging-rollout';
import { handler as exposeStaging } from '../../functions/expose-staging';
import { handler as awaitStagingEndpoint } from '../../functions/await-staging-endpoint';
import { collectionPath, watchUntil } from '../../functions/shared/kube';
import { labelSelector, workloadLabels } from '../../functions/shared/names';
import { setPhaseClock } from '../../functions/shared/phase';
import { reloadSettings } from '../../functions/shared/settings';
import type { PipelineState, RunContext, TrainingResult } from '../../functions/shared/types';
import { describePodState } from '../../functions/shared/workloads';
import { IMAGES, startTestEnv, type TestEnv } from './env';

describe('failure-reasons', () => {
  let env: TestEnv;

  beforeAll(async () => {
    env = await startTestEnv();
  });
  afterAll(async () => {
    await env?.stop();
  });

  /** Settings as SubmitTraining sees them when it applies the Job (activeDeadlineSeconds, memory limit). */
  async function submitWith(run: RunContext, settings: Record<string, string>): Promise<TrainingResult> {
    const saved = { ...process.env };
    Object.assign(process.env, settings);
    reloadSettings();
    try {
      return await submitTraining({ run });
    } finally {
      process.env = saved;
      reloadSettings();
    }
  }

  /** The TrainingFailedError or PhaseTimeoutError that ends AwaitTraining's loop. */
  async function trainingFailure(run: RunContext, training: TrainingResult): Promise<Error> {
    let result = training;
    try {
      for (let i = 0; i < 4 && result.status === 'pending'; i++) result = await awaitTraining({ run, training: result } as PipelineState);
    } catch (err) {
      return err as Error;
    }
    throw new Error(`expected a failure, got ${result.status}`);
  }

  /** Resolves once the log of the stage's pod contains `text`: follows the log stream (no polling). */
  async function logShows(run: RunContext, text: string, stage: 'training' | 'staging' = 'training'): Promise<void> {
    const selector = labelSelector(workloadLabels(run.modelName, run.version, stage));
    // Waits on the pod watch for its container to run.
    const pod = await watchUntil<V1Pod, string>(
      collectionPath('Pod', 'mlpipe-staging'),
      { labelSelector: selector },
      (p) => (p.status?.containerStatuses?.[0]?.state?.running ? p.metadata?.name : undefined),
      30_000,
    );
    if (!pod) throw new Error('the training pod never ran');
    const controller = new AbortController();
    const res = await fetch(`${env.kube.url}/api/v1/namespaces/mlpipe-staging/pods/${pod}/log?follow=true`, {
      headers: { authorization: `Bearer ${env.kube.token}` },
      signal: controller.signal,
    });
    let seen = '';
    const decoder = new TextDecoder();
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      seen += decoder.decode(chunk, { stream: true });
      if (seen.includes(text)) break;
    }
    controller.abort();
    expect(seen).toContain(text);
  }

  describe('how a training container ended, in the failure message', () => {
    it('a trainer that exits 1: exit code 1, reason Error, and its log tail', async () => {
      const run = await env.prepare('2026-04-01T00:00:00Z', { image: IMAGES.trainerFail });
      const err = await trainingFailure(run, await submitTraining({ run }));
      expect(err.name).toBe('TrainingFailedError');
      expect(err.message).toMatch(/BackoffLimitExceeded/);
      expect(err.message).toMatch(/container trainer terminated with exit code 1, reason Error/);
      expect(err.message).toContain('--- last log lines ---');
      expect(err.message).toContain('Error: loss diverged (test trainer --fail)');
    });

    it('a trainer past its memory limit: exit code 137 (signal 9, SIGKILL), reason OOMKilled', async () => {
      const run = await env.prepare('2026-04-01T00:01:00Z');
      // A Node.js process needs more than 16 MiB resident from its first moment: the limit kills it, as the
      // kernel's OOM killer would in a pod's cgroup.
      const err = await trainingFailure(run, await submitWith(run, { TRAINING_MEMORY: '16Mi' }));
      expect(err.name).toBe('TrainingFailedError');
      expect(err.message).toMatch(/BackoffLimitExceeded/);
      expect(err.message).toContain('container trainer terminated with exit code 137 (signal 9, SIGKILL), reason OOMKilled');
    });

    it('a Job past its activeDeadlineSeconds: DeadlineExceeded with how its pod was stopped and its log tail', async () => {
      const run = await env.prepare('2026-04-01T00:02:00Z', { image: IMAGES.trainerSlow });
      const submitted = await submitWith(run, { TRAINING_TIMEOUT_SECONDS: '3' });
      const err = await trainingFailure(run, submitted);
      expect(err.name).toBe('TrainingFailedError');
      expect(err.message).toMatch(/DeadlineExceeded: Job was active longer than specified deadline/);
      // The Job controller reports the failure (FailureTarget) while it stops the pod, so the pod's state is
      // still there to read; its log goes with the pod, as on a real cluster, which may be a moment later.
      expect(err.message).toMatch(/pod fashion-[^:]+: (Running \(terminating\); container trainer running since|Failed( \(terminating\))?; container trainer terminated with exit code 143 \(signal 15, SIGTERM\), reason Error)/);
      expect(err.message).toMatch(/--- last log lines ---\n(training on s3:\/\/|\(log unavailable: .*not found\))/);
    });

    it('the training phase timing out: PhaseTimeoutError with the pod state and its log tail', async () => {
      const run = await env.prepare('2026-04-01T00:03:00Z', { image: IMAGES.trainerSlow });
      const submitted = await submitTraining({ run });
      await logShows(run, 'training on s3://');
      // Five hours later (TRAINING_TIMEOUT_SECONDS is 4 h), on an injected clock.
      const restore = setPhaseClock({ now: () => Date.now() + 5 * 3600_000, sleep: async () => undefined });
      let err: Error;
      try {
        err = await trainingFailure(run, submitted);
      } finally {
        restore();
      }
      expect(err.name).toBe('PhaseTimeoutError');
      expect(err.message).toContain('the training phase did not finish within 14400 s');
      expect(err.message).toMatch(/pod fashion-[^:]+: Running; container trainer running since \S+\n--- last log lines ---\n/);
      expect(err.message).toContain('--- last log lines ---');
      expect(err.message).toContain('training on s3://');
    });
  });

  describe('serving phases timing out', () => {
    /** Runs `fn` with the Await tasks' clock `aheadMs` in the future, so their phase deadline has passed. */
    async function later<T>(aheadMs: number, fn: () => Promise<T>): Promise<Error> {
      const restore = setPhaseClock({ now: () => Date.now() + aheadMs, sleep: async () => undefined });
      try {
        await fn();
      } catch (err) {
        return err as Error;
      } finally {
        restore();
      }
      throw new Error('expected a failure');
    }

    it('a rollout past ROLLOUT_TIMEOUT_SECONDS: PhaseTimeoutError with the unready pod and its log tail', async () => {
      const run = await env.prepare('2026-04-01T00:04:00Z', { servingImage: IMAGES.serverNeverReady });
      const deployed = await deployStaging({ run });
      await logShows(run, 'loading fashion on', 'staging');
      const err = await later(901_000, () => awaitStagingRollout({ run, staging: deployed } as PipelineState));
      expect(err.name).toBe('PhaseTimeoutError');
      expect(err.message).toContain('the rollout phase did not finish within 900 s');
      expect(err.message).toMatch(/pod fashion-[^:]+: Running; container server running since \S+, not ready\n--- last log lines ---\n/);
      expect(err.message).toContain('loading fashion on');
    });

    it('an endpoint past ENDPOINT_TIMEOUT_SECONDS: the error shows the pods behind the Service and their log tail', async () => {
      const run = await env.prepare('2026-04-01T00:05:00Z', { servingImage: IMAGES.serverNeverReady });
      const deployed = await deployStaging({ run });
      const exposed = await exposeStaging({ run, staging: deployed } as PipelineState);
      await logShows(run, 'loading fashion on', 'staging');
      const err = await later(901_000, () => awaitStagingEndpoint({ run, staging: exposed } as PipelineState));
      expect(err.name).toBe('PhaseTimeoutError');
      expect(err.message).toContain('the endpoint phase did not finish within 900 s');
      expect(err.message).toMatch(/pod fashion-[^:]+: Running; container server running since \S+, not ready\n--- last log lines ---\n/);
      expect(err.message).toContain('loading fashion on');
    });
  });

  describe('describePodState on the status the API serves', () => {
    const pod = (status: V1Pod['status']): V1Pod => ({ metadata: { name: 'p' }, status });

    it.each([
      [
        'OOMKilled',
        pod({ phase: 'Failed', containerStatuses: [{ name: 'trainer', image: 'i', imageID: '', ready: false, restartCount: 0, state: { terminated: { exitCode: 137, reason: 'OOMKilled', startedAt: new Date(0), finishedAt: new Date(0) } } }] }),
        'Failed; container trainer terminated with exit code 137 (signal 9, SIGKILL), reason OOMKilled',
      ],
      [
        'Evicted',
        pod({ phase: 'Failed', reason: 'Evicted', message: 'The node was low on resource: memory. Threshold quantity: 100Mi, available: 51200Ki. ', containerStatuses: [{ name: 'server', image: 'i', imageID: '', ready: false, restartCount: 0, state: { terminated: { exitCode: 137, reason: 'ContainerStatusUnknown', message: 'The container could not be located when the pod was terminated' } } }] }),
        'Failed, Evicted: The node was low on resource: memory. Threshold quantity: 100Mi, available: 51200Ki.; container server terminated with exit code 137 (signal 9, SIGKILL), reason ContainerStatusUnknown: The container could not be located when the pod was terminated',
      ],
      [
        'DeadlineExceeded',
        pod({ phase: 'Failed', reason: 'DeadlineExceeded', message: 'Pod was active on the node longer than the specified deadline', containerStatuses: [{ name: 'trainer', image: 'i', imageID: '', ready: false, restartCount: 0, state: { terminated: { exitCode: 143, reason: 'Error' } } }] }),
        'Failed, DeadlineExceeded: Pod was active on the node longer than the specified deadline; container trainer terminated with exit code 143 (signal 15, SIGTERM), reason Error',
      ],
      [
        'CrashLoopBackOff',
        pod({ phase: 'Running', containerStatuses: [{ name: 'server', image: 'i', imageID: '', ready: false, restartCount: 3, state: { waiting: { reason: 'CrashLoopBackOff', message: 'back-off 40s restarting failed container=server' } }, lastState: { terminated: { exitCode: 1, reason: 'Error' } } }] }),
        'Running; container server waiting (CrashLoopBackOff: back-off 40s restarting failed container=server), 3 restarts; last terminated with exit code 1, reason Error',
      ],
    ])('%s', (_name, p, expected) => {
      expect(describePodState(p)).toBe(expected);
    });
  });
});
