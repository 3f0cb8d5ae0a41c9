/**
 * ShiftCanaryTraffic: brings the canary to its current step (`$.canary`; the first call starts step 1).
 * The canary's Deployment is scaled to the step's pods and watched until they are ready (one watch budget
 * per call: `scaling` loops back here); only then is the stable version scaled down to the rest, so
 * capacity never drops, and the production Service made to select both versions' pods. The counters of
 * both versions are read as the step's baseline, and the bake starts (`baking`: the BakeCanary Wait, no
 * Lambda held). At 100 % the canary runs all pods and the Service selects it alone, the stable version's
 * pods kept ready for an abort; that step is baked and judged like the others (on the absolute thresholds:
 * stable serves nothing to compare with), and its pass promotes. Idempotent: scaling to a count and
 * applying the Service are.
 */
import { readVersionCounters } from './shared/canary-analysis';
import { firstStep, scaleDeployment, splitService, startBake } from './shared/canary';
import { CanaryError, InvalidInputError, RolloutFailedError } from './shared/errors';
import { FUNCTION_SETTINGS } from './shared/function-settings';
import { applyObject } from './shared/kube';
import { logger, withLogContext } from './shared/logger';
import { productionExposure, SERVING_PORT } from './shared/manifests';
import { PREVIOUS_VERSION_ANNOTATION, productionDeploymentName, workloadLabels } from './shared/names';
import { phaseClock, rolloutTiming } from './shared/phase';
import { describeSplit } from './shared/rollout';
import { loadSettings } from './shared/settings';
import { CanarySchema, StageSchema, parseInput, stateWith } from './shared/state';
import type { CanaryState, PipelineState } from './shared/types';
import { awaitRollout, readService } from './shared/workloads';

/** Read and validated once, at init: a bad value fails the Lambda's init naming the variable. */
const settings = loadSettings(FUNCTION_SETTINGS.ShiftCanaryTraffic);
const Input = stateWith({ production: StageSchema, canary: CanarySchema.optional() });

async function shiftCanaryTraffic(event: PipelineState): Promise<CanaryState> {
  const { run, production, canary } = parseInput(Input, event, 'ShiftCanaryTraffic input');
  const rollout = run.rollout;
  const stableVersion = production.rollout?.stableVersion;
  if (!rollout || production.rollout?.strategy !== 'canary' || !stableVersion) {
    throw new InvalidInputError('ShiftCanaryTraffic input is invalid: production.rollout must be a canary with a stable version (set by DeployProduction).');
  }
  const clock = phaseClock();
  const c = canary ?? firstStep(stableVersion, settings.SERVING_REPLICAS, rollout, clock.now());
  if (c.status !== 'scaling') return c; // a retry after the step moved on: nothing left to do

  const namespace = run.namespaces.production;
  if (!(await scaleDeployment(namespace, run.names.productionDeployment, c.canaryReplicas))) {
    throw new RolloutFailedError(`Deployment ${namespace}/${run.names.productionDeployment} does not exist (deleted during its canary).`);
  }
  // The step's deadline counts from its own scaling, not from the Deployment's creation many bakes ago.
  const rolled = await awaitRollout({ ...production, deployedAt: c.scaledAt }, workloadLabels(run.modelName, run.version, 'production'), rolloutTiming(settings));
  if (rolled.status !== 'ready') return c;
  const split = { weight: c.weight, canaryReplicas: c.canaryReplicas, stableReplicas: c.stableReplicas, reachablePercent: c.reachablePercent };
  // The last step is judged too, on all of production's traffic: the Service selects the canary alone while
  // the stable version keeps its last step's pods, ready, so a failing analysis can put it back at once
  // (Cleanup retires it once the release is recorded). Either way the Service stays marked as a canary over
  // the stable version, whose own predecessor it keeps as previous version for rollback.
  const stableName = productionDeploymentName(run.modelName, c.stableVersion);
  if (c.weight < 100 && !(await scaleDeployment(namespace, stableName, c.stableReplicas))) {
    throw new CanaryError(`the stable version's Deployment ${namespace}/${stableName} is gone: nothing to compare the canary with or to go back to.`);
  }
  const current = await readService(namespace, run.names.productionService);
  const previousOfStable = current?.metadata?.annotations?.[PREVIOUS_VERSION_ANNOTATION] ?? null;
  await applyObject(splitService(run, c.stableVersion, productionExposure(settings), previousOfStable === run.version ? null : previousOfStable, c.weight >= 100));
  const [canaryCounters, stableCounters] = await Promise.all([
    readVersionCounters(namespace, workloadLabels(run.modelName, run.version, 'production'), SERVING_PORT),
    readVersionCounters(namespace, workloadLabels(run.modelName, c.stableVersion, 'production'), SERVING_PORT),
  ]);
  const next = startBake(c, { canary: canaryCounters, stable: stableCounters }, rollout, clock.now());
  // The reachable share is what the pod counts allow; the served share is measured by AnalyzeCanary.
  logger.info('canary step baking', { step: c.step + 1, of: rollout.steps.length, split: describeSplit(split), stable: c.stableVersion, bakeSeconds: rollout.bakeSeconds });
  return next;
}

export const handler = withLogContext('ShiftCanaryTraffic', shiftCanaryTraffic);
