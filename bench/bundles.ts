/**
 * Bundle size, cold load time and memory after load of every Lambda, before and after side by side:
 * "now" is each entry bundled by lib/constructs/lambda-bundle.ts, exactly what `cdk synth` ships; "before"
 * is the same entry at BUNDLES_BASELINE_REF (default: the commit issue 7 started from) bundled the way
 * NodejsFunction's esbuild CLI did then (no plugin); "naive client-node" is a one-line handler that
 * imports @kubernetes/client-node and makes a CoreV1Api, for scale. Load time = median over RUNS fresh
 * Node processes of `require(bundle)`, minus the median of an empty Node start; before and after runs are
 * interleaved so load on a shared machine hits both alike. Run: `npm run bench -- bundles`.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { build } from 'esbuild';
import { PROJECT_ROOT } from '../lib/constructs/lambda-defaults';
import { bundleLambda, ESBUILD_TARGET } from '../lib/constructs/lambda-bundle';
import { FUNCTION_SPECS } from '../lib/constructs/pipeline-functions';

const RUNS = Number(process.env.BUNDLES_RUNS ?? 7);
/** main before issue 7 (`git log`: "package-lock: the optional platform bindings ..."). */
const BASELINE_REF = process.env.BUNDLES_BASELINE_REF ?? 'ad4a0c9';

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

