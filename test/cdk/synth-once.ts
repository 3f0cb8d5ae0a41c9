/**
 * The stack as it ships, once per test file that loads its Lambdas: the template (its Environments, with
 * CloudFormation intrinsics resolved by the local run's resolver, local/lambda/template.ts) and each
 * function's bundle, shared by bundles.test.ts and settings.cases.ts (one file). The bundles are the assets
 * `cdk synth` built, read from the synthesized assembly the end-to-end tests use (test/e2e/shared-synth.ts,
 * cached by content in .mlpipe/synth): the stack's own local bundling step (lambda-defaults.ts →
 * lambda-bundle.ts) made them, so what is loaded here is what a deploy uploads, source maps included. Their
 * code does not depend on the context (the assets are hashed by output). Building them again here cost
 * ~25 s of esbuild CPU per `npm test`, for bundles the e2e synth builds anyway. The template is synthesized
 * in process without bundling, with the stack's default configuration: the Environments deployed to AWS.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import type { FunctionName } from '../../functions/shared/function-settings';
import { bundleLambdas } from '../../lib/constructs/lambda-bundle';
import { FUNCTION_SPECS } from '../../lib/constructs/pipeline-functions';
import { MlPipeStack } from '../../lib/mlpipe-stack';
import { loadLocalStack, type CfnTemplate, type LocalResources } from '../../local/lambda/template';
import { synthesizeE2eStack } from '../e2e/shared-synth';
import { testApp } from './helpers';

export const REGION = 'eu-west-1';
export const ACCOUNT = '123456789012';

/** Which FUNCTION_SETTINGS entry each Lambda loads and its handler, by a fragment of its logical id. */
export const SHIPPED_FUNCTIONS: ReadonlyArray<{ name: FunctionName; fragment: string; entry: string }> = [
  ...FUNCTION_SPECS.map((s) => ({ name: s.id as FunctionName, fragment: `Functions${s.id}`, entry: s.entry })),
  { name: 'ApprovalApi', fragment: 'ApprovalApiFunction', entry: 'functions/approval-api.ts' },
  { name: 'StartPipeline', fragment: 'TriggersStartPipeline', entry: 'functions/start-pipeline.ts' },
  { name: 'Monitor', fragment: 'ServingMonitorFunction', entry: 'functions/monitor.ts' },
  { name: 'RotateEndpointToken', fragment: 'EndpointTokenRotationFunction', entry: 'functions/rotate-endpoint-token.ts' },
];

/** Built with the handlers' options (lambda-bundle.ts): bundles.test.ts runs the Kubernetes access from it. */
export const KUBE_PROBE = { name: 'kube-probe', entry: 'test/cdk/fixtures/kube-probe.ts' };

export interface ShippedFunction {
  logicalId: string;
  /** The handler file it is built from, relative to the repository root. */
  entry: string;
  /** The bundle (index.js) in the synthesized assembly, beside its source map (index.js.map). */
  bundle: string;
  /** The template's Environment.Variables, intrinsics resolved. */
  environment: Record<string, string>;
}

export interface Shipped {
  template: CfnTemplate;
  functions: ShippedFunction[];
  /** The synthesized assembly the bundles are in. */
  assembly: string;
  /** The kube probe's bundle (KUBE_PROBE). */
  probe: string;
}

let shipped: Promise<Shipped> | undefined;
let bundlesDir: string | undefined;

/** Removes the probe's bundle (the test file's last afterAll: every describe in it may read it). */
export function removeShippedBundles(): void {
  if (bundlesDir) rmSync(bundlesDir, { recursive: true, force: true });
}

/** What the local resolver stands in for the stack's own resources (bucket, state machine, approval URL). */
export const RESOURCES: Omit<LocalResources, 'stackName'> = {
  region: REGION,
  accountId: ACCOUNT,
  artifactBucket: 'mlpipe-artifacts',
  stateMachineArn: `arn:aws:states:${REGION}:${ACCOUNT}:stateMachine:MlPipeStack`,
  approvalUrl: `https://abc123.execute-api.${REGION}.amazonaws.com`,
};

/**
 * The template and bundles (cached for the test file): every AWS::Lambda::Function must match exactly one
 * SHIPPED_FUNCTIONS fragment, so a Lambda nobody maps fails here rather than escaping the checks; and each
 * must have its bundle in the synthesized assembly, under the same logical id.
 */
