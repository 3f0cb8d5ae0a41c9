/**
 * What one `mlpipe` command is: its name, usage, options and how it runs. Its own module so the commands
 * (cli/commands/*) and the dispatcher (cli/main.ts) both depend on it, and never on each other: main.ts
 * imports every command, so a command importing main.ts would be an import cycle.
 */
import type { ParseArgsConfig } from 'node:util';
import type { Io } from './io';
import type { Target } from './target';

export type Options = NonNullable<ParseArgsConfig['options']>;
/** Parsed option values, common and the command's own. */
export type Values = Record<string, string | boolean | undefined>;

/** Time for commands that wait (`status --watch`, `logs -f`): injected by tests, so they never sleep on the wall clock. */
export interface Clock {
  now(): Date;
  sleep(ms: number): Promise<void>;
}

export const wallClock: Clock = {
  now: () => new Date(),
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
};

export interface Command {
  name: string;
  usage: string;
  summary: string;
  /** Lines of detail for --help. */
  help: string[];
  options: Options;
  /** How many positionals: [min, max]. */
  positionals: [number, number];
  /**
   * Checks the arguments before anything is contacted (throws UsageError): bad input is refused the same
   * way with or without a reachable pipeline, and never starts or changes anything.
   */
  validate?(args: string[], values: Values): void;
  /**
   * false: these arguments say all the command needs, so no target is resolved (no stack read, no local
   * pipeline required) and `target` must not be read. Default: the target is resolved first.
   */
  needsTarget?(args: string[], values: Values): boolean;
  run(ctx: { target: Target; args: string[]; values: Values; io: Io; clock: Clock }): Promise<number | void>;
}

/** The `target` of a command run without one (needsTarget false): reading it is a bug, said as such. */
export function noTarget(command: string): Target {
  return new Proxy({} as Target, {
    get(_t, key) {
      throw new Error(`mlpipe ${command} ran without a target (needsTarget said none was needed) but read target.${String(key)}`);
    },
  });
}
