/**
 * The Deployment and ReplicaSet controllers. A Deployment owns one ReplicaSet per pod template
 * (`<deployment>-<pod-template-hash>`, label `pod-template-hash`); a template change creates a new
 * ReplicaSet at full size and scales the old ones down as new pods become available (a rolling update
 * with surge, never below the available count). ReplicaSets keep `replicas` pods. Status and the
 * Available / Progressing conditions (NewReplicaSetAvailable, ProgressDeadlineExceeded) follow apps/v1.
 */
import { now, type KubeApi } from '../api';
import { canonical } from '../canonical';
import { typeOf, type Condition, type Deployment, type Pod, type PodTemplate, type ReplicaSet } from '../resources';
import { getCondition, setCondition } from './conditions';
import { WakeUps } from './wake-ups';
import { EventRecorder } from './events';
import { controllerRef, CreateBackoff, createControlledPod, deletePod, isControlledBy, isPodFinished, isPodReady } from './owned';

const REVISION = 'deployment.kubernetes.io/revision';
const SAFE_ALPHABET = 'bcdfghjklmnpqrstvwxz2456789';

/** pod-template-hash as the real controller spells it: FNV-32a of the template, "safe-encoded". */
export function podTemplateHash(template: PodTemplate): string {
  let hash = 0x811c9dc5;
  for (const byte of Buffer.from(canonical(template))) {
    hash ^= byte;
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return Array.from(String(hash), (ch) => SAFE_ALPHABET[ch.charCodeAt(0) % SAFE_ALPHABET.length]).join('');
}

function withoutHash(template: PodTemplate): PodTemplate {
  const t = structuredClone(template);
  if (t.metadata?.labels) delete t.metadata.labels['pod-template-hash'];
  return t;
}

function resolveIntOrPercent(value: number | string | undefined, total: number, roundUp: boolean): number {
  if (value === undefined) return 0;
  if (typeof value === 'number') return value;
  const pct = Number(value.replace('%', '')) / 100;
  return roundUp ? Math.ceil(pct * total) : Math.floor(pct * total);
}

/**
 * The deployment controller's SetDeploymentCondition: an unchanged condition (status, reason, message)
 * stays where it is; a changed one is removed and appended (so the list order moves as on a real cluster),
 * keeping lastTransitionTime while the status is the same.
 */
function setDeploymentCondition(list: Condition[], type: string, status: Condition['status'], reason: string, message: string): Condition[] {
  const current = list.find((c) => c.type === type);
  if (current && current.status === status && current.reason === reason && current.message === message) return list;
  const at = now();
  return [
    ...list.filter((c) => c.type !== type),
    { type, status, lastUpdateTime: at, lastTransitionTime: current && current.status === status && current.lastTransitionTime ? current.lastTransitionTime : at, reason, message },
  ];
}

export class DeploymentController {
  private readonly progress = new Map<string, { signature: string; at: number }>();
  private readonly wakeUps: WakeUps;
  private readonly events: EventRecorder;
  /** The ReplicaSet controller's retry back-off after refused pod creations. */
  private readonly createBackoff = new CreateBackoff(5, 60_000);

  constructor(
    private readonly api: KubeApi,
    kick: () => void,
  ) {
    this.wakeUps = new WakeUps(kick);
    this.events = new EventRecorder(api);
  }

  reconcile(): void {
    const deployments = this.api.store.list('deployments') as Deployment[];
    const live = new Set(deployments.map((d) => d.metadata.uid));
    for (const uid of this.progress.keys()) if (!live.has(uid)) this.progress.delete(uid);
    for (const d of deployments) this.syncDeployment(d);
    const replicaSets = this.api.store.list('replicasets') as ReplicaSet[];
    this.createBackoff.forgetExcept(new Set(replicaSets.map((rs) => rs.metadata.uid)));
    for (const rs of replicaSets) this.syncReplicaSet(rs);
  }

  // ---- Deployment -----------------------------------------------------------------------------------

  private syncDeployment(d: Deployment): void {
    const ns = d.metadata.namespace!;
    const owned = this.api.store.list('replicasets', ns, (rs) => isControlledBy(rs, d)) as ReplicaSet[];
    const desired = d.spec.replicas ?? 1;
    const templateKey = canonical(d.spec.template);
    let newRs = owned.find((rs) => canonical(withoutHash(rs.spec.template)) === templateKey);
    const maxRevision = Math.max(0, ...owned.map((rs) => Number(rs.metadata.annotations?.[REVISION] ?? 0)));
    let createdNew = false;
    if (!newRs && !d.spec.paused) {
      const othersRunning = owned.some((rs) => (rs.spec.replicas ?? 0) > 0 || (rs.status?.replicas ?? 0) > 0);
      newRs = this.createReplicaSet(d, maxRevision + 1, othersRunning ? 0 : desired);
      createdNew = newRs !== undefined;
    }
    const oldRss = owned.filter((rs) => rs !== newRs && rs.metadata.uid !== newRs?.metadata.uid);
    if (newRs && !d.spec.paused) {
      const revision = newRs.metadata.annotations?.[REVISION];
      // A template that goes back to an older ReplicaSet makes that one the newest revision again.
      if (revision !== undefined && Number(revision) < maxRevision) {
        this.setReplicaSet(newRs, newRs.spec.replicas ?? 0, String(maxRevision + 1));
      }
      const recreateBlocked =
        d.spec.strategy?.type === 'Recreate' &&
        oldRss.some((rs) => (rs.spec.replicas ?? 0) > 0 || (rs.status?.replicas ?? 0) > 0);
      if (recreateBlocked) {
        for (const rs of oldRss) this.setReplicaSet(rs, 0);
      } else {
        this.setReplicaSet(newRs, desired);
        // Old ReplicaSets keep only what is needed to stay at the desired availability.
        let allowedOld = Math.max(0, desired - (newRs.status?.availableReplicas ?? 0));
        for (const rs of [...oldRss].sort((a, b) => b.metadata.creationTimestamp.localeCompare(a.metadata.creationTimestamp))) {
          const keep = Math.min(rs.spec.replicas ?? 0, allowedOld);
          allowedOld -= keep;
          this.setReplicaSet(rs, keep);
        }
      }
      this.pruneHistory(d, oldRss);
    }
    this.writeDeploymentStatus(d, newRs, createdNew);
  }

  private createReplicaSet(d: Deployment, revision: number, replicas: number): ReplicaSet | undefined {
    const hash = podTemplateHash(d.spec.template);
    const template = structuredClone(d.spec.template);
    template.metadata = { ...template.metadata, labels: { ...template.metadata?.labels, 'pod-template-hash': hash } };
    try {
      const rs = this.api.create(
        typeOf('replicasets'),
        d.metadata.namespace,
        {
          metadata: {
            name: `${d.metadata.name}-${hash}`,
            labels: template.metadata.labels,
            annotations: {
              [REVISION]: String(revision),
              'deployment.kubernetes.io/desired-replicas': String(d.spec.replicas ?? 1),
              'deployment.kubernetes.io/max-replicas': String((d.spec.replicas ?? 1) + resolveIntOrPercent(d.spec.strategy?.rollingUpdate?.maxSurge, d.spec.replicas ?? 1, true)),
            },
            ownerReferences: [controllerRef(d)],
          },
          spec: {
            replicas,
            ...(d.spec.minReadySeconds ? { minReadySeconds: d.spec.minReadySeconds } : {}),
            selector: {
              ...d.spec.selector,
              matchLabels: { ...d.spec.selector.matchLabels, 'pod-template-hash': hash },
            },
            template,
          },
        },
        { fieldManager: 'kube-controller-manager' },
      ) as ReplicaSet;
      if (replicas > 0) this.events.record(d, 'Normal', 'ScalingReplicaSet', `Scaled up replica set ${rs.metadata.name} from 0 to ${replicas}`, 'deployment-controller');
      return rs;
    } catch {
      return undefined;
    }
  }

  private setReplicaSet(rs: ReplicaSet, replicas: number, revision?: string): void {
    const current = this.api.store.get('replicasets', rs.metadata.namespace, rs.metadata.name) as ReplicaSet | undefined;
    if (!current) return;
    const sameRevision = revision === undefined || current.metadata.annotations?.[REVISION] === revision;
    const from = current.spec.replicas ?? 0;
    if (from === replicas && sameRevision) return;
    current.spec.replicas = replicas;
    const owner = this.api.store.list('deployments', current.metadata.namespace, (d) => isControlledBy(current, d))[0];
    if (owner && from !== replicas) {
      this.events.record(owner, 'Normal', 'ScalingReplicaSet', `Scaled ${replicas > from ? 'up' : 'down'} replica set ${current.metadata.name} from ${from} to ${replicas}`, 'deployment-controller');
    }
    if (revision !== undefined) current.metadata.annotations = { ...current.metadata.annotations, [REVISION]: revision };
    this.api.update(typeOf('replicasets'), current.metadata.namespace, current.metadata.name, current, { fieldManager: 'kube-controller-manager' });
    Object.assign(rs, current);
  }

  private pruneHistory(d: Deployment, oldRss: ReplicaSet[]): void {
    const limit = d.spec.revisionHistoryLimit ?? 10;
    const idle = oldRss
      .filter((rs) => (rs.spec.replicas ?? 0) === 0 && (rs.status?.replicas ?? 0) === 0)
      .sort((a, b) => Number(a.metadata.annotations?.[REVISION] ?? 0) - Number(b.metadata.annotations?.[REVISION] ?? 0));
    for (const rs of idle.slice(0, Math.max(0, idle.length - limit))) {
      try {
        this.api.delete(typeOf('replicasets'), rs.metadata.namespace, rs.metadata.name);
      } catch {
        // already gone
      }
    }
  }

  private writeDeploymentStatus(d: Deployment, newRs: ReplicaSet | undefined, createdNew: boolean): void {
    const ns = d.metadata.namespace!;
    const all = this.api.store.list('replicasets', ns, (rs) => isControlledBy(rs, d)) as ReplicaSet[];
    const fresh = newRs ? all.find((rs) => rs.metadata.uid === newRs.metadata.uid) : undefined;
    const desired = d.spec.replicas ?? 1;
    const replicas = all.reduce((n, rs) => n + (rs.status?.replicas ?? 0), 0);
    const specTotal = all.reduce((n, rs) => n + (rs.spec.replicas ?? 0), 0);
    const ready = all.reduce((n, rs) => n + (rs.status?.readyReplicas ?? 0), 0);
    const available = all.reduce((n, rs) => n + (rs.status?.availableReplicas ?? 0), 0);
    const updated = fresh?.status?.replicas ?? 0;
    const maxUnavailable =
      d.spec.strategy?.type === 'Recreate' ? 0 : resolveIntOrPercent(d.spec.strategy?.rollingUpdate?.maxUnavailable, desired, false);
    const old = d.status ?? {};
    let conditions: Condition[] = old.conditions ?? [];
    const setAvailable = () => {
      conditions =
        available >= desired - maxUnavailable
          ? setDeploymentCondition(conditions, 'Available', 'True', 'MinimumReplicasAvailable', 'Deployment has minimum availability.')
          : setDeploymentCondition(conditions, 'Available', 'False', 'MinimumReplicasUnavailable', 'Deployment does not have minimum availability.');
    };
    // A new Deployment gets Progressing first (NewReplicaSetCreated), then Available (transcripts 11, 16).
    const firstStatus = conditions.length === 0;
    if (!firstStatus) setAvailable();
    const rsName = fresh?.metadata.name ?? `${d.metadata.name}`;
    const complete = fresh !== undefined && updated === desired && replicas === desired && available === desired && (fresh.status?.availableReplicas ?? 0) === desired;
    const signature = canonical([rsName, replicas, updated, ready, available]);
    const uid = d.metadata.uid;
    let track = this.progress.get(uid);
    if (!track || track.signature !== signature) {
      track = { signature, at: Date.now() };
      this.progress.set(uid, track);
    }
    const deadlineMs = (d.spec.progressDeadlineSeconds ?? 600) * 1000;
    const progressing = getCondition(conditions, 'Progressing');
    if (complete) {
      conditions = setDeploymentCondition(conditions, 'Progressing', 'True', 'NewReplicaSetAvailable', `ReplicaSet "${rsName}" has successfully progressed.`);
    } else if (Date.now() - track.at >= deadlineMs && progressing?.reason !== 'NewReplicaSetAvailable') {
      conditions = setDeploymentCondition(conditions, 'Progressing', 'False', 'ProgressDeadlineExceeded', `ReplicaSet "${rsName}" has timed out progressing.`);
    } else {
      // ReplicaSetUpdated only when the counters moved (the controller's DeploymentProgressing check);
      // until then the condition stays as it was, e.g. NewReplicaSetCreated (transcripts 11, 16).
      const moved = replicas !== (old.replicas ?? 0) || updated !== (old.updatedReplicas ?? 0) || ready !== (old.readyReplicas ?? 0) || available !== (old.availableReplicas ?? 0);
      const next: [string, string] | undefined = createdNew || !progressing
        ? ['NewReplicaSetCreated', `Created new replica set "${rsName}"`]
        : moved || progressing.status !== 'True' || (progressing.reason !== 'NewReplicaSetCreated' && progressing.reason !== 'ReplicaSetUpdated')
          ? ['ReplicaSetUpdated', `ReplicaSet "${rsName}" is progressing.`]
          : undefined;
      if (next && !(progressing?.status === 'False' && progressing.reason === 'ProgressDeadlineExceeded' && Date.now() - track.at >= deadlineMs)) {
        conditions = setDeploymentCondition(conditions, 'Progressing', 'True', next[0], next[1]);
      }
      this.wakeUps.at(uid, track.at + deadlineMs - Date.now() + 10);
    }
    if (firstStatus) setAvailable();
    // A ReplicaSet that cannot create its pods shows on the Deployment as ReplicaFailure (transcript 11).
    const failure = [fresh, ...all.filter((rs) => rs !== fresh)].map((rs) => getCondition(rs?.status?.conditions, 'ReplicaFailure')).find((c) => c?.status === 'True');
    conditions = failure
      ? setDeploymentCondition(conditions, 'ReplicaFailure', 'True', failure.reason ?? 'FailedCreate', failure.message ?? '')
      : conditions.filter((c) => c.type !== 'ReplicaFailure');
    const status: NonNullable<Deployment['status']> = {
      observedGeneration: d.metadata.generation ?? 1,
      ...(replicas ? { replicas } : {}),
      ...(updated ? { updatedReplicas: updated } : {}),
      ...(ready ? { readyReplicas: ready } : {}),
      ...(available ? { availableReplicas: available } : {}),
      ...(specTotal - available > 0 ? { unavailableReplicas: specTotal - available } : {}),
      conditions,
    };
    // lastUpdateTime moves only on progress; keep it otherwise so that status settles.
    if (canonical(status) === canonical(old)) return;
    if (fresh && d.metadata.annotations?.[REVISION] !== fresh.metadata.annotations?.[REVISION]) {
      const revision = fresh.metadata.annotations?.[REVISION];
      if (revision) {
        const current = this.api.store.get('deployments', ns, d.metadata.name) as Deployment | undefined;
        if (current) {
          current.metadata.annotations = { ...current.metadata.annotations, [REVISION]: revision };
          d = this.api.update(typeOf('deployments'), ns, d.metadata.name, current, { fieldManager: 'kube-controller-manager' }) as Deployment;
        }
      }
    }
    try {
      this.api.update(typeOf('deployments'), ns, d.metadata.name, { ...d, status }, { subresource: 'status', fieldManager: 'kube-controller-manager' });
    } catch {
      // deleted meanwhile
    }
  }

  // ---- ReplicaSet ----------------------------------------------------------------------------------

  private syncReplicaSet(rs: ReplicaSet): void {
    const ns = rs.metadata.namespace!;
    const pods = this.api.store.list('pods', ns, (p) => isControlledBy(p, rs)) as Pod[];
    const active = pods.filter((p) => !p.metadata.deletionTimestamp && !isPodFinished(p));
    // Finished pods of a ReplicaSet are replaced (and removed, as the real controller does).
    for (const p of pods.filter((x) => isPodFinished(x) && !x.metadata.deletionTimestamp)) deletePod(this.api, p);
    const desired = rs.spec.replicas ?? 1;
    const uid = rs.metadata.uid;
    let conditions = rs.status?.conditions;
    if (active.length < desired) {
      const wait = this.createBackoff.wait(uid);
      if (wait > 0) this.wakeUps.at(`${uid}/create`, wait);
      else {
        for (let i = active.length; i < desired; i++) {
          const created = createControlledPod(this.api, rs, rs.spec.template);
          if (created.pod) {
            active.push(created.pod);
            this.createBackoff.succeeded(uid);
            conditions = conditions?.filter((c) => c.type !== 'ReplicaFailure');
            continue;
          }
          this.events.record(rs, 'Warning', 'FailedCreate', `Error creating: ${created.refused}`, 'replicaset-controller');
          conditions = setCondition(conditions, 'ReplicaFailure', 'True', 'FailedCreate', created.refused);
          this.wakeUps.at(`${uid}/create`, this.createBackoff.failed(uid));
          break;
        }
      }
    } else if (active.length > desired) {
      // Scale down the least useful first: not ready, then newest.
      const victims = [...active]
        .sort((a, b) => Number(isPodReady(a)) - Number(isPodReady(b)) || b.metadata.creationTimestamp.localeCompare(a.metadata.creationTimestamp))
        .slice(0, active.length - desired);
      for (const p of victims) deletePod(this.api, p);
      const gone = new Set(victims.map((v) => v.metadata.uid));
      for (let i = active.length - 1; i >= 0; i--) if (gone.has(active[i]!.metadata.uid)) active.splice(i, 1);
    }
    const ready = active.filter(isPodReady).length;
    const labelled = active.filter((p) =>
      Object.entries(rs.spec.template.metadata?.labels ?? {}).every(([k, v]) => p.metadata.labels?.[k] === v),
    ).length;
    const status: NonNullable<ReplicaSet['status']> = {
      replicas: active.length,
      ...(labelled ? { fullyLabeledReplicas: labelled } : {}),
      ...(ready ? { readyReplicas: ready, availableReplicas: ready } : {}),
      observedGeneration: rs.metadata.generation ?? 1,
      ...(conditions?.length ? { conditions } : {}),
    };
    if (canonical(status) === canonical(rs.status ?? {})) return;
    try {
      this.api.update(typeOf('replicasets'), ns, rs.metadata.name, { ...rs, status }, { subresource: 'status', fieldManager: 'kube-controller-manager' });
    } catch {
      // deleted meanwhile
    }
  }

  stop(): void {
    this.wakeUps.stop();
  }
}

