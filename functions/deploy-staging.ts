/**
 * DeployStaging: applies the staging Deployment of the trained version (server-side apply, idempotent).
 * Returns StageResult `pending` (`$.staging`); deployedAt is the Deployment's creation time, so a retry
 * keeps the rollout deadline where it was.
 */
import { FUNCTION_SETTINGS } from './shared/function-settings';
import { logger, withLogContext } from './shared/logger';
import { loadSettings } from './shared/settings';
import { parseInput, stateWith } from './shared/state';
import type { PipelineState, StageResult } from './shared/types';
import { deployServing } from './shared/workloads';

/** Read and validated once, at init: a bad value fails the Lambda's init naming the variable. */
const settings = loadSettings(FUNCTION_SETTINGS.DeployStaging);
const Input = stateWith({});

async function deployStaging(event: PipelineState): Promise<StageResult> {
  const { run } = parseInput(Input, event, 'DeployStaging input');
  const result = await deployServing(run, 'staging', settings);
  logger.info('Deployment applied', { deployment: result.deploymentName, namespace: result.namespace });
  return result;
}

export const handler = withLogContext('DeployStaging', deployStaging);
