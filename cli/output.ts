/**
 * `-o json|text` (`--output`), one definition for every command that has it (list, status, production,
 * graph): text for people (the default), json for scripts — one JSON document on stdout, nothing else there.
 */
import type { Options, Values } from './command';
import type { Io } from './io';
import { UsageError } from './io';

export type OutputFormat = 'text' | 'json';

export const OUTPUT_OPTION: Options = { output: { type: 'string', short: 'o' } };

export const OUTPUT_HELP = '  -o, --output <fmt>  text (default) or json: one JSON document on stdout, for scripts';

/** The format asked for; UsageError naming the choices for anything else (Command.validate calls it). */
export function outputFormat(values: Values): OutputFormat {
  const v = values.output;
  if (v === undefined) return 'text';
  if (v === 'json' || v === 'text') return v;
  throw new UsageError(`--output must be json or text, got "${String(v).slice(0, 40)}".`);
}

export function printJson(io: Io, value: unknown): void {
  io.out(JSON.stringify(value, null, 2));
}
