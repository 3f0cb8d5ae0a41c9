/**
 * Reading the state of workloads the way a person at kubectl would: is the training Job done or failed,
 * is a Deployment rolled out, is a pod stuck (image pull, crash loop), does a LoadBalancer endpoint
 * answer for the model. The Await* handlers are thin loops over these.
 */
import type { CoreV1Event, KubernetesObject, V1ContainerStateTerminated, V1ContainerStatus, V1Deployment, V1Job, V1Pod, V1Service } from '@kubernetes/client-node';
import { get as httpGet } from 'node:http';
import { constants as osConstants } from 'node:os';
import * as z from 'zod';
import { EndpointUnavailableError, PhaseTimeoutError, RolloutFailedError } from './errors';
import { applyObject, collectionPath, firstOf, listObjects, podLogTail, readObject, watchUntil, type WatchEventType } from './kube';
import { endpointTokenSecret, servingDeployment, type ServingDeploymentSettings, type ServingOverrides } from './manifests';
import { authorizationHeader, endpointAuthOn, endpointTokens, presentedToken, tokenLabels } from './endpoint-auth';
import { labelSelector } from './names';
import { afterOutage, phaseClock, planWait, rideOutOutage, type PhaseTiming, type WaitPlan } from './phase';
import type { RunContext, Stage, StageResult } from './types';

/** Waiting reasons that do not fix themselves: fail at once instead of waiting out a deadline. */
export const FATAL_WAITING_REASONS = new Set([
  'ImagePullBackOff',
  'ErrImagePull',
  'ErrImageNeverPull',
  'InvalidImageName',
  'CrashLoopBackOff',
  'CreateContainerConfigError',
  'CreateContainerError',
]);

export interface PodProblem {
  pod: string;
  reason: string;
  message: string;
  restartCount: number;
  /** The pod's state in words (describePodState): how its containers last ended, exit codes included. */
  state: string;
}

/** The first container of `pod` stuck for a fatal reason, if any. */
export function podProblem(pod: V1Pod): PodProblem | undefined {
  const statuses = [...(pod.status?.initContainerStatuses ?? []), ...(pod.status?.containerStatuses ?? [])];
  for (const s of statuses) {
    const waiting = s.state?.waiting;
    if (waiting?.reason && FATAL_WAITING_REASONS.has(waiting.reason)) {
      return { pod: pod.metadata?.name ?? '?', reason: waiting.reason, message: waiting.message ?? '', restartCount: s.restartCount ?? 0, state: describePodState(pod) };
    }
  }
  return undefined;
}

/** `reason: message` plus the pod's last log lines (the crashed run's, for a crash loop). */
export async function describePodProblem(namespace: string, p: PodProblem): Promise<string> {
  const head = `${p.reason}${p.message ? `: ${p.message}` : ''} (pod ${p.pod}: ${p.state})`;
  // An image that never arrived has no log to show.
  if (p.reason !== 'CrashLoopBackOff' && p.restartCount === 0) return `${head}\n(no log: the container never started)`;
  const tail = await podLogTail(namespace, p.pod, 20, p.reason === 'CrashLoopBackOff' && p.restartCount > 0);
  return `${head}${formatTail(tail)}`;
}

function formatTail(tail: string): string {
  return tail ? `\n--- last log lines ---\n${tail}` : '\n(no log output)';
}

/** Signal numbers → names (9 → SIGKILL), from the platform's own table. */
const SIGNAL_NAMES = new Map(Object.entries(osConstants.signals).map(([name, n]) => [n, name]));

/**
 * How a container ended, in words: `exit code 137 (signal 9, SIGKILL), reason OOMKilled`. The kubelet
 * reports a container killed by a signal as exit code 128 + the signal (it leaves `signal` unset; a
 * runtime that sets it is believed first), and the runtime's reason: Completed, Error, OOMKilled,
 * ContainerCannotRun, DeadlineExceeded...
 */
