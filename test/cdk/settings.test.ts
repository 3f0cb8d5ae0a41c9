/**
 * The contract between the construct and the handlers' code: each function's bundle (esbuild, with the
 * options the construct ships) is scanned for the setting names its sources mention. Every setting the
 * code requires at load (`requireEnv('X')` in the handler file, or at the top level of a module it
 * bundles) must be in the function's environment, and the environment must hold nothing the code never
 * mentions. Limits: a requireEnv inside a shared function is only counted for the handler file itself
 * (the scan cannot tell which shared functions a handler calls), and names built at run time are missed.
 */
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { build } from 'esbuild';
import { esbuildOptions, LOGGING_ENVIRONMENT, PROJECT_ROOT } from '../../lib/constructs/lambda-defaults';
import { FUNCTION_SPECS } from '../../lib/constructs/pipeline-functions';
import { logicalId, resourcesOf, synthStack } from './helpers';

/** Set by the Lambda runtime itself. */
const RUNTIME_PROVIDED = new Set(['AWS_REGION', 'AWS_DEFAULT_REGION', 'AWS_LAMBDA_FUNCTION_NAME']);
/** Set by the construct for every function, read by Node itself and by Powertools Logger. */
const FOR_NODE = new Set(['NODE_OPTIONS', ...Object.keys(LOGGING_ENVIRONMENT)]);

const FUNCTIONS: Array<{ id: string; fragment: string; entry: string }> = [
  ...FUNCTION_SPECS.map((s) => ({ id: s.id, fragment: `Functions${s.id}`, entry: s.entry })),
  { id: 'ApprovalApi', fragment: 'ApprovalApiFunction', entry: 'functions/approval-api.ts' },
  { id: 'StartPipeline', fragment: 'StartPipeline', entry: 'functions/start-pipeline.ts' },
];

interface SourceScan {
  /** SCREAMING_CASE string literals anywhere in the function's own sources. */
  mentioned: Set<string>;
  /** Names passed literally to requireEnv() in the entry, or at the top level of any bundled module. */
  required: Set<string>;
}

async function scan(entry: string): Promise<SourceScan> {
  const options = esbuildOptions(path.join(PROJECT_ROOT, entry), path.join(PROJECT_ROOT, 'cdk.out', 'settings-scan.js'));
  // Packages stay external: only the project's own modules are scanned, and skipping node_modules makes
  // this take milliseconds instead of seconds per function.
  const result = await build({ ...options, packages: 'external', write: false, metafile: true, minify: false, sourcemap: false, logLevel: 'silent' });
  const ownSources = Object.keys(result.metafile.inputs).filter((f) => !f.includes('node_modules') && /\.(ts|js)$/.test(f));
  const mentioned = new Set<string>();
  const required = new Set<string>();
  for (const file of ownSources) {
    const text = readFileSync(path.resolve(PROJECT_ROOT, file), 'utf8');
    for (const m of text.matchAll(/['"`]([A-Z][A-Z0-9_]{3,})['"`]/g)) mentioned.add(m[1] as string);
    const isEntry = path.resolve(PROJECT_ROOT, file) === path.join(PROJECT_ROOT, entry);
    const requireCall = isEntry ? /requireEnv\(\s*['"`]([A-Z0-9_]+)['"`]/g : /^(?:export )?(?:const [^=]+= *)?requireEnv\(\s*['"`]([A-Z0-9_]+)['"`]/gm;
    for (const m of text.matchAll(requireCall)) required.add(m[1] as string);
  }
  return { mentioned, required };
}

describe('function settings match what the code reads', () => {
  const { template } = synthStack();
  const lambdas = resourcesOf(template, 'AWS::Lambda::Function');
  const envOf = (fragment: string) =>
    Object.keys((lambdas[logicalId(template, 'AWS::Lambda::Function', fragment)]?.Properties?.Environment as { Variables: object }).Variables);

  // Bundled all at once: esbuild works in parallel, one by one takes half a minute.
  const scans = new Map<string, Promise<SourceScan>>();
  beforeAll(() => {
    for (const f of FUNCTIONS) {
      const pending = scan(f.entry);
      pending.catch(() => undefined); // reported by the function's own test
      scans.set(f.id, pending);
    }
  });

  it.each(FUNCTIONS.map((f) => [f.id, f] as const))('%s', async (_id, fn) => {
    // GIVEN what the construct sets and what the bundled sources mention
    const env = new Set(envOf(fn.fragment));
    const { mentioned, required } = await (scans.get(fn.id) as Promise<SourceScan>);
    // THEN every required setting is provided...
    const missing = [...required].filter((name) => !env.has(name) && !RUNTIME_PROVIDED.has(name));
    expect({ function: fn.id, missing }).toEqual({ function: fn.id, missing: [] });
    // ...and nothing is provided that the code never reads
    const unused = [...env].filter((name) => !mentioned.has(name) && !FOR_NODE.has(name));
    expect({ function: fn.id, unused }).toEqual({ function: fn.id, unused: [] });
  });
});
