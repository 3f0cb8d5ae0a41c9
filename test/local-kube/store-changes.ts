/**
 * Changes to the local Kubernetes API's objects as events, for tests that wait for controllers: a read is
 * repeated after the store changes, not on a timer. Every change the API or a controller makes goes
 * through the store (local/kube/store.ts), so nothing that could change an answer is missed.
 */
import type { LocalKube } from '../../local/kube';
import type { ObjectStore } from '../../local/kube/store';

export interface StoreChanges {
  /** True once the store has changed since the last call (or since the start): at once if it has, else on the next change; false after `ms` without one. */
  next(ms: number): Promise<boolean>;
  close(): void;
}

export function storeChanges(kube: LocalKube): StoreChanges {
  let count = 0;
  let seen = 0;
  let wake: (() => void) | undefined;
  const unsubscribe = (kube.store as ObjectStore).subscribe(() => {
    count++;
    wake?.();
  });
  return {
    close: unsubscribe,
    next(ms) {
      if (count > seen || ms <= 0) {
        const changed = count > seen;
        seen = count;
        return Promise.resolve(changed);
      }
      return new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => settle(false), ms);
        function settle(changed: boolean): void {
          clearTimeout(timer);
          wake = undefined;
          seen = count;
          resolve(changed);
        }
        wake = () => settle(true);
      });
    },
  };
}
