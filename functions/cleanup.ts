/**
 * Cleanup and CleanupStaging: deletes what a run left in the staging namespace (training Job, staging
 * Deployment and Service). On the failure path (`$.error` set) it also deletes this version's production
 * Deployment unless production traffic was switched to it. Then it prunes production Deployments to the
 * newest KEEP_PRODUCTION_VERSIONS (default 3) — never the one the Service selects, nor the version it
 * selected before — so rollback has somewhere to go. Deletes tolerate 404, so it is safe to retry, and it
 * works without `run` (Prepare failed: nothing was created). Returns `{ deleted }` (`$.cleanup`).
 */
import type { V1Deployment } from '@kubernetes/client-node';
import { z } from 'zod';
import { numberEnv } from './shared/config';
import { deleteObject, listObjects, type ManagedKind } from './shared/kube';
import { LABELS, PREVIOUS_VERSION_ANNOTATION, labelSelector } from './shared/names';
import { RunSchema, parseInput } from './shared/state';
import type { RunContext } from './shared/types';
import { readService } from './shared/workloads';

const Input = z.object({ run: RunSchema.optional(), error: z.unknown().optional() });

export async function handler(event: unknown): Promise<{ deleted: string[] }> {
  const { run, error } = parseInput(Input, event, 'Cleanup input');
  if (!run) return { deleted: [] };
  const deleted: string[] = [];
  const remove = async (kind: ManagedKind, namespace: string, name: string): Promise<void> => {
    if (await deleteObject(kind, namespace, name)) deleted.push(`${kind}/${namespace}/${name}`);
  };
  const staging = run.namespaces.staging;
  await remove('Job', staging, run.names.trainingJob);
  await remove('Deployment', staging, run.names.stagingDeployment);
  await remove('Service', staging, run.names.stagingService);

  const service = await readService(run.namespaces.production, run.names.productionService);
  const selected = service?.spec?.selector?.[LABELS.version];
  const keep = new Set([selected, service?.metadata?.annotations?.[PREVIOUS_VERSION_ANNOTATION]].filter((v): v is string => Boolean(v)));
  if (error !== undefined && selected !== run.version) {
    await remove('Deployment', run.namespaces.production, run.names.productionDeployment);
  } else {
    keep.add(run.version);
  }
  await pruneProduction(run, keep, remove);
  return { deleted };
}

async function pruneProduction(run: RunContext, keep: Set<string>, remove: (k: ManagedKind, ns: string, n: string) => Promise<void>): Promise<void> {
  const max = numberEnv('KEEP_PRODUCTION_VERSIONS', 3, { min: 1, max: 100 });
  const list = await listObjects<V1Deployment>('Deployment', run.namespaces.production, {
    labelSelector: labelSelector({ [LABELS.name]: run.modelName, [LABELS.managedBy]: 'mlpipe', [LABELS.stage]: 'production' }),
  });
  // Versions sort by time (<yyyymmdd>-<hhmmss>-<hash>): newest first.
  const candidates = list.items
    .map((d) => ({ name: d.metadata?.name, version: d.metadata?.labels?.[LABELS.version] }))
    .filter((d): d is { name: string; version: string } => Boolean(d.name && d.version) && !(d.version === run.version && !keep.has(run.version)))
    .sort((a, b) => b.version.localeCompare(a.version));
  const kept = new Set(keep);
  for (const d of candidates) {
    if (kept.has(d.version)) continue;
    if (kept.size < max) kept.add(d.version);
    else await remove('Deployment', run.namespaces.production, d.name);
  }
}
