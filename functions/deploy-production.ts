/**
 * DeployProduction: applies this version's production Deployment next to the one serving now (blue/green:
 * the current Deployment and the Service are not touched here; SwitchProductionTraffic moves traffic once
 * this one is rolled out). Returns StageResult `pending` (`$.production`).
 */
import type { V1Deployment } from '@kubernetes/client-node';
import { applyObject } from './shared/kube';
import { servingDeployment, workloadSettings } from './shared/manifests';
import { parseInput, stateWith } from './shared/state';
import type { PipelineState, StageResult } from './shared/types';

const Input = stateWith({});

export async function handler(event: PipelineState): Promise<StageResult> {
  const { run } = parseInput(Input, event, 'DeployProduction input');
  const applied = await applyObject<V1Deployment>(servingDeployment(run, 'production', workloadSettings()));
  const created = applied.metadata?.creationTimestamp;
  return {
    stage: 'production',
    namespace: run.namespaces.production,
    deploymentName: run.names.productionDeployment,
    serviceName: run.names.productionService,
    deployedAt: created ? new Date(created).toISOString() : new Date().toISOString(),
    status: 'pending',
  };
}
