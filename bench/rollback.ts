/**
 * Rollback time to a retained version: production serves v2, v1 is retired (0 replicas, as the release's
 * Cleanup leaves it); `mlpipe rollback`'s function scales v1 up to SERVING_REPLICAS (2), waits until it is
 * rolled out and switches the Service. The example server (examples/fashion-mnist/serve.ts, a 784-128-10
 * tfjs model from the local S3) runs as the pods of the local Kubernetes API, so "ready" includes a real
 * process start and model load. Alternating rollbacks v1 ↔ v2, each target retired by the one before;
 * then, for comparison, rollbacks to a version left running (what a switch alone costs). Medians.
 *
 *   npx tsx bench/rollback.ts
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { startLocalKube } from '../local/kube';
import { LOCAL_AWS_ENV, startLocalS3 } from '../local/s3';
import { saveModelToS3, toTfjsModel } from '../examples/fashion-mnist/model-io';
import { initParams, newParams } from '../examples/fashion-mnist/mlp';
import { runNames } from '../functions/shared/names';
import type { PipelineState, RunContext, StageResult } from '../functions/shared/types';

const ROOT = resolve(__dirname, '..');
const ROUNDS = 6;
const SWITCH_ONLY_ROUNDS = 3;
const BUCKET = 'mlpipe-bench';
const MODEL = 'fashion-mnist';
const IMAGE = 'mlpipe/fashion-mnist-serve:local';
const NAMESPACE = 'mlpipe-production';
const REPLICAS = 2;

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
};

function run(version: string, modelUri: string): RunContext {
  return {
    modelName: MODEL, version, image: 'bench/trainer:none', imageDigest: null, servingImage: IMAGE,
    dataUri: `s3://${BUCKET}/datasets/none/`, evalDataUri: `s3://${BUCKET}/datasets/none/`, hyperparameters: {}, modelUri,
    executionArn: `arn:aws:states:us-east-1:000000000000:execution:mlpipe:${version}`, executionName: version,
    startedAt: new Date().toISOString(), approvalTimeoutSeconds: 3600, trigger: { source: 'bench' },
    namespaces: { staging: 'mlpipe-staging', production: NAMESPACE }, names: runNames(MODEL, version),
  };
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'mlpipe-bench-rollback-'));
  const s3 = await startLocalS3({ dir: join(dir, 's3'), buckets: [BUCKET] });
  const kube = await startLocalKube({
    stateDir: join(dir, 'kube'),
    images: { [IMAGE]: { command: process.execPath, args: ['--import', 'tsx', join(ROOT, 'examples/fashion-mnist/serve.ts')], cwd: ROOT } },
    env: { ...LOCAL_AWS_ENV, AWS_ENDPOINT_URL_S3: s3.endpoint },
  });
  try {
    Object.assign(process.env, LOCAL_AWS_ENV, {
      KUBECONFIG: kube.kubeconfigPath, AWS_ENDPOINT_URL_S3: s3.endpoint, ARTIFACT_BUCKET: BUCKET,
      PRODUCTION_NAMESPACE: NAMESPACE, SERVING_REPLICAS: String(REPLICAS), POWERTOOLS_LOG_LEVEL: 'ERROR',
    });
    // The handlers read their settings when loaded: after the environment above.
    /* eslint-disable @typescript-eslint/no-require-imports */
    const { kubeApis, patchObject } = require('../functions/shared/kube') as typeof import('../functions/shared/kube');
    const { handler: deployProduction } = require('../functions/deploy-production') as typeof import('../functions/deploy-production');
    const { handler: awaitRollout } = require('../functions/await-production-rollout') as typeof import('../functions/await-production-rollout');
    const { handler: switchTraffic } = require('../functions/switch-production-traffic') as typeof import('../functions/switch-production-traffic');
    const { handler: awaitEndpoint } = require('../functions/await-production-endpoint') as typeof import('../functions/await-production-endpoint');
    const { handler: cleanup } = require('../functions/cleanup') as typeof import('../functions/cleanup');
    const { handler: rollback } = require('../functions/rollback') as typeof import('../functions/rollback');
    const { RETIRED_AT_ANNOTATION } = require('../functions/shared/retention') as typeof import('../functions/shared/retention');
    const { probeModel } = require('../functions/shared/workloads') as typeof import('../functions/shared/workloads');
    /* eslint-enable @typescript-eslint/no-require-imports */

    const { core } = await kubeApis();
    await core.createNamespace({ body: { metadata: { name: NAMESPACE } } });
    await core.createNamespacedServiceAccount({ namespace: NAMESPACE, body: { metadata: { name: 'mlpipe-server', namespace: NAMESPACE } } });
    // The example's model shape (784-128-10), untrained: load time is what matters here, not accuracy.
    const shape = { inputs: 784, hidden: 128, classes: 10 };
    const params = newParams(shape);
    initParams(params, shape, 1);
    const modelUri = `s3://${BUCKET}/models/${MODEL}/shared/`;
    await saveModelToS3(toTfjsModel(shape, params), modelUri);

    const loop = async (handler: (s: PipelineState) => Promise<StageResult>, state: PipelineState): Promise<StageResult> => {
      let result = await handler(state);
      for (let i = 0; i < 10 && result.status === 'pending'; i++) result = await handler({ ...state, production: result });
      return result;
    };
    const v1 = run('20260101-000000-aaaaaaa', modelUri);
    const v2 = run('20260102-000000-bbbbbbb', modelUri);
    let endpoint = '';
    for (const r of [v1, v2]) {
      const ready = await loop(awaitRollout, { run: r, production: await deployProduction({ run: r }) });
      const serving = await loop(awaitEndpoint, { run: r, production: await switchTraffic({ run: r, production: ready }) });
      if (serving.status !== 'serving') throw new Error(`${r.version} never served: ${JSON.stringify(serving)}`);
      endpoint = serving.endpoint!;
      // The release's CleanupStaging: retires what it replaced.
      await cleanup({ run: r, production: serving });
    }

    const rows: Array<{ to: string; scaledFrom: number; readyS: number; tookS: number; servingAfter: string }> = [];
    const once = async (to: RunContext): Promise<void> => {
      const result = await rollback({ modelName: MODEL, toVersion: to.version, by: 'bench' });
      const problem = await probeModel(endpoint, MODEL, 5000);
      rows.push({ to: to.version, scaledFrom: result.scaledFrom, readyS: result.readySeconds, tookS: result.tookSeconds, servingAfter: problem ?? 'AVAILABLE' });
    };
    // Rollbacks to a retained (0-replica) version: v1, v2, v1, ... each retiring the other.
    for (let i = 0; i < ROUNDS; i++) await once(i % 2 === 0 ? v1 : v2);
    // A switch alone: the target left running (scaled up by hand beforehand, as before retention existed).
    for (let i = 0; i < SWITCH_ONLY_ROUNDS; i++) {
      const to = (ROUNDS + i) % 2 === 0 ? v1 : v2;
      await patchObject({ kind: 'Deployment', namespace: NAMESPACE, name: to.names.productionDeployment }, { metadata: { annotations: { [RETIRED_AT_ANNOTATION]: null } }, spec: { replicas: REPLICAS } });
      await loop(awaitRollout, { run: to, production: { stage: 'production', namespace: NAMESPACE, deploymentName: to.names.productionDeployment, serviceName: MODEL, deployedAt: new Date().toISOString(), status: 'pending' } });
      await once(to);
    }

    console.log('to                       from→replicas  ready (s)  rollback (s)  endpoint after');
    for (const r of rows) {
      console.log(`${r.to}  ${String(r.scaledFrom).padStart(4)} → ${REPLICAS}      ${r.readyS.toFixed(2).padStart(6)}     ${r.tookS.toFixed(2).padStart(6)}       ${r.servingAfter}`);
    }
    const retained = rows.filter((r) => r.scaledFrom === 0);
    const running = rows.filter((r) => r.scaledFrom > 0);
    console.log('');
    console.log(`rollback to a retained (0-replica) version: median ${median(retained.map((r) => r.tookS)).toFixed(2)} s (ready ${median(retained.map((r) => r.readyS)).toFixed(2)} s), min ${Math.min(...retained.map((r) => r.tookS)).toFixed(2)} s, max ${Math.max(...retained.map((r) => r.tookS)).toFixed(2)} s, ${retained.length} runs`);
    console.log(`rollback to a running version (switch only): median ${median(running.map((r) => r.tookS)).toFixed(2)} s, ${running.length} runs`);
    const failed = rows.filter((r) => r.servingAfter !== 'AVAILABLE');
    if (failed.length) {
      console.log(`endpoint did not answer right after ${failed.length} rollback(s): ${failed.map((r) => r.servingAfter).join('; ')}`);
      process.exitCode = 1;
    }
  } finally {
    await kube.stop();
    await s3.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
