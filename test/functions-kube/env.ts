/**
 * Test environment for the Kubernetes handlers: the local Kubernetes API (real HTTP, process runner) and
 * a local S3, with the settings a deployed pipeline would have, namespaces and ServiceAccounts created as
 * a cluster admin would (handlers never create them). Handlers reach both through the same code paths as
 * in AWS: KUBECONFIG for Kubernetes, AWS_ENDPOINT_URL_S3 for S3.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startLocalKube, type ImageCommand, type LocalKube } from '../../local/kube';
import { LOCAL_AWS_ENV, startLocalS3 } from '../../local/s3';
import { withEnv } from '../../local/process-env';
import { resetClients } from '../../functions/shared/clients';
import { kubeApis, resetKube } from '../../functions/shared/kube';
import { handler as prepare } from '../../functions/prepare-run';
import { reloadSettings } from '../../functions/shared/settings';
import type { PipelineState, RunContext, RunRequest, TrainingResult } from '../../functions/shared/types';
import { handler as awaitTraining } from '../../functions/await-training';

const FIXTURES = join(__dirname, 'fixtures');
const node = (script: string, ...args: string[]) => ({ command: process.execPath, args: [join(FIXTURES, script), ...args] });

export const IMAGES = {
  trainerOk: 'test.local/trainer:ok',
  trainerFail: 'test.local/trainer:fail',
  trainerSlow: 'test.local/trainer:slow',
  trainerNoMetrics: 'test.local/trainer:no-metrics',
  trainerInvalidEnv: 'test.local/trainer:invalid-env',
  trainerUntilEvicted: 'test.local/trainer:until-evicted',
  server: 'test.local/server:1',
  serverV2: 'test.local/server:2',
  serverCrash: 'test.local/server:crash',
  serverNeverReady: 'test.local/server:never-ready',
  unmapped: 'test.local/no-such-image:1',
};

export const BUCKET = 'mlpipe-test';

export interface TestEnv {
  /** The local Kubernetes API (e.g. to mint a namespace-bound kubeconfig). */
  kube: LocalKube;
  stop(): Promise<void>;
  /** A run as Prepare would make it, for an execution started at `startTime`. */
  prepare(startTime: string, request?: Partial<RunRequest>): Promise<RunContext>;
}

/** `images`: more image → command entries (e.g. the real example trainer) beside the test images. */
export async function startTestEnv(settings: Record<string, string> = {}, images: Record<string, ImageCommand> = {}): Promise<TestEnv> {
  const savedEnv = { ...process.env };
  const dir = mkdtempSync(join(tmpdir(), 'mlpipe-fk-'));
  const s3 = await startLocalS3({ dir: join(dir, 's3'), buckets: [BUCKET] });
  const kube = await startLocalKube({
    stateDir: join(dir, 'kube'),
    images: {
      [IMAGES.trainerOk]: node('trainer.cjs'),
      [IMAGES.trainerFail]: node('trainer.cjs', '--fail'),
      [IMAGES.trainerSlow]: node('trainer.cjs', '--slow'),
      [IMAGES.trainerNoMetrics]: node('trainer.cjs', '--no-metrics'),
      [IMAGES.trainerInvalidEnv]: node('trainer.cjs', '--invalid-env'),
      [IMAGES.trainerUntilEvicted]: node('trainer.cjs', '--until-evicted'),
      [IMAGES.server]: node('server.cjs', '1'),
      [IMAGES.serverV2]: node('server.cjs', '2'),
      [IMAGES.serverCrash]: node('server.cjs', '--crash'),
      [IMAGES.serverNeverReady]: node('server.cjs', '1', '--never-ready'),
      ...images,
    },
    env: { ...LOCAL_AWS_ENV, AWS_ENDPOINT_URL_S3: s3.endpoint },
  });
  Object.assign(process.env, LOCAL_AWS_ENV, {
    KUBECONFIG: kube.kubeconfigPath,
    AWS_ENDPOINT_URL_S3: s3.endpoint,
    ARTIFACT_BUCKET: BUCKET,
    MODEL_NAME: 'fashion',
    DATA_URI: `s3://${BUCKET}/datasets/fashion-mnist/v1/`,
    EVAL_DATA_URI: `s3://${BUCKET}/datasets/fashion-mnist/v1/`,
    SERVING_IMAGE: IMAGES.server,
    STAGING_NAMESPACE: 'mlpipe-staging',
    PRODUCTION_NAMESPACE: 'mlpipe-production',
    WATCH_BUDGET_SECONDS: '15',
    SERVING_REPLICAS: '1',
    // Deleted serving pods stop at once here, as before the drain existed (the e2e runs the local run's 1 s).
    SERVING_DRAIN_SECONDS: '0',
    // The test images are tags (test.local/trainer:ok), as in the local run.
    ALLOW_IMAGE_TAGS: 'true',
    ...settings,
  });
  // The handlers loaded their settings when imported; point them at these servers.
  reloadSettings();
  resetKube();
  resetClients();
  const { core } = await kubeApis();
  for (const ns of ['mlpipe-staging', 'mlpipe-production']) {
    await core.createNamespace({ body: { metadata: { name: ns } } });
    for (const sa of ['mlpipe-trainer', 'mlpipe-server']) {
      await core.createNamespacedServiceAccount({ namespace: ns, body: { metadata: { name: sa, namespace: ns } } });
    }
  }
  return {
    kube,
    async prepare(startTime, request = {}) {
      const state = await prepare({
        input: { image: IMAGES.trainerOk, ...request },
        executionArn: `arn:aws:states:us-east-1:000000000000:execution:mlpipe:${startTime}`,
        executionName: `test-${Date.parse(startTime)}`,
        startTime,
      });
      return state.run;
    },
    async stop() {
      await kube.stop();
      await s3.stop();
      resetKube();
      resetClients();
      process.env = savedEnv;
      reloadSettings();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Runs `fn` with environment settings changed (the handlers re-read them), restoring them afterwards. */
export async function withSettings<T>(settings: Record<string, string>, fn: () => Promise<T>): Promise<T> {
  try {
    return await withEnv(settings, () => {
      reloadSettings(); // handlers read settings at load
      return fn();
    });
  } finally {
    reloadSettings();
  }
}

/**
 * Runs `fn` as an EKS access entry with a Kubernetes group and no access policy gives the handlers: a token
 * of `user` whose only rights are `group`'s RoleBindings (no namespaces of edit-like access), with
 * `settings` too; the handlers' settings and Kubernetes client follow, and everything is restored after.
 */
export function asKubernetesGroup<T>(kube: LocalKube, who: { user: string; group: string }, fn: () => Promise<T>, settings: Record<string, string> = {}): Promise<T> {
  const kubeconfig = kube.mintScopedKubeconfig([], { username: who.user, groups: [who.group] }).kubeconfigPath;
  return withSettings({ ...settings, KUBECONFIG: kubeconfig }, async () => {
    resetKube();
    try {
      return await fn();
    } finally {
      resetKube(); // the next client is made from the restored settings
    }
  });
}

/** Loops AwaitTraining as the state machine does until it stops answering `pending`. */
export async function awaitTrainingDone(run: RunContext, training: TrainingResult, maxRounds = 6): Promise<TrainingResult> {
  let result = training;
  for (let i = 0; i < maxRounds && result.status === 'pending'; i++) result = await awaitTraining({ run, training: result } as PipelineState);
  return result;
}
