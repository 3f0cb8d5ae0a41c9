/**
 * The console beside `npm start`: `mlpipe console --local` as a child process of the local run. A process
 * of its own because the console makes every AWS client it uses read-only (console/read-only.ts) and
 * points them at the target, which the local run's own clients must not be. The run listens on the
 * console's port itself, so it prints the address at once and a browser's first request waits rather than
 * failing, and passes each connection through to the child. The child may start on demand (`lazy`): at the
 * first connection or `start()`. Its start costs ~1.4 s of CPU (loading the CLI), which a run nobody looks
 * at (`--auto-approve --exit`) then never spends, and which otherwise competed with the run's own start and
 * training on a 2-core machine. It stops with the run: killed on exit, and `--exit-with` ends it within a
 * second when the run dies without running its handlers (kill -9).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { createInterface } from 'node:readline';
import { join } from 'node:path';
import { REPO_ROOT } from '../local/lambda/synth';

/** The console's port unless taken (the approval links are on 8787). */
export const CONSOLE_PORT = 8788;

export interface ConsoleProcess {
  url: string;
  /** Resolves once the child serves; rejects with its last words if it ends before. Settles only after a start. */
  ready: Promise<void>;
  /** Starts the child now unless it has started (a connection to `url` starts it too). */
  start(): void;
  stop(): void;
}

/** Listens on `preferred` on 127.0.0.1 when it is free, else on any free port. */
async function listenOn(server: Server, preferred: number): Promise<number> {
  const tryPort = (port: number) =>
    new Promise<number>((resolve, reject) => {
      const failed = (err: Error) => reject(err);
      server.once('error', failed);
      server.listen(port, '127.0.0.1', () => {
        server.off('error', failed);
        resolve((server.address() as { port: number }).port);
      });
    });
  return tryPort(preferred).catch(() => tryPort(0));
}

/** Starts the console on the local run in `stateDir` (its local.json must exist by the child's start). */
export async function spawnConsole(stateDir: string, opts: { port?: number; lazy?: boolean } = {}): Promise<ConsoleProcess> {
  let child: ChildProcess | undefined;
  let childPort: number | undefined;
  let failure: Error | undefined;
  const waiting: Socket[] = [];
  let settle: { resolve: () => void; reject: (err: Error) => void } | undefined;
  const ready = new Promise<void>((resolve, reject) => {
    settle = { resolve, reject };
  });
  ready.catch(() => undefined); // a caller that does not wait is not told

  const pass = (socket: Socket) => {
    if (socket.destroyed) return; // its client went away while it was parked: no upstream to open for it
    if (failure) {
      socket.end(`HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain\r\nconnection: close\r\n\r\nThe console is not running: ${failure.message}\n`);
      return;
    }
    if (childPort === undefined) {
      waiting.push(socket);
      return;
    }
    const upstream = connect(childPort, '127.0.0.1');
    socket.pipe(upstream).pipe(socket);
    socket.on('error', () => upstream.destroy());
    upstream.on('error', () => socket.destroy());
  };
  const server = createServer((socket) => {
    // A client may reset while its socket is parked or being answered 503: without a listener that error
    // would be uncaught and end the whole run.
    socket.on('error', () => socket.destroy());
    start();
    pass(socket);
  });
  const port = await listenOn(server, opts.port ?? CONSOLE_PORT);
  // After listening, an error of the server (accept failing: too many open files) costs the console, not the run.
  server.on('error', (err) => console.error(`console: ${err.message}`));

  function start(): void {
    if (child) return;
    // The child listens on any free port behind this one.
    const args = [join(REPO_ROOT, 'cli', 'start.cjs'), 'console', '--local', '--state-dir', stateDir, '--port', '0', '--exit-with', String(process.pid)];
    const c = spawn(process.execPath, args, { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    child = c;
    const errors: string[] = [];
    createInterface({ input: c.stderr! }).on('line', (l) => errors.push(l));
    createInterface({ input: c.stdout! }).on('line', (line) => {
      const served = /^console\s+http:\/\/127\.0\.0\.1:(\d+)/.exec(line);
      if (!served || childPort !== undefined) return;
      childPort = Number(served[1]);
      settle!.resolve();
      for (const socket of waiting.splice(0)) pass(socket);
    });
    const ended = (err: Error) => {
      failure ??= err;
      settle!.reject(err);
      for (const socket of waiting.splice(0)) pass(socket);
    };
    c.once('error', ended);
    c.once('exit', (code, signal) => ended(new Error(`the console ended (${signal ?? `exit ${code}`}): ${errors.slice(-3).join(' ') || 'no message'}`)));
  }
  if (!opts.lazy) start();

  return {
    url: `http://127.0.0.1:${port}`,
    ready,
    start,
    stop: () => {
      server.close();
      for (const socket of waiting.splice(0)) socket.destroy();
      if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    },
  };
}
