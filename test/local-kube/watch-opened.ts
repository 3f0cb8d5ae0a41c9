/**
 * "The handler is watching now", as an event for tests that change an object while a handler watches it:
 * every watch the local Kubernetes API serves subscribes to its object store (local/kube/server.ts), so
 * the next subscription is the next watch opened. Instead of sleeping until the watch is probably open.
 */
import type { LocalKube } from '../../local/kube';
import type { ObjectStore } from '../../local/kube/store';

/** Resolves when the next watch is open on `kube` (call it before starting what opens the watch). */
export function nextWatchOpened(kube: LocalKube): Promise<void> {
  const store = kube.store as ObjectStore;
  const subscribe = store.subscribe.bind(store);
  return new Promise((resolve) => {
    store.subscribe = (listener) => {
      store.subscribe = subscribe;
      const unsubscribe = subscribe(listener);
      resolve();
      return unsubscribe;
    };
  });
}