/** Whether an esbuild metafile shows @kubernetes/client-node in the bundle: a Kubernetes-calling function. */
export function callsKubernetes(metafile: { inputs: Record<string, unknown> }): boolean {
  return Object.keys(metafile.inputs).some((f) => f.includes('node_modules/@kubernetes/client-node/'));
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

interface Load {
  ms: number;
  rssMb: number;
  heapMb: number;
}

/** A fresh Node 22 process that requires `file` (or nothing), reports its memory and exits. */
export function loadOnce(file: string | undefined): Load {
  const script = `${file === undefined ? '' : `require(${JSON.stringify(file)});`}const m = process.memoryUsage(); console.log(JSON.stringify([m.rss, m.heapUsed]))`;
  const wall = process.hrtime.bigint();
  const out = execFileSync(process.execPath, ['-e', script], { env: { PATH: process.env.PATH ?? '', ...BENCH_ENV }, encoding: 'utf8' });
  const ms = Number(process.hrtime.bigint() - wall) / 1e6;
  const [rss, heap] = JSON.parse(out.trim().split('\n').at(-1)!) as [number, number];
  return { ms, rssMb: rss / 2 ** 20, heapMb: heap / 2 ** 20 };
}

/** The baseline sources (`git archive`), inside the project so node_modules resolve; undefined without git. */
function checkoutBaseline(): string | undefined {
  const dir = path.join(PROJECT_ROOT, 'cdk.out', 'bench-baseline', BASELINE_REF);
  if (existsSync(path.join(dir, 'functions'))) return dir;
  try {
    mkdirSync(dir, { recursive: true });
    execFileSync('sh', ['-c', `git -C "${PROJECT_ROOT}" archive "${BASELINE_REF}" functions | tar -x -C "${dir}"`], { stdio: 'pipe' });
    return dir;
  } catch (err) {
    console.warn(`no "before" column: cannot read ${BASELINE_REF} (${(err as Error).message.split('\n')[0]})`);
    return undefined;
  }
}

/** How the baseline shipped: NodejsFunction's esbuild CLI with these options, no plugins. */
async function bundleBaseline(entry: string, outdir: string): Promise<void> {
  await build({
    entryPoints: [entry],
    outfile: path.join(outdir, 'index.js'),
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: ESBUILD_TARGET,
    minify: true,
    sourcemap: true,
    sourcesContent: false,
    logLevel: 'error',
  });
}

export interface BundleRow {
  name: string;
  kubernetes: boolean;
  bytes: number;
  loadMs: number;
  rssMb: number;
  heapMb: number;
  before?: { bytes: number; loadMs: number; rssMb: number; heapMb: number };
}

export async function benchBundles(): Promise<BundleRow[]> {
  const dir = mkdtempSync(path.join(tmpdir(), 'mlpipe-bundles-'));
  try {
    const baseline = checkoutBaseline();
    const naiveEntry = path.join(dir, 'naive.ts');
    writeFileSync(
      naiveEntry,
      `import * as k8s from '@kubernetes/client-node';\nexport const handler = async () => new k8s.KubeConfig().makeApiClient(k8s.CoreV1Api);\n`,
    );
    const jobs = [
      ...BUNDLED_ENTRIES.map(async ({ name, entry }) => {
        const now = path.join(dir, 'now', name);
        const { metafile } = await bundleLambda(entry, now);
        let before: string | undefined;
        if (baseline && existsSync(path.join(baseline, entry))) {
          before = path.join(dir, 'before', name);
          await bundleBaseline(path.join(baseline, entry), before);
        }
        return { name, kubernetes: callsKubernetes(metafile!), now: path.join(now, 'index.js'), before: before && path.join(before, 'index.js') };
      }),
      (async () => {
        const out = path.join(dir, 'naive');
        // esbuild resolves the package from the project, as for any entry.
        await build({ entryPoints: [naiveEntry], outfile: path.join(out, 'index.js'), bundle: true, platform: 'node', format: 'cjs', target: ESBUILD_TARGET, minify: true, nodePaths: [path.join(PROJECT_ROOT, 'node_modules')], logLevel: 'error' });
        return { name: '(naive client-node)', kubernetes: false, now: path.join(out, 'index.js'), before: undefined as string | undefined };
      })(),
    ];
    const bundles = await Promise.all(jobs);
    const empty: number[] = [];
    const samples = new Map<string, { now: Load[]; before: Load[] }>(bundles.map((b) => [b.name, { now: [], before: [] }]));
    for (let run = 0; run < RUNS; run++) {
      empty.push(loadOnce(undefined).ms);
      for (const b of bundles) {
        samples.get(b.name)!.now.push(loadOnce(b.now));
        if (b.before) samples.get(b.name)!.before.push(loadOnce(b.before));
      }
    }
    const base = median(empty);
    const summarize = (file: string, loads: Load[]) => ({
      bytes: statSync(file).size,
      // Whole process wall time, minus an empty process: what a cold start pays for loading the bundle.
      loadMs: Math.max(0, median(loads.map((l) => l.ms)) - base),
      rssMb: median(loads.map((l) => l.rssMb)),
      heapMb: median(loads.map((l) => l.heapMb)),
    });
    return bundles.map((b) => ({
      name: b.name,
      kubernetes: b.kubernetes,
      ...summarize(b.now, samples.get(b.name)!.now),
      before: b.before ? summarize(b.before, samples.get(b.name)!.before) : undefined,
    }));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (require.main === module) {
  const started = Date.now();
  benchBundles()
    .then((rows) => {
      console.log(`Node ${process.version}, ${RUNS} interleaved runs each; load = median process wall time minus an empty node process;`);
      console.log(`before = ${BASELINE_REF} bundled as NodejsFunction did; now = lib/constructs/lambda-bundle.ts (what ships). K = calls Kubernetes.`);
      const kb = (n: number) => (n / 1024).toFixed(0);
      const head = ['function', 'K', 'KB before', 'KB now', 'ms before', 'ms now', 'now/before', 'RSS MB', 'heap MB'];
      const widths = [28, 3, 11, 9, 11, 9, 12, 9, 9];
      console.log(head.map((h, i) => (i === 0 ? h.padEnd(widths[i]!) : h.padStart(widths[i]!))).join(''));
      for (const r of rows) {
        const cells = [
          r.name,
          r.kubernetes ? 'K' : '',
          r.before ? kb(r.before.bytes) : '-',
          kb(r.bytes),
          r.before ? r.before.loadMs.toFixed(0) : '-',
          r.loadMs.toFixed(0),
          r.before && r.before.loadMs > 0 ? `${((100 * r.loadMs) / r.before.loadMs).toFixed(0)} %` : '-',
          r.rssMb.toFixed(0),
          r.heapMb.toFixed(1),
        ];
        console.log(cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join(''));
      }
      const k = rows.filter((r) => r.kubernetes && r.before);
      if (k.length > 0) {
        const maxKb = Math.max(...k.map((r) => r.bytes)) / 1024;
        const ratio = median(k.map((r) => r.loadMs / Math.max(1, r.before!.loadMs)));
        console.log(`Kubernetes bundles: largest ${maxKb.toFixed(0)} KB (limit 1229 KB); load time now/before, median over them: ${(100 * ratio).toFixed(0)} %`);
      }
      console.log(`(${((Date.now() - started) / 1000).toFixed(1)} s)`);
    })
    .catch((err: unknown) => {
      console.error(err);
      process.exitCode = 1;
    });
}
