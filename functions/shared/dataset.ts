/**
 * The data contract's optional `dataset.json`, written next to a dataset's files by whoever staged them
 * (examples/fashion-mnist/stage-data.ts does): its version, its class names (index = label) and a sha256 of
 * every file. The pipeline never hashes data itself — a dataset can be gigabytes and a Lambda would read it
 * on every run — it reports what the staging step, which had the bytes in hand, recorded. Data staged
 * without a dataset.json still trains and evaluates: class names fall back to label numbers and the
 * approval page says the version and digest were not recorded.
 */
import * as z from 'zod';
import { getJson, parseS3Uri } from './clients';
import { datasetDigest } from './dataset-digest';
import { logger } from './logger';

const SHA256 = /^[0-9a-f]{64}$/;

/** What mlpipe reads of dataset.json; anything else in it is kept in the release manifest as is. */
export const DatasetManifestSchema = z.object({
  name: z.string().optional(),
  version: z.string().optional(),
  /** Class names, index = label: the approval page and the console name classes with them. */
  classNames: z.array(z.string()).optional(),
  /** The whole dataset's digest: dataset-digest.ts datasetDigest(files). */
  sha256: z.string().regex(SHA256, 'must be 64 lowercase hex digits').optional(),
  files: z.record(z.string(), z.object({ bytes: z.number().optional(), sha256: z.string().regex(SHA256, 'must be 64 lowercase hex digits') })).optional(),
});
export type DatasetManifest = z.infer<typeof DatasetManifestSchema>;

/** `<prefix>dataset.json` of a data URI (`s3://bucket/prefix/`). */
export function datasetManifestKey(uri: string): { bucket: string; key: string } {
  const { bucket, key } = parseS3Uri(uri, 'data URI');
  return { bucket, key: `${key === '' || key.endsWith('/') ? key : `${key}/`}dataset.json` };
}

/**
 * The dataset.json next to `uri`, or undefined when there is none or it cannot be used (logged as a
 * warning: the manifest describes the data, the run does not depend on it). A manifest from before the
 * dataset digest was recorded gets it from its per-file digests.
 */
export async function readDatasetManifest(uri: string): Promise<DatasetManifest | undefined> {
  let raw: unknown;
  try {
    const { bucket, key } = datasetManifestKey(uri);
    raw = await getJson<unknown>(bucket, key);
  } catch (err) {
    logger.warn('dataset.json unreadable', { uri, error: (err as Error).message });
    return undefined;
  }
  if (raw === undefined) return undefined;
  const parsed = DatasetManifestSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    logger.warn('dataset.json ignored', { uri, problem: `${issue.path.join('.') || '(root)'}: ${issue.message}` });
    return undefined;
  }
  const m = parsed.data;
  return m.sha256 === undefined && m.files && Object.keys(m.files).length > 0 ? { ...m, sha256: datasetDigest(m.files) } : m;
}

/** What the approval page and email show of the data a run trained on. Compact. */
export interface DataLineage {
  uri: string;
  evalUri: string;
  /** From dataset.json, when the data has one. */
  version?: string;
  sha256?: string;
}

export async function dataLineage(uri: string, evalUri: string): Promise<DataLineage> {
  const m = await readDatasetManifest(uri);
  return { uri, evalUri, ...(m?.version ? { version: m.version } : {}), ...(m?.sha256 ? { sha256: m.sha256 } : {}) };
}
