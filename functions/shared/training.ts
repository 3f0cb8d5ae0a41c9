/**
 * The training Job as CheckTraining and AwaitTraining see it: one look (a read of the Job, its pods and
 * its FailedCreate events: no watch) that answers done, running or failed — with the same failures, in the
 * same words, as AwaitTraining's watch — and the next wait planned from the trainer's progress.json.
 */
import type { CoreV1Event, V1Job, V1Pod } from '@kubernetes/client-node';
import { getJson, parseS3Uri } from './clients';
import { TrainingFailedError } from './errors';
import type { TRAINING_WAIT } from './function-settings';
import { listObjects, readObject } from './kube';
import { logger } from './logger';
import { labelSelector } from './names';
import { readProgress } from './progress';
import type { SettingsOf } from './settings';
import { planTrainingCheck } from './training-wait';
import type { RunContext, TrainingResult } from './types';
import { describeCreateFailure, describeFailure, describePodProblem, failedCreateEvent, jobOutcome, podProblem } from './workloads';

/** What one look at a training Job found: done (with its metrics), or still running since `startedAt`. */
export type TrainingLook = { kind: 'succeeded'; result: TrainingResult } | { kind: 'running'; startedAt?: string };

/**
 * One look at the Job: `succeeded` with metrics.json, `running`, or a TrainingFailedError for a failed or
 * missing Job, pods that cannot be created (FailedCreate) and pods stuck in ImagePullBackOff, ErrImagePull,
 * CrashLoopBackOff… — with the reason, how the container ended and its log tail.
 */
export async function lookAtTraining(run: RunContext, training: TrainingResult, what: string, podLabels: Record<string, string>): Promise<TrainingLook> {
  const { namespace, jobName } = training;
  const job = await readObject<V1Job>({ kind: 'Job', namespace, name: jobName });
  if (!job) throw new TrainingFailedError(`${what} does not exist (deleted, or expired by ttlSecondsAfterFinished).`);
  const outcome = jobOutcome(job, 'MODIFIED');
  if (outcome?.kind === 'complete') {
    const { waitSeconds: _planned, ...rest } = training;
    return { kind: 'succeeded', result: { ...rest, status: 'succeeded', completedAt: new Date(outcome.completedAt).toISOString(), metrics: await readTrainingMetrics(run, what) } };
  }
  if (outcome?.kind === 'failed') {
    throw new TrainingFailedError(`${what} failed: ${await describeFailure(namespace, podLabels, outcome.reason, outcome.message)}`);
  }
  const pods = await listObjects<V1Pod>('Pod', namespace, { labelSelector: labelSelector(podLabels) });
  for (const pod of pods.items) {
    const problem = podProblem(pod);
    if (problem) throw new TrainingFailedError(`${what} failed: ${await describePodProblem(namespace, problem)}`);
  }
  const events = await listObjects<CoreV1Event>('Event', namespace, { fieldSelector: `involvedObject.kind=Job,involvedObject.name=${jobName},reason=FailedCreate` });
  const created = failedCreateEvent(job.metadata?.uid);
  for (const event of events.items) {
    const failure = created(event, 'ADDED');
    if (failure) throw new TrainingFailedError(`${what} failed: ${describeCreateFailure(failure.message)}`);
  }
  const startTime = job.status?.startTime;
  return { kind: 'running', startedAt: startTime ? new Date(startTime).toISOString() : undefined };
}

/**
 * `$.training` for a Job still running: the next Wait or watch, planned from its progress.json (absent or
 * malformed: planned without, and said once in the log).
 */
export async function planNextCheck(settings: SettingsOf<typeof TRAINING_WAIT>, run: RunContext, training: TrainingResult, startedAt: string | undefined): Promise<TrainingResult> {
  const { progress, problem } = await readProgress(run.modelUri);
  if (problem && problem !== 'missing' && training.progress === undefined) logger.warn('progress.json ignored', { problem });
  const plan = planTrainingCheck(settings, { submittedAt: training.submittedAt, startedAt, progress });
  const latest = progress ?? training.progress;
  return { ...training, ...plan, ...(latest ? { progress: latest } : {}) };
}

/** metrics.json under the model URI: the container contract says the trainer writes it before exiting 0. */
export async function readTrainingMetrics(run: RunContext, what: string): Promise<Record<string, number>> {
  const { bucket, key } = parseS3Uri(`${run.modelUri.replace(/\/?$/, '/')}metrics.json`, 'run.modelUri');
  const raw = await getJson<unknown>(bucket, key);
  if (raw === undefined || typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new TrainingFailedError(`${what} completed but s3://${bucket}/${key} is ${raw === undefined ? 'missing' : 'not a JSON object'}: the trainer must write metrics.json under MODEL_OUTPUT_URI.`);
  }
  // The state carries numbers only; anything else stays in the file.
  return Object.fromEntries(Object.entries(raw).filter((e): e is [string, number] => typeof e[1] === 'number' && Number.isFinite(e[1])));
}
