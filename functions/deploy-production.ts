/**
 * DeployProduction: applies this version's production Deployment next to the one serving now, and decides
 * how traffic will move (`$.production.rollout`): a canary when the run's rollout is `canary` and a stable
 * version serves (the Deployment starts with the first step's pods, e.g. 1 of 4; ShiftCanaryTraffic
 * follows), else today's switch (all replicas, then SwitchProductionTraffic): blue/green asked for, a first
 * release, a stable version that cannot serve, or one replica (nothing to split). A drill's
 * `rollout.candidateFault` goes to the canary's pods only, as env FAULT. The Service is not touched here.
 * Returns StageResult `pending` (`$.production`).
 */
import type { V1Service } from '@kubernetes/client-node';
import { CanaryError } from './shared/errors';
import { FUNCTION_SETTINGS } from './shared/function-settings';
import { logger, withLogContext } from './shared/logger';
import { splitOf } from './shared/canary';
import { LABELS, productionDeploymentName } from './shared/names';
import { describeSplit, splitFor } from './shared/rollout';
import { loadSettings } from './shared/settings';
import { parseInput, stateWith } from './shared/state';
import type { PipelineState, RunContext, StageResult } from './shared/types';
import { deployServing, deploymentUnavailable, readService } from './shared/workloads';

/** Read and validated once, at init: a bad value fails the Lambda's init naming the variable. */
const settings = loadSettings(FUNCTION_SETTINGS.DeployProduction);
const Input = stateWith({});

type RolloutDecision = NonNullable<StageResult['rollout']>;

/** Canary or switch, and why, from the run's rollout and what serves production now. */
async function decide(run: RunContext, service: V1Service | undefined): Promise<RolloutDecision> {
  const replicas = settings.SERVING_REPLICAS;
  const split = splitOf(service);
  if (split && split.canaryVersion !== run.version) {
    throw new CanaryError(`another canary (version ${split.canaryVersion} over ${split.stableVersion}) splits production traffic now; release again once it has finished.`);
  }
  const selected = split?.stableVersion ?? service?.spec?.selector?.[LABELS.version] ?? null;
  const stableVersion = selected === run.version ? null : selected;
  if (!run.rollout || run.rollout.strategy === 'blueGreen') return { strategy: 'switch', stableVersion, reason: 'the rollout strategy is blueGreen' };
  if (!stableVersion) return { strategy: 'switch', stableVersion: null, reason: 'first release: no version serves production yet' };
  const unavailable = await deploymentUnavailable(run.namespaces.production, productionDeploymentName(run.modelName, stableVersion));
  if (unavailable) return { strategy: 'switch', stableVersion, reason: `the stable version cannot serve a canary's comparison: ${unavailable}` };
  if (replicas < 2 && run.rollout.steps[0]! < 100) return { strategy: 'switch', stableVersion, reason: 'servingReplicas is 1: one pod cannot be split (set 2 or more for a canary)' };
  return { strategy: 'canary', stableVersion, reason: `canary over ${stableVersion}, steps ${run.rollout.steps.join('/')} %` };
}

async function deployProduction(event: PipelineState): Promise<StageResult> {
  const { run } = parseInput(Input, event, 'DeployProduction input');
  const decision = await decide(run, await readService(run.namespaces.production, run.names.productionService));
  const canary = decision.strategy === 'canary';
  const first = canary ? splitFor(run.rollout!.steps[0]!, settings.SERVING_REPLICAS) : undefined;
  const fault = run.rollout?.candidateFault;
  if (fault && !canary) logger.warn('candidateFault ignored: it applies to a canary only, and this release switches', { reason: decision.reason });
  const result = await deployServing(run, 'production', settings, { replicas: first?.canaryReplicas, fault: canary ? fault : undefined });
  logger.info('Deployment applied', {
    deployment: result.deploymentName,
    namespace: result.namespace,
    rollout: decision,
    ...(first ? { firstStep: describeSplit(first) } : {}),
    ...(canary && fault ? { candidateFault: fault } : {}),
  });
  return { ...result, rollout: decision };
}

export const handler = withLogContext('DeployProduction', deployProduction);
