/**
 * One sha256 for a dataset of several files, as dataset.json records it (functions/shared/dataset.ts):
 * the sha256 of their `sha256sum` listing (`<hex>  <name>\n` per file, names in byte order). Pure and
 * dependency-free, so the staging script (examples/fashion-mnist/stage-data.ts) writes it with the very
 * function the pipeline checks old manifests with. Anyone can recompute it in the data's directory:
 * `LC_ALL=C sha256sum $(LC_ALL=C ls | grep -v '^dataset.json$') | sha256sum`.
 */
import { createHash } from 'node:crypto';

export function datasetDigest(files: Record<string, { sha256: string }>): string {
  const listing = Object.keys(files)
    .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
    .map((name) => `${files[name]!.sha256}  ${name}\n`)
    .join('');
  return createHash('sha256').update(listing).digest('hex');
}
