/**
 * DeployProduction: applies this version's production Deployment next to the one serving now (blue/green:
 * the current Deployment and the Service are not touched here; SwitchProductionTraffic moves traffic once
 * this one is rolled out). Returns StageResult `pending` (`$.production`).
 */
import { FUNCTION_SETTINGS } from './shared/function-settings';
import { loadSettings } from './shared/settings';
import { parseInput, stateWith } from './shared/state';
import type { PipelineState, StageResult } from './shared/types';
import { deployServing } from './shared/workloads';

/** Read and validated once, at init: a bad value fails the Lambda's init naming the variable. */
const settings = loadSettings(FUNCTION_SETTINGS.DeployProduction);
const Input = stateWith({});

export async function handler(event: PipelineState): Promise<StageResult> {
  const { run } = parseInput(Input, event, 'DeployProduction input');
  return deployServing(run, 'production', settings);
}
