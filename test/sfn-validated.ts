/**
 * The `validatedFile` a test gives LocalStepFunctions: one file per definition under .mlpipe/cache, so a
 * definition that passed aws-local-stepfunctions' validation once is not validated again (its ajv check
 * costs 0.3-0.5 s of CPU per engine, each time, however small the definition). The engine validates any
 * definition whose hash it has no record of, so a changed or invalid definition is still checked (and
 * refused) every time; test/stepfunctions/engine.test.ts covers that behaviour with files of its own.
 */
import { createHash } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';

const DIR = join(__dirname, '..', '.mlpipe', 'cache', 'sfn-validated');

export function validatedFileFor(definition: unknown): string {
  mkdirSync(DIR, { recursive: true });
  const text = typeof definition === 'string' ? definition : JSON.stringify(definition);
  return join(DIR, createHash('sha256').update(text).digest('hex').slice(0, 32));
}
