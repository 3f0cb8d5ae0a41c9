/**
 * SubmitTraining: applies the training Job (server-side apply on a deterministic name, so a retry neither
 * fails on 409 nor starts a second Job). Returns TrainingResult `pending` (`$.training`); submittedAt is the
 * Job's creation time, so a retried submit keeps the phase deadline where it was.
 */
import type { V1Job } from '@kubernetes/client-node';
import { applyObject } from './shared/kube';
import { logger, withLogContext } from './shared/logger';
import { trainingJob, workloadSettings } from './shared/manifests';
import { parseInput, stateWith } from './shared/state';
import type { PipelineState, TrainingResult } from './shared/types';

const Input = stateWith({});

async function submitTrainingJob(event: PipelineState): Promise<TrainingResult> {
  const { run } = parseInput(Input, event, 'SubmitTraining input');
  const applied = await applyObject<V1Job>(trainingJob(run, workloadSettings()));
  const created = applied.metadata?.creationTimestamp;
  logger.info('training Job applied', { job: run.names.trainingJob, namespace: run.namespaces.staging, createdAt: created });
  return {
    jobName: run.names.trainingJob,
    namespace: run.namespaces.staging,
    submittedAt: created ? new Date(created).toISOString() : new Date().toISOString(),
    status: 'pending',
  };
}

export const handler = withLogContext('SubmitTraining', submitTrainingJob);
