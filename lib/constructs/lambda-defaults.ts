/**
 * The one place for Lambda defaults: every mlpipe function is a NodejsFunction built here, so runtime,
 * architecture, logging, tracing and bundling are the same everywhere. bench/bundles.ts bundles the
 * entries with `esbuildOptions()` below, which mirrors `BUNDLING`, so what it measures is what ships.
 */
import * as path from 'node:path';
import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as nodejs from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import type * as iam from 'aws-cdk-lib/aws-iam';
import { Construct } from 'constructs';

/** Repository root: entries are resolved against it, whatever the caller's working directory. */
export const PROJECT_ROOT = path.resolve(__dirname, '..', '..');

/** Node 22 is what the code, the tests and the local mode run on (DESIGN decision 2). */
export const LAMBDA_RUNTIME = lambda.Runtime.NODEJS_22_X;
export const ESBUILD_TARGET = 'node22';

/**
 * esbuild settings. The AWS SDK is bundled rather than taken from the runtime: the handlers are tested
 * against the exact SDK versions in package-lock.json, and the runtime's copy changes under you.
 * Minified with source maps (NODE_OPTIONS=--enable-source-maps makes stack traces readable).
 * No Docker: esbuild is a devDependency and runs locally.
 */
export const BUNDLING: nodejs.BundlingOptions = {
  minify: true,
  sourceMap: true,
  sourcesContent: false,
  target: ESBUILD_TARGET,
  format: nodejs.OutputFormat.CJS,
  bundleAwsSDK: true,
  externalModules: [],
  forceDockerBundling: false,
};

/** The same settings as `BUNDLING`, as esbuild build options (for bench/bundles.ts). */
export function esbuildOptions(entry: string, outfile: string) {
  return {
    entryPoints: [entry],
    outfile,
    bundle: true,
    platform: 'node' as const,
    format: 'cjs' as const,
    target: ESBUILD_TARGET,
    minify: BUNDLING.minify ?? false,
    sourcemap: BUNDLING.sourceMap ?? false,
    sourcesContent: BUNDLING.sourcesContent ?? true,
    external: [...(BUNDLING.externalModules ?? [])],
    logLevel: 'warning' as const,
  };
}

export interface PipelineFunctionProps {
  /** Handler file relative to the repository root, e.g. `functions/prepare-run.ts`; it exports `handler`. */
  readonly entry: string;
  /** Explicit for every function: each one sits below the Step Functions TimeoutSeconds of its state. */
  readonly timeout: Duration;
  /** @default 512 (the Kubernetes client bundle is ~1.5 MB; more memory = more CPU for a faster cold start) */
  readonly memorySize?: number;
  readonly environment: Record<string, string>;
  /** A shared role (the Kubernetes-calling tasks share one, see cluster-access.ts). @default a role of its own */
  readonly role?: iam.IRole;
  /** @default one month */
  readonly logRetention?: logs.RetentionDays;
  readonly description?: string;
}

/** A NodejsFunction with mlpipe's defaults and its own log group. */
export class PipelineFunction extends nodejs.NodejsFunction {
  readonly logGroupRef: logs.LogGroup;

  constructor(scope: Construct, id: string, props: PipelineFunctionProps) {
    const logGroup = new logs.LogGroup(scope, `${id}Logs`, {
      retention: props.logRetention ?? logs.RetentionDays.ONE_MONTH,
      // Logs of a deleted stack are still evidence of what the pipeline did.
      removalPolicy: RemovalPolicy.RETAIN,
    });
    super(scope, id, {
      entry: path.join(PROJECT_ROOT, props.entry),
      handler: 'handler',
      projectRoot: PROJECT_ROOT,
      depsLockFilePath: path.join(PROJECT_ROOT, 'package-lock.json'),
      runtime: LAMBDA_RUNTIME,
      architecture: lambda.Architecture.ARM_64,
      memorySize: props.memorySize ?? 512,
      timeout: props.timeout,
      tracing: lambda.Tracing.ACTIVE,
      loggingFormat: lambda.LoggingFormat.JSON,
      applicationLogLevelV2: lambda.ApplicationLogLevel.INFO,
      systemLogLevelV2: lambda.SystemLogLevel.WARN,
      logGroup,
      role: props.role,
      description: props.description,
      environment: { NODE_OPTIONS: '--enable-source-maps', ...props.environment },
      bundling: BUNDLING,
    });
    this.logGroupRef = logGroup;
  }
}
