/**
 * The console beside `npm start`: `mlpipe console --local` as a child process of the local run. A process
 * of its own because the console makes every AWS client it uses read-only (console/read-only.ts) and
 * points them at the target, which the local run's own clients must not be. Its port is chosen here, so the
 * run prints the address at once and the child's start (a second or two of loading) overlaps the run. It
 * stops with the run: killed on exit, and `--exit-with` ends it within a second when the run dies without
 * running its handlers (kill -9).
 */
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { createInterface } from 'node:readline';
import { join } from 'node:path';
import { REPO_ROOT } from '../local/lambda/synth';

/** The console's port unless taken (the approval links are on 8787). */
export const CONSOLE_PORT = 8788;

export interface ConsoleProcess {
  url: string;
  /** Resolves once it listens; rejects with its last words if it ends before. */
  ready: Promise<void>;
  stop(): void;
}

/** `preferred` when it is free on 127.0.0.1, else any free port. */
async function freePort(preferred: number): Promise<number> {
  const tryPort = (port: number) =>
    new Promise<number>((resolve, reject) => {
      const probe = createServer();
      probe.once('error', reject);
      probe.listen(port, '127.0.0.1', () => {
        const { port: got } = probe.address() as { port: number };
        probe.close(() => resolve(got));
      });
    });
  return tryPort(preferred).catch(() => tryPort(0));
}

/** Starts the console on the local run in `stateDir` (its local.json must exist). */
export async function spawnConsole(stateDir: string, opts: { port?: number } = {}): Promise<ConsoleProcess> {
  const port = await freePort(opts.port ?? CONSOLE_PORT);
  const args = [join(REPO_ROOT, 'cli', 'start.cjs'), 'console', '--local', '--state-dir', stateDir, '--port', String(port), '--exit-with', String(process.pid)];
  const child = spawn(process.execPath, args, { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  const ready = new Promise<void>((resolve, reject) => {
    const errors: string[] = [];
    createInterface({ input: child.stderr }).on('line', (l) => errors.push(l));
    createInterface({ input: child.stdout }).on('line', (line) => {
      if (line.startsWith('console ')) resolve();
    });
    child.once('error', reject);
    child.once('exit', (code, signal) => reject(new Error(`the console ended (${signal ?? `exit ${code}`}): ${errors.slice(-3).join(' ') || 'no message'}`)));
  });
  ready.catch(() => undefined); // a caller that does not wait is not told
  return {
    url: `http://127.0.0.1:${port}`,
    ready,
    stop: () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    },
  };
}
