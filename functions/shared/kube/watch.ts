/**
 * Waiting for a state in the cluster: list, then watch from the list's resourceVersion until a predicate
 * matches or a time budget runs out, resuming when the server or the client ends the stream.
 */
import { Watch, type KubernetesListObject, type KubernetesObject } from '@kubernetes/client-node';
import { KubernetesRequestError, KubernetesUnavailableError } from '../errors';
import { kubeApis } from './config';
import { toKubeError } from './errors';
import { getJson } from './objects';


export type WatchEventType = 'LISTED' | 'ADDED' | 'MODIFIED' | 'DELETED';

/**
 * Waits until `predicate` returns something for an object of a collection (`path` as from
 * collectionPath, `query` e.g. `{ fieldSelector: 'metadata.name=x' }`), or `budgetMs` runs out
 * (→ undefined). Lists first and watches from the list's resourceVersion, so no change between the two
 * is missed; when the server ends the stream it resumes from the last resourceVersion seen, and relists
 * when that is too old (410 Gone).
 */
export async function watchUntil<T extends KubernetesObject, R>(
  path: string,
  query: Record<string, string>,
  predicate: (obj: T, type: WatchEventType) => R | undefined,
  budgetMs: number,
  signal?: AbortSignal,
): Promise<R | undefined> {
  const deadline = Date.now() + budgetMs;
  let resourceVersion: string | undefined;
  let relist = true;
  while (!signal?.aborted) {
    if (relist) {
      const list = await getJson<KubernetesListObject<T>>(path, query);
      for (const item of list.items) {
        const result = predicate(item, 'LISTED');
        if (result !== undefined) return result;
      }
      resourceVersion = list.metadata?.resourceVersion;
      relist = false;
    }
    const remaining = deadline - Date.now();
    if (remaining <= 0) return undefined;
    const started = Date.now();
    const outcome = await watchOnce(path, query, resourceVersion, predicate, remaining, signal);
    if (outcome.kind === 'matched') return outcome.value;
    if (outcome.kind === 'gone') relist = true;
    else resourceVersion = outcome.resourceVersion ?? resourceVersion;
    // A server that closes streams at once must not turn this loop into a busy loop.
    if (Date.now() - started < 500) await sleep(Math.min(500, Math.max(0, deadline - Date.now())), signal);
  }
  return undefined;
}

type WatchOutcome<R> = { kind: 'matched'; value: R } | { kind: 'ended'; resourceVersion?: string } | { kind: 'gone' };

async function watchOnce<T extends KubernetesObject, R>(
  path: string,
  query: Record<string, string>,
  fromVersion: string | undefined,
  predicate: (obj: T, type: WatchEventType) => R | undefined,
  budgetMs: number,
  signal?: AbortSignal,
): Promise<WatchOutcome<R>> {
  const { kc } = await kubeApis();
  // The client aborts a stream silent for 30 s (TimeoutError); that is an ordinary end: we resume.
  const watch = new Watch(kc);
  let resourceVersion = fromVersion;
  const params: Record<string, string> = {
    ...query,
    allowWatchBookmarks: 'true',
    timeoutSeconds: String(Math.max(1, Math.ceil(budgetMs / 1000))),
  };
  if (fromVersion) params.resourceVersion = fromVersion;

  return new Promise<WatchOutcome<R>>((resolve, reject) => {
    let settled = false;
    let controller: AbortController | undefined;
    const finish = (settle: () => void): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      controller?.abort();
      settle();
    };
    const onAbort = (): void => finish(() => resolve({ kind: 'ended', resourceVersion }));
    const timer = setTimeout(onAbort, budgetMs);
    signal?.addEventListener('abort', onAbort);

    watch
      .watch(
        path,
        params,
        (type: string, obj: T & { code?: number; message?: string; reason?: string }) => {
          if (settled) return;
          if (type === 'ERROR') {
            if (obj.code === 410) return finish(() => resolve({ kind: 'gone' }));
            const code = obj.code ?? 500;
            const text = `Kubernetes watch ${path} failed: HTTP ${code} ${obj.reason ?? ''}: ${obj.message ?? ''}`;
            return finish(() =>
              reject(code >= 500 || code === 429 ? new KubernetesUnavailableError(text) : new KubernetesRequestError(text)),
            );
          }
          resourceVersion = obj.metadata?.resourceVersion ?? resourceVersion;
          if (type === 'BOOKMARK') return;
          let result: R | undefined;
          try {
            result = predicate(obj, type as WatchEventType);
          } catch (err) {
            return finish(() => reject(err));
          }
          if (result !== undefined) finish(() => resolve({ kind: 'matched', value: result }));
        },
        (err: unknown) => {
          if (settled) return;
          const e = err as { name?: string; statusCode?: number } | null;
          if (!e || e.name === 'AbortError' || e.name === 'TimeoutError') {
            return finish(() => resolve({ kind: 'ended', resourceVersion }));
          }
          if (e.statusCode === 410) return finish(() => resolve({ kind: 'gone' }));
          finish(() => reject(toKubeError(err, `watch ${path}`)));
        },
      )
      .then(
        (c) => {
          controller = c;
          if (settled) c.abort();
        },
        (err: unknown) => finish(() => reject(toKubeError(err, `watch ${path}`))),
      );
  });
}

/**
 * Runs several watches at once and answers with the first result any of them finds (the others are
 * stopped), or undefined when all ran out of budget. Used to watch a workload and its pods together.
 */
export async function firstOf<R>(watchers: Array<(signal: AbortSignal) => Promise<R | undefined>>): Promise<R | undefined> {
  const stop = new AbortController();
  try {
    return await new Promise<R | undefined>((resolve, reject) => {
      let pending = watchers.length;
      if (pending === 0) resolve(undefined);
      for (const w of watchers) {
        w(stop.signal).then((value) => {
          if (value !== undefined) resolve(value);
          else if (--pending === 0) resolve(undefined);
        }, reject);
      }
    });
  } finally {
    stop.abort();
  }
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done);
  });
}
