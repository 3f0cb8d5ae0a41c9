/**
 * docs/status.schema.json: the JSON Schema of what `mlpipe status -o json` prints, generated from
 * RunViewSchema (cli/run-view.ts) with zod's toJSONSchema, so the documented contract is the code's.
 * `npx tsx cli/status-schema.ts --write` regenerates it; test/cli/run-view.cases.ts fails while the
 * committed file differs from what this generates.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { RunViewSchema } from './run-view';

export const STATUS_SCHEMA_FILE = join(__dirname, '..', 'docs', 'status.schema.json');

export function statusJsonSchema(): Record<string, unknown> {
  return {
    ...z.toJSONSchema(RunViewSchema, { io: 'output', target: 'draft-2020-12' }),
    title: 'mlpipe RunView',
  };
}

export function statusSchemaText(): string {
  return `${JSON.stringify(statusJsonSchema(), null, 2)}\n`;
}

if (require.main === module) {
  const text = statusSchemaText();
  if (process.argv.includes('--write')) {
    writeFileSync(STATUS_SCHEMA_FILE, text);
    console.log(`wrote ${STATUS_SCHEMA_FILE}`);
  } else if (readFileSync(STATUS_SCHEMA_FILE, 'utf8') !== text) {
    console.error(`${STATUS_SCHEMA_FILE} is out of date: npx tsx cli/status-schema.ts --write`);
    process.exitCode = 1;
  }
}
