/**
 * SubmitTraining: applies the training Job (server-side apply on a deterministic name, so a retry neither
 * fails on 409 nor starts a second Job). Returns TrainingResult `pending` (`$.training`); submittedAt is the
 * Job's creation time, so a retried submit keeps the phase deadline where it was.
 */
import type { V1Job } from '@kubernetes/client-node';
import { applyObject } from './shared/kube';
import { trainingJob, workloadSettings } from './shared/manifests';
import { parseInput, stateWith } from './shared/state';
import type { PipelineState, TrainingResult } from './shared/types';

const Input = stateWith({});

export async function handler(event: PipelineState): Promise<TrainingResult> {
  const { run } = parseInput(Input, event, 'SubmitTraining input');
  const applied = await applyObject<V1Job>(trainingJob(run, workloadSettings()));
  const created = applied.metadata?.creationTimestamp;
  return {
    jobName: run.names.trainingJob,
    namespace: run.namespaces.staging,
    submittedAt: created ? new Date(created).toISOString() : new Date().toISOString(),
    status: 'pending',
  };
}
