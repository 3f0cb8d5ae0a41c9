/**
 * Timed wake-ups for the controllers: things that happen by the clock rather than on an API event (a Job's
 * activeDeadlineSeconds or TTL, a pod retry back-off, a Deployment's progress deadline) call `kick()` at
 * their time. One pending wake-up per key, so repeated reconciles do not pile up timers.
 */
export class WakeUps {
  private readonly timers = new Map<string, NodeJS.Timeout>();

  constructor(private readonly kick: () => void) {}

  /** Kick in `ms` (now if negative), replacing any wake-up already pending for `key`. */
  at(key: string, ms: number): void {
    const old = this.timers.get(key);
    if (old) clearTimeout(old);
    const t = setTimeout(() => {
      this.timers.delete(key);
      this.kick();
    }, Math.max(0, ms));
    this.timers.set(key, t);
  }

  stop(): void {
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
  }
}
