/**
 * CheckTraining: one cheap look at the training Job (a read of the Job, its pods and FailedCreate events,
 * and the trainer's progress.json; no watch), then the plan for the next one. Returns `$.training` with
 * status `succeeded` (metrics.json read), `pending` (WaitForTraining sleeps `waitSeconds`, no Lambda
 * running) or `watch` (AwaitTraining watches for `waitSeconds`): training-wait.ts plans it from the
 * progress report. Fails with TrainingFailedError exactly as AwaitTraining does (failed Job, FailedCreate,
 * ImagePullBackOff, CrashLoopBackOff… with exit code, reason and log tail), so a failure is seen at the
 * next check at the latest: TRAINING_CHECK_MAX_WAIT_SECONDS after it happened. Past TRAINING_TIMEOUT_SECONDS
 * → PhaseTimeoutError. An unavailable Kubernetes API is ridden out briefly, then answered with a back-off
 * Wait (the Job is left alone).
 */
import { FUNCTION_SETTINGS } from './shared/function-settings';
import { logWait, withLogContext } from './shared/logger';
import { workloadLabels } from './shared/names';
import { afterOutage, phaseClock, planWait, rideOutOutage, trainingTiming } from './shared/phase';
import { loadSettings } from './shared/settings';
import { TrainingSchema, parseInput, stateWith } from './shared/state';
import { lookAtTraining, planNextCheck } from './shared/training';
import { planTrainingCheck } from './shared/training-wait';
import type { PipelineState, TrainingResult } from './shared/types';
import { describeTimeout, withTimeoutDetail } from './shared/workloads';

/** Read and validated once, at init: a bad value fails the Lambda's init naming the variable. */
const settings = loadSettings(FUNCTION_SETTINGS.CheckTraining);
const Input = stateWith({ training: TrainingSchema });
/** How long one check rides out an unavailable API before it answers with a Wait (the Lambda runs 60 s). */
const OUTAGE_BUDGET_MS = 20_000;

async function checkTraining(event: PipelineState): Promise<TrainingResult> {
  const { run, training } = parseInput(Input, event, 'CheckTraining input');
  const what = `Training Job ${training.namespace}/${training.jobName}`;
  const timing = trainingTiming(settings);
  const podLabels = workloadLabels(run.modelName, run.version, 'training');
  const plan = await withTimeoutDetail(() => planWait(timing, training.submittedAt, what), () => describeTimeout(training.namespace, podLabels));
  const now = phaseClock().now();
  const attempted = await rideOutOutage({ ...plan, endsAt: Math.min(plan.endsAt, now + OUTAGE_BUDGET_MS) }, () => lookAtTraining(run, training, what, podLabels));
  const log = { job: training.jobName, namespace: training.namespace };
  if (attempted.kind === 'unavailable') {
    afterOutage(timing, training.submittedAt, what, attempted); // throws PhaseTimeoutError once the phase is over
    return logWait<TrainingResult>({ ...training, ...planTrainingCheck(settings, { submittedAt: training.submittedAt }) }, 'training', log);
  }
  const look = attempted.value;
  if (look.kind === 'succeeded') return logWait(look.result, 'training', { ...log, metrics: look.result.metrics });
  const next = await planNextCheck(settings, run, training, look.startedAt);
  return logWait(next, 'training', { ...log, waitSeconds: next.waitSeconds, progress: next.progress });
}

export const handler = withLogContext('CheckTraining', checkTraining);
