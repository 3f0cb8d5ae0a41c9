/**
 * Waiting for a state in the cluster: list, then watch from the list's resourceVersion until a predicate
 * matches or a time budget runs out. A real kube-apiserver (v1.32) ends watches in ways that are not
 * failures, and this resumes through each:
 * - a watch from a resourceVersion older than its cache answers 200 and a single ERROR event with a
 *   Status 410 Expired (or, from some servers and proxies, HTTP 410): relist, then watch from the new list;
 * - it closes the stream at `timeoutSeconds`, or on restart: watch again from the last resourceVersion seen;
 * - it sends no BOOKMARK for a quiet collection, not even within a minute, so a silent stream is normal;
 *   but a connection dropped without a FIN also looks silent, so after `idleMs` without a line the stream
 *   is abandoned and resumed from the last resourceVersion (the same 30 s client-node's Watch allows).
 * Streams that end at once, again and again, back off (up to 5 s) instead of looping hot.
 */
import type { KubernetesListObject, KubernetesObject } from '@kubernetes/client-node';
import { createInterface } from 'node:readline';
import { toKubeError } from './errors';
import { getJson } from './objects';
import { KubeHttpError, openRequest, readText } from './transport';

export type WatchEventType = 'LISTED' | 'ADDED' | 'MODIFIED' | 'DELETED';

export interface WatchOptions {
  /** Abandon and resume a stream that sent nothing for this long. @default 30000 */
  idleMs?: number;
  /** Called on each stream (re)start and relist, for tests and logs. */
  onResume?: (event: { kind: 'list' | 'watch'; resourceVersion?: string; after?: WatchEnd }) => void;
}

/** Why a watch stream ended without a match. */
export type WatchEnd = 'expired' | 'closed' | 'idle' | 'dropped' | 'budget';

const DEFAULT_IDLE_MS = 30_000;
/** A stream that ends sooner than this without an event counts as a quick end (backoff grows). */
const QUICK_END_MS = 1_000;
const MAX_BACKOFF_MS = 5_000;

/**
 * Waits until `predicate` returns something for an object of a collection (`path` as from
 * collectionPath, `query` e.g. `{ fieldSelector: 'metadata.name=x' }`), or `budgetMs` runs out
 * (→ undefined). Lists first and watches from the list's resourceVersion, so no change between the two
 * is missed; resumes as the module comment says.
 */
export async function watchUntil<T extends KubernetesObject, R>(
  path: string,
  query: Record<string, string>,
  predicate: (obj: T, type: WatchEventType) => R | undefined,
  budgetMs: number,
  signal?: AbortSignal,
  options: WatchOptions = {},
): Promise<R | undefined> {
  const deadline = Date.now() + budgetMs;
  const idleMs = options.idleMs ?? DEFAULT_IDLE_MS;
  let resourceVersion: string | undefined;
  let relist = true;
  let quickEnds = 0;
  let lastEnd: WatchEnd | undefined;
  while (!signal?.aborted) {
    if (relist) {
      options.onResume?.({ kind: 'list', after: lastEnd });
      let list: KubernetesListObject<T>;
      try {
        list = await getJson<KubernetesListObject<T>>(path, query, signal);
      } catch (err) {
        if (signal?.aborted) return undefined;
        throw toKubeError(err, `GET ${path}`);
      }
      for (const item of list.items) {
        const result = predicate(item, 'LISTED');
        if (result !== undefined) return result;
      }
      resourceVersion = list.metadata?.resourceVersion;
      relist = false;
    }
    const remaining = deadline - Date.now();
    if (remaining <= 0) return undefined;
    options.onResume?.({ kind: 'watch', resourceVersion, after: lastEnd });
    const started = Date.now();
    const outcome = await watchOnce(path, query, resourceVersion, predicate, remaining, idleMs, signal);
    if (outcome.kind === 'matched') return outcome.value;
    lastEnd = outcome.end;
    if (outcome.end === 'budget') return undefined;
    if (outcome.end === 'expired') relist = true;
    else resourceVersion = outcome.resourceVersion ?? resourceVersion;
    // An idle stream took idleMs to end: resuming at once cannot loop hot. Anything else that ends
    // quickly without an event, again and again, waits longer each time.
    if (outcome.end !== 'idle' && !outcome.sawEvent && Date.now() - started < QUICK_END_MS) {
      const wait = Math.min(MAX_BACKOFF_MS, 250 * 2 ** quickEnds++);
      // The first expiry relists at once: the normal way back from an old resourceVersion.
      if (!(outcome.end === 'expired' && quickEnds === 1)) await sleep(Math.min(wait, Math.max(0, deadline - Date.now())), signal);
    } else {
      quickEnds = 0;
    }
  }
  return undefined;
}

