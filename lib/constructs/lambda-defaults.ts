/**
 * The one place for Lambda defaults: every mlpipe function is a PipelineFunction built here, so runtime,
 * architecture, logging, tracing and bundling are the same everywhere. The code is bundled by
 * lambda-bundle.ts, the same function bench/bundles.ts measures and test/cdk/bundles.test.ts loads.
 */
import * as path from 'node:path';
import { AssetHashType, DockerImage, Duration, RemovalPolicy } from 'aws-cdk-lib';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import type * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import { Construct } from 'constructs';
import type { BuildOptions } from 'esbuild';
import { bundleLambdaSync, ESBUILD_TARGET, lambdaBuildOptions } from './lambda-bundle';

/** Repository root: entries are resolved against it, whatever the caller's working directory. */
export const PROJECT_ROOT = path.resolve(__dirname, '..', '..');

/**
 * The latest Lambda Node.js runtime (DESIGN decision 2 allows 22 or 24). The bundles still target Node 22
 * (ESBUILD_TARGET), what the tests and the local mode run on, so the shipped code uses nothing Node 22 lacks.
 */
export const LAMBDA_RUNTIME = lambda.Runtime.NODEJS_24_X;
export { ESBUILD_TARGET };

/**
 * esbuild options for one entry, as shipped (lambda-bundle.ts: minified, source maps, the AWS SDK bundled,
 * the client-node plugin). For tools that build with esbuild's JS API themselves.
 */
export function esbuildOptions(entry: string, outfile: string): BuildOptions {
  return lambdaBuildOptions(entry, outfile);
}

/**
 * The function code: `entry` bundled by lambda-bundle.ts in a local bundling step (no Docker). CDK's
 * NodejsFunction would run the esbuild CLI, which cannot take the plugin that keeps the bundles small.
 * Hashed by output, so an unchanged bundle is an unchanged asset.
 */
export function bundledCode(entry: string): lambda.Code {
  return lambda.Code.fromAsset(PROJECT_ROOT, {
    assetHashType: AssetHashType.OUTPUT,
    bundling: {
      // Never used: local bundling either succeeds or throws (a failing build must not fall back to Docker).
      image: DockerImage.fromRegistry('mlpipe/no-docker-bundling'),
      // CDK stages an asset once per cache key (source path + these options; the tryBundle closure is not in
      // it): without the entry here, every function got the first function's bundle.
      environment: { MLPIPE_ENTRY: entry },
      local: {
        tryBundle(outputDir: string): boolean {
          bundleLambdaSync(entry, outputDir);
          return true;
        },
      },
    },
  });
}

/**
 * Memory for every function that does not ask for more (all but EvaluateModel, 1024 MB in FUNCTION_SPECS:
 * it holds the evaluation data set and its answers). Measured (`npm run bench -- bundles`, Node 22):
 * each bundle's process is 65-76 MB RSS after loading it (heap 10-15 MB), and a Kubernetes function's
 * after five apply/read/list/watch/log round trips against the local API is 68 MB RSS (heap 10.5 MB);
 * the Lambda runtime adds ~20-30 MB. 256 MB leaves 2.5x headroom over ~100 MB. Was 512 MB: sized for the
 * 3.2 MB bundles that took 150-340 ms to load; the Await* tasks spend up to 300 s waiting on a watch, so
 * memory is most of their cost and the extra CPU bought nothing after the cold start.
 */
export const DEFAULT_MEMORY_MB = 256;

/**
 * One log level for the two filters a line passes: Powertools Logger's own (functions/shared/logger.ts) and
 * Lambda's ApplicationLogLevel, which with the JSON log format drops lines below it and, as
 * AWS_LAMBDA_LOG_LEVEL, overrides POWERTOOLS_LOG_LEVEL inside Powertools. Set apart, a lower
 * POWERTOOLS_LOG_LEVEL would be silently ignored (lines below ApplicationLogLevel are dropped), so both come
 * from here.
 */
export const LOG_LEVEL = lambda.ApplicationLogLevel.INFO;

/** Read by Powertools in every function (service name and level of every log line). */
export const LOGGING_ENVIRONMENT: Record<string, string> = { POWERTOOLS_SERVICE_NAME: 'mlpipe', POWERTOOLS_LOG_LEVEL: LOG_LEVEL };

export interface PipelineFunctionProps {
  /** Handler file relative to the repository root, e.g. `functions/prepare-run.ts`; it exports `handler`. */
  readonly entry: string;
  /** Explicit for every function: each one sits below the Step Functions TimeoutSeconds of its state. */
  readonly timeout: Duration;
  /** @default DEFAULT_MEMORY_MB (256) */
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
 * A Lambda function with mlpipe's defaults and its own log group. Without a given role it gets a role of
 * its own that may write to that log group only: the AWSLambdaBasicExecutionRole CDK would attach lets
 * a function create log groups and write to any of them.
 */
export class PipelineFunction extends lambda.Function {
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
      code: bundledCode(props.entry),
      handler: 'index.handler',
      runtime: LAMBDA_RUNTIME,
      architecture: lambda.Architecture.ARM_64,
      memorySize: props.memorySize ?? DEFAULT_MEMORY_MB,
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
    });
  }
}
