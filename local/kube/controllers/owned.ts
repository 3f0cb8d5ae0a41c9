/** Helpers shared by the workload controllers: controller ownerReferences, owned pods and pod readiness. */
import type { KubeApi } from '../api';
import { typeOf, type KubeObject, type OwnerReference, type Pod, type PodTemplate } from '../resources';

export function controllerRef(owner: KubeObject): OwnerReference {
  return {
    apiVersion: owner.apiVersion,
    kind: owner.kind,
    name: owner.metadata.name,
    uid: owner.metadata.uid,
    controller: true,
    blockOwnerDeletion: true,
  };
}

export function isControlledBy(obj: KubeObject, owner: KubeObject): boolean {
  return (obj.metadata.ownerReferences ?? []).some((r) => r.controller && r.uid === owner.metadata.uid);
}

export function isPodReady(pod: Pod): boolean {
  return pod.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
}

export function isPodFinished(pod: Pod): boolean {
  return pod.status?.phase === 'Succeeded' || pod.status?.phase === 'Failed';
}

/**
 * A pod from `owner`'s template, as the ReplicaSet and Job controllers create them (generateName from the
 * owner, template labels and annotations plus `annotations`, a controller reference). Undefined when the
 * API refuses it, e.g. a ServiceAccount that does not exist yet: the next change retries, as the real
 * controllers retry.
 */
export function createControlledPod(api: KubeApi, owner: KubeObject, template: PodTemplate, annotations: Record<string, string> = {}): Pod | undefined {
  const allAnnotations = { ...template.metadata?.annotations, ...annotations };
  try {
    return api.create(
      typeOf('pods'),
      owner.metadata.namespace,
      {
        metadata: {
          generateName: `${owner.metadata.name}-`,
          labels: template.metadata?.labels ?? {},
          ...(Object.keys(allAnnotations).length ? { annotations: allAnnotations } : {}),
          ownerReferences: [controllerRef(owner)],
        },
        spec: structuredClone(template.spec),
      },
      { fieldManager: 'kube-controller-manager' },
    ) as Pod;
  } catch {
    return undefined;
  }
}

export function deletePod(api: KubeApi, pod: Pod): void {
  try {
    api.delete(typeOf('pods'), pod.metadata.namespace, pod.metadata.name);
  } catch {
    // already gone
  }
}
