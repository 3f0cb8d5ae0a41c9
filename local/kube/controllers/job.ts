/**
 * The Job controller: keeps `parallelism` pods running until `completions` succeed, retries failed pods
 * with back-off until `backoffLimit` failures (then Failed / BackoffLimitExceeded), enforces
 * `activeDeadlineSeconds` (DeadlineExceeded) and `ttlSecondsAfterFinished`, and writes batch/v1 status
 * (active, ready, succeeded, failed, startTime, completionTime, SuccessCriteriaMet/Complete or
 * FailureTarget, then Failed once its pods stopped) the way the real controller does. A `podFailurePolicy`
 * is applied to each failed pod, first matching rule wins: Ignore (not counted, replaced), FailJob (the
 * Job fails at once, reason PodFailurePolicy), Count; with one, a pod is replaced only once it has failed.
 */
import { now, type KubeApi } from '../api';
import { typeOf, type Condition, type Job, type Pod } from '../resources';
import { canonical } from '../canonical';
import { getCondition, setCondition } from './conditions';
import { WakeUps } from './wake-ups';
import { EventRecorder } from './events';
import { CreateBackoff, createControlledPod, deletePod, isControlledBy, isPodReady } from './owned';

/** Back-off before re-creating a failed Job's pod: 250 ms doubling to 5 s (the real one: 10 s to 6 min). */
const RETRY_START_MS = 250;
const RETRY_MAX_MS = 5000;

interface JobMemory {
  succeeded: Set<string>;
  failed: Set<string>;
  /** Failed pods a podFailurePolicy Ignore rule matched: replaced, never counted. */
  ignored: Set<string>;
  nextCreateAt: number;
}

type FailurePolicyRule = NonNullable<Job['spec']['podFailurePolicy']>['rules'][number];

/**
 * The first rule of `job`'s pod failure policy that matches failed `pod` (as the real controller's
 * matchPodFailurePolicy: an exit-code rule looks at containers that terminated with a non-zero code, a
 * condition rule at the pod's conditions; an unknown action is skipped), with the FailJob message.
 */
export function matchPodFailurePolicy(job: Job, pod: Pod): { action: string; message: string } | undefined {
  const rules = job.spec.podFailurePolicy?.rules ?? [];
  for (const [index, rule] of rules.entries()) {
    if (!['Ignore', 'FailJob', 'Count'].includes(rule.action)) continue;
    const where = `for pod ${pod.metadata.namespace}/${pod.metadata.name}`;
    if (rule.onExitCodes) {
      const c = matchingContainer(pod, rule.onExitCodes);
      if (c) return { action: rule.action, message: `Container ${c.name} ${where} failed with exit code ${c.exitCode} matching ${rule.action} rule at index ${index}` };
    } else {
      const pattern = (rule.onPodConditions ?? []).find((p) => pod.status?.conditions?.some((c) => c.type === p.type && c.status === (p.status ?? 'True')));
      if (pattern) return { action: rule.action, message: `Pod ${pod.metadata.namespace}/${pod.metadata.name} has condition ${pattern.type} matching ${rule.action} rule at index ${index}` };
    }
  }
  return undefined;
}

function matchingContainer(pod: Pod, req: NonNullable<FailurePolicyRule['onExitCodes']>): { name: string; exitCode: number } | undefined {
  for (const s of pod.status?.containerStatuses ?? []) {
    const code = s.state.terminated?.exitCode;
    if (code === undefined || code === 0) continue;
    if (req.containerName !== undefined && req.containerName !== s.name) continue;
    if (req.values.includes(code) === (req.operator === 'In')) return { name: s.name, exitCode: code };
  }
  return undefined;
}

export class JobController {
  private readonly memory = new Map<string, JobMemory>();
  private readonly wakeUps: WakeUps;
  private readonly events: EventRecorder;
  /** The Job controller's retry back-off after refused pod creations (1 s doubling, as transcript 12 shows). */
  private readonly createBackoff = new CreateBackoff(1000, 60_000);

