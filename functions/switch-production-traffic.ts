/**
 * SwitchProductionTraffic (blue/green, and a canary's promotion at 100 %): points the stable production
 * Service `<model>` at this version's pods by its selector, creating the Service on the first release. Returns StageResult `exposed` with
 * previousVersion — the version the Service selected before (null on the first release). The previous
 * version is also kept on the Service as an annotation, so a retried switch (which finds the selector
 * already moved) still reports it, and rollback can find it.
 */
import { splitOf } from './shared/canary';
import { applyObject } from './shared/kube';
import { FUNCTION_SETTINGS } from './shared/function-settings';
import { logger, withLogContext } from './shared/logger';
import { productionExposure, productionServiceTarget, servingService } from './shared/manifests';
import { LABELS, PREVIOUS_VERSION_ANNOTATION } from './shared/names';
import { loadSettings } from './shared/settings';
import { StageSchema, parseInput, stateWith } from './shared/state';
import type { PipelineState, StageResult } from './shared/types';
import { readService } from './shared/workloads';

/** Read and validated once, at init: a bad value fails the Lambda's init naming the variable. */
const settings = loadSettings(FUNCTION_SETTINGS.SwitchProductionTraffic);
const Input = stateWith({ production: StageSchema });

async function switchProductionTraffic(event: PipelineState): Promise<StageResult> {
  const { run, production } = parseInput(Input, event, 'SwitchProductionTraffic input');
  const current = await readService(run.namespaces.production, run.names.productionService);
  // After a canary (the Service still marked as one) what served before is the canary's stable version.
  const selected = splitOf(current)?.stableVersion ?? current?.spec?.selector?.[LABELS.version] ?? null;
  const previousVersion = selected === run.version ? (current?.metadata?.annotations?.[PREVIOUS_VERSION_ANNOTATION] ?? null) : selected;
  await applyObject(servingService(productionServiceTarget(run), productionExposure(settings), previousVersion));
  logger.info('production traffic switched', { from: previousVersion, to: run.version, serviceName: run.names.productionService, namespace: run.namespaces.production });
  return { ...production, status: 'exposed', previousVersion, switchedAt: new Date().toISOString() };
}

export const handler = withLogContext('SwitchProductionTraffic', switchProductionTraffic);
