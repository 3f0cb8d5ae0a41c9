/**
 * The parent-death check of `npm start`: the run ends when whatever started it ends, kill -9 included.
 * npm runs the script as npm → sh -c → node, and a kill -9 of npm leaves sh waiting on node, so node's
 * parent alone says nothing: when npm started this process, the processes up to npm itself are watched.
 * The ancestry is read from /proc (Linux); elsewhere only the parent is watched.
 */
import { readFileSync } from 'node:fs';
import { isAlive } from './process-alive';

/** How often the launchers are checked: a dead parent is noticed within this. */
const CHECK_MS = 1000;
/** npm's script wrapper is sh; a few more levels allow npx or a nested npm script. */
const MAX_DEPTH = 5;

export interface Launcher {
  pid: number;
  command: string;
}

function procParent(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    return Number.isInteger(ppid) && ppid > 0 ? ppid : undefined;
  } catch {
    return undefined;
  }
}

function procCommand(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim();
  } catch {
    return '';
  }
}

const NPM = /(^|[\s/])(npm|npx)(-cli\.js)?(\s|$)/;

/**
 * The processes whose end ends this run: the parent, and, when an npm script started this process
 * (npm sets npm_lifecycle_event), each process up to and including npm. Without a way to find npm
 * in the ancestry, the parent only.
 */
export function launchers(env: NodeJS.ProcessEnv = process.env, parent = process.ppid): Launcher[] {
  const chain: Launcher[] = [{ pid: parent, command: procCommand(parent) }];
  if (!env.npm_lifecycle_event) return chain;
  for (let depth = 0; depth < MAX_DEPTH; depth++) {
    const last = chain[chain.length - 1]!;
    if (NPM.test(last.command)) return chain;
    const up = procParent(last.pid);
    if (up === undefined || up <= 1) break;
    chain.push({ pid: up, command: procCommand(up) });
  }
  return chain.slice(0, 1);
}

/**
 * Calls `onGone` once, with the launcher that ended, when any of `launchers()` has gone (or this
 * process was re-parented). The timer does not keep the process alive. Returns a stop function.
 */
export function watchLaunchers(onGone: (gone: Launcher) => void, watched: Launcher[] = launchers()): () => void {
  const parent = process.ppid;
  const timer = setInterval(() => {
    const gone = process.ppid !== parent ? watched[0] : watched.find((l) => !isAlive(l.pid));
    if (!gone) return;
    clearInterval(timer);
    onGone(gone);
  }, CHECK_MS);
  timer.unref();
  return () => clearInterval(timer);
}
