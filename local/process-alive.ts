/**
 * Whether a process still runs: the local run's lock files and local.json record a pid, and both the synth
 * lock and the CLI must tell a live holder from one that died (kill -9) without cleaning up.
 */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists but belongs to someone else.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
