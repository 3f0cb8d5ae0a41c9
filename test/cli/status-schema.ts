/** Validates what `mlpipe status -o json` printed against the documented schema, docs/status.schema.json, with an independent validator (ajv). */
import { readFileSync } from 'node:fs';
import { Ajv2020 } from 'ajv/dist/2020';
import addFormats from 'ajv-formats';
import { STATUS_SCHEMA_FILE } from '../../cli/status-schema';

let validate: ReturnType<Ajv2020['compile']> | undefined;

export function validateStatusJson(json: unknown): void {
  validate ??= addFormats(new Ajv2020({ strict: true })).compile(JSON.parse(readFileSync(STATUS_SCHEMA_FILE, 'utf8')) as object);
  expect([validate(json), validate.errors ?? null]).toEqual([true, null]);
}
