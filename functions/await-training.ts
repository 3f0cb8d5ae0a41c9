/**
 * AwaitTraining: watches the training Job and its pods for one budget (WATCH_BUDGET_SECONDS).
 * Complete → reads metrics.json the trainer wrote and returns `succeeded`. Failed (BackoffLimitExceeded,
 * DeadlineExceeded), pods that cannot be created (FailedCreate events: a missing ServiceAccount, a quota,
 * Pod Security) or a pod stuck in ImagePullBackOff/ErrImagePull/CrashLoopBackOff → TrainingFailedError
 * with the reason, how the failed pod's container ended (exit code, signal, reason such as OOMKilled) and
 * its log tail. Budget spent → `pending` (the state machine loops), also while the Kubernetes API is
 * unavailable (the Job is left alone); past TRAINING_TIMEOUT_SECONDS → PhaseTimeoutError with the latest
 * pod's state and log tail.
 */
import type { V1Job, V1Pod } from '@kubernetes/client-node';
import { getJson, parseS3Uri } from './shared/clients';
import { TrainingFailedError } from './shared/errors';
import { readObject } from './shared/kube';
import { logWait, withLogContext } from './shared/logger';
import { workloadLabels } from './shared/names';
import { FUNCTION_SETTINGS } from './shared/function-settings';
import { afterOutage, planWait, rideOutOutage, trainingTiming } from './shared/phase';
import { loadSettings } from './shared/settings';
import { TrainingSchema, parseInput, stateWith } from './shared/state';
import type { PipelineState, RunContext, TrainingResult } from './shared/types';
import { describeCreateFailure, describeFailure, describePodProblem, describeTimeout, jobOutcome, watchWorkload, withTimeoutDetail, type JobOutcome } from './shared/workloads';

/** Read and validated once, at init: a bad value fails the Lambda's init naming the variable. */
const settings = loadSettings(FUNCTION_SETTINGS.AwaitTraining);
const Input = stateWith({ training: TrainingSchema });

async function awaitTraining(event: PipelineState): Promise<TrainingResult> {
  const { run, training } = parseInput(Input, event, 'AwaitTraining input');
  const what = `Training Job ${training.namespace}/${training.jobName}`;
  const timing = trainingTiming(settings);
  const podLabels = workloadLabels(run.modelName, run.version, 'training');
  const detail = () => describeTimeout(training.namespace, podLabels);
  const plan = await withTimeoutDetail(() => planWait(timing, training.submittedAt, what), detail);
  const attempted = await rideOutOutage(plan, (budgetMs) => checkTraining(run, training, what, podLabels, budgetMs));
  const log = { job: training.jobName, namespace: training.namespace };
  if (attempted.kind === 'unavailable') {
    afterOutage(timing, training.submittedAt, what, attempted); // throws PhaseTimeoutError once the phase is over
    return logWait<TrainingResult>({ ...training, status: 'pending' }, 'training', log);
  }
  if (!attempted.value) {
    await withTimeoutDetail(() => planWait(timing, training.submittedAt, what), detail); // throws once the phase is over
    return logWait<TrainingResult>({ ...training, status: 'pending' }, 'training', log);
  }
  return logWait(attempted.value, 'training', { ...log, metrics: attempted.value.metrics });
}

/** One look at the Job for `budgetMs`: `succeeded`, a TrainingFailedError, or `undefined` when the budget ran out. */
async function checkTraining(run: RunContext, training: TrainingResult, what: string, podLabels: Record<string, string>, budgetMs: number): Promise<TrainingResult | undefined> {
  const job = await readObject<V1Job>({ kind: 'Job', namespace: training.namespace, name: training.jobName });
  if (!job) throw new TrainingFailedError(`${what} does not exist (deleted, or expired by ttlSecondsAfterFinished).`);
  const seen = new Map<string, V1Pod>();
  const outcome = await watchWorkload<V1Job, JobOutcome>('Job', training.namespace, training.jobName, jobOutcome, podLabels, budgetMs, job.metadata?.uid, seen);
  if (!outcome) return undefined;
  if (outcome.kind === 'failed-create') throw new TrainingFailedError(`${what} failed: ${describeCreateFailure(outcome.message)}`);
  if (outcome.kind === 'pod') {
    throw new TrainingFailedError(`${what} failed: ${await describePodProblem(training.namespace, outcome.problem)}`);
  }
  if (outcome.kind === 'failed') {
    throw new TrainingFailedError(`${what} failed: ${await describeFailure(training.namespace, podLabels, outcome.reason, outcome.message, seen)}`);
  }
  return { ...training, status: 'succeeded', completedAt: new Date(outcome.completedAt).toISOString(), metrics: await readMetrics(run, what) };
}

export const handler = withLogContext('AwaitTraining', awaitTraining);

/** metrics.json under the model URI: the container contract says the trainer writes it before exiting 0. */
async function readMetrics(run: RunContext, what: string): Promise<Record<string, number>> {
  const { bucket, key } = parseS3Uri(`${run.modelUri.replace(/\/?$/, '/')}metrics.json`, 'run.modelUri');
  const raw = await getJson<unknown>(bucket, key);
  if (raw === undefined || typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new TrainingFailedError(`${what} completed but s3://${bucket}/${key} is ${raw === undefined ? 'missing' : 'not a JSON object'}: the trainer must write metrics.json under MODEL_OUTPUT_URI.`);
  }
  // The state carries numbers only; anything else stays in the file.
  return Object.fromEntries(Object.entries(raw).filter((e): e is [string, number] => typeof e[1] === 'number' && Number.isFinite(e[1])));
}
