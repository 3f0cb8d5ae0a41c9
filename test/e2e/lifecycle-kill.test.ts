/**
 * Issue 8's "done when" for the local run's lifecycle, from outside, the way a person runs it: `npm start`
 * killed with SIGKILL mid-training and after a release leaves no process of the run behind and no
 * listener on a non-loopback address; while a run holds the state directory, a second `npm start` on it
 * refuses and names the holder's pid. Mid-training it is npm that is killed (the run notices its launcher
 * is gone, stops everything and says the run was interrupted); after the release it is the run's own node
 * process, where no cleanup code can run and only the reaper ends the serving pods.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { REPO_ROOT } from '../../local/pipeline';
import { LOCK_FILE } from '../../local/lock';
import { E2E_CONTEXT, QUICK_HYPERPARAMETERS, SHARED_SYNTH_CACHE, synthesizeE2eStack } from './shared-synth';
import { commandLine, describeWithProc, eventually, isLoopback, isRunning, listenersOf, processTree } from './lifecycle-procs';

// The first run on a fresh clone synthesizes the stack first (shared with the other e2e suites).
jest.setTimeout(600_000);

const HYPERPARAMETERS = JSON.stringify(QUICK_HYPERPARAMETERS);

interface Started {
  child: ChildProcess;
  lines: string[];
  /** Resolves with the first line (stdout or stderr) matching `pattern`; rejects if npm exits first. */
  line(pattern: RegExp): Promise<string>;
  exited: Promise<number | null>;
}

describeWithProc('npm start killed with SIGKILL', () => {
  let stateDir: string;
  const started: Started[] = [];

  const npmStart = (...extra: string[]): Started => {
    const context = Object.entries(E2E_CONTEXT).flatMap(([k, v]) => ['-c', `${k}=${typeof v === 'object' ? JSON.stringify(v) : String(v)}`]);
    const child = spawn('npm', ['start', '--', '--state-dir', stateDir, '--synth-cache', SHARED_SYNTH_CACHE, ...context, '--hyperparameters', HYPERPARAMETERS, ...extra], {
      cwd: REPO_ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const lines: string[] = [];
    const waiters: Array<{ pattern: RegExp; resolve(l: string): void }> = [];
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    for (const stream of [child.stdout!, child.stderr!]) {
      createInterface({ input: stream }).on('line', (l) => {
        lines.push(l);
        for (const w of waiters.filter((x) => x.pattern.test(l))) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(l);
        }
      });
    }
    const s: Started = {
      child,
      lines,
      exited,
      line: (pattern) =>
        new Promise<string>((resolve, reject) => {
          const seen = lines.find((l) => pattern.test(l));
          if (seen) return resolve(seen);
          waiters.push({ pattern, resolve });
          void exited.then((code) => reject(new Error(`npm start exited (${code}) before printing ${pattern}:\n${lines.slice(-30).join('\n')}`)));
        }),
    };
    started.push(s);
    return s;
  };

  /** Every pid a test saw: afterAll ends what an assertion failure left running, orphans included. */
  const seen = new Set<number>();
  /** The run's processes now: npm, its sh, the run's node process, the reaper, the pods. */
  const runProcesses = (s: Started) => {
    const pids = processTree(s.child.pid!);
    for (const pid of pids) seen.add(pid);
    return pids;
  };
  /** A pod of the example's `train` or `serve` image: run from its bundle under the state dir (local/images.ts), or its source. */
  const isPod = (pid: number, image: 'train' | 'serve') => new RegExp(`(/images|examples/fashion-mnist)/${image}\\.(cjs|ts)\\b`).test(commandLine(pid));
  /** The node process itself, not npm's `sh -c` that runs it. */
  const mainPid = (pids: number[]) => pids.find((p) => commandLine(p).includes('local/start.cjs') && !commandLine(p).startsWith('sh '));

  beforeAll(async () => {
    stateDir = mkdtempSync(join(tmpdir(), 'mlpipe-lifecycle-'));
    await synthesizeE2eStack();
  });

  afterAll(async () => {
    // Whatever a failed assertion left running goes now (the pods through their groups).
    for (const s of started) runProcesses(s);
    const left = [...seen].filter(isRunning).flatMap(processTree);
    for (const pid of new Set(left)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
    rmSync(stateDir, { recursive: true, force: true });
  });

  it('mid-training: everything stops, the run is reported interrupted, the state directory is free again', async () => {
    // GIVEN a run whose training pod is running
    const run = npmStart();
    await run.line(/▶ AwaitTraining/);
    let pids: number[] = [];
    const training = () => (pids = runProcesses(run)).some((p) => isPod(p, 'train'));
    expect(await eventually(training, 60_000)).toBe(true);
    expect(mainPid(pids)).toBeDefined();
    // Everything it listens on is loopback.
    const listening = listenersOf(pids);
    expect(listening.length).toBeGreaterThan(0);
    expect(listening.filter((l) => !isLoopback(l.address))).toEqual([]);

    // WHEN npm is killed
    run.child.kill('SIGKILL');

    // THEN no process of the run is left, and it said why it stopped
    expect(await eventually(() => !pids.some(isRunning), 60_000)).toBe(true);
    const out = run.lines.join('\n');
    expect(out).toMatch(/■ run interrupted after [\d.]+ s in AwaitTraining: .* was stopped, not failed/);
    expect(out).not.toContain('LocalStepFunctions.Closed');
    expect(existsSync(join(stateDir, LOCK_FILE))).toBe(false);
  });

  it('after a release: a second start refuses naming the holder; SIGKILL of the run leaves no process and no listener', async () => {
    // GIVEN a released model that keeps serving
    const run = npmStart('--auto-approve');
    await run.line(/Production keeps serving until you press Ctrl-C/);
    const pids = runProcesses(run);
    const holder = mainPid(pids)!;
    const serving = pids.filter((p) => isPod(p, 'serve'));
    expect(serving.length).toBeGreaterThan(0);
    const listening = listenersOf(pids);
    expect(listening.some((l) => serving.includes(l.pid))).toBe(true);
    expect(listening.filter((l) => !isLoopback(l.address))).toEqual([]);

    // WHEN a second npm start uses the same state directory, it refuses with the holder's pid
    const second = npmStart();
    expect(await second.exited).not.toBe(0);
    expect(second.lines.join('\n')).toContain(`Another local pipeline (pid ${holder},`);
    // ...and took nothing from the first: its local.json (the CLI's way in) is still there and its own.
    expect((JSON.parse(readFileSync(join(stateDir, 'local.json'), 'utf8')) as { pid: number }).pid).toBe(holder);

    // WHEN the run's node process is killed outright (no handler runs)
    process.kill(holder, 'SIGKILL');

    // THEN nothing of the run is left running or listening
    expect(await eventually(() => !pids.some(isRunning), 60_000)).toBe(true);
    expect(listenersOf(pids)).toEqual([]);
    await run.exited;
  });
});