export function describeTermination(t: V1ContainerStateTerminated): string {
  const signal = t.signal ? t.signal : t.exitCode > 128 && t.exitCode <= 128 + 64 ? t.exitCode - 128 : undefined;
  const name = signal === undefined ? undefined : SIGNAL_NAMES.get(signal);
  const parts = [`exit code ${t.exitCode}${signal === undefined ? '' : ` (signal ${signal}${name ? `, ${name}` : ''})`}`];
  if (t.reason) parts.push(`reason ${t.reason}`);
  const message = t.message ? oneLine(t.message) : '';
  return `${parts.join(', ')}${message ? `: ${message.length > 300 ? `${message.slice(0, 300)}…` : message}` : ''}`;
}

function describeContainer(s: V1ContainerStatus): string {
  const { running, waiting, terminated } = s.state ?? {};
  const last = s.lastState?.terminated;
  let now: string;
  if (terminated) now = `terminated with ${describeTermination(terminated)}`;
  else if (waiting) now = `waiting (${waiting.reason ?? 'unknown reason'}${waiting.message ? `: ${oneLine(waiting.message)}` : ''})`;
  else if (running) now = `running since ${String(running.startedAt ?? '?')}${s.ready ? '' : ', not ready'}`;
  else now = 'not started';
  const restarts = s.restartCount ? `, ${s.restartCount} restart${s.restartCount === 1 ? '' : 's'}` : '';
  return `container ${s.name} ${now}${restarts}${last ? `; last terminated with ${describeTermination(last)}` : ''}`;
}

/**
 * A pod's state in one line: its phase, the pod-level reason when there is one (Evicted, DeadlineExceeded,
 * with the kubelet's message), and each container's state: how it ended (exit code, signal, reason), what
 * it waits for, or since when it runs.
 */
export function describePodState(pod: V1Pod): string {
  const st = pod.status ?? {};
  const head = `${st.phase ?? 'Unknown'}${pod.metadata?.deletionTimestamp ? ' (terminating)' : ''}${st.reason ? `, ${st.reason}${st.message ? `: ${oneLine(st.message)}` : ''}` : ''}`;
  const statuses = [...(st.initContainerStatuses ?? []), ...(st.containerStatuses ?? [])];
  return [head, ...statuses.map(describeContainer)].join('; ');
}

function oneLine(text: string): string {
  return text.replace(/\s*\n\s*/g, ' ').trim();
}

/** The most recently started failed pod among `labels` (else the newest pod), for a log tail. */
async function latestFailedPod(namespace: string, labels: Record<string, string>): Promise<V1Pod | undefined> {
  const list = await listObjects<V1Pod>('Pod', namespace, { labelSelector: labelSelector(labels) });
  const byAge = [...list.items].sort((a, b) => String(b.metadata?.creationTimestamp ?? '').localeCompare(String(a.metadata?.creationTimestamp ?? '')));
  return byAge.find((p) => p.status?.phase === 'Failed') ?? byAge[0];
}

function newest(pods: V1Pod[]): V1Pod | undefined {
  return pods.sort((a, b) => String(b.metadata?.creationTimestamp ?? '').localeCompare(String(a.metadata?.creationTimestamp ?? '')))[0];
}

/**
 * `pod <name>: <state>` plus its log tail; `(no pod found)` without one. `seen` (the pods a watch saw last)
 * stands in for pods deleted meanwhile: a Job's failure deletes them, and their last state still says how
 * the container ended.
 */
async function describeLatestPod(namespace: string, podLabels: Record<string, string>, seen?: Map<string, V1Pod>): Promise<string> {
  const pod = (await latestFailedPod(namespace, podLabels)) ?? newest([...(seen?.values() ?? [])]);
  const name = pod?.metadata?.name;
  if (!pod || !name) return '(no pod found)';
  return `pod ${name}: ${describePodState(pod)}${formatTail(await podLogTail(namespace, name, 20))}`;
}

