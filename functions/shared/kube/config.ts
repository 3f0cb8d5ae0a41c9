/**
 * Which cluster the task handlers talk to and as whom: a KubeConfig for EKS (endpoint and CA from
 * eks:DescribeCluster, a presigned-STS bearer token) or for any kubeconfig file (`KUBECONFIG`: local mode,
 * kind, minikube). Built once per container and rebuilt when the token gets old. The bearer token is never
 * logged.
 */
import { AppsV1Api, BatchV1Api, CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { DescribeClusterCommand, EKSClient } from '@aws-sdk/client-eks';
import { fromNodeProviderChain } from '@aws-sdk/credential-providers';
import { createEksToken } from '../eks-token';
import { ConfigurationError, isTransient, KubernetesRequestError, KubernetesUnavailableError } from '../errors';
import { optionalEnv, requireEnv } from '../config';

/** EKS accepts a token for 15 minutes; reuse one for 10 so a watch never starts with a stale token. */
const TOKEN_MAX_AGE_MS = 10 * 60 * 1000;

let cached: { key: string; kc: Promise<KubeConfig>; expiresAt: number } | undefined;
let clusterInfo: { name: string; server: string; caData: string } | undefined;
let eks: EKSClient | undefined;
const credentials = fromNodeProviderChain();

/**
 * The KubeConfig for the configured cluster (see module comment). One per container, shared by
 * concurrent callers; rebuilt when the cluster setting changes or the EKS token gets old.
 */
export async function getKubeConfig(): Promise<KubeConfig> {
  const kubeconfigPath = optionalEnv('KUBECONFIG');
  const key = kubeconfigPath ? `file:${kubeconfigPath}` : `eks:${optionalEnv('CLUSTER_NAME') ?? ''}`;
  if (cached && cached.key === key && Date.now() < cached.expiresAt) return cached.kc;
  const entry = { key, kc: loadKubeConfig(kubeconfigPath), expiresAt: Number.POSITIVE_INFINITY };
  if (!kubeconfigPath) entry.expiresAt = Date.now() + TOKEN_MAX_AGE_MS;
  cached = entry;
  // A failed load is not cached: the next call tries again.
  entry.kc.catch(() => {
    if (cached === entry) cached = undefined;
  });
  return entry.kc;
}

async function loadKubeConfig(kubeconfigPath: string | undefined): Promise<KubeConfig> {
  const kc = new KubeConfig();
  if (kubeconfigPath) {
    try {
      kc.loadFromFile(kubeconfigPath);
    } catch (err) {
      throw new ConfigurationError(`KUBECONFIG ${kubeconfigPath} cannot be read: ${(err as Error).message}`);
    }
    assertSupported(kc, kubeconfigPath);
    return kc;
  }
  const cluster = await describeCluster();
  const region = requireEnv('AWS_REGION');
  const token = await createEksToken({
    clusterName: cluster.name,
    region,
    credentials: await credentials(),
    signingDate: new Date(),
  });
  kc.loadFromOptions({
    clusters: [{ name: cluster.name, server: cluster.server, caData: cluster.caData, skipTLSVerify: false }],
    users: [{ name: 'mlpipe', token }],
    contexts: [{ name: cluster.name, cluster: cluster.name, user: 'mlpipe' }],
    currentContext: cluster.name,
  });
  return kc;
}

/**
 * The kubeconfig features the Lambda bundles leave out (lib/constructs/lambda-bundle.ts stubs them to keep
 * each bundle small): the legacy `auth-provider` plugins (azure, gcp, oidc; kubectl dropped the first two
 * in 1.26) and SOCKS proxies. Refused here with the way out, in every mode, so a kubeconfig that works
 * locally also works from the bundles. Tokens, client certificates, exec plugins (`aws eks get-token`) and
 * HTTP(S) proxies all work.
 */
export function assertSupported(kc: KubeConfig, source: string): void {
  const user = kc.getCurrentUser();
  const provider = user?.authProvider?.name;
  if (provider) {
    throw new ConfigurationError(
      `${source}: user ${user.name} uses the auth-provider "${provider}", which mlpipe does not support; use a token, a client certificate or an exec credential plugin (e.g. kubelogin, aws eks get-token).`,
    );
  }
  const proxy = kc.getCurrentCluster()?.proxyUrl;
  if (proxy?.startsWith('socks')) {
    throw new ConfigurationError(`${source}: the cluster's proxy-url ${proxy} is a SOCKS proxy, which mlpipe does not support; use an HTTP(S) proxy.`);
  }
}

/** Typed client-node API clients for the same cluster: for tests and the CLI, never the Lambda code paths. */
export async function kubeApis(): Promise<{ kc: KubeConfig; core: CoreV1Api; apps: AppsV1Api; batch: BatchV1Api }> {
  const kc = await getKubeConfig();
  return { kc, core: kc.makeApiClient(CoreV1Api), apps: kc.makeApiClient(AppsV1Api), batch: kc.makeApiClient(BatchV1Api) };
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
    if (isTransient(err)) {
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
