/**
 * Local startup time: how long `npm start` takes before the first state runs, first (nothing cached:
 * the stack is synthesized and every function bundled, the data set staged) and on a repeat start (the
 * synthesized stack reused from the cache because the sources are unchanged, the data already staged).
 * Each start is a process of its own that starts the local pipeline and stops it. Medians of several.
 *
 *   npm run bench -- startup            2 first starts, 5 repeat starts
 *   npx tsx bench/startup.ts 1 3        1 first start, 3 repeat starts
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { median } from './local-e2e';
import { startLocalPipeline, type StartupTimings } from '../local/pipeline';

interface Start extends StartupTimings {
  processMs: number;
}

/** One start in a fresh process: `stateDir` holds the staged data, `cacheDir` the synthesized stacks. */
function startOnce(stateDir: string, cacheDir: string): Start {
  const out = join(stateDir, 'startup.json');
  const res = spawnSync(process.execPath, ['--import', 'tsx', __filename, '--once', stateDir, cacheDir, out], {
    cwd: join(__dirname, '..'),
    encoding: 'utf8',
    timeout: 1_800_000,
  });
  if (res.status !== 0) throw new Error(`start exited ${res.status}:\n${res.stdout}\n${res.stderr}`);
  return JSON.parse(readFileSync(out, 'utf8')) as Start;
}

async function once(stateDir: string, cacheDir: string, out: string): Promise<void> {
  const pipeline = await startLocalPipeline({ stateDir, synthCacheDir: cacheDir, approvalPort: 0, log: () => undefined });
  // From the process's start: loading the runner's modules is part of what a user waits for.
  const processMs = process.uptime() * 1000;
  await pipeline.stop();
  writeFileSync(out, JSON.stringify({ ...pipeline.startup, processMs }));
}

function row(label: string, runs: Start[]): string {
  const m = (f: (s: Start) => number) => (median(runs.map(f)) / 1000).toFixed(1).padStart(6);
  return `  ${label.padEnd(22)} ${m((r) => r.processMs)} s  (synth ${m((r) => r.synthMs)} s, data staging ${m((r) => r.stagingMs)} s)   runs: ${runs.map((r) => (r.processMs / 1000).toFixed(1)).join(', ')}`;
}

function main(): void {
  const firstRuns = Number(process.argv[2] ?? 2);
  const repeatRuns = Number(process.argv[3] ?? 5);
  const first: Start[] = [];
  const repeat: Start[] = [];
  const dirs: string[] = [];
  try {
    for (let i = 0; i < Math.max(firstRuns, 1); i++) {
      const dir = mkdtempSync(join(tmpdir(), 'mlpipe-startup-'));
      dirs.push(dir);
      const start = startOnce(join(dir, 'state'), join(dir, 'synth'));
      if (i < firstRuns) first.push(start);
    }
    // Repeat starts reuse the first start's state directory and synth cache.
    const warm = dirs[0]!;
    for (let i = 0; i < repeatRuns; i++) repeat.push(startOnce(join(warm, 'state'), join(warm, 'synth')));
  } finally {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  }
  if (repeat.some((r) => !r.synthCached)) throw new Error('a repeat start synthesized the stack again: the cache key changed between starts');
  console.log('Local startup (startLocalPipeline until the first run can start), medians');
  if (first.length) console.log(row(`first (nothing cached)`, first));
  console.log(row('repeat (cached synth)', repeat));
}

if (process.argv[2] === '--once') {
  once(process.argv[3]!, process.argv[4]!, process.argv[5]!).then(
    () => process.exit(0),
    (err: Error) => {
      console.error(err.stack ?? err.message);
      process.exit(1);
    },
  );
} else if (require.main === module) {
  main();
}
