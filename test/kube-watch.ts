/**
 * Waiting on the Kubernetes API for an object to reach a state, on a watch (as the handlers do), instead of
 * reading it again on a timer: the wait ends on the event that changes it, and a watch that ends first
 * fails the wait with a message saying what never happened.
 */
import * as k8s from '@kubernetes/client-node';

export class WatchEndedError extends Error {
  override name = 'WatchEndedError';
}

/**
 * Resolves with the object `name` in the collection at `path` (e.g. `/apis/batch/v1/namespaces/ns/jobs`)
 * once `reached` says so (an Error it returns rejects the wait instead). The watch replays the object's
 * current state first, so a state reached already ends the wait at once.
 */
export function watchUntil<T extends k8s.KubernetesObject>(
  kc: k8s.KubeConfig,
  path: string,
  name: string,
  reached: (object: T) => boolean | Error,
  what: string,
): Promise<T> {
  return new Promise((resolve, reject) => {
    let request: AbortController | undefined;
    let settled = false;
    const settle = (result: T | Error): void => {
      if (settled) return;
      settled = true;
      request?.abort();
      if (result instanceof Error) reject(result);
      else resolve(result);
    };
    new k8s.Watch(kc)
      .watch(
        path,
        { fieldSelector: `metadata.name=${name}` },
        (type: string, object: T) => {
          if (type === 'DELETED') return settle(new WatchEndedError(`${path}/${name} was deleted before ${what}`));
          const r = reached(object);
          if (r instanceof Error) settle(r);
          else if (r) settle(object);
        },
        (err: unknown) => settle(err instanceof Error ? err : new WatchEndedError(`the watch of ${path}/${name} ended before ${what}`)),
      )
      .then((c) => {
        request = c;
        if (settled) c.abort();
      }, (err: unknown) => settle(err instanceof Error ? err : new Error(String(err))));
  });
}

/** The Job has succeeded (a failed Job rejects). */
export function jobSucceeded(kc: k8s.KubeConfig, namespace: string, name: string): Promise<k8s.V1Job> {
  return watchUntil<k8s.V1Job>(kc, `/apis/batch/v1/namespaces/${namespace}/jobs`, name, (job) => {
    if ((job.status?.failed ?? 0) > 0) return new Error(`Job ${namespace}/${name} failed`);
    return (job.status?.succeeded ?? 0) > 0;
  }, `Job ${namespace}/${name} succeeded`);
}

/** The Deployment has an available replica. */
export function deploymentAvailable(kc: k8s.KubeConfig, namespace: string, name: string): Promise<k8s.V1Deployment> {
  return watchUntil<k8s.V1Deployment>(kc, `/apis/apps/v1/namespaces/${namespace}/deployments`, name, (d) => (d.status?.availableReplicas ?? 0) > 0, `Deployment ${namespace}/${name} had an available replica`);
}
