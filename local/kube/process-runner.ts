/**
 * Runs a pod's container as a local process: its own process group (so stopping it stops whatever it
 * started, like a container's cgroup), stdout and stderr appended to a log file, and an exit promise.
 * Each group is registered with the reaper (local/reaper.ts), so it also ends when this process is
 * killed without stopping it.
 */
import { spawn } from 'node:child_process';
import { appendFileSync, closeSync, mkdirSync, openSync } from 'node:fs';
import { createServer } from 'node:net';
import { dirname } from 'node:path';
import { releaseGroup, superviseGroup } from '../reaper';

export interface ProcessSpec {
  command: string;
  args: string[];
  cwd?: string;
  env: Record<string, string>;
  logFile: string;
}

export interface ExitInfo {
  exitCode: number;
  signal?: NodeJS.Signals;
}

export interface RunningProcess {
  pid: number;
  exited: Promise<ExitInfo>;
  /** SIGTERM to the group, SIGKILL after `graceMs`; resolves once the process has exited. */
  stop(graceMs: number): Promise<ExitInfo>;
}

function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // the group is already gone
  }
}

const SIGNAL_NUMBERS: Partial<Record<NodeJS.Signals, number>> = { SIGTERM: 15, SIGKILL: 9, SIGINT: 2, SIGHUP: 1, SIGSEGV: 11, SIGABRT: 6 };

export function startProcess(spec: ProcessSpec): RunningProcess {
  mkdirSync(dirname(spec.logFile), { recursive: true });
  const fd = openSync(spec.logFile, 'a');
  let child;
  try {
    child = spawn(spec.command, spec.args, {
      cwd: spec.cwd,
      env: spec.env,
      detached: true,
      stdio: ['ignore', fd, fd],
    });
  } finally {
    closeSync(fd);
  }
  if (child.pid) superviseGroup(child.pid);
  const exited = new Promise<ExitInfo>((resolve) => {
    child.once('error', (err) => {
      // The command could not start (ENOENT...): say why in the log, as a container runtime would.
      appendFileSync(spec.logFile, `failed to start ${spec.command}: ${err.message}\n`);
      resolve({ exitCode: 127 });
    });
    child.once('exit', (code, signal) => {
      // Whatever the main process left behind in its group goes with it, as in a container.
      if (child.pid) {
        signalGroup(child.pid, 'SIGKILL');
        releaseGroup(child.pid);
      }
      resolve(signal ? { exitCode: 128 + (SIGNAL_NUMBERS[signal] ?? 0), signal } : { exitCode: code ?? 0 });
    });
  });
  const pid = child.pid ?? -1;
  return {
    pid,
    exited,
    async stop(graceMs: number) {
      if (pid > 0) {
        signalGroup(pid, 'SIGTERM');
        const timer = setTimeout(() => signalGroup(pid, 'SIGKILL'), graceMs);
        const info = await exited;
        clearTimeout(timer);
        return info;
      }
      return exited;
    },
  };
}

/** A free TCP port on 127.0.0.1 (the OS picks it; it is released for the process to bind). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}
