/**
 * One local pipeline per state directory. Two on one `.mlpipe/` share the S3 folder (two s3rvers writing
 * the same files) and local.json, which the one that exits first deletes: the CLI then talks to nobody,
 * or an approval in the other records a wrong previousVersion (issue 8). The lock file names its holder's
 * pid so a refused start can say who holds it; a holder that died without releasing it (kill -9) leaves a
 * stale lock, which the next start takes over.
 */
import { linkSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { isAlive } from './process-alive';

export const LOCK_FILE = 'pipeline.lock';

export interface LockHolder {
  pid: number;
  startedAt: string;
}

/** Another live process holds the state directory. */
export class StateDirLockedError extends Error {
  override readonly name = 'StateDirLockedError';
  constructor(
    readonly stateDir: string,
    readonly holder: LockHolder,
  ) {
    super(
      `Another local pipeline (pid ${holder.pid}, started ${holder.startedAt}) is using ${stateDir}. ` +
        `Stop it first (Ctrl-C in its terminal, or kill ${holder.pid}), or give this one its own --state-dir.`,
    );
  }
}

export interface StateDirLock {
  path: string;
  holder: LockHolder;
  /** The holder of a stale lock this one took over (it died without stopping). */
  tookOverFrom?: LockHolder;
  /** Removes the lock if it is still this one's; safe to call twice. */
  release(): void;
}

function parseHolder(text: string): LockHolder | undefined {
  try {
    const value = JSON.parse(text) as Partial<LockHolder>;
    if (Number.isInteger(value.pid) && (value.pid as number) > 0) return { pid: value.pid as number, startedAt: String(value.startedAt ?? 'at an unknown time') };
  } catch {
    // not a lock this code wrote
  }
  return undefined;
}

function readText(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/**
 * Takes the lock of `stateDir` for this process, or throws StateDirLockedError naming the live holder.
 * The lock appears whole or not at all (written aside, then hard-linked into place: link fails if it
 * exists), so a reader never sees a half-written pid.
 */
export function lockStateDir(stateDir: string): StateDirLock {
  const path = join(stateDir, LOCK_FILE);
  const holder: LockHolder = { pid: process.pid, startedAt: new Date().toISOString() };
  const content = `${JSON.stringify(holder)}\n`;
  const tmp = `${path}.${process.pid}.tmp`;
  let tookOverFrom: LockHolder | undefined;
  // A few rounds: each lost race (another start took over the same stale lock) means looking again.
  for (let round = 0; round < 5; round++) {
    writeFileSync(tmp, content);
    try {
      linkSync(tmp, path);
      rmSync(tmp, { force: true });
      const release = () => {
        process.off('exit', release);
        // Only our own: after a takeover race the file may be someone else's.
        if (readText(path) === content) rmSync(path, { force: true });
      };
      // process.exit() mid-start or mid-stop runs no stop code, but still 'exit' listeners.
      process.on('exit', release);
      return { path, holder, ...(tookOverFrom ? { tookOverFrom } : {}), release };
    } catch (err) {
      rmSync(tmp, { force: true });
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const seen = readText(path);
    if (seen === undefined) continue; // released meanwhile
    const current = parseHolder(seen);
    if (current && isAlive(current.pid)) throw new StateDirLockedError(stateDir, current);
    // Stale: move it aside, and make sure what moved is the stale lock we judged, not a racer's new one.
    const aside = `${path}.stale-${process.pid}`;
    try {
      renameSync(path, aside);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw err;
    }
    const moved = readText(aside);
    if (moved !== seen) {
      try {
        linkSync(aside, path);
      } catch {
        // someone else holds it now: the next round says who
      }
    } else {
      tookOverFrom = current ?? { pid: 0, startedAt: 'unknown (unreadable lock)' };
    }
    rmSync(aside, { force: true });
  }
  const last = parseHolder(readText(path) ?? '');
  if (last) throw new StateDirLockedError(stateDir, last);
  throw new Error(`Could not take the lock ${path}: other starts kept taking it over. Try again.`);
}
