/**
 * Kubernetes access for the task handlers: a KubeConfig for EKS (endpoint and CA from eks:DescribeCluster,
 * a presigned-STS bearer token) or for any kubeconfig file (`KUBECONFIG`: local mode, kind, minikube), and
 * the few operations the pipeline needs — server-side apply, 404-tolerant delete, reads, pod log tails and a
 * list-then-watch wait with a time budget. Errors come out as the named errors the state machine retries
 * (KubernetesUnavailableError) or fails on (KubernetesRequestError). The bearer token is never logged.
 */
import {
  ApiException,
  AppsV1Api,
  BatchV1Api,
  CoreV1Api,
  HttpMethod,
  IsomorphicFetchHttpLibrary,
  KubeConfig,
  PatchStrategy,
  RequestContext,
  Watch,
  setHeaderOptions,
  type KubernetesListObject,
  type KubernetesObject,
} from '@kubernetes/client-node';
import { DescribeClusterCommand, EKSClient } from '@aws-sdk/client-eks';
import { fromNodeProviderChain } from '@aws-sdk/credential-providers';
import { createEksToken } from './eks-token';
import { ConfigurationError, KubernetesRequestError, KubernetesUnavailableError } from './errors';
import { optionalEnv, requireEnv } from './config';
import { FIELD_MANAGER } from './names';

/** EKS accepts a token for 15 minutes; reuse one for 10 so a watch never starts with a stale token. */
const TOKEN_MAX_AGE_MS = 10 * 60 * 1000;

export interface KubeApis {
  kc: KubeConfig;
  core: CoreV1Api;
  apps: AppsV1Api;
  batch: BatchV1Api;
}

let cached: { key: string; apis: KubeApis; expiresAt: number } | undefined;
let clusterInfo: { name: string; server: string; caData: string } | undefined;
let eks: EKSClient | undefined;
const credentials = fromNodeProviderChain();

/** The KubeConfig for the configured cluster (see module comment); cached, token refreshed by age. */
export async function getKubeConfig(): Promise<KubeConfig> {
  return (await kubeApis()).kc;
}

export async function kubeApis(): Promise<KubeApis> {
  const kubeconfigPath = optionalEnv('KUBECONFIG');
  const key = kubeconfigPath ? `file:${kubeconfigPath}` : `eks:${optionalEnv('CLUSTER_NAME') ?? ''}`;
  if (cached && cached.key === key && Date.now() < cached.expiresAt) return cached.apis;

  const kc = new KubeConfig();
  let expiresAt = Number.POSITIVE_INFINITY;
  if (kubeconfigPath) {
    kc.loadFromFile(kubeconfigPath);
  } else {
    const cluster = await describeCluster();
    const region = requireEnv('AWS_REGION');
    const token = await createEksToken({
      clusterName: cluster.name,
      region,
      credentials: await credentials(),
      signingDate: new Date(),
    });
    expiresAt = Date.now() + TOKEN_MAX_AGE_MS;
    kc.loadFromOptions({
      clusters: [{ name: cluster.name, server: cluster.server, caData: cluster.caData, skipTLSVerify: false }],
      users: [{ name: 'mlpipe', token }],
      contexts: [{ name: cluster.name, cluster: cluster.name, user: 'mlpipe' }],
      currentContext: cluster.name,
    });
  }
  const apis: KubeApis = {
    kc,
    core: kc.makeApiClient(CoreV1Api),
    apps: kc.makeApiClient(AppsV1Api),
    batch: kc.makeApiClient(BatchV1Api),
  };
  cached = { key, apis, expiresAt };
  return apis;
}

async function describeCluster(): Promise<{ name: string; server: string; caData: string }> {
  const name = optionalEnv('CLUSTER_NAME');
  if (!name) {
    throw new ConfigurationError('Missing required setting: set CLUSTER_NAME (EKS) or KUBECONFIG (any other cluster).');
  }
  if (clusterInfo?.name === name) return clusterInfo;
  eks ??= new EKSClient({});
  let out;
  try {
    out = await eks.send(new DescribeClusterCommand({ name }));
  } catch (err) {
    const status = (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode ?? 0;
    if (status === 0 || status >= 500 || status === 429) {
      throw new KubernetesUnavailableError(`eks:DescribeCluster ${name} failed: ${(err as Error).message}`);
    }
    throw new KubernetesRequestError(`eks:DescribeCluster ${name} failed: ${(err as Error).message}`);
  }
  const server = out.cluster?.endpoint;
  const caData = out.cluster?.certificateAuthority?.data;
  if (!server || !caData) {
    throw new KubernetesUnavailableError(`EKS cluster ${name} has no endpoint or CA yet (status ${out.cluster?.status}).`);
  }
  clusterInfo = { name, server, caData };
  return clusterInfo;
}

/** Forget cached clients and cluster data (tests point KUBECONFIG at a new server). */
export function resetKube(): void {
  cached = undefined;
  clusterInfo = undefined;
}

// ---------------------------------------------------------------------------------------------------
// Errors

interface StatusBody {
  message?: string;
  reason?: string;
  code?: number;
}

function parseStatus(body: unknown): StatusBody {
  if (typeof body === 'string') {
    try {
      return JSON.parse(body) as StatusBody;
    } catch {
      return { message: body.slice(0, 300) };
    }
  }
  return (body ?? {}) as StatusBody;
}

/** Maps whatever the client threw to the named errors; `what` says which request, for the message. */
export function toKubeError(err: unknown, what: string): Error {
  if (err instanceof KubernetesUnavailableError || err instanceof KubernetesRequestError) return err;
  const code =
    err instanceof ApiException ? err.code : ((err as { statusCode?: number } | undefined)?.statusCode ?? undefined);
  if (typeof code === 'number') {
    const status = err instanceof ApiException ? parseStatus(err.body) : {};
    const detail = status.message ?? (err as Error).message.split('\n')[0];
    const text = `Kubernetes ${what} failed: HTTP ${code}${status.reason ? ` ${status.reason}` : ''}: ${detail}`;
    return code >= 500 || code === 429 ? new KubernetesUnavailableError(text) : new KubernetesRequestError(text);
  }
  const cause = (err as { cause?: { code?: string; message?: string } }).cause;
  const reason = cause?.code ?? cause?.message ?? (err as Error)?.message ?? String(err);
  return new KubernetesUnavailableError(`Kubernetes ${what} failed: cannot reach the API server (${reason}).`);
}

export function isNotFound(err: unknown): boolean {
  return err instanceof ApiException && err.code === 404;
}

async function call<T>(what: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw toKubeError(err, what);
  }
}

// ---------------------------------------------------------------------------------------------------
// Objects

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
async function getJson<T>(path: string, query: Record<string, string> = {}): Promise<T> {
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

// ---------------------------------------------------------------------------------------------------
// Watch

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
