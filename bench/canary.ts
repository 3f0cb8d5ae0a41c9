/**
 * A bad canary, measured: on the local pipeline (the synthesized stack, 4 production pods, live traffic at
 * 20 requests/s), a first release, then releases whose candidate pods fail half their predictions on purpose
 * (`rollout.candidateFault`). For each: the time from the canary's first failed request (as the traffic
 * generator saw it) to the stable version alone at 100 % again (AbortCanary done), and how many requests
 * failed meanwhile. The local canary analyses every 2 s (LOCAL_CONTEXT), so this is about one analysis
 * interval plus the time to gather `minRequests` and to move the Service. Median of MLPIPE_BENCH_RUNS (3).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { startLocalPipeline } from '../local/pipeline';

const ROOT = resolve(__dirname, '..');
const RUNS = Number(process.env.MLPIPE_BENCH_RUNS ?? 3);

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'mlpipe-bench-canary-'));
  const pipeline = await startLocalPipeline({ stateDir: dir, approval: 'auto-approve', synthCacheDir: join(ROOT, '.mlpipe', 'synth'), log: () => undefined });
  try {
    const first = await pipeline.run({}, { approval: 'auto-approve' });
    if (first.status !== 'SUCCEEDED') throw new Error(`the first release failed: ${first.error}: ${first.cause}`);
    const rows: Array<{ rollbackMs: number; failed: number; served: number; wallS: number }> = [];
    for (let i = 0; i < RUNS; i++) {
      const run = await pipeline.run({ rollout: { candidateFault: 'error-rate=0.5' } }, { approval: 'auto-approve' });
      const t = run.traffic;
      if (run.error !== 'CanaryAnalysisFailed' || t?.firstErrorToRollbackMs === undefined) {
        throw new Error(`run ${i + 1} was not rolled back by its canary: ${run.status} ${run.error ?? ''} ${run.cause ?? ''}`);
      }
      const canary = run.lastState!.run.version;
      const tally = t.total.byVersion[canary];
      rows.push({ rollbackMs: t.firstErrorToRollbackMs, failed: tally?.failed ?? 0, served: (tally?.ok ?? 0) + (tally?.failed ?? 0), wallS: run.wallMs / 1000 });
      console.log(`run ${i + 1}: stable at 100 % ${(t.firstErrorToRollbackMs / 1000).toFixed(1)} s after the first failed request; the canary failed ${tally?.failed ?? 0} of the ${rows.at(-1)!.served} requests it answered`);
    }
    console.log(`\nfirst error → stable at 100 %: median ${(median(rows.map((r) => r.rollbackMs)) / 1000).toFixed(1)} s over ${RUNS} bad canaries (analysis every 2 s, minRequests 10, 20 requests/s)`);
    console.log(`requests failed per bad canary: median ${median(rows.map((r) => r.failed))}`);
  } finally {
    await pipeline.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err: Error) => {
  console.error(err.stack ?? err.message);
  process.exit(1);
});