export function shippedStack(): Promise<Shipped> {
  shipped ??= (async () => {
    // The e2e synth (a child process; cached on a repeat run) goes on while this process synthesizes the template.
    const synth = synthesizeE2eStack();
    // Without bundling (context below): the template is the same, the assets are not built.
    const app = testApp({ context: { 'aws:cdk:bundling-stacks': [] } });
    const stack = new MlPipeStack(app, 'MlPipeStack', { env: { account: ACCOUNT, region: REGION }, pipeline: { clusterName: 'ml-cluster' } });
    const template = app.synth().getStackByName(stack.stackName).template as CfnTemplate;
    // Environments resolved by the local run's own resolver (intrinsics → plausible values of the right shape).
    const local = loadLocalStack('(in memory)', RESOURCES, { template, stackName: stack.stackName, assetDirs: new Map() });
    const probeDir = mkdtempSync(path.join(tmpdir(), 'mlpipe-kube-probe-'));
    bundlesDir = probeDir;
    const built = await bundleLambdas({ [KUBE_PROBE.name]: KUBE_PROBE.entry }, probeDir, { sourcemap: false });
    if (built.errors.length > 0) throw new Error(`shippedStack: esbuild failed on ${KUBE_PROBE.entry}: ${built.errors.map((e) => e.text).join('; ')}`);
    const { dir: assembly } = await synth;
    const codeDirs = new Map(loadLocalStack(assembly, RESOURCES).functions.map((f) => [f.logicalId, f.codeDir]));
    const entries: Record<string, string> = Object.fromEntries(SHIPPED_FUNCTIONS.map((f) => [f.fragment, f.entry]));
    const names = Object.keys(entries);
    const functions = local.functions.map((fn) => {
      const matches = names.filter((n) => fn.logicalId.includes(n));
      if (matches.length !== 1) throw new Error(`shippedStack: Lambda ${fn.logicalId} matches ${matches.length} entries (${matches.join(', ')}); map each Lambda to its handler`);
      const codeDir = codeDirs.get(fn.logicalId);
      if (!codeDir) throw new Error(`shippedStack: Lambda ${fn.logicalId} has no bundled asset in the synthesized assembly ${assembly}`);
      return { logicalId: fn.logicalId, entry: entries[matches[0] as string] as string, bundle: path.join(codeDir, 'index.js'), environment: fn.environment };
    });
    return { template, functions, assembly, probe: path.join(probeDir, KUBE_PROBE.name, 'index.js') };
  })();
  return shipped;
}

/**
 * The files a bundle was built from that left code in it (absolute paths): its source map's sources, which
 * esbuild lists only for inputs with bytes in the output (checked against the metafile's bytesInOutput),
 * and through a package's own source map (client-node's dist/*.js appear as its src/*.ts).
 */
export function bundleSources(bundle: string): string[] {
  const map = JSON.parse(readFileSync(`${bundle}.map`, 'utf8')) as { sources: string[] };
  return map.sources.map((s) => path.resolve(path.dirname(bundle), s));
}

const run = promisify(execFile);
const LOADER = path.join(__dirname, 'fixtures', 'load-bundle.cjs');

/** What the Lambda runtime sets in every function's environment (a subset; the ones code may read). */
const LAMBDA_RUNTIME_ENV = {
  AWS_REGION: REGION,
  AWS_DEFAULT_REGION: REGION,
  AWS_LAMBDA_FUNCTION_NAME: 'fn',
  AWS_LAMBDA_FUNCTION_MEMORY_SIZE: '512',
  AWS_EXECUTION_ENV: 'AWS_Lambda_nodejs24.x',
  LAMBDA_TASK_ROOT: '/var/task',
  TZ: ':UTC',
};

/** What loading one bundle as the Lambda runtime would at init showed (fixtures/load-bundle.cjs). */
export interface LoadResult {
  /** The environment variables read while it loaded. */
  reads: string[];
  /** `typeof` its `handler` export (undefined when it threw first). */
  handler?: string;
  error?: string;
}

async function loadBundle(fn: ShippedFunction): Promise<LoadResult> {
  const { stdout } = await run(process.execPath, [LOADER, fn.bundle], {
    env: { ...fn.environment, ...LAMBDA_RUNTIME_ENV },
    cwd: path.dirname(fn.bundle),
    timeout: 30_000,
  });
  return JSON.parse(stdout.trim().split('\n').at(-1) as string) as LoadResult;
}

/** Runs `task` over `items`, `limit` at a time (2 cores). */
async function pool<T, R>(items: T[], limit: number, task: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: limit }, async () => {
      while (next < items.length) {
        const i = next++;
        results[i] = await task(items[i] as T);
      }
    }),
  );
  return results;
}

let loaded: Promise<Map<string, LoadResult>> | undefined;

/**
 * Every shipped bundle loaded once, each in a fresh Node process with exactly its template Environment plus
 * what the Lambda runtime sets, by logical id (cached for the test file). settings.cases.ts reads what each
 * read; bundles.test.ts that each exports a handler. One load each: a second round in another process
 * cost ~7 s on this machine and showed nothing the first does not.
 */
export function loadedBundles(): Promise<Map<string, LoadResult>> {
  loaded ??= (async () => {
    const { functions } = await shippedStack();
    const results = await pool(functions, 2, loadBundle);
    return new Map(functions.map((f, i) => [f.logicalId, results[i]!]));
  })();
  return loaded;
}
