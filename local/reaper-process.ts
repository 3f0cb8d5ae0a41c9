/**
 * The local run's reaper, a process of its own (local/reaper.ts starts it): it kills every process group
 * the run started once the run's process is gone, however it went. Pods run in process groups of their own
 * (so stopping one stops whatever it started, like a container's cgroup), which also means nothing ends
 * them when the run is killed with SIGKILL: no cleanup code runs then, and they would keep serving with
 * ppid 1. The kernel closes the run's end of this process's stdin whatever kills it, so end of input is
 * the parent-death signal: SIGTERM to every group still registered, SIGKILL to those left after a grace.
 *
 * Input, one line each: `watch <pgid>` when a group starts, `forget <pgid>` when it has been reaped.
 * Run directly by Node (type stripping: erasable syntax only, no imports outside node:).
 */
import process from 'node:process';

/** Time for servers to finish requests in flight (serve.ts drains on SIGTERM), as the kubelet's stop allows. */
const GRACE_MS = 2000;
const CHECK_MS = 50;

const groups = new Set<number>();
let pending = '';
let reaping = false;

function groupExists(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function signalGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal);
  } catch {
    // already gone
  }
}

function reap(): void {
  if (reaping) return;
  reaping = true;
  for (const pgid of groups) signalGroup(pgid, 'SIGTERM');
  const deadline = Date.now() + GRACE_MS;
  const check = (): void => {
    const left = [...groups].filter(groupExists);
    if (left.length === 0) process.exit(0);
    if (Date.now() >= deadline) {
      for (const pgid of left) signalGroup(pgid, 'SIGKILL');
      process.exit(0);
    }
    setTimeout(check, CHECK_MS);
  };
  check();
}

process.stdin.setEncoding('utf8');
process.stdin.on('data', (chunk: string) => {
  pending += chunk;
  for (let nl = pending.indexOf('\n'); nl >= 0; nl = pending.indexOf('\n')) {
    const match = /^(watch|forget) (\d+)$/.exec(pending.slice(0, nl));
    pending = pending.slice(nl + 1);
    const pgid = Number(match?.[2]);
    // Group ids only: 0 and 1 would signal this process's own group or every process.
    if (!match || !(pgid > 1)) continue;
    if (match[1] === 'watch') groups.add(pgid);
    else groups.delete(pgid);
  }
});
process.stdin.on('end', reap);
process.stdin.on('close', reap);
process.stdin.on('error', reap);
// It has a session of its own, so a terminal's Ctrl-C never reaches it; any signal that does means the same.
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, reap);
