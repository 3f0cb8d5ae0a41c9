/**
 * The stack as it ships, once per test file that loads its Lambdas: the template (its Environments, with
 * CloudFormation intrinsics resolved by the local run's resolver, local/lambda/template.ts) and each function's bundle,
 * built with the options the stack ships them with (lambda-bundle.ts, which lambda-defaults.ts bundles with)
 * in one esbuild call, shared by bundles.test.ts and settings.cases.ts (one file, one build). Why not `app.synth()` with bundling: it runs esbuild once per function, and on this
 * shared 2-core machine that measured 376 s for the 19 functions (load average 20); one call that parses
 * the shared modules once takes seconds.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { App } from 'aws-cdk-lib';
import type { Metafile } from 'esbuild';
import type { FunctionName } from '../../functions/shared/function-settings';
import { bundleLambdas } from '../../lib/constructs/lambda-bundle';
import { FUNCTION_SPECS } from '../../lib/constructs/pipeline-functions';
import { MlPipeStack } from '../../lib/mlpipe-stack';
import { loadLocalStack, type CfnTemplate } from '../../local/lambda/template';

export const REGION = 'eu-west-1';
export const ACCOUNT = '123456789012';


/** Which FUNCTION_SETTINGS entry each Lambda loads and its handler, by a fragment of its logical id. */
export const SHIPPED_FUNCTIONS: ReadonlyArray<{ name: FunctionName; fragment: string; entry: string }> = [
  ...FUNCTION_SPECS.map((s) => ({ name: s.id as FunctionName, fragment: `Functions${s.id}`, entry: s.entry })),
  { name: 'ApprovalApi', fragment: 'ApprovalApiFunction', entry: 'functions/approval-api.ts' },
  { name: 'StartPipeline', fragment: 'TriggersStartPipeline', entry: 'functions/start-pipeline.ts' },
];

/** Built alongside the handlers, with the same options: bundles.test.ts runs the Kubernetes access from it. */
export const KUBE_PROBE = { name: 'kube-probe', entry: 'test/cdk/fixtures/kube-probe.ts' };

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
  /** The esbuild metafile of the one build (every handler and the probe). */
  metafile: Metafile;
  /** The kube probe's bundle (KUBE_PROBE). */
  probe: string;
}

let shipped: Promise<Shipped> | undefined;
let bundlesDir: string | undefined;

/** Removes the bundles (the test file's last afterAll: every describe in it may read them). */
export function removeShippedBundles(): void {
  if (bundlesDir) rmSync(bundlesDir, { recursive: true, force: true });
}

/**
 * The template and bundles (cached for the test file): every AWS::Lambda::Function must match exactly one
 * SHIPPED_FUNCTIONS fragment, so a Lambda nobody maps fails here rather than escaping the checks.
 */
export function shippedStack(): Promise<Shipped> {
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
    const entries: Record<string, string> = Object.fromEntries(SHIPPED_FUNCTIONS.map((f) => [f.fragment, f.entry]));
    const names = Object.keys(entries);
    // One esbuild call for all (shared modules parsed once); source maps change no code and cost seconds here.
    const result = await bundleLambdas({ ...entries, [KUBE_PROBE.name]: KUBE_PROBE.entry }, dir, { sourcemap: false });
    if (result.errors.length > 0) throw new Error(`shippedStack: esbuild failed: ${result.errors.map((e) => e.text).join('; ')}`);
    const metafile = result.metafile;
    if (!metafile) throw new Error('shippedStack: esbuild returned no metafile');
    const functions = local.functions.map((fn) => {
      const matches = names.filter((n) => fn.logicalId.includes(n));
      if (matches.length !== 1) throw new Error(`shippedStack: Lambda ${fn.logicalId} matches ${matches.length} entries (${matches.join(', ')}); map each Lambda to its handler`);
      const name = matches[0] as string;
      return { logicalId: fn.logicalId, entry: entries[name] as string, bundle: path.join(dir, name, 'index.js'), environment: fn.environment };
    });
    bundlesDir = dir;
    return { template, functions, metafile, probe: path.join(dir, KUBE_PROBE.name, 'index.js') };
  })();
  return shipped;
}