/** `reason: message` plus the state (exit code, signal, reason) and log tail of the latest failed pod among `podLabels`. */
export async function describeFailure(namespace: string, podLabels: Record<string, string>, reason: string, message: string, seen?: Map<string, V1Pod>): Promise<string> {
  const head = `${reason}${message ? `: ${message}` : ''}`;
  return `${head}\n${await describeLatestPod(namespace, podLabels, seen)}`;
}

/**
 * What the workload looked like when its phase ran out: its latest pod's state and log tail. Never throws:
 * a timeout is the story, and an API that cannot be asked is said as such.
 */
export async function describeTimeout(namespace: string, podLabels: Record<string, string>): Promise<string> {
  try {
    return await describeLatestPod(namespace, podLabels);
  } catch (err) {
    return `(pod state unavailable: ${(err as Error).message})`;
  }
}

/** Runs `fn`; a PhaseTimeoutError from it gets `detail()` (the pods' state and log tail) appended. */
export async function withTimeoutDetail<T>(fn: () => T | Promise<T>, detail: () => Promise<string>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof PhaseTimeoutError) throw new PhaseTimeoutError(`${err.message}\n${await detail()}`);
    throw err;
  }
}

/** A pod of the workload stuck for a fatal reason. */
export type StuckPod = { kind: 'pod'; problem: PodProblem };

/**
 * The workload's pods cannot be created at all (a missing ServiceAccount, a ResourceQuota, Pod Security,
 * an admission webhook). A real cluster shows it as the Deployment's ReplicaFailure condition and, for a
 * Job, only as FailedCreate events (transcripts 11, 12); nothing else ever changes, so waiting cannot help.
 */
export type CreateFailure = { kind: 'failed-create'; message: string };

/** `CreateFailure` from a FailedCreate event about the object with `uid` (events outlive their object). */
export function failedCreateEvent(uid: string | undefined): (e: CoreV1Event, type: WatchEventType) => CreateFailure | undefined {
  return (e, type) => {
    if (type === 'DELETED' || e.reason !== 'FailedCreate') return undefined;
    if (uid && e.involvedObject?.uid && e.involvedObject.uid !== uid) return undefined;
    return { kind: 'failed-create', message: e.message ?? '' };
  };
}

/** The failure message for pods that could not be created: the API's own reason, no log to look for. */
export function describeCreateFailure(message: string): string {
  return `FailedCreate: ${message.replace(/^Error creating: /, '')} (no pod could be created, so there is no log)`;
}

/**
 * Watches the named Job or Deployment and the pods labelled `podLabels` together for `budgetMs`: the first
 * of the object's own outcome (`outcomeOf`) or a pod stuck for a fatal reason — which the object's status
 * would only show once its own deadline had passed. `undefined` when the budget runs out.
 */
export function watchWorkload<T extends KubernetesObject, O>(
  kind: 'Job' | 'Deployment',
  namespace: string,
  name: string,
  outcomeOf: (obj: T, type: WatchEventType) => O | undefined,
  podLabels: Record<string, string>,
  budgetMs: number,
  uid?: string,
  /** Filled with the last state the watch saw of each pod (by name), for failure messages. */
  seen?: Map<string, V1Pod>,
): Promise<O | StuckPod | CreateFailure | undefined> {
  // A Job reports pods it cannot create only as events (a Deployment has its ReplicaFailure condition).
  const events =
    kind === 'Job'
      ? [
          (signal: AbortSignal) =>
            watchUntil<CoreV1Event, CreateFailure>(
              `/api/v1/namespaces/${encodeURIComponent(namespace)}/events`,
              { fieldSelector: `involvedObject.kind=Job,involvedObject.name=${name},reason=FailedCreate` },
              failedCreateEvent(uid),
              budgetMs,
              signal,
            ),
        ]
      : [];
  return firstOf<O | StuckPod | CreateFailure>([
    ...events,
    (signal) => watchUntil<T, O>(collectionPath(kind, namespace), { fieldSelector: `metadata.name=${name}` }, outcomeOf, budgetMs, signal),
    (signal) =>
      watchUntil<V1Pod, StuckPod>(
        collectionPath('Pod', namespace),
        { labelSelector: labelSelector(podLabels) },
        (pod) => {
          if (pod.metadata?.name) seen?.set(pod.metadata.name, pod);
          const problem = podProblem(pod);
          return problem ? { kind: 'pod', problem } : undefined;
        },
        budgetMs,
        signal,
      ),
  ]);
}

