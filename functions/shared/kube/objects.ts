/**
 * The few object operations the pipeline needs: server-side apply, 404-tolerant delete, reads and lists
 * as plain JSON, and pod log tails for failure messages. Failures come out as the named errors (see
 * ./errors).
 */
import {
  ApiException,
  HttpMethod,
  IsomorphicFetchHttpLibrary,
  PatchStrategy,
  RequestContext,
  setHeaderOptions,
  type KubernetesListObject,
  type KubernetesObject,
} from '@kubernetes/client-node';
import { ConfigurationError, KubernetesRequestError } from '../errors';
import { FIELD_MANAGER } from '../names';
import { kubeApis } from './config';
import { call, isNotFound, toKubeError } from './errors';


export type ManagedKind = 'Job' | 'Deployment' | 'Service' | 'Pod';

export interface ObjectRef {
  kind: ManagedKind;
  namespace: string;
  name: string;
}

const ssa = setHeaderOptions('Content-Type', PatchStrategy.ServerSideApply);

/**
 * Server-side apply (fieldManager `mlpipe`, force): creates the object or brings our fields up to date,
 * so a retried step neither fails on 409 nor makes a duplicate. Returns the object as stored.
 */
export async function applyObject<T extends KubernetesObject>(obj: T): Promise<T> {
  const name = obj.metadata?.name;
  const namespace = obj.metadata?.namespace;
  if (!name || !namespace) throw new KubernetesRequestError(`applyObject needs metadata.name and metadata.namespace (${obj.kind})`);
  const what = `apply ${obj.kind} ${namespace}/${name}`;
  const { apps, batch, core } = await kubeApis();
  const param = { name, namespace, body: obj, fieldManager: FIELD_MANAGER, force: true };
  return call(what, async () => {
    switch (obj.kind) {
      case 'Job':
        return (await batch.patchNamespacedJob(param, ssa)) as T;
      case 'Deployment':
        return (await apps.patchNamespacedDeployment(param, ssa)) as T;
      case 'Service':
        return (await core.patchNamespacedService(param, ssa)) as T;
      default:
        throw new KubernetesRequestError(`applyObject does not handle kind ${obj.kind}`);
    }
  });
}

/** Deletes an object, its dependents in the background; `false` when it was already gone. */
export async function deleteObject(kind: ManagedKind, namespace: string, name: string): Promise<boolean> {
  const { apps, batch, core } = await kubeApis();
  const param = { name, namespace, propagationPolicy: 'Background' };
  try {
    switch (kind) {
      case 'Job':
        await batch.deleteNamespacedJob(param);
        break;
      case 'Deployment':
        await apps.deleteNamespacedDeployment(param);
        break;
      case 'Service':
        await core.deleteNamespacedService(param);
        break;
      case 'Pod':
        await core.deleteNamespacedPod(param);
        break;
    }
    return true;
  } catch (err) {
    if (isNotFound(err)) return false;
    throw toKubeError(err, `delete ${kind} ${namespace}/${name}`);
  }
}

/** Reads an object as plain JSON (as the API sent it); `undefined` on 404. */
export async function readObject<T extends KubernetesObject>(ref: ObjectRef): Promise<T | undefined> {
  try {
    return await getJson<T>(`${collectionPath(ref.kind, ref.namespace)}/${encodeURIComponent(ref.name)}`);
  } catch (err) {
    if (err instanceof KubernetesRequestError && /HTTP 404/.test(err.message)) return undefined;
    throw err;
  }
}

/** Lists objects as plain JSON, e.g. `{ labelSelector: 'a=b' }`. */
export async function listObjects<T extends KubernetesObject>(
  kind: ManagedKind,
  namespace: string,
  query: Record<string, string> = {},
): Promise<KubernetesListObject<T>> {
  return getJson<KubernetesListObject<T>>(collectionPath(kind, namespace), query);
}

/** The REST collection path of a kind in a namespace, as used by list and watch. */
export function collectionPath(kind: ManagedKind, namespace: string): string {
  const ns = encodeURIComponent(namespace);
  switch (kind) {
    case 'Job':
      return `/apis/batch/v1/namespaces/${ns}/jobs`;
    case 'Deployment':
      return `/apis/apps/v1/namespaces/${ns}/deployments`;
    case 'Service':
      return `/api/v1/namespaces/${ns}/services`;
    case 'Pod':
      return `/api/v1/namespaces/${ns}/pods`;
  }
}

/**
 * GET on an API path with the configured credentials, through the client's own HTTP stack (so TLS, CA
 * and auth are the same as for typed calls), answered as plain JSON rather than model classes: the watch
 * stream hands out plain JSON too, and predicates should see one shape.
 */
export async function getJson<T>(path: string, query: Record<string, string> = {}): Promise<T> {
  const { kc } = await kubeApis();
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new ConfigurationError('The kubeconfig has no current cluster.');
  const url = new URL(cluster.server.replace(/\/$/, '') + path);
  for (const [k, v] of Object.entries(query)) url.searchParams.set(k, v);
  const what = `GET ${path}`;
  return call(what, async () => {
    const ctx = new RequestContext(url.toString(), HttpMethod.GET);
    ctx.setHeaderParam('Accept', 'application/json');
    await kc.applySecurityAuthentication(ctx);
    const response = await new IsomorphicFetchHttpLibrary().send(ctx).toPromise();
    const text = await response.body.text();
    if (response.httpStatusCode < 200 || response.httpStatusCode >= 300) {
      throw new ApiException(response.httpStatusCode, 'GET failed', text, response.headers);
    }
    return JSON.parse(text) as T;
  });
}

/** The last lines of a pod's log, for error messages; never throws (a missing log is not the story). */
export async function podLogTail(namespace: string, podName: string, tailLines = 20, previous = false): Promise<string> {
  try {
    const { core } = await kubeApis();
    const log = await core.readNamespacedPodLog({ name: podName, namespace, tailLines, previous });
    return typeof log === 'string' ? log.trimEnd() : '';
  } catch (err) {
    return `(log unavailable: ${toKubeError(err, 'read log').message})`;
  }
}

