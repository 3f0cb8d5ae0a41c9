/**
 * The contract between the construct and the handlers' code, derived from the code and not from a list:
 * every Lambda of the synthesized stack is loaded — its bundle, the asset `cdk synth` built
 * (synth-once.ts) — in a fresh Node process with exactly its template Environment (intrinsics resolved to
 * plausible values) plus what the Lambda runtime itself sets, under a process.env that records every key
 * read. Whatever the bundle reads
 * while it loads — its settings schema is parsed then — must be in its Environment, unless the runtime
 * or the local runner provides it (settings.ts says which). Also: each handler's declared schema
 * (function-settings.ts) is what it reads and what its Environment holds, and no module under functions/
 * reads process.env except the settings module. Run from bundles.test.ts, which loads the same bundles:
 * one aws-cdk-lib load and one fresh-process load of each bundle (synth-once.ts loadedBundles) for both.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import * as path from 'node:path';
import { FUNCTION_SETTINGS, type FunctionName } from '../../functions/shared/function-settings';
import { ALL_SETTINGS, setByCdk } from '../../functions/shared/settings';
import { LOGGING_ENVIRONMENT, PROJECT_ROOT } from '../../lib/constructs/lambda-defaults';
import { loadedBundles, SHIPPED_FUNCTIONS as FUNCTIONS, shippedStack, type LoadResult, type Shipped, type ShippedFunction } from './synth-once';

/** Settings the CDK must not set: the runtime or the local runner provides them (settings.ts `source`). */
const NOT_FROM_CDK = new Set(ALL_SETTINGS.filter((d) => !setByCdk(d)).map((d) => d.name));
const SETTING_NAMES = new Set(ALL_SETTINGS.map((d) => d.name));
/** Set by the construct for every function, read by Node itself and by Powertools Logger (lambda-defaults.ts), not settings. */
const FOR_NODE = new Set(['NODE_OPTIONS', ...Object.keys(LOGGING_ENVIRONMENT)]);

describe('every setting a function reads reaches it', () => {
  let stack: Shipped;
  const loads = new Map<string, LoadResult>();
  const byName = (name: FunctionName): ShippedFunction => {
    const { fragment } = FUNCTIONS.find((f) => f.name === name)!;
    const matches = stack.functions.filter((f) => f.logicalId.includes(fragment));
    if (matches.length !== 1) throw new Error(`expected one Lambda with "${fragment}" in its logical id, found ${matches.map((m) => m.logicalId).join(', ') || 'none'}`);
    return matches[0]!;
  };

  // shippedStack refuses a template Lambda that no entry here maps, so none escapes the checks below.
  beforeAll(async () => {
    stack = await shippedStack();
    for (const [logicalId, result] of await loadedBundles()) loads.set(logicalId, result);
  }, 600_000); // ~15 s on an idle machine, once the e2e stack is synthesized; this shared one has run at load 20

  it.each(FUNCTIONS.map((f) => [f.name] as const))('%s loads with its template Environment and reads nothing it lacks', (name) => {
    const fn = byName(name);
    const { reads, error } = loads.get(fn.logicalId)!;
    // THEN its init succeeds with what the template gives it...
    expect({ function: name, initError: error }).toEqual({ function: name, initError: undefined });
    // ...and every setting read at load is in its Environment, unless the runtime provides it.
    const missing = reads.filter((k) => SETTING_NAMES.has(k) && !(k in fn.environment) && !NOT_FROM_CDK.has(k));
    expect({ function: name, readButNotInEnvironment: missing }).toEqual({ function: name, readButNotInEnvironment: [] });
  });

  it.each(FUNCTIONS.map((f) => [f.name] as const))('%s reads exactly its declared schema, and its Environment holds all of it', (name) => {
    const fn = byName(name);
    const declared = Object.values(FUNCTION_SETTINGS[name].definitions);
    // Runtime-provided variables (AWS_REGION...) are also read by libraries (the SDK, Powertools): the exact
    // comparison covers the settings the CDK sets; the test above covers every read.
    const readSettings = loads.get(fn.logicalId)!.reads.filter((k) => SETTING_NAMES.has(k) && !NOT_FROM_CDK.has(k));
    // The handler loads its declared schema (and no other setting)...
    expect({ function: name, reads: readSettings.sort() }).toEqual({ function: name, reads: declared.filter(setByCdk).map((d) => d.name).sort() });
    // ...and the template holds every setting of it the CDK sets, and nothing else.
    const environment = Object.keys(fn.environment).filter((k) => !FOR_NODE.has(k)).sort();
    expect({ function: name, environment }).toEqual({ function: name, environment: declared.filter(setByCdk).map((d) => d.name).sort() });
  });
});

describe('settings are read in one place', () => {
  const files = (dir: string): string[] =>
    readdirSync(dir).flatMap((e) => {
      const p = path.join(dir, e);
      return statSync(p).isDirectory() ? files(p) : p.endsWith('.ts') ? [p] : [];
    });

  it('no module under functions/ reads process.env except functions/shared/settings.ts', () => {
    const settingsModule = path.join(PROJECT_ROOT, 'functions', 'shared', 'settings.ts');
    const readers = files(path.join(PROJECT_ROOT, 'functions'))
      .filter((f) => f !== settingsModule && /process\.env/.test(readFileSync(f, 'utf8')))
      .map((f) => path.relative(PROJECT_ROOT, f));
    expect(readers).toEqual([]);
  });
});
