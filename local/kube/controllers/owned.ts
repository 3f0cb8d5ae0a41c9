/** Helpers shared by the workload controllers: controller ownerReferences, owned pods and pod readiness. */
import type { KubeApi } from '../api';
import { KubeApiError } from '../status';
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
 * owner, template labels and annotations plus `annotations`, a controller reference). When the API
 * refuses it (a ServiceAccount that does not exist, a quota) the answer is the API's message, which the
 * controllers turn into FailedCreate events and conditions and retry with back-off, as the real ones do.
 */
export function createControlledPod(
  api: KubeApi,
  owner: KubeObject,
  template: PodTemplate,
  annotations: Record<string, string> = {},
): { pod: Pod; refused?: undefined } | { pod?: undefined; refused: string } {
  const allAnnotations = { ...template.metadata?.annotations, ...annotations };
  try {
    const pod = api.create(
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
    return { pod };
  } catch (err) {
    return { refused: err instanceof KubeApiError ? (err.status.message ?? err.message) : String(err) };
  }
}

/**
 * Per-owner retry back-off after refused pod creations, doubling like the controllers' rate-limited work
 * queues: the ReplicaSet controller from 5 ms, the Job controller from 1 s (the event counts in
 * transcripts 11 and 12 grow at these rates).
 */
export class CreateBackoff {
  private readonly state = new Map<string, { failures: number; next: number }>();

  constructor(
    private readonly startMs: number,
    private readonly maxMs: number,
  ) {}

  /** Milliseconds until `uid` may try again (0: now). */
  wait(uid: string): number {
    return Math.max(0, (this.state.get(uid)?.next ?? 0) - Date.now());
  }

  failed(uid: string): number {
    const failures = (this.state.get(uid)?.failures ?? 0) + 1;
    const delay = Math.min(this.startMs * 2 ** (failures - 1), this.maxMs);
    this.state.set(uid, { failures, next: Date.now() + delay });
    return delay;
  }

  succeeded(uid: string): void {
    this.state.delete(uid);
  }

  forgetExcept(live: Set<string>): void {
    for (const uid of this.state.keys()) if (!live.has(uid)) this.state.delete(uid);
  }
}

export function deletePod(api: KubeApi, pod: Pod): void {
  try {
    api.delete(typeOf('pods'), pod.metadata.namespace, pod.metadata.name);
  } catch {
    // already gone
  }
}
