/**
 * The pipeline's namespaces and ServiceAccounts for a local run, used as they are: with credentials scoped
 * to the two namespaces (as mlpipe's EKS access entry gives), creating a namespace is forbidden at the
 * cluster scope even when it exists. So each namespace is first checked from inside (listing its
 * ServiceAccounts, which a namespace-bound token may do), created only when it is missing, and a missing
 * namespace or ServiceAccount the credentials may not create is a clear error saying what to do.
 */
import * as k8s from '@kubernetes/client-node';

export class NamespaceSetupError extends Error {
  override readonly name = 'NamespaceSetupError';
}

export interface NamespaceSetup {
  /** Namespaces that were there already / that this call created. */
  existing: string[];
  created: string[];
  /** ServiceAccounts created, as `namespace/name`. */
  createdServiceAccounts: string[];
}

function code(err: unknown): number | undefined {
  return err instanceof k8s.ApiException ? err.code : undefined;
}

function reason(err: unknown): string {
  if (err instanceof k8s.ApiException) {
    try {
      const body = typeof err.body === 'string' ? (JSON.parse(err.body) as { message?: string }) : (err.body as { message?: string });
      if (body?.message) return body.message;
    } catch {
      // not JSON: the code says enough
    }
    return `HTTP ${err.code}`;
  }
  return (err as Error)?.message ?? String(err);
}

/**
 * Makes sure `namespaces` exist with `serviceAccounts` in each, through the kubeconfig at `kubeconfigPath`.
 * Existing ones are used as they are; missing ones are created when the credentials allow it.
 */
export async function ensureNamespaces(kubeconfigPath: string, namespaces: string[], serviceAccounts: string[]): Promise<NamespaceSetup> {
  const kc = new k8s.KubeConfig();
  kc.loadFromFile(kubeconfigPath);
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const result: NamespaceSetup = { existing: [], created: [], createdServiceAccounts: [] };
  for (const ns of namespaces) {
    let present: Set<string>;
    try {
      const list = await core.listNamespacedServiceAccount({ namespace: ns });
      present = new Set(list.items.map((sa) => sa.metadata?.name ?? ''));
      // A namespace that does not exist lists empty (transcript 07), so an empty list proves nothing:
      // every namespace has its "default" ServiceAccount.
      if (!present.has('default')) throw Object.assign(new Error('no default ServiceAccount'), { missing: true });
      result.existing.push(ns);
    } catch (err) {
      if (code(err) === 403) {
        throw new NamespaceSetupError(`Cannot use namespace ${ns}: the kubeconfig's credentials may not list ServiceAccounts there (${reason(err)}). Give them edit access to namespace ${ns}.`);
      }
      if (!(err as { missing?: boolean }).missing && code(err) !== 404) throw err;
      try {
        await core.createNamespace({ body: { metadata: { name: ns, labels: { 'app.kubernetes.io/managed-by': 'mlpipe' } } } });
      } catch (createErr) {
        if (code(createErr) === 403) {
          throw new NamespaceSetupError(
            `Namespace ${ns} does not exist and the kubeconfig's credentials may not create it (${reason(createErr)}). Create it as a cluster admin (kubectl create namespace ${ns}), or use credentials that may.`,
          );
        }
        if (code(createErr) !== 409) throw createErr;
      }
      result.created.push(ns);
      present = new Set();
    }
    for (const sa of serviceAccounts) {
      if (present.has(sa)) continue;
      try {
        await core.createNamespacedServiceAccount({ namespace: ns, body: { metadata: { name: sa } } });
        result.createdServiceAccounts.push(`${ns}/${sa}`);
      } catch (err) {
        if (code(err) === 409) continue;
        if (code(err) === 403) {
          throw new NamespaceSetupError(`ServiceAccount ${ns}/${sa} does not exist and the kubeconfig's credentials may not create it (${reason(err)}). Create it as an admin, or use credentials that may.`);
        }
        throw err;
      }
    }
  }
  return result;
}
