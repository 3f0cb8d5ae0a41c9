/**
 * Local end-to-end wall time: `npm start -- --auto-approve --exit` as a whole process, three times, each
 * in a fresh state directory, with the breakdown the run itself records (MLPIPE_TIMINGS_FILE). The
 * synthesized stack comes from the repository's cache (.mlpipe/synth; the first run fills it): first-start
 * costs are `npm run bench -- startup`'s.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const ROOT = resolve(__dirname, '..');

interface Timings {
  status: string;
  processMs: number;
  executionMs: number;
  stagingSeconds: number;
  startup?: { synthMs: number; synthCached: boolean };
  accuracy?: number;
  states: Array<{ state: string; enteredAt: number; exitedAt?: number }>;
}

const PHASES: Record<string, string[]> = {
  training: ['SubmitTraining', 'CheckTraining', 'WaitForTraining', 'AwaitTraining'],
  rollout: [
    'DeployStaging', 'AwaitStagingRollout', 'ExposeStaging', 'AwaitStagingEndpoint',
    'DeployProduction', 'AwaitProductionRollout', 'SwitchProductionTraffic', 'AwaitProductionEndpoint',
    // A canary (not on a first release): its steps, bakes and analyses.
    'ShiftCanaryTraffic', 'BakeCanary', 'AnalyzeCanary', 'AbortCanary',
  ],
  evaluation: ['EvaluateModel'],
  approval: ['RequestApproval'],
  bookkeeping: ['Prepare', 'RecordRelease', 'CleanupStaging', 'NotifySuccess'],
};

export interface E2eRun {
  wallS: number;
  stagingS: number;
  synthS: number;
  startupS: number;
  phases: Record<string, number>;
  orchestrationS: number;
  accuracy?: number;
}

export function breakdown(t: Timings): E2eRun {
  const phases: Record<string, number> = {};
  let inTasks = 0;
  for (const [phase, names] of Object.entries(PHASES)) {
    const ms = t.states
      .filter((s) => names.includes(s.state) && s.exitedAt !== undefined)
      .reduce((sum, s) => sum + (s.exitedAt! - s.enteredAt), 0);
    phases[phase] = ms / 1000;
    inTasks += ms;
  }
  return {
    wallS: t.processMs / 1000,
    stagingS: t.stagingSeconds,
    synthS: (t.startup?.synthMs ?? 0) / 1000,
    startupS: (t.processMs - t.executionMs) / 1000 - t.stagingSeconds - (t.startup?.synthMs ?? 0) / 1000,
    phases,
    // Time inside the execution spent in no task: Choice/Pass states, transitions, event plumbing.
    orchestrationS: (t.executionMs - inTasks) / 1000,
    accuracy: t.accuracy,
  };
}

export function runOnce(): E2eRun {
  const dir = mkdtempSync(join(tmpdir(), 'mlpipe-bench-'));
  const timingsFile = join(dir, 'timings.json');
  try {
    const res = spawnSync(process.execPath, [join(ROOT, 'local/start.cjs'), '--auto-approve', '--exit', '--state-dir', join(dir, 'state'), '--synth-cache', join(ROOT, '.mlpipe', 'synth')], {
      cwd: ROOT,
      env: { ...process.env, MLPIPE_TIMINGS_FILE: timingsFile },
      encoding: 'utf8',
      timeout: 300_000,
    });
    if (res.status !== 0) throw new Error(`local run exited ${res.status}:\n${res.stdout}\n${res.stderr}`);
    return breakdown(JSON.parse(readFileSync(timingsFile, 'utf8')) as Timings);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

export function benchLocalE2e(runs = 3): { runs: E2eRun[]; median: E2eRun } {
  const results: E2eRun[] = [];
  for (let i = 0; i < runs; i++) results.push(runOnce());
  const pick = (f: (r: E2eRun) => number) => median(results.map(f));
  const phaseNames = Object.keys(PHASES);
  return {
    runs: results,
    median: {
      wallS: pick((r) => r.wallS),
      stagingS: pick((r) => r.stagingS),
      synthS: pick((r) => r.synthS),
      startupS: pick((r) => r.startupS),
      phases: Object.fromEntries(phaseNames.map((p) => [p, pick((r) => r.phases[p] ?? 0)])),
      orchestrationS: pick((r) => r.orchestrationS),
      accuracy: pick((r) => r.accuracy ?? 0),
    },
  };
}

export function printLocalE2e(result: { runs: E2eRun[]; median: E2eRun }): void {
  const m = result.median;
  console.log(`Local end-to-end (npm start -- --auto-approve --exit), median of ${result.runs.length} runs`);
  console.log(`  wall time                 ${m.wallS.toFixed(1)} s   (runs: ${result.runs.map((r) => r.wallS.toFixed(1)).join(', ')})`);
  console.log(`  data staging              ${m.stagingS.toFixed(1)} s`);
  console.log(`  synth (cached after 1st)  ${m.synthS.toFixed(1)} s`);
  console.log(`  startup (S3, kube, SFN)   ${m.startupS.toFixed(1)} s`);
  for (const [phase, s] of Object.entries(m.phases)) console.log(`  ${phase.padEnd(25)} ${s.toFixed(1)} s`);
  console.log(`  orchestration overhead    ${m.orchestrationS.toFixed(2)} s`);
  console.log(`  accuracy (held-out)       ${m.accuracy?.toFixed(4)}`);
}

if (require.main === module) printLocalE2e(benchLocalE2e(Number(process.argv[2] ?? 3)));
