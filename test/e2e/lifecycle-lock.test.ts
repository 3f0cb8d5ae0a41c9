/**
 * One local pipeline per state directory (issue 8): a second start on it refuses, naming the live holder's
 * pid, before it touches anything; a lock left by a holder that died (kill -9) is taken over; a release
 * removes only its own lock.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LOCK_FILE, StateDirLockedError, lockStateDir } from '../../local/lock';
import { startLocalPipeline } from '../../local/pipeline';

/** A process that runs until killed, and one that has exited (its pid is free). */
function sleeper(): ChildProcess {
  return spawn('sleep', ['1000'], { stdio: 'ignore' });
}
async function deadPid(): Promise<number> {
  const child = spawn('true', { stdio: 'ignore' });
  await new Promise((r) => child.once('exit', r));
  return child.pid!;
}
const lockOf = (pid: number) => `${JSON.stringify({ pid, startedAt: '2026-01-01T00:00:00.000Z' })}\n`;

describe('the state directory lock', () => {
  let dir: string;
  let holder: ChildProcess;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'mlpipe-lock-'));
  });
  afterEach(() => {
    holder?.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });

  it('is refused while its holder lives, with the holder pid in the message', () => {
    holder = sleeper();
    writeFileSync(join(dir, LOCK_FILE), lockOf(holder.pid!));
    expect(() => lockStateDir(dir)).toThrow(StateDirLockedError);
    expect(() => lockStateDir(dir)).toThrow(`Another local pipeline (pid ${holder.pid}, started 2026-01-01T00:00:00.000Z) is using ${dir}`);
    // The holder's lock is untouched.
    expect(readFileSync(join(dir, LOCK_FILE), 'utf8')).toBe(lockOf(holder.pid!));
  });

  it('refuses a second lock in the same process too', () => {
    const first = lockStateDir(dir);
    expect(() => lockStateDir(dir)).toThrow(`(pid ${process.pid},`);
    first.release();
  });

  it('takes over a lock whose holder died, and says whose it was', async () => {
    const dead = await deadPid();
    writeFileSync(join(dir, LOCK_FILE), lockOf(dead));
    const lock = lockStateDir(dir);
    expect(lock.tookOverFrom?.pid).toBe(dead);
    expect(JSON.parse(readFileSync(join(dir, LOCK_FILE), 'utf8'))).toEqual({ pid: process.pid, startedAt: lock.holder.startedAt });
    lock.release();
    expect(existsSync(join(dir, LOCK_FILE))).toBe(false);
  });

  it('takes over an unreadable lock (no live holder can be named)', () => {
    writeFileSync(join(dir, LOCK_FILE), 'garbage');
    const lock = lockStateDir(dir);
    expect(lock.tookOverFrom?.pid).toBe(0);
    lock.release();
  });

  it('release() leaves a lock that is no longer its own', () => {
    const lock = lockStateDir(dir);
    holder = sleeper();
    writeFileSync(join(dir, LOCK_FILE), lockOf(holder.pid!)); // as after a takeover race
    lock.release();
    expect(readFileSync(join(dir, LOCK_FILE), 'utf8')).toBe(lockOf(holder.pid!));
  });

  it('startLocalPipeline refuses a held state directory before starting anything', async () => {
    holder = sleeper();
    writeFileSync(join(dir, LOCK_FILE), lockOf(holder.pid!));
    writeFileSync(join(dir, 'local.json'), '{"pid": 1}');
    const starting = startLocalPipeline({ stateDir: dir, log: () => undefined });
    try {
      await expect(starting).rejects.toThrow(`Another local pipeline (pid ${holder.pid},`);
    } finally {
      await starting.then((p) => p.stop(), () => undefined);
    }
    // The holder's files are untouched and nothing was started in its directory.
    expect(readFileSync(join(dir, 'local.json'), 'utf8')).toBe('{"pid": 1}');
    expect(existsSync(join(dir, 's3'))).toBe(false);
  });
});
