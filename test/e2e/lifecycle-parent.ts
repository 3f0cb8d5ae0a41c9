/**
 * A stand-in for a local run, for lifecycle-reaper.test.ts: starts two pod-like process groups through the
 * process runner (one with a child of its own in its group), prints their pids and the reaper's as one JSON
 * line, then waits to be killed.
 */
import { startProcess } from '../../local/kube/process-runner';
import { reaperPid } from '../../local/reaper';

const log = process.argv[2] ?? '/dev/null';
const single = startProcess({ command: 'sleep', args: ['1000'], env: { PATH: process.env.PATH ?? '' }, logFile: log });
const family = startProcess({ command: 'sh', args: ['-c', 'sleep 1001 & wait'], env: { PATH: process.env.PATH ?? '' }, logFile: log });
process.stdout.write(`${JSON.stringify({ pids: [single.pid, family.pid], reaper: reaperPid() ?? null })}\n`);
setInterval(() => undefined, 1 << 30);
