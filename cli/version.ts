/**
 * `mlpipe --version`: the version in package.json, read next to the CLI's own files (no git, no network),
 * so it works from a published package as from a clone.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

export function version(): string {
  const pkg = JSON.parse(readFileSync(join(__dirname, '..', 'package.json'), 'utf8')) as { version?: unknown };
  if (typeof pkg.version !== 'string') throw new Error('package.json has no version');
  return pkg.version;
}
