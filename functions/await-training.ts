/**
 * AwaitTraining: watches the training Job and its pods for one budget (WATCH_BUDGET_SECONDS).
 * Complete → reads metrics.json the trainer wrote and returns `succeeded`. Failed (BackoffLimitExceeded,
 * DeadlineExceeded), pods that cannot be created (FailedCreate events: a missing ServiceAccount, a quota,
 * Pod Security) or a pod stuck in ImagePullBackOff/ErrImagePull/CrashLoopBackOff → TrainingFailedError
 * with the reason, how the failed pod's container ended (exit code, signal, reason such as OOMKilled) and
 * its log tail. After CheckTraining's `watch` it watches for the `waitSeconds` planned (until shortly after
 * the end the trainer's progress.json predicts), at most WATCH_BUDGET_SECONDS. Budget spent → the next
 * wait planned as CheckTraining plans it (`pending` with a Wait, or `watch` again), also while the
 * Kubernetes API is unavailable (the Job is left alone); past TRAINING_TIMEOUT_SECONDS → PhaseTimeoutError
 * with the latest pod's state and log tail.
 */
import type { V1Job, V1Pod } from '@kubernetes/client-node';
import { TrainingFailedError } from './shared/errors';
import { readObject } from './shared/kube';
import { logWait, withLogContext } from './shared/logger';
import { workloadLabels } from './shared/names';
import { FUNCTION_SETTINGS } from './shared/function-settings';
import { afterOutage, planWait, rideOutOutage, trainingTiming } from './shared/phase';
import { loadSettings } from './shared/settings';
import { TrainingSchema, parseInput, stateWith } from './shared/state';
import { planNextCheck, readTrainingMetrics, type TrainingLook } from './shared/training';
import { planTrainingCheck } from './shared/training-wait';
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
  const planned = await withTimeoutDetail(() => planWait(timing, training.submittedAt, what), detail);
  // CheckTraining's plan: watch until shortly after the predicted end, not a whole budget.
  const watchMs = training.status === 'watch' && training.waitSeconds !== undefined ? training.waitSeconds * 1000 : Infinity;
  const budgetMs = Math.min(planned.budgetMs, watchMs);
  const plan = { ...planned, budgetMs, endsAt: planned.endsAt - planned.budgetMs + budgetMs };
  const attempted = await rideOutOutage(plan, (budgetMs) => checkTraining(run, training, what, podLabels, budgetMs));
  const log = { job: training.jobName, namespace: training.namespace };
  if (attempted.kind === 'unavailable') {
    afterOutage(timing, training.submittedAt, what, attempted); // throws PhaseTimeoutError once the phase is over
    return logWait<TrainingResult>({ ...training, ...planTrainingCheck(settings, { submittedAt: training.submittedAt }) }, 'training', log);
  }
  const { value } = attempted;
  if (value.kind === 'running') {
    await withTimeoutDetail(() => planWait(timing, training.submittedAt, what), detail); // throws once the phase is over
    const next = await planNextCheck(settings, run, training, value.startedAt);
    return logWait(next, 'training', { ...log, waitSeconds: next.waitSeconds, progress: next.progress });
  }
  return logWait(value.result, 'training', { ...log, metrics: value.result.metrics });
}

/** A watch of the Job for `budgetMs`: `succeeded`, a TrainingFailedError, or `running` when the budget ran out. */
async function checkTraining(run: RunContext, training: TrainingResult, what: string, podLabels: Record<string, string>, budgetMs: number): Promise<TrainingLook> {
  const job = await readObject<V1Job>({ kind: 'Job', namespace: training.namespace, name: training.jobName });
  if (!job) throw new TrainingFailedError(`${what} does not exist (deleted, or expired by ttlSecondsAfterFinished).`);
  const seen = new Map<string, V1Pod>();
  const outcome = await watchWorkload<V1Job, JobOutcome>('Job', training.namespace, training.jobName, jobOutcome, podLabels, budgetMs, job.metadata?.uid, seen);
  const startTime = job.status?.startTime;
  if (!outcome) return { kind: 'running', startedAt: startTime ? new Date(startTime).toISOString() : undefined };
  if (outcome.kind === 'failed-create') throw new TrainingFailedError(`${what} failed: ${describeCreateFailure(outcome.message)}`);
  if (outcome.kind === 'pod') {
    throw new TrainingFailedError(`${what} failed: ${await describePodProblem(training.namespace, outcome.problem)}`);
  }
  if (outcome.kind === 'failed') {
    throw new TrainingFailedError(`${what} failed: ${await describeFailure(training.namespace, podLabels, outcome.reason, outcome.message, seen)}`);
  }
  const { waitSeconds: _planned, ...rest } = training;
  return { kind: 'succeeded', result: { ...rest, status: 'succeeded', completedAt: new Date(outcome.completedAt).toISOString(), metrics: await readTrainingMetrics(run, what) } };
}

export const handler = withLogContext('AwaitTraining', awaitTraining);

