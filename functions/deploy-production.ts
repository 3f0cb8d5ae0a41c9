/**
 * DeployProduction: applies this version's production Deployment next to the one serving now (blue/green:
 * the current Deployment and the Service are not touched here; SwitchProductionTraffic moves traffic once
 * this one is rolled out). Returns StageResult `pending` (`$.production`).
 */
import { FUNCTION_SETTINGS } from './shared/function-settings';
import { logger, withLogContext } from './shared/logger';
import { loadSettings } from './shared/settings';
import { parseInput, stateWith } from './shared/state';
import type { PipelineState, StageResult } from './shared/types';
import { deployServing } from './shared/workloads';

/** Read and validated once, at init: a bad value fails the Lambda's init naming the variable. */
const settings = loadSettings(FUNCTION_SETTINGS.DeployProduction);
const Input = stateWith({});

async function deployProduction(event: PipelineState): Promise<StageResult> {
  const { run } = parseInput(Input, event, 'DeployProduction input');
  const result = await deployServing(run, 'production', settings);
  logger.info('Deployment applied', { deployment: result.deploymentName, namespace: result.namespace });
  return result;
}

export const handler = withLogContext('DeployProduction', deployProduction);
