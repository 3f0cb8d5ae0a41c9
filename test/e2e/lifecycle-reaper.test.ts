/**
 * Pods run in process groups of their own, so nothing in the kernel ends them with the run: a kill -9 of
 * the run used to leave them running with ppid 1 (issue 8). The reaper ends them, grandchildren included,
 * and goes itself; a group the runner stopped is forgotten, so the reaper never signals a reused id.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { describeWithProc, eventually, isRunning, processTree } from './lifecycle-procs';

const PARENT = join(__dirname, 'lifecycle-parent.ts');

describeWithProc('the reaper', () => {
  let dir: string;
  let parent: ChildProcess | undefined;
  let leftovers: number[] = [];

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'mlpipe-reaper-'));
  });
  afterAll(() => {
    // A failing run must not leave its sleepers behind either.
    for (const pid of leftovers) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
    if (parent?.exitCode === null) parent.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });

  it('kills every process group of a run that was killed with SIGKILL, then exits', async () => {
    // GIVEN a run with two pod groups, one of them with a child of its own
    parent = spawn(process.execPath, ['--import', 'tsx', PARENT, join(dir, 'pods.log')], { stdio: ['ignore', 'pipe', 'inherit'] });
    const first = await new Promise<string>((resolve, reject) => {
      createInterface({ input: parent!.stdout! }).once('line', resolve);
      parent!.once('exit', (code) => reject(new Error(`the stand-in run exited (${code}) before starting its pods`)));
    });
    const started = JSON.parse(first) as { pids: number[]; reaper: number | null };
    expect(started.reaper).toEqual(expect.any(Number));
    // The group leaders and what they started (sh's sleep), once they are there.
    let pods: number[] = [];
    expect(await eventually(() => (pods = started.pids.flatMap(processTree)).length >= 3, 10_000)).toBe(true);
    leftovers = [...pods, started.reaper!];
    expect(leftovers.every(isRunning)).toBe(true);

    // WHEN the run is killed outright (no handler, no cleanup code runs)
    parent.kill('SIGKILL');

    // THEN the pods and their children go, and so does the reaper
    expect(await eventually(() => !pods.some(isRunning), 10_000)).toBe(true);
    expect(await eventually(() => !isRunning(started.reaper!), 10_000)).toBe(true);
  });
});
