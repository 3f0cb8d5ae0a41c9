/**
 * DeployStaging: applies the staging Deployment of the trained version (server-side apply, idempotent).
 * Returns StageResult `pending` (`$.staging`); deployedAt is the Deployment's creation time, so a retry
 * keeps the rollout deadline where it was.
 */
import { logger, withLogContext } from './shared/logger';
import { parseInput, stateWith } from './shared/state';
import type { PipelineState, StageResult } from './shared/types';
import { deployServing } from './shared/workloads';

const Input = stateWith({});

async function deployStaging(event: PipelineState): Promise<StageResult> {
  const { run } = parseInput(Input, event, 'DeployStaging input');
  const result = await deployServing(run, 'staging');
  logger.info('Deployment applied', { deployment: result.deploymentName, namespace: result.namespace });
  return result;
}

export const handler = withLogContext('DeployStaging', deployStaging);
