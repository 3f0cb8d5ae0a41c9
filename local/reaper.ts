/**
 * Registers the process groups a local run starts with its reaper (local/reaper-process.ts), a small
 * process started on first use that kills them when this process ends without stopping them (kill -9,
 * a crash, process.exit during a stop). One reaper per process, shared by every local Kubernetes API and
 * synth in it; it holds nothing open here (unref'd), so tests and `npm start` exit as before.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import type { Socket } from 'node:net';

const PROGRAM = join(__dirname, 'reaper-process.ts');

let reaper: ChildProcess | null | undefined;

function started(): ChildProcess | null {
  if (reaper !== undefined) return reaper;
  try {
    // Its own session: a terminal's Ctrl-C goes to the run, which stops its groups itself.
    const child = spawn(process.execPath, ['--disable-warning=ExperimentalWarning', PROGRAM], { detached: true, stdio: ['pipe', 'ignore', 'ignore'] });
    child.once('error', () => {
      reaper = null;
    });
    child.once('exit', () => {
      if (reaper === child) reaper = undefined; // killed from outside: the next group starts another
    });
    child.stdin!.on('error', () => undefined); // EPIPE once it has gone; the next write starts another
    child.unref();
    (child.stdin as Socket).unref();
    reaper = child;
  } catch {
    reaper = null; // cannot spawn at all: groups then only end through stop(), as before
  }
  return reaper;
}

/** The group (a detached child's pid) is killed when this process ends, unless released first. */
export function superviseGroup(pgid: number): void {
  if (pgid > 1) started()?.stdin?.write(`watch ${pgid}\n`);
}

/** The group has been reaped: its id may be reused, so the reaper must forget it. */
export function releaseGroup(pgid: number): void {
  if (pgid > 1 && reaper) reaper.stdin?.write(`forget ${pgid}\n`);
}

/** The reaper's pid, if one runs (tests check it goes with its parent). */
export function reaperPid(): number | undefined {
  return reaper?.pid;
}
