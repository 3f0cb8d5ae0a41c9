/**
 * `npm run bench [-- <name> ...]`: every benchmark, each in its own Node process so none warms another's
 * caches. Speed lives here, not in the tests. Numbers are medians of several runs: the machine is shared.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';

const BENCHES: Record<string, { file: string; what: string }> = {
  bundles: { file: 'bundles.ts', what: 'Lambda bundle size and cold load time (median of 5 processes)' },
  transitions: { file: 'transitions.ts', what: 'state transitions of a one-hour training run: watch-based wait vs 10 s polling' },
  cost: { file: 'cost.ts', what: 'waiting for 10 min / 1 h / 8 h trainings: transitions, Lambda GB-s, list price, detection latency (polling, watch loop, progress-aware)' },
  'starter-burst': { file: 'starter-burst.ts', what: '1,000 ECR push events (20 % duplicates) through the starter' },
  startup: { file: 'startup.ts', what: 'local startup: first (synth + bundling + staging) and repeat (cached synth), medians' },
  'local-e2e': { file: 'local-e2e.ts', what: 'local end-to-end wall time and breakdown (median of 3 runs)' },
  rollback: { file: 'rollback.ts', what: 'mlpipe rollback to a retained (0-replica) version: scale up, ready, switch (median of 6)' },
  canary: { file: 'canary.ts', what: "a bad canary: from its first failed request to the stable version at 100 % (median of 3)" },
};

const asked = process.argv.slice(2);
const unknown = asked.filter((n) => !(n in BENCHES));
if (unknown.length) {
  console.error(`Unknown benchmark(s): ${unknown.join(', ')}. Choose from: ${Object.keys(BENCHES).join(', ')}.`);
  process.exit(2);
}
let failed = 0;
for (const name of asked.length ? asked : Object.keys(BENCHES)) {
  const bench = BENCHES[name]!;
  console.log(`\n=== ${name}: ${bench.what}\n`);
  const started = Date.now();
  const res = spawnSync(process.execPath, ['--import', 'tsx', join(__dirname, bench.file)], { stdio: 'inherit' });
  console.log(`(${name}: ${((Date.now() - started) / 1000).toFixed(1)} s)`);
  if (res.status !== 0) failed++;
}
process.exit(failed ? 1 : 0);
