/**
 * Checkpoints end to end: the real example trainer (examples/fashion-mnist/train.ts) runs as a training
 * Job's pod on the local Kubernetes API, with the CHECKPOINT_URI the Job manifest gives it. Its container
 * is killed mid-run, right after its first checkpoint (as an OOM kill or a lost node ends it); the Job
 * retries it (backoffLimit), and the retried pod resumes from the checkpoint instead of epoch 1: the run
 * succeeds having trained the requested epochs in total, none twice.
 */
import * as k8s from '@kubernetes/client-node';
import { handler as submitTraining } from '../../functions/submit-training';
import { kubeApis, listObjects, podLogTail } from '../../functions/shared/kube';
import { labelSelector, workloadLabels } from '../../functions/shared/names';
import { loadDataset } from '../../examples/fashion-mnist/stage-data';
import { decodeIdx, encodeIdx } from '../../examples/fashion-mnist/idx';
import { putBytes, s3 as exampleS3 } from '../../examples/fashion-mnist/s3';
import { BUCKET, awaitTrainingDone, startTestEnv, type TestEnv } from './env';
import { bundleScripts, removeScriptBundles, scriptCommand } from '../workloads/helpers';

describe('training-resume', () => {
  const TRAINER = 'test.local/fashion-mnist-trainer:1';
  const EPOCHS = 3;
  /** Enough for about half a second an epoch on one thread: a kill right after epoch 1's checkpoint lands well inside epoch 2. */
  const SAMPLES = 2000;

  let env: TestEnv;

  beforeAll(async () => {
    // The pod runs train.ts as the local run does (its bundle, local/images.ts, on plain Node).
    await bundleScripts();
    env = await startTestEnv({}, { [TRAINER]: scriptCommand('examples/fashion-mnist/train.ts') });
    // Only the images trained on, where the test env's DATA_URI points: the trainer downloads whole files.
    const { files } = loadDataset();
    const images = decodeIdx(files.trainImages);
    const labels = decodeIdx(files.trainLabels);
    const prefix = 'datasets/fashion-mnist/v1/';
    await putBytes(BUCKET, `${prefix}train-images-idx3-ubyte`, encodeIdx([SAMPLES, 28, 28], images.data.subarray(0, SAMPLES * 784)), 'application/octet-stream');
    await putBytes(BUCKET, `${prefix}train-labels-idx1-ubyte`, encodeIdx([SAMPLES], labels.data.subarray(0, SAMPLES)), 'application/octet-stream');
  });
  afterAll(async () => {
    exampleS3().destroy();
    await env?.stop();
    removeScriptBundles();
  });

  /** The first pod matching `selector` whose container runs (it has a process to kill), on a watch. */
  function runningPod(kc: k8s.KubeConfig, namespace: string, selector: string): Promise<k8s.V1Pod> {
    return new Promise((resolve, reject) => {
      let request: AbortController | undefined;
      let found: k8s.V1Pod | undefined;
      new k8s.Watch(kc)
        .watch(
          `/api/v1/namespaces/${namespace}/pods`,
          { labelSelector: selector },
          (_type: string, pod: k8s.V1Pod) => {
            if (found || !pod.status?.containerStatuses?.[0]?.state?.running) return;
            found = pod;
            request?.abort();
            resolve(pod);
          },
          (err: unknown) => {
            if (!found) reject(err instanceof Error ? err : new Error('the pod watch ended before a training pod ran'));
          },
        )
        .then((c) => {
          request = c;
          if (found) c.abort();
        }, reject);
    });
  }

  /** Follows a pod's log (pods/log?follow=true) until `pattern` appears; resolves with the match. */
  async function logLine(env: TestEnv, namespace: string, pod: string, pattern: RegExp): Promise<RegExpExecArray> {
    const controller = new AbortController();
    const res = await fetch(`${env.kube.url}/api/v1/namespaces/${namespace}/pods/${pod}/log?follow=true`, {
      headers: { Authorization: `Bearer ${env.kube.token}` },
      signal: controller.signal,
    });
    let text = '';
    const decoder = new TextDecoder();
    try {
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        text += decoder.decode(chunk, { stream: true });
        const match = pattern.exec(text);
        if (match) return match;
      }
    } finally {
      controller.abort();
    }
    throw new Error(`pod ${pod}'s log ended without ${pattern}:\n${text}`);
  }

  describe('a training pod killed mid-run', () => {
    it('is retried by the Job and resumes from its last checkpoint; the run trains the requested epochs in total', async () => {
      // Prepare: a small but real training.
      const run = await env.prepare('2026-01-03T04:00:00Z', { image: TRAINER, hyperparameters: { epochs: EPOCHS, threads: 1 } });
      const namespace = run.namespaces.staging;
      const selector = labelSelector(workloadLabels(run.modelName, run.version, 'training'));
      const submitted = await submitTraining({ run });
      const { kc } = await kubeApis();
      const first = await runningPod(kc, namespace, selector);

      // Act: kill the container's processes once its first checkpoint is saved (no grace: SIGKILL, exit 137).
      await logLine(env, namespace, first.metadata!.name!, /^checkpoint: epoch 1 of 3 saved/m);
      const pid = Number(/^local:\/\/(\d+)$/.exec(first.status!.containerStatuses![0]!.containerID ?? '')?.[1]);
      expect(pid).toBeGreaterThan(0);
      process.kill(-pid, 'SIGKILL');
      const done = await awaitTrainingDone(run, submitted);

      // Assess: one failure spent on the kill, then success.
      expect(done.status).toBe('succeeded');
      const pods = (await listObjects<k8s.V1Pod>('Pod', namespace, { labelSelector: selector })).items;
      expect(pods).toHaveLength(2);
      const killed = pods.find((p) => p.metadata?.uid === first.metadata?.uid)!;
      const retried = pods.find((p) => p.metadata?.uid !== first.metadata?.uid)!;
      expect(killed.status?.containerStatuses?.[0]?.state?.terminated?.exitCode).toBe(137);
      expect(retried.status?.phase).toBe('Succeeded');
      const job = (await listObjects<k8s.V1Job>('Job', namespace)).items.find((j) => j.metadata?.name === run.names.trainingJob)!;
      expect(job.status).toMatchObject({ failed: 1, succeeded: 1 });
      expect(job.spec?.template.spec?.containers[0]?.env).toContainEqual({ name: 'CHECKPOINT_URI', value: run.checkpointUri });

      // The killed pod started afresh and got no further than its last checkpoint before the kill landed.
      const killedLog = await podLogTail(namespace, killed.metadata!.name!, 1000);
      expect(killedLog).toContain('no checkpoint, starting at epoch 1');
      const saved = [...killedLog.matchAll(/^checkpoint: epoch (\d+) of 3 saved/gm)].map((m) => Number(m[1]));
      const last = saved.at(-1)!;
      expect(last).toBeGreaterThanOrEqual(1);
      expect(last).toBeLessThan(EPOCHS);
      expect(killedLog).not.toContain('wrote ');

      // The retried pod resumes from that checkpoint and trains only the epochs after it.
      const retriedLog = await podLogTail(namespace, retried.metadata!.name!, 1000);
      expect(retriedLog).toContain(`resuming from checkpoint: epoch ${last} of ${EPOCHS} (${run.checkpointUri}`);
      const trainedThere = [...retriedLog.matchAll(/^epoch (\d+)\/3 /gm)].map((m) => Number(m[1]));
      expect(trainedThere).toEqual(Array.from({ length: EPOCHS - last }, (_, i) => last + 1 + i));

      // metrics.json: the requested epochs in total, and from where the last pod resumed.
      expect(done.metrics).toMatchObject({ epochs: EPOCHS, resumedFromEpoch: last });
    });
  });
});
