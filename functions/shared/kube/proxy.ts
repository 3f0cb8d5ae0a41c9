/**
 * GET through the API server's pod proxy (`pods/proxy`): how a task reads a pod's own HTTP endpoint (a
 * model server's /metrics) with nothing but its Kubernetes credentials, so Lambdas need no network path
 * to the pods (DESIGN decision 14). RBAC: verb `get` on `pods/proxy` in the pod's namespace, which the
 * access entry's AmazonEKSEditPolicy grants (lib/constructs/cluster-access.ts).
 *
 * The API server answers for the pod when it cannot reach it: 503 ServiceUnavailable with a Status body
 * ("error trying to reach service: dial tcp …: connect: connection refused"); a pod without a routable IP
 * is 400 "address not allowed" (test/fixtures/k8s/13-…); a missing pod 404. A pod's own answer comes
 * back as the pod sent it (status and body), so a pod's 503 and the API server's look alike except for
 * the body: callers that need to tell them apart read `PodProxyError.unreachable`.
 *
 * Note: a real API server refuses to proxy to loopback and link-local pod IPs ("address not allowed");
 * the local API (local/kube) allows them, since its pods are processes on 127.0.0.1.
 */
import { KubernetesRequestError } from '../errors';
import { toKubeError } from './errors';
import { KubeHttpError, sendRequest } from './transport';

/** The pod could not be read through the proxy: which pod, and whether the API server failed to reach it. */
export class PodProxyError extends Error {
  override readonly name = 'PodProxyError';
  constructor(
    message: string,
    /** HTTP status of the answer (0 when there was none). */
    readonly code: number,
    /** The API server could not reach the pod (503 Status "error trying to reach service"). */
    readonly unreachable: boolean,
  ) {
    super(message);
  }
}

/** The URL path of `path` on `port` of a pod, through the API server's proxy. */
export function podProxyPath(namespace: string, pod: string, port: number, path: string): string {
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new KubernetesRequestError(`pod proxy: port ${port} is not a TCP port (1-65535)`);
  const rest = path.replace(/^\/+/, '');
  return `/api/v1/namespaces/${encodeURIComponent(namespace)}/pods/${encodeURIComponent(pod)}:${port}/proxy/${rest}`;
}

/**
 * The body of `GET <path>` on `port` of the pod, read through the API server. Throws:
 * - PodProxyError for an answer about this pod (the pod's own non-2xx, the API server's 503 when the pod
 *   cannot be reached, 400 for a pod without an address, 404 for a pod that is gone);
 * - KubernetesRequestError for a refused request (401, 403: the role lacks `get pods/proxy`);
 * - KubernetesUnavailableError when the API server itself cannot be reached.
 */
export async function proxyGet(namespace: string, pod: string, port: number, path: string): Promise<string> {
  const url = podProxyPath(namespace, pod, port, path);
  const what = `GET pods/proxy ${namespace}/${pod}:${port}/${path.replace(/^\/+/, '')}`;
  try {
    const res = await sendRequest({ method: 'GET', path: url, accept: 'text/plain, */*' });
    return res.text;
  } catch (err) {
    if (err instanceof KubeHttpError) {
      if (err.code === 401 || err.code === 403) throw toKubeError(err, what);
      const unreachable = isAboutThePod(err);
      const detail = err.status.kind === 'Status' ? (err.status.message ?? '') : err.body.slice(0, 200);
      throw new PodProxyError(`${what}: HTTP ${err.code}${detail ? `: ${detail.replace(/\s+/g, ' ').trim()}` : ''}`, err.code, unreachable);
    }
    throw toKubeError(err, what);
  }
}

/**
 * Whether the API server answered for the pod rather than passing on the pod's own answer: it could not
 * reach it (503 "error trying to reach service"), the pod has no proxyable address (400 "address not
 * allowed"), or the pod does not exist (404 Status about `pods`). All three mean "no reading from this
 * pod now", never "the pod's server said no".
 */
function isAboutThePod(err: KubeHttpError): boolean {
  if (err.status.kind !== 'Status') return false;
  const message = err.status.message ?? '';
  if (err.code === 503) return /error trying to reach service/i.test(message);
  if (err.code === 400) return /address not allowed/i.test(message);
  if (err.code === 404) return err.status.details?.kind === 'pods';
  return false;
}
