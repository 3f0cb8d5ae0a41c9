/**
 * The stack as it ships, once per test file that loads its Lambdas: the template (its Environments, with
 * CloudFormation intrinsics resolved by the local run's resolver, local/lambda/template.ts) and each function's bundle,
 * built with the options the stack ships them with (lambda-defaults.ts esbuildOptions, i.e. lambda-bundle.ts)
 * in one esbuild call. Why not `app.synth()` with bundling: it runs esbuild once per function, and on this
 * shared 2-core machine that measured 376 s for the 19 functions (load average 20); one call that parses
 * the shared modules once takes seconds.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { App } from 'aws-cdk-lib';
import { build } from 'esbuild';
import { esbuildOptions, PROJECT_ROOT } from '../../lib/constructs/lambda-defaults';
import { MlPipeStack } from '../../lib/mlpipe-stack';
import { loadLocalStack, type CfnTemplate } from '../../local/lambda/template';

export const REGION = 'eu-west-1';
export const ACCOUNT = '123456789012';


export interface ShippedFunction {
  logicalId: string;
  /** The handler file it is built from, relative to the repository root. */
  entry: string;
  /** The bundle (index.js). */
  bundle: string;
  /** The template's Environment.Variables, intrinsics resolved. */
  environment: Record<string, string>;
}

export interface Shipped {
  template: CfnTemplate;
  functions: ShippedFunction[];
  /** Removes the bundles. */
  cleanup(): void;
}

let shipped: Promise<Shipped> | undefined;

/**
 * The template and bundles (cached for the test file). `entries` maps a fragment of each Lambda's logical
 * id to its handler file; every AWS::Lambda::Function must match exactly one.
 */
export function shippedStack(entries: Record<string, string>): Promise<Shipped> {
  shipped ??= (async () => {
    // Without bundling (context below): the template is the same, the assets are not built.
    const app = new App({ context: { 'aws:cdk:bundling-stacks': [] } });
    const stack = new MlPipeStack(app, 'MlPipeStack', { env: { account: ACCOUNT, region: REGION }, pipeline: { clusterName: 'ml-cluster' } });
    const template = app.synth().getStackByName(stack.stackName).template as CfnTemplate;
    // Environments resolved by the local run's own resolver (intrinsics → plausible values of the right shape).
    const local = loadLocalStack('(in memory)', {
      region: REGION,
      accountId: ACCOUNT,
      artifactBucket: 'mlpipe-artifacts',
      stateMachineArn: `arn:aws:states:${REGION}:${ACCOUNT}:stateMachine:MlPipeStack`,
      approvalUrl: `https://abc123.execute-api.${REGION}.amazonaws.com`,
    }, { template, stackName: stack.stackName, assetDirs: new Map() });
    const dir = mkdtempSync(path.join(tmpdir(), 'mlpipe-shipped-'));
    const { outfile: _one, entryPoints: _all, ...options } = esbuildOptions('', '');
    const names = Object.keys(entries);
    // Source maps change no code and cost seconds here.
    await build({ ...options, sourcemap: false, entryPoints: Object.fromEntries(names.map((n) => [`${n}/index`, path.join(PROJECT_ROOT, entries[n] as string)])), outdir: dir });
    const functions = local.functions.map((fn) => {
      const matches = names.filter((n) => fn.logicalId.includes(n));
      if (matches.length !== 1) throw new Error(`shippedStack: Lambda ${fn.logicalId} matches ${matches.length} entries (${matches.join(', ')}); map each Lambda to its handler`);
      const name = matches[0] as string;
      return { logicalId: fn.logicalId, entry: entries[name] as string, bundle: path.join(dir, name, 'index.js'), environment: fn.environment };
    });
    return { template, functions, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
  })();
  return shipped;
}