type WatchOutcome<R> =
  | { kind: 'matched'; value: R }
  | { kind: 'ended'; end: WatchEnd; resourceVersion?: string; sawEvent: boolean };

interface WatchEvent {
  type?: string;
  object?: KubernetesObject & { code?: number; message?: string; reason?: string };
}

async function watchOnce<T extends KubernetesObject, R>(
  path: string,
  query: Record<string, string>,
  fromVersion: string | undefined,
  predicate: (obj: T, type: WatchEventType) => R | undefined,
  budgetMs: number,
  idleMs: number,
  signal?: AbortSignal,
): Promise<WatchOutcome<R>> {
  const controller = new AbortController();
  let resourceVersion = fromVersion;
  let sawEvent = false;
  let end: WatchEnd | undefined;
  const stop = (why: WatchEnd): void => {
    end ??= why;
    controller.abort();
  };
  const onAbort = (): void => stop('budget');
  const budgetTimer = setTimeout(() => stop('budget'), budgetMs);
  let idleTimer = setTimeout(() => stop('idle'), idleMs);
  const touch = (): void => {
    clearTimeout(idleTimer);
    idleTimer = setTimeout(() => stop('idle'), idleMs);
  };
  signal?.addEventListener('abort', onAbort);
  if (signal?.aborted) stop('budget');
  const ended = (): WatchOutcome<R> => ({ kind: 'ended', end: end ?? 'closed', resourceVersion, sawEvent });
  try {
    let res;
    try {
      res = await openRequest(
        {
          method: 'GET',
          path,
          query: {
            ...query,
            watch: '1',
            allowWatchBookmarks: 'true',
            // The server ends the stream itself a little after our budget, never before it is needed.
            timeoutSeconds: String(Math.max(1, Math.ceil(budgetMs / 1000))),
            resourceVersion: fromVersion,
          },
        },
        controller.signal,
      );
    } catch (err) {
      if (end) return ended();
      throw toKubeError(err, `watch ${path}`);
    }
    const status = res.statusCode ?? 0;
    if (status !== 200) {
      const text = await readText(res).catch(() => '');
      if (status === 410) return { kind: 'ended', end: 'expired', sawEvent };
      throw toKubeError(new KubeHttpError(status, text, res.headers), `watch ${path}`);
    }
    const lines = createInterface({ input: res, crlfDelay: Infinity });
    try {
      for await (const line of lines) {
        touch();
        if (line.trim() === '') continue;
        let event: WatchEvent;
        try {
          event = JSON.parse(line) as WatchEvent;
        } catch {
          continue; // a torn last line of a dropped stream; the resume covers what it carried
        }
        const obj = event.object;
        if (event.type === 'ERROR') {
          if (obj?.code === 410) {
            end = 'expired';
            return { kind: 'ended', end: 'expired', sawEvent };
          }
          const code = obj?.code ?? 500;
          throw toKubeError(new KubeHttpError(code, JSON.stringify(obj ?? {})), `watch ${path}`);
        }
        if (!obj) continue;
        resourceVersion = obj.metadata?.resourceVersion ?? resourceVersion;
        if (event.type === 'BOOKMARK') continue;
        sawEvent = true;
        const result = predicate(obj as T, event.type as WatchEventType);
        if (result !== undefined) return { kind: 'matched', value: result };
      }
    } catch (err) {
      // Our own abort (budget, idle) or a connection reset mid-stream: resume from what we saw.
      if (end || isStreamDrop(err)) {
        end ??= 'dropped';
        return ended();
      }
      throw err;
    } finally {
      lines.close();
      res.destroy();
    }
    return ended();
  } finally {
    clearTimeout(budgetTimer);
    clearTimeout(idleTimer);
    signal?.removeEventListener('abort', onAbort);
    controller.abort();
  }
}

function isStreamDrop(err: unknown): boolean {
  const e = err as { name?: string; code?: string } | undefined;
  return e?.name === 'AbortError' || e?.code === 'ECONNRESET' || e?.code === 'ERR_STREAM_PREMATURE_CLOSE' || e?.code === 'EPIPE';
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
