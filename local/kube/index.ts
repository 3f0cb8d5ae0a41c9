/**
 * Local Kubernetes API server for local mode and tests: real REST paths, status codes and Status bodies
 * for the resources the pipeline uses, controllers for Jobs, Deployments/ReplicaSets and LoadBalancer
 * Services, and a kubelet that runs each container as a local process chosen from an image → command map.
 * Any code that works against it through a kubeconfig should work against kind or EKS, and vice versa.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { KubeApi } from './api';
import { ControllerManager } from './controllers';
import type { ImageCommand } from './controllers/kubelet';
import { typeOf } from './resources';
import { Authenticator } from './rbac';
import { ApiServer } from './server';
import { ObjectStore } from './store';

export type { ImageCommand } from './controllers/kubelet';
export { resolveImage, LOCAL_PORT_ANNOTATION, LOCAL_PORTS_ANNOTATION } from './controllers/kubelet';

export interface LocalKubeOptions {
  /** Bearer token clients must send; a random one if absent. */
  token?: string;
  /**
   * Container image → local command. Lookup: the exact image; else without a trailing `@sha256:…` digest;
   * else also without the `:tag` (so `repo:tag@sha256:…` → `repo:tag` → `repo`). Unknown images make the
   * pod wait with ErrImagePull / ImagePullBackOff, as a real kubelet would.
   */
  images: Record<string, ImageCommand>;
  /** kubeconfig.yaml and pod logs (pods/<ns>_<pod>_<uid>/<container>.<restart>.log) are written here. */
  stateDir: string;
  /** Extra env for every pod process (local S3 endpoint and credentials, as Pod Identity injects on EKS); HOST is 127.0.0.1 unless set here. */
  env?: Record<string, string>;
  /** Listen port on 127.0.0.1; 0 (default) picks a free one. */
  port?: number;
  /** Namespaces to create at start besides `default` and `kube-system`. */
  namespaces?: string[];
}

export interface LocalKube {
  url: string;
  token: string;
  kubeconfigPath: string;
  stop(): Promise<void>;
  /** For tests and progress output: the object store and the kubelet (running process ids). */
  store?: unknown;
  /**
   * Mints a token limited to `namespaces` (edit-like access there, nothing at the cluster scope: what
   * mlpipe's EKS access entry gives the pipeline's Lambdas) and writes a kubeconfig for it. With `groups`
   * (an access entry's kubernetesGroups), the user also gets what RoleBindings to those groups give: with
   * no namespaces, ONLY that (an access entry with a group and no access policy). `kubeconfigPath` above
   * stays the cluster-admin one, for setup.
   */
  mintScopedKubeconfig(namespaces: string[], opts?: { username?: string; groups?: string[]; file?: string }): { token: string; kubeconfigPath: string };
  /** Process ids of containers still running (tests check stop() leaves none). */
  runningPids(): number[];
  /**
   * Forgets the watch windows, as an API server restart does (transcript 09): a watch from any
   * resourceVersion seen so far then answers 410 Expired. For tests of watch resumption.
   */
  restartWatchCache(): void;
}

export const CONTEXT_NAME = 'mlpipe-local';

/** What a local pod's server listens on (its HOST): nothing of a local run is reachable from another machine. */
export const LOCAL_POD_HOST = '127.0.0.1';

/**
 * Writes a kubeconfig for `url` and `token` (mode 0600). JSON is YAML, and KubeConfig.loadFromFile reads
 * either. @kubernetes/client-node 2.x refuses an http:// server unless insecure-skip-tls-verify is set
 * (kubectl accepts it either way).
 */
function writeKubeconfig(path: string, url: string, token: string): string {
  const kubeconfig = {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: CONTEXT_NAME, cluster: { server: url, 'insecure-skip-tls-verify': true } }],
    users: [{ name: CONTEXT_NAME, user: { token } }],
    contexts: [{ name: CONTEXT_NAME, context: { cluster: CONTEXT_NAME, user: CONTEXT_NAME, namespace: 'default' } }],
    'current-context': CONTEXT_NAME,
    preferences: {},
  };
  writeFileSync(path, JSON.stringify(kubeconfig, null, 2) + '\n', { mode: 0o600 });
  return path;
}

export async function startLocalKube(opts: LocalKubeOptions): Promise<LocalKube> {
  const token = opts.token ?? randomBytes(24).toString('hex');
  mkdirSync(opts.stateDir, { recursive: true });
  const store = new ObjectStore();
  const api = new KubeApi(store);
  // HOST: servers of the container contract listen on every interface by default, as a pod must; here
  // every pod is a process of this machine, so they listen on loopback only (a container's env may override).
  const controllers = new ControllerManager(api, { images: opts.images, stateDir: opts.stateDir, env: { HOST: LOCAL_POD_HOST, ...opts.env } });
  for (const ns of ['default', 'kube-system', ...(opts.namespaces ?? [])]) {
    if (!store.get('namespaces', undefined, ns)) api.create(typeOf('namespaces'), undefined, { metadata: { name: ns } }, { fieldManager: 'mlpipe-local-kube' });
  }
  store.startWatchCache();
  // The version it behaves like: kube-apiserver v1.32.13, whose answers test/fixtures/k8s/ records.
  const auth = new Authenticator();
  auth.add(token, { name: 'mlpipe-local-admin' });
  const server = new ApiServer({ api, controllers, auth, version: { major: '1', minor: '32', gitVersion: 'v1.32.13-mlpipe-local' } });
  const url = await server.listen(opts.port ?? 0);
  const kubeconfigPath = writeKubeconfig(join(opts.stateDir, 'kubeconfig.yaml'), url, token);
  let stopped: Promise<void> | undefined;
  return {
    url,
    token,
    kubeconfigPath,
    store,
    runningPids: () => controllers.kubelet.runningPids(),
    restartWatchCache: () => store.startWatchCache(),
    mintScopedKubeconfig(namespaces, mint = {}) {
      const scoped = randomBytes(24).toString('hex');
      const username = mint.username ?? 'mlpipe:pipeline-handlers';
      auth.add(scoped, { name: username, namespaces: new Set(namespaces), groups: mint.groups ?? [] });
      const file = mint.file ?? join(opts.stateDir, `kubeconfig-${username.replace(/[^a-z0-9-]+/gi, '-')}.yaml`);
      return { token: scoped, kubeconfigPath: writeKubeconfig(file, url, scoped) };
    },
    stop() {
      stopped ??= (async () => {
        await controllers.stop();
        await server.close();
      })();
      return stopped;
    },
  };
}
