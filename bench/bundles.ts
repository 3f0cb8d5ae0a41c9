/**
 * Bundle size and cold load time of every Lambda, bundled with exactly the esbuild options the CDK
 * ships (lib/constructs/lambda-defaults.ts). Load time = median over 5 fresh Node processes of
 * `require(bundle)`, minus the median of an empty Node start. Run: `npx tsx bench/bundles.ts`.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { build } from 'esbuild';
import { esbuildOptions, PROJECT_ROOT } from '../lib/constructs/lambda-defaults';
import { FUNCTION_SPECS } from '../lib/constructs/pipeline-functions';
import { median } from './local-e2e';

const RUNS = 5;

/** Settings some handlers require at load; the values only have to parse (nothing is called). */
export const BENCH_ENV: Record<string, string> = {
  AWS_REGION: 'us-east-1',
  ARTIFACT_BUCKET: 'bench-bucket',
  MODEL_NAME: 'fashion-mnist',
  DATA_URI: 's3://bench-bucket/datasets/fashion-mnist/v1/',
  EVAL_DATA_URI: 's3://bench-bucket/datasets/fashion-mnist/v1/',
  SERVING_IMAGE: '123456789012.dkr.ecr.us-east-1.amazonaws.com/mlpipe/fashion-mnist-serve:latest',
  STAGING_NAMESPACE: 'mlpipe-staging',
  PRODUCTION_NAMESPACE: 'mlpipe-production',
  CLUSTER_NAME: 'bench',
  NOTIFICATION_TOPIC_ARN: 'arn:aws:sns:us-east-1:123456789012:bench',
  APPROVAL_BASE_URL: 'https://bench.execute-api.us-east-1.amazonaws.com',
  APPROVAL_SECRET_ARN: 'arn:aws:secretsmanager:us-east-1:123456789012:secret:bench',
  STATE_MACHINE_ARN: 'arn:aws:states:us-east-1:123456789012:stateMachine:bench',
  PIPELINES: JSON.stringify({ 'mlpipe/fashion-mnist-train': { modelName: 'fashion-mnist' } }),
  DEAD_LETTER_QUEUE_URL: 'https://sqs.us-east-1.amazonaws.com/123456789012/bench-dlq',
};

export const BUNDLED_ENTRIES: Array<{ name: string; entry: string }> = [
  ...FUNCTION_SPECS.map((s) => ({ name: s.entry.replace(/^functions\/|\.ts$/g, ''), entry: s.entry })),
  { name: 'approval-api', entry: 'functions/approval-api.ts' },
  { name: 'start-pipeline', entry: 'functions/start-pipeline.ts' },
];

/** Wall-clock milliseconds of a fresh Node 22 process that requires `file` (or nothing) and exits. */
function loadMs(file: string | undefined): number {
  const script = file === undefined ? '' : `require(${JSON.stringify(file)})`;
  const wall = process.hrtime.bigint();
  execFileSync(process.execPath, ['-e', script], { env: { PATH: process.env.PATH ?? '', ...BENCH_ENV }, stdio: ['ignore', 'pipe', 'pipe'] });
  return Number(process.hrtime.bigint() - wall) / 1e6;
}

export async function benchBundles(): Promise<Array<{ name: string; bytes: number; loadMsMedian: number }>> {
  const dir = mkdtempSync(path.join(tmpdir(), 'mlpipe-bundles-'));
  try {
    const missing = BUNDLED_ENTRIES.filter(({ entry }) => !existsSync(path.join(PROJECT_ROOT, entry)));
    if (missing.length > 0) console.warn(`not bundled (file missing): ${missing.map((m) => m.entry).join(', ')}`);
    const bundles = await Promise.all(
      BUNDLED_ENTRIES.filter((e) => !missing.includes(e)).map(async ({ name, entry }) => {
        const outfile = path.join(dir, name, 'index.js');
        await build(esbuildOptions(path.join(PROJECT_ROOT, entry), outfile));
        return { name, outfile };
      }),
    );
    const baseline = median(Array.from({ length: RUNS }, () => loadMs(undefined)));
    return bundles.map(({ name, outfile }) => ({
      name,
      bytes: statSync(outfile).size,
      // Whole process wall time, minus an empty process: what a cold start pays for loading the bundle.
      loadMsMedian: Math.max(0, median(Array.from({ length: RUNS }, () => loadMs(outfile))) - baseline),
    }));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (require.main === module) {
  const started = Date.now();
  benchBundles()
    .then((rows) => {
      console.log(`Node ${process.version}, ${RUNS} runs each, load time = median process wall time minus an empty node process`);
      console.log(`${'function'.padEnd(28)}${'bundle KB'.padStart(10)}${'load ms'.padStart(10)}`);
      for (const r of rows) {
        console.log(`${r.name.padEnd(28)}${(r.bytes / 1024).toFixed(0).padStart(10)}${r.loadMsMedian.toFixed(0).padStart(10)}`);
      }
      console.log(`(${((Date.now() - started) / 1000).toFixed(1)} s)`);
    })
    .catch((err: unknown) => {
      console.error(err);
      process.exitCode = 1;
    });
}
