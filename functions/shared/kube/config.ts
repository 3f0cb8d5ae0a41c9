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
import { ConfigurationError, KubernetesRequestError, KubernetesUnavailableError } from '../errors';
import { AWS_REGION, CLUSTER_NAME, KUBECONFIG, currentSetting } from '../settings';

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
  // From the function's loaded settings (function-settings.ts KUBE), read once at its init.
  const kubeconfigPath = currentSetting(KUBECONFIG);
  const key = kubeconfigPath ? `file:${kubeconfigPath}` : `eks:${currentSetting(CLUSTER_NAME) ?? ''}`;
  if (cached && cached.key === key && Date.now() < cached.expiresAt) return cached.apis;

  const kc = new KubeConfig();
  let expiresAt = Number.POSITIVE_INFINITY;
  if (kubeconfigPath) {
    kc.loadFromFile(kubeconfigPath);
  } else {
    const cluster = await describeCluster();
    const region = currentSetting(AWS_REGION);
    if (!region) throw new ConfigurationError('Missing setting: AWS_REGION (set by the Lambda runtime) is needed for the EKS token.');
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
  const name = currentSetting(CLUSTER_NAME);
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
