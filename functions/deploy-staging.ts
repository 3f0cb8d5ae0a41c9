/**
 * DeployStaging: applies the staging Deployment of the trained version (server-side apply, idempotent).
 * Returns StageResult `pending` (`$.staging`); deployedAt is the Deployment's creation time, so a retry
 * keeps the rollout deadline where it was.
 */
import type { V1Deployment } from '@kubernetes/client-node';
import { applyObject } from './shared/kube';
import { servingDeployment, workloadSettings } from './shared/manifests';
import { parseInput, stateWith } from './shared/state';
import type { PipelineState, StageResult } from './shared/types';

const Input = stateWith({});

export async function handler(event: PipelineState): Promise<StageResult> {
  const { run } = parseInput(Input, event, 'DeployStaging input');
  const applied = await applyObject<V1Deployment>(servingDeployment(run, 'staging', workloadSettings()));
  const created = applied.metadata?.creationTimestamp;
  return {
    stage: 'staging',
    namespace: run.namespaces.staging,
    deploymentName: run.names.stagingDeployment,
    serviceName: run.names.stagingService,
    deployedAt: created ? new Date(created).toISOString() : new Date().toISOString(),
    status: 'pending',
  };
}