// ---------------------------------------------------------------------------------------------------
// Jobs

export type JobOutcome = { kind: 'complete'; completedAt: string } | { kind: 'failed'; reason: string; message: string };

export function jobOutcome(job: V1Job, type: string): JobOutcome | undefined {
  if (type === 'DELETED') return { kind: 'failed', reason: 'Deleted', message: 'the Job was deleted while the pipeline waited for it' };
  for (const c of job.status?.conditions ?? []) {
    if (c.status !== 'True') continue;
    if (c.type === 'Complete') return { kind: 'complete', completedAt: String(job.status?.completionTime ?? c.lastTransitionTime ?? new Date().toISOString()) };
    // FailureTarget comes first (v1.31+, transcript 14): the failure is decided while the pods are still
    // terminating, so their state and log can still be read; Failed follows once they are gone.
    if (c.type === 'Failed' || c.type === 'FailureTarget') return { kind: 'failed', reason: c.reason ?? 'Failed', message: c.message ?? '' };
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------------
// Deployments

export type RolloutOutcome = { kind: 'ready' } | { kind: 'failed'; reason: string; message: string };

/** Rolled out as `kubectl rollout status` sees it: current generation observed, all replicas updated and available. */
export function rolloutOutcome(d: V1Deployment, type: string): RolloutOutcome | undefined {
  if (type === 'DELETED') return { kind: 'failed', reason: 'Deleted', message: 'the Deployment was deleted during its rollout' };
  const conditions = d.status?.conditions ?? [];
  const progressing = conditions.find((c) => c.type === 'Progressing');
  // Pods that cannot be created (transcript 11): the ReplicaSet's FailedCreate, mirrored on the Deployment.
  const replicaFailure = conditions.find((c) => c.type === 'ReplicaFailure' && c.status === 'True');
  if (replicaFailure) return { kind: 'failed', reason: replicaFailure.reason ?? 'ReplicaFailure', message: replicaFailure.message ?? '' };
  if (progressing?.status === 'False' && progressing.reason === 'ProgressDeadlineExceeded') {
    return { kind: 'failed', reason: 'ProgressDeadlineExceeded', message: progressing.message ?? '' };
  }
  const st = d.status ?? {};
  const desired = d.spec?.replicas ?? 1;
  const observed = (st.observedGeneration ?? 0) >= (d.metadata?.generation ?? 1);
  const available = conditions.find((c) => c.type === 'Available')?.status === 'True';
  if (observed && (st.updatedReplicas ?? 0) >= desired && (st.replicas ?? 0) === (st.updatedReplicas ?? 0) && (st.availableReplicas ?? 0) >= desired && available) {
    return { kind: 'ready' };
  }
  return undefined;
}

/**
 * Writes `model`'s tokens (endpoint-auth.ts endpointTokens, unless given) into its Kubernetes Secret in
 * `namespace` with server-side apply: it creates the Secret or updates it in place, so neither a first
 * deploy (a PUT would be 404) nor a re-run (a POST would be 409) fails. A no-op when auth is off. The API's
 * answer echoes the data, so it is dropped, never logged. Read from Secrets Manager (a release), the set can
 * go stale while it is written: a rotation step (setSecret, finishSecret) may move a label and write its
 * own set just before this apply lands. So the labels are read before and after, and a change means the
 * set is read and written again (the rotation's own write then either came first and is redone here, or
 * comes after and wins).
 */
export async function syncTokenSecret(model: string, namespace: string, tokens?: readonly string[]): Promise<void> {
  if (!endpointAuthOn()) return;
  if (tokens) return void (await applyObject(endpointTokenSecret(model, namespace, tokens)));
  for (let attempt = 1; ; attempt++) {
    const before = await tokenLabels(model);
    await applyObject(endpointTokenSecret(model, namespace, await endpointTokens(model)));
    if ((await tokenLabels(model)) === before || attempt === 3) return;
  }
}

/**
 * Applies a stage's endpoint token Secret (with auth on) and serving Deployment (server-side apply,
 * idempotent) → StageResult `pending`. deployedAt
 * is the Deployment's creation time, so a retry keeps the rollout deadline where it was.
 */
export async function deployServing(run: RunContext, stage: Stage, settings: ServingDeploymentSettings, overrides: ServingOverrides = {}): Promise<StageResult> {
  // The token Secret first: a pod whose Secret volume is missing never starts (FailedMount).
  await syncTokenSecret(run.modelName, run.namespaces[stage]);
  const applied = await applyObject<V1Deployment>(servingDeployment(run, stage, settings, overrides));
  const created = applied.metadata?.creationTimestamp;
  return {
    stage,
    namespace: run.namespaces[stage],
    deploymentName: stage === 'staging' ? run.names.stagingDeployment : run.names.productionDeployment,
    serviceName: stage === 'staging' ? run.names.stagingService : run.names.productionService,
    deployedAt: created ? new Date(created).toISOString() : new Date().toISOString(),
    status: 'pending',
  };
}

/**
 * Watches a stage's Deployment and its pods for one budget: ready, pending, or RolloutFailedError. A
 * Deployment that is gone fails at once rather than waiting out the rollout deadline. An unavailable API is
 * waited out (rideOutOutage); past the rollout deadline, PhaseTimeoutError with the newest pod's state and log.
 */
export async function awaitRollout(stage: StageResult, podLabels: Record<string, string>, timing: PhaseTiming): Promise<StageResult> {
  const what = `Deployment ${stage.namespace}/${stage.deploymentName}`;
  const detail = () => describeTimeout(stage.namespace, podLabels);
  const plan = await withTimeoutDetail(() => planWait(timing, stage.deployedAt, what), detail);
  const attempted = await rideOutOutage(plan, (budgetMs) => checkRollout(stage, what, podLabels, budgetMs));
  if (attempted.kind === 'unavailable') {
    afterOutage(timing, stage.deployedAt, what, attempted);
    return { ...stage, status: 'pending' };
  }
  if (attempted.value) return attempted.value;
  await withTimeoutDetail(() => planWait(timing, stage.deployedAt, what), detail); // throws once the phase is over
  return { ...stage, status: 'pending' };
}

/** One look at a rollout: `ready`, a RolloutFailedError, or `undefined` when the budget ran out. */
async function checkRollout(stage: StageResult, what: string, podLabels: Record<string, string>, budgetMs: number): Promise<StageResult | undefined> {
  if (!(await readObject<V1Deployment>({ kind: 'Deployment', namespace: stage.namespace, name: stage.deploymentName }))) {
    throw new RolloutFailedError(`${what} does not exist (deleted before its rollout finished).`);
  }
  const outcome = await watchWorkload<V1Deployment, RolloutOutcome>('Deployment', stage.namespace, stage.deploymentName, rolloutOutcome, podLabels, budgetMs);
  if (outcome?.kind === 'ready') return { ...stage, status: 'ready' };
  if (outcome?.kind === 'pod') throw new RolloutFailedError(`${what} failed to roll out: ${await describePodProblem(stage.namespace, outcome.problem)}`);
  if (outcome?.kind === 'failed' && outcome.reason === 'FailedCreate') {
    throw new RolloutFailedError(`${what} failed to roll out: ${describeCreateFailure(outcome.message)}`);
  }
  if (outcome?.kind === 'failed') {
    throw new RolloutFailedError(`${what} failed to roll out: ${await describeFailure(stage.namespace, podLabels, outcome.reason, outcome.message)}`);
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------------
// Services and endpoints

/** `http://<hostname ?? ip>:<ingress port ?? service port>` once the LoadBalancer has an ingress. */
export function serviceEndpoint(svc: V1Service): string | undefined {
  const ingress = svc.status?.loadBalancer?.ingress?.[0];
  const host = ingress?.hostname ?? ingress?.ip;
  if (!host) return undefined;
  const port = ingress?.ports?.[0]?.port ?? svc.spec?.ports?.[0]?.port ?? 80;
  return `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
}

const ModelStatus = z.object({
  model_version_status: z.array(z.object({ version: z.union([z.string(), z.number()]).optional(), state: z.string() })).min(1),
});

/**
 * One GET /v1/models/<name>: `undefined` if the model is AVAILABLE, else why not. Each probe opens a new
 * connection: load balancers route per connection, so a kept-alive socket would keep reaching whatever
 * pods it reached before a selector switch.
 */
export async function probeModel(endpoint: string, modelName: string, timeoutMs = 5000, token?: string): Promise<string | undefined> {
  const url = `${endpoint}/v1/models/${encodeURIComponent(modelName)}`;
  try {
    const { status, text } = await getFresh(url, timeoutMs, authorizationHeader(token));
    // Never the body of a 401: say what to check instead.
    if (status === 401) return `GET ${url}: HTTP 401: the endpoint refused ${token === undefined ? 'a request without a token (endpoint auth is on in the server but off in the pipeline?)' : "the model's token (is the Kubernetes Secret in sync with Secrets Manager?)"}`;
    // A server that echoes the request (headers included) in its error must not put the token into a log or an email.
    const shown = token === undefined ? text : text.split(token).join('[redacted]');
    if (status !== 200) return `GET ${url}: HTTP ${status} ${shown.slice(0, 200)}`;
    const parsed = ModelStatus.safeParse(JSON.parse(text));
    if (!parsed.success) return `GET ${url}: not a TF Serving model status: ${shown.slice(0, 200)}`;
    if (!parsed.data.model_version_status.some((s) => s.state === 'AVAILABLE')) {
      return `GET ${url}: model state ${parsed.data.model_version_status.map((s) => s.state).join(',')}`;
    }
    return undefined;
  } catch (err) {
    const e = err as Error & { code?: string };
    return `GET ${url}: ${e.code ?? e.name}: ${e.message}`;
  }
}

/** GET on a new connection (no agent, `Connection: close`), with an overall timeout. */
export function getFresh(url: string, timeoutMs: number, headers: Record<string, string> = {}): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = httpGet(url, { agent: false, headers: { connection: 'close', accept: 'application/json', ...headers }, signal: AbortSignal.timeout(timeoutMs) }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
      res.on('error', reject);
    });
    req.on('error', reject);
  });
}

export interface EndpointCheck {
  /** Checked first, in every attempt (production: this version's Deployment has available replicas); throws. */
  precondition?(): Promise<void>;
  /** Extra condition on the Service before probing (production: its selector names our version). */
  checkService?(svc: V1Service): void;
}

/**
 * Waits, for one budget, until the stage's Service has a LoadBalancer ingress and the model answers there
 * as AVAILABLE. A fresh load balancer takes a while to resolve and register targets, so the probe retries
 * every 2 s. Past the endpoint phase deadline: PhaseTimeoutError if no ingress ever came,
 * EndpointUnavailableError (with the last probe error) if it came but never answered; either with the
 * state and log tail of the newest pod behind the Service. An unavailable API is waited out (rideOutOutage).
 */
export async function awaitEndpoint(stage: StageResult, modelName: string, timing: PhaseTiming, check: EndpointCheck = {}): Promise<StageResult> {
  const what = `Service ${stage.namespace}/${stage.serviceName}`;
  const startedAt = stage.switchedAt ?? stage.deployedAt;
  let selector: Record<string, string> | undefined;
  const detail = async (): Promise<string> => {
    try {
      selector ??= (await readService(stage.namespace, stage.serviceName))?.spec?.selector;
    } catch (err) {
      return `(pod state unavailable: ${(err as Error).message})`;
    }
    return selector ? describeTimeout(stage.namespace, selector) : '(no pod found: the Service selects none)';
  };
  const plan: WaitPlan = await withTimeoutDetail(() => planWait(timing, startedAt, what), detail);
  const attempted = await rideOutOutage(plan, async (budgetMs) => {
    const seen = await checkEndpoint(stage, what, modelName, budgetMs, check);
    selector = seen.selector;
    return seen;
  });
  if (attempted.kind === 'unavailable') {
    afterOutage(timing, startedAt, what, attempted);
    return { ...stage, status: 'pending' };
  }
  const seen = attempted.value;
  if (seen.serving) return seen.serving;
  if (!seen.endpoint) {
    await withTimeoutDetail(() => planWait(timing, startedAt, `${what} got no LoadBalancer ingress:`), detail);
    return { ...stage, status: 'pending' };
  }
  try {
    planWait(timing, startedAt, what);
  } catch (err) {
    if (err instanceof PhaseTimeoutError) {
      throw new EndpointUnavailableError(`${what} at ${seen.endpoint} never served model ${modelName}: ${seen.problem}\n${await detail()}`);
    }
    throw err;
  }
  return { ...stage, status: 'pending' };
}

interface EndpointSeen {
  /** The Service's selector, to find its pods for a failure message. */
  selector?: Record<string, string>;
  endpoint?: string;
  /** Why the model did not answer at `endpoint` (the last probe). */
  problem?: string;
  serving?: StageResult;
}

/** One look at an endpoint for `budgetMs`: the Service's ingress, then probes of the model until it answers. */
async function checkEndpoint(stage: StageResult, what: string, modelName: string, budgetMs: number, check: EndpointCheck): Promise<EndpointSeen> {
  const clock = phaseClock();
  const endsAt = clock.now() + budgetMs;
  await check.precondition?.();
  // The Service was applied by the step before; if it is gone, waiting out the deadline cannot help.
  const current = await readService(stage.namespace, stage.serviceName);
  if (!current) throw new EndpointUnavailableError(`${what} does not exist (deleted before it served the model).`);
  const selector = current.spec?.selector;
  const svc = await watchUntil<V1Service, V1Service>(
    collectionPath('Service', stage.namespace),
    { fieldSelector: `metadata.name=${stage.serviceName}` },
    (s, type) => (type !== 'DELETED' && serviceEndpoint(s) ? s : undefined),
    budgetMs,
  );
  if (!svc) return { selector };
  check.checkService?.(svc);
  const endpoint = serviceEndpoint(svc)!;
  const token = await presentedToken(modelName);
  let problem: string | undefined;
  do {
    problem = await probeModel(endpoint, modelName, Math.max(100, Math.min(5000, endsAt - clock.now())), token);
    if (!problem) return { selector: svc.spec?.selector ?? selector, endpoint, serving: { ...stage, status: 'serving', endpoint } };
    await clock.sleep(Math.min(2000, Math.max(0, endsAt - clock.now())));
  } while (clock.now() < endsAt);
  return { selector: svc.spec?.selector ?? selector, endpoint, problem };
}

/** Reads a Service, `undefined` when absent. */
export function readService(namespace: string, name: string): Promise<V1Service | undefined> {
  return readObject<V1Service>({ kind: 'Service', namespace, name });
}

/**
 * Why the Deployment cannot take traffic now (absent, or no available replica), `undefined` if it can.
 * Checked before a Service selector is moved onto it: a switch to pods that are not there is an outage.
 */
export async function deploymentUnavailable(namespace: string, name: string): Promise<string | undefined> {
  const d = await readObject<V1Deployment>({ kind: 'Deployment', namespace, name });
  if (!d) return `Deployment ${namespace}/${name} no longer exists (pruned?)`;
  if ((d.status?.availableReplicas ?? 0) < 1) return `Deployment ${namespace}/${name} has no available replicas`;
  return undefined;
}
