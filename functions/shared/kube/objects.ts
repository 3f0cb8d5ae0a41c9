/**
 * The few object operations the pipeline needs: server-side apply, 404-tolerant delete, reads and lists
 * as plain JSON, and pod log tails for failure messages. Plain JSON rather than client-node's model
 * classes: the watch stream hands out plain JSON too, so predicates see one shape, and the bundles stay
 * small (see ./transport). Failures come out as the named errors (see ./errors).
 */
import type { KubernetesListObject, KubernetesObject } from '@kubernetes/client-node';
import { KubernetesRequestError } from '../errors';
import { FIELD_MANAGER } from '../names';
import { call, isNotFound, toKubeError } from './errors';
import { sendRequest } from './transport';

export type ManagedKind = 'Job' | 'Deployment' | 'Service' | 'Pod' | 'ReplicaSet' | 'Event' | 'Secret';

export interface ObjectRef {
  kind: ManagedKind;
  namespace: string;
  name: string;
}

/** The REST collection path of a kind in a namespace, as used by list and watch. */
export function collectionPath(kind: ManagedKind, namespace: string): string {
  const ns = encodeURIComponent(namespace);
  switch (kind) {
    case 'Job':
      return `/apis/batch/v1/namespaces/${ns}/jobs`;
    case 'Deployment':
      return `/apis/apps/v1/namespaces/${ns}/deployments`;
    case 'ReplicaSet':
      return `/apis/apps/v1/namespaces/${ns}/replicasets`;
    case 'Service':
      return `/api/v1/namespaces/${ns}/services`;
    case 'Pod':
      return `/api/v1/namespaces/${ns}/pods`;
    case 'Event':
      return `/api/v1/namespaces/${ns}/events`;
    case 'Secret':
      return `/api/v1/namespaces/${ns}/secrets`;
  }
}

function objectPath(ref: ObjectRef): string {
  return `${collectionPath(ref.kind, ref.namespace)}/${encodeURIComponent(ref.name)}`;
}

function isManagedKind(kind: string | undefined): kind is ManagedKind {
  return kind === 'Job' || kind === 'Deployment' || kind === 'Service' || kind === 'Pod' || kind === 'ReplicaSet' || kind === 'Event' || kind === 'Secret';
}

/**
 * Server-side apply (fieldManager `mlpipe`, force): creates the object or brings our fields up to date,
 * so a retried step neither fails on 409 nor makes a duplicate. Returns the object as stored.
 */
export async function applyObject<T extends KubernetesObject>(obj: T): Promise<T> {
  const name = obj.metadata?.name;
  const namespace = obj.metadata?.namespace;
  if (!name || !namespace) throw new KubernetesRequestError(`applyObject needs metadata.name and metadata.namespace (${obj.kind})`);
  if (!isManagedKind(obj.kind)) throw new KubernetesRequestError(`applyObject does not handle kind ${obj.kind}`);
  const subject = `${obj.kind} ${namespace}/${name}`;
  return call(
    `apply ${subject}`,
    async () => {
      const res = await sendRequest({
        method: 'PATCH',
        path: objectPath({ kind: obj.kind as ManagedKind, namespace, name }),
        query: { fieldManager: FIELD_MANAGER, force: 'true' },
        body: obj,
        contentType: 'application/apply-patch+yaml',
      });
      return JSON.parse(res.text) as T;
    },
    subject,
  );
}

/**
 * JSON merge patch (RFC 7386; `null` removes a key) of an existing object: for a change of a few fields
 * that server-side apply cannot make without taking over (or dropping) every field mlpipe applied before,
 * such as scaling a Deployment and annotating it. Returns the object as stored; 404 as NotFound.
 */
export async function patchObject<T extends KubernetesObject>(ref: ObjectRef, patch: Record<string, unknown>): Promise<T> {
  const subject = `${ref.kind} ${ref.namespace}/${ref.name}`;
  return call(
    `patch ${subject}`,
    async () => {
      const res = await sendRequest({ method: 'PATCH', path: objectPath(ref), query: { fieldManager: FIELD_MANAGER }, body: patch, contentType: 'application/merge-patch+json' });
      return JSON.parse(res.text) as T;
    },
    subject,
  );
}

/** Deletes an object, its dependents in the background; `false` when it was already gone. */
export async function deleteObject(kind: ManagedKind, namespace: string, name: string): Promise<boolean> {
  try {
    await sendRequest({ method: 'DELETE', path: objectPath({ kind, namespace, name }), query: { propagationPolicy: 'Background' } });
    return true;
  } catch (err) {
    if (isNotFound(err)) return false;
    throw toKubeError(err, `delete ${kind} ${namespace}/${name}`, `${kind} ${namespace}/${name}`);
  }
}

/** Reads an object as plain JSON (as the API sent it); `undefined` on 404. */
export async function readObject<T extends KubernetesObject>(ref: ObjectRef): Promise<T | undefined> {
  try {
    return await getJson<T>(objectPath(ref));
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw toKubeError(err, `GET ${objectPath(ref)}`, `${ref.kind} ${ref.namespace}/${ref.name}`);
  }
}

/** Lists objects as plain JSON, e.g. `{ labelSelector: 'a=b' }`. */
export async function listObjects<T extends KubernetesObject>(
  kind: ManagedKind,
  namespace: string,
  query: Record<string, string> = {},
): Promise<KubernetesListObject<T>> {
  const path = collectionPath(kind, namespace);
  return call(`GET ${path}`, () => getJson<KubernetesListObject<T>>(path, query));
}

/** GET as plain JSON; failures are thrown as they come (KubeHttpError, network errors): callers map them. */
export async function getJson<T>(path: string, query: Record<string, string> = {}, signal?: AbortSignal): Promise<T> {
  const res = await sendRequest({ method: 'GET', path, query }, signal);
  return JSON.parse(res.text) as T;
}

/** What podLogTail says for a pod that never got a node: the API answers 204 with no body. */
export const NO_LOG_NOT_SCHEDULED = '(no log: the pod never started (not scheduled))';

/**
 * The last lines of a pod's log, for error messages; never throws (a missing log is not the story).
 * A pod without a node has no log at all: the API answers 204 No Content (even for a finished pod that
 * was never bound), which is said as such rather than as an empty log or an unreachable API server.
 */
export async function podLogTail(namespace: string, podName: string, tailLines = 20, previous = false): Promise<string> {
  const path = `/api/v1/namespaces/${encodeURIComponent(namespace)}/pods/${encodeURIComponent(podName)}/log`;
  try {
    const res = await sendRequest({
      method: 'GET',
      path,
      query: { tailLines: String(tailLines), ...(previous ? { previous: 'true' } : {}) },
      accept: '*/*',
    });
    if (res.status === 204) return NO_LOG_NOT_SCHEDULED;
    return res.text.trimEnd();
  } catch (err) {
    return `(log unavailable: ${toKubeError(err, `read log of pod ${namespace}/${podName}`).message})`;
  }
}
