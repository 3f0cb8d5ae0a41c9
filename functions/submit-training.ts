/**
 * SubmitTraining: applies the training Job (server-side apply on a deterministic name, so a retry neither
 * fails on 409 nor starts a second Job). Returns TrainingResult `pending` (`$.training`); submittedAt is the
 * Job's creation time, so a retried submit keeps the phase deadline where it was.
 */
import type { V1Job } from '@kubernetes/client-node';
import { applyObject } from './shared/kube';
import { FUNCTION_SETTINGS } from './shared/function-settings';
import { logger, withLogContext } from './shared/logger';
import { trainingJob } from './shared/manifests';
import { loadSettings } from './shared/settings';
import { parseInput, stateWith } from './shared/state';
import type { PipelineState, TrainingResult } from './shared/types';

/** Read and validated once, at init: a bad value fails the Lambda's init naming the variable. */
const settings = loadSettings(FUNCTION_SETTINGS.SubmitTraining);
const Input = stateWith({});

async function submitTrainingJob(event: PipelineState): Promise<TrainingResult> {
  const { run } = parseInput(Input, event, 'SubmitTraining input');
  const applied = await applyObject<V1Job>(trainingJob(run, settings));
  const created = applied.metadata?.creationTimestamp;
  logger.info('training Job applied', { job: run.names.trainingJob, namespace: run.namespaces.staging, createdAt: created });
  return {
    jobName: run.names.trainingJob,
    namespace: run.namespaces.staging,
    submittedAt: created ? new Date(created).toISOString() : new Date().toISOString(),
    status: 'pending',
    // What the pod asks for, as manifests.ts puts it in the Job: the run's cost estimate prices it.
    request: { cpu: settings.TRAINING_CPU, gpus: settings.TRAINING_PLACEMENT.gpus ?? 0 },
  };
}

export const handler = withLogContext('SubmitTraining', submitTrainingJob);
