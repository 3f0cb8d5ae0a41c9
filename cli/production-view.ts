/**
 * The PRODUCTION VIEW of one model: what serves now and since when, how it got there (every release,
 * rollback and canary rollback, newest first) and the versions kept for `mlpipe rollback`. Read from the
 * registry (models/<model>/production.json); the retained versions from the production namespace's
 * Deployments when the cluster can be read (local mode; on AWS with the stack's ProductionNamespace output
 * and the caller's access to the cluster, else null), since retention lives there (retention.ts).
 * `mlpipe production` prints it (text or `-o json`); the console's model page renders it.
 */
import { z } from 'zod';
import { readProduction } from '../functions/shared/registry';
import { listProductionVersions } from '../functions/shared/retention';
import { CliError } from './io';
import type { Target } from './target';

const Time = z.string().describe('ISO 8601 time');

export const ProductionEventSchema = z.object({
  version: z.string(),
  /** release: a run released it; rollback: `mlpipe rollback` put it back; canary-rollback: a release's canary failed and it kept serving. */
  action: z.enum(['release', 'rollback', 'canary-rollback']),
  at: Time,
  by: z.string().nullable(),
  /** The run that released it (release, canary-rollback). */
  run: z.string().nullable(),
  /** A canary-rollback: the version whose canary failed, and why. */
  canary: z.object({ version: z.string(), reasons: z.array(z.string()) }).nullable(),
});

export const ProductionViewSchema = z
  .object({
    model: z.string(),
    /** Null when nothing was ever released. */
    serving: z
      .object({
        version: z.string(),
        endpoint: z.string().nullable(),
        since: Time,
        /** How it came to serve (the history's newest entry that switched production). */
        how: z.enum(['release', 'rollback']),
        by: z.string().nullable(),
        previousVersion: z.string().nullable(),
      })
      .nullable(),
    history: z.array(ProductionEventSchema),
    /**
     * Production Deployments kept (scaled to 0) as rollback targets, newest first, with when each stopped
     * serving; null when the cluster was not read (AWS: the registry has the history, the cluster the rest).
     */
    retained: z.array(z.object({ version: z.string(), replicas: z.number().int(), retiredAt: Time.nullable() })).nullable(),
  })
  .describe('What serves production for one model, as `mlpipe production -o json` prints it');

export type ProductionView = z.infer<typeof ProductionViewSchema>;

export async function readProductionView(target: Target, model: string): Promise<ProductionView> {
  const record = await readProduction(model);
  const history: ProductionView['history'] = (record?.history ?? [])
    .map((h) => ({
      version: h.version,
      action: h.action,
      at: h.at,
      by: h.by ?? null,
      run: h.executionArn?.split(':').pop() ?? null,
      canary: h.canary && h.action === 'canary-rollback' ? { version: h.canary.version, reasons: h.canary.failure?.reasons ?? [] } : null,
    }))
    .reverse();
  const switched = history.find((h) => h.action !== 'canary-rollback');
  let retained: ProductionView['retained'] = null;
  if (target.namespaces) {
    try {
      const versions = await listProductionVersions(target.namespaces.production, model);
      retained = versions
        .filter((v) => v.version !== record?.version)
        .sort((a, b) => b.version.localeCompare(a.version))
        .map((v) => ({ version: v.version, replicas: v.replicas, retiredAt: v.retiredAt === undefined ? null : new Date(v.retiredAt).toISOString() }));
    } catch (err) {
      // Locally the cluster is the run's own: failing to read it is an error. On AWS the caller may have
      // no access to the cluster; what serves and the history still come from the registry.
      if (target.mode === 'local') throw new CliError(`Cannot read the production Deployments of ${model} in ${target.namespaces.production}: ${(err as Error).message}`);
      retained = null;
    }
  }
  return {
    model,
    serving: record
      ? {
          version: record.version,
          endpoint: record.endpoint,
          since: record.switchedAt,
          how: switched?.action === 'rollback' ? 'rollback' : 'release',
          by: switched?.by ?? null,
          previousVersion: record.previousVersion,
        }
      : null,
    history,
    retained,
  };
}
