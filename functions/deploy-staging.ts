/**
 * DeployStaging: applies the staging Deployment of the trained version (server-side apply, idempotent).
 * Returns StageResult `pending` (`$.staging`); deployedAt is the Deployment's creation time, so a retry
 * keeps the rollout deadline where it was.
 */
import { FUNCTION_SETTINGS } from './shared/function-settings';
import { loadSettings } from './shared/settings';
import { parseInput, stateWith } from './shared/state';
import type { PipelineState, StageResult } from './shared/types';
import { deployServing } from './shared/workloads';

/** Read and validated once, at init: a bad value fails the Lambda's init naming the variable. */
const settings = loadSettings(FUNCTION_SETTINGS.DeployStaging);
const Input = stateWith({});

export async function handler(event: PipelineState): Promise<StageResult> {
  const { run } = parseInput(Input, event, 'DeployStaging input');
  return deployServing(run, 'staging', settings);
}