  constructor(
    private readonly api: KubeApi,
    kick: () => void,
  ) {
    this.wakeUps = new WakeUps(kick);
    this.events = new EventRecorder(api);
  }

  reconcile(): void {
    const jobs = this.api.store.list('jobs') as Job[];
    const live = new Set(jobs.map((j) => j.metadata.uid));
    for (const uid of this.memory.keys()) if (!live.has(uid)) this.memory.delete(uid);
    this.createBackoff.forgetExcept(live);
    for (const job of jobs) this.sync(job);
  }

  private sync(job: Job): void {
    const ns = job.metadata.namespace!;
    const uid = job.metadata.uid;
    let mem = this.memory.get(uid);
    if (!mem) {
      mem = { succeeded: new Set(), failed: new Set(), ignored: new Set(), nextCreateAt: 0 };
      this.memory.set(uid, mem);
    }
    const status = structuredClone(job.status ?? {});
    const pods = this.api.store.list('pods', ns, (p) => isControlledBy(p, job)) as Pod[];
    const conditions = status.conditions;
    const finished = ['Complete', 'Failed'].some((t) => getCondition(conditions, t)?.status === 'True');

    // Count each terminated pod once, like the real controller's uncountedTerminatedPods tracking.
    let newFailure = false;
    let policyFailure: { reason: string; message: string } | undefined;
    for (const p of pods) {
      const restarts = (p.status?.containerStatuses ?? []).reduce((n, c) => n + c.restartCount, 0);
      if (p.status?.phase === 'Succeeded') mem.succeeded.add(p.metadata.uid);
      if (p.status?.phase === 'Failed' && !mem.failed.has(p.metadata.uid) && !mem.ignored.has(p.metadata.uid)) {
        const matched = matchPodFailurePolicy(job, p);
        if (matched?.action === 'Ignore') {
          mem.ignored.add(p.metadata.uid);
          continue;
        }
        if (matched?.action === 'FailJob') policyFailure ??= { reason: 'PodFailurePolicy', message: matched.message };
        mem.failed.add(p.metadata.uid);
        newFailure = true;
      }
      // With restartPolicy OnFailure each container restart counts against backoffLimit.
      for (let i = 0; i < restarts; i++) {
        const key = `${p.metadata.uid}#${i}`;
        if (!mem.failed.has(key)) {
          mem.failed.add(key);
          newFailure = true;
        }
      }
    }
    const succeeded = Math.max(status.succeeded ?? 0, mem.succeeded.size);
    const failed = Math.max(status.failed ?? 0, mem.failed.size);
    let active = pods.filter((p) => !p.metadata.deletionTimestamp && p.status?.phase !== 'Succeeded' && p.status?.phase !== 'Failed');
    const terminating = pods.filter((p) => p.metadata.deletionTimestamp).length;
    // podReplacementPolicy Failed (the default with a pod failure policy): a terminating pod is replaced
    // only once it has failed, so its exit code and conditions are known first.
    const awaitingFailure =
      (job.spec as { podReplacementPolicy?: string }).podReplacementPolicy === 'Failed'
        ? pods.filter((p) => p.metadata.deletionTimestamp && p.status?.phase !== 'Succeeded' && p.status?.phase !== 'Failed').length
        : 0;

    status.startTime ??= now();
    let next = { ...status };
    if (!finished) {
      const completions = job.spec.completions ?? 1;
      const backoffLimit = job.spec.backoffLimit ?? 6;
      const deadline = job.spec.activeDeadlineSeconds;
      const elapsedMs = Date.now() - Date.parse(status.startTime);
      // A failure, once decided (FailureTarget), keeps its reason while the pods terminate.
      const decided = getCondition(conditions, 'FailureTarget');
      let failure: { reason: string; message: string } | undefined;
      if (decided?.status === 'True') failure = { reason: decided.reason ?? 'Failed', message: decided.message ?? '' };
      else if (policyFailure) failure = policyFailure;
      else if (failed > backoffLimit) failure = { reason: 'BackoffLimitExceeded', message: 'Job has reached the specified backoff limit' };
      else if (deadline !== undefined && elapsedMs >= deadline * 1000) {
        failure = { reason: 'DeadlineExceeded', message: 'Job was active longer than specified deadline' };
      }
      if (failure) {
        for (const p of active) deletePod(this.api, p);
        active = [];
        // As the real controller (v1.31+, transcript 14): FailureTarget at once, Failed only when no pod of
        // the Job still runs, so whoever watches can read the terminating pods' state and log meanwhile.
        const running = (this.api.store.list('pods', ns) as Pod[]).filter(
          (p) => isControlledBy(p, job) && p.status?.phase !== 'Succeeded' && p.status?.phase !== 'Failed',
        );
        let c: Condition[] = setCondition(next.conditions, 'FailureTarget', 'True', failure.reason, failure.message, { probeTime: 'now' });
        if (running.length === 0) c = setCondition(c, 'Failed', 'True', failure.reason, failure.message, { probeTime: 'now' });
        next = { ...next, conditions: c };
      } else if (succeeded >= completions) {
        for (const p of active) deletePod(this.api, p);
        active = [];
        const message = 'Reached expected number of succeeded pods';
        let c = setCondition(next.conditions, 'SuccessCriteriaMet', 'True', 'CompletionsReached', message, { probeTime: 'now' });
        c = setCondition(c, 'Complete', 'True', 'CompletionsReached', message, { probeTime: 'now' });
        next = { ...next, conditions: c, completionTime: now() };
      } else {
        if (deadline !== undefined) this.wakeUps.at(`${uid}/deadline`, deadline * 1000 - elapsedMs + 10);
        if (newFailure) mem.nextCreateAt = Date.now() + Math.min(RETRY_START_MS * 2 ** Math.max(0, failed - 1), RETRY_MAX_MS);
        const want = Math.min(job.spec.parallelism ?? 1, completions - succeeded) - active.length - awaitingFailure;
        if (want > 0 && !job.spec.suspend) {
          const wait = Math.max(mem.nextCreateAt - Date.now(), this.createBackoff.wait(uid));
          if (wait > 0) this.wakeUps.at(`${uid}/retry`, wait);
          else for (let i = 0; i < want; i++) {
            const created = createControlledPod(this.api, job, job.spec.template, { 'batch.kubernetes.io/job-tracking': '' });
            if (created.pod) {
              active.push(created.pod);
              this.createBackoff.succeeded(uid);
              continue;
            }
            // A Job gets no condition for this, only the event (transcript 12).
            this.events.record(job, 'Warning', 'FailedCreate', `Error creating: ${created.refused}`, 'job-controller');
            this.wakeUps.at(`${uid}/retry`, this.createBackoff.failed(uid));
            break;
          }
        }
      }
    }
    const ttl = job.spec.ttlSecondsAfterFinished;
    const finishedAt = getCondition(next.conditions, 'Complete')?.lastTransitionTime ?? getCondition(next.conditions, 'Failed')?.lastTransitionTime;
    if (ttl !== undefined && finishedAt && ['Complete', 'Failed'].some((t) => getCondition(next.conditions, t)?.status === 'True')) {
      const due = Date.parse(finishedAt) + ttl * 1000 - Date.now();
      if (due <= 0) {
        this.api.delete(typeOf('jobs'), ns, job.metadata.name, { propagationPolicy: 'Background' });
        return;
      }
      this.wakeUps.at(`${uid}/ttl`, due);
    }
    next.active = active.length;
    next.ready = active.filter(isPodReady).length;
    next.terminating = terminating;
    if (succeeded) next.succeeded = succeeded;
    if (failed) next.failed = failed;
    (next as Record<string, unknown>).uncountedTerminatedPods = {};
    if (!next.active) delete next.active;
    if (canonical(next) === canonical(job.status ?? {})) return;
    try {
      this.api.update(typeOf('jobs'), ns, job.metadata.name, { ...job, status: next }, { subresource: 'status', fieldManager: 'kube-controller-manager' });
    } catch {
      // deleted meanwhile
    }
  }

  stop(): void {
    this.wakeUps.stop();
  }
}
