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
import type * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import { Construct } from 'constructs';

/** Repository root: entries are resolved against it, whatever the caller's working directory. */
export const PROJECT_ROOT = path.resolve(__dirname, '..', '..');

/**
 * The latest Lambda Node.js runtime (DESIGN decision 2 allows 22 or 24). The bundles still target Node 22,
 * what the tests and the local mode run on, so the shipped code uses nothing Node 22 lacks.
 */
export const LAMBDA_RUNTIME = lambda.Runtime.NODEJS_24_X;
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

/**
 * One log level for the two filters a line passes: Powertools Logger's own (functions/shared/logger.ts) and
 * Lambda's ApplicationLogLevel, which with the JSON log format drops lines below it and, as
 * AWS_LAMBDA_LOG_LEVEL, overrides POWERTOOLS_LOG_LEVEL inside Powertools. Set apart, a lower
 * POWERTOOLS_LOG_LEVEL would be dropped by Lambda (Powertools warns once), so both come from here.
 */
export const LOG_LEVEL = lambda.ApplicationLogLevel.INFO;

/** Read by Powertools in every function (service name and level of every log line). */
export const LOGGING_ENVIRONMENT: Record<string, string> = { POWERTOOLS_SERVICE_NAME: 'mlpipe', POWERTOOLS_LOG_LEVEL: LOG_LEVEL };

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
  /** Run in these subnets of a VPC. @default outside any VPC */
  readonly network?: FunctionNetwork;
}

/** Where a function runs inside a VPC (see endpoint-network.ts). */
export interface FunctionNetwork {
  readonly vpc: ec2.IVpc;
  readonly subnets: readonly ec2.ISubnet[];
  readonly securityGroups: readonly ec2.ISecurityGroup[];
  /** Lets the function's role attach it to the subnets (Lambda checks this when the function is created). */
  grantNetworkInterfaces(grantee: iam.IGrantable): void;
}

/**
 * A NodejsFunction with mlpipe's defaults and its own log group. Without a given role it gets a role of
 * its own that may write to that log group only: the AWSLambdaBasicExecutionRole CDK would attach lets
 * a function create log groups and write to any of them.
 */
export class PipelineFunction extends nodejs.NodejsFunction {
  constructor(scope: Construct, id: string, props: PipelineFunctionProps) {
    const logGroup = new logs.LogGroup(scope, `${id}Logs`, {
      retention: props.logRetention ?? logs.RetentionDays.ONE_MONTH,
      // Logs of a deleted stack are still evidence of what the pipeline did.
      removalPolicy: RemovalPolicy.RETAIN,
    });
    const role = props.role ?? new iam.Role(scope, `${id}ServiceRole`, {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      description: props.description,
    });
    logGroup.grantWrite(role);
    props.network?.grantNetworkInterfaces(role);
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
      applicationLogLevelV2: LOG_LEVEL,
      systemLogLevelV2: lambda.SystemLogLevel.WARN,
      logGroup,
      role,
      description: props.description,
      ...(props.network === undefined
        ? {}
        : {
            vpc: props.network.vpc,
            vpcSubnets: { subnets: [...props.network.subnets] },
            securityGroups: [...props.network.securityGroups],
          }),
      environment: { NODE_OPTIONS: '--enable-source-maps', ...props.environment, ...LOGGING_ENVIRONMENT },
      bundling: BUNDLING,
    });
  }
}
