/**
 * Where the CLI's commands go: a deployed stack (AWS mode, outputs from CloudFormation DescribeStacks) or
 * the local pipeline (`npm start` writes .mlpipe/local.json with its endpoints; it is used when --local is
 * given, or by itself when that file names a live process). The shared modules (decideApproval, rollback,
 * kube) read their settings from the environment, so the target also sets those variables.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { CloudFormationClient, DescribeStacksCommand } from '@aws-sdk/client-cloudformation';
import { SFNClient } from '@aws-sdk/client-sfn';
import { z } from 'zod';
import { LOCAL_AWS_ENV } from '../local/s3';
import { isAlive } from '../local/process-alive';
import { resetClients } from '../functions/shared/clients';
import { CliError } from './io';
import { KUBE, REGISTRY } from '../functions/shared/function-settings';
import { defineSettings, loadSettings } from '../functions/shared/settings';

/** What the shared modules the CLI calls read (the registry, Kubernetes access), from the environment set above. */
const CLI_SETTINGS = defineSettings({ ...KUBE, ...REGISTRY });

const localFileSchema = z.object({
  pid: z.number().int(),
  region: z.string(),
  sfnEndpoint: z.string().url(),
  s3Endpoint: z.string().url(),
  snsEndpoint: z.string().url().optional(),
  /** The local Lambda Invoke API: the rollback function runs from its bundle there, as on AWS. */
  lambdaEndpoint: z.string().url().optional(),
  rollbackFunctionName: z.string().optional(),
  kubeconfig: z.string(),
  bucket: z.string(),
  stateMachineArn: z.string(),
  approvalUrl: z.string(),
  modelName: z.string(),
  namespaces: z.object({ staging: z.string(), production: z.string() }),
  /** The local Secrets Manager, and model → its endpoint token secret there (absent: endpoint auth off, or an older runner). */
  secretsEndpoint: z.string().url().optional(),
  endpointTokenSecrets: z.record(z.string(), z.string()).optional(),
});
/** What `npm start` writes to .mlpipe/local.json (local/pipeline.ts) and the CLI reads. */
export type LocalFile = z.infer<typeof localFileSchema>;

export interface Target {
  mode: 'aws' | 'local';
  region: string;
  stateMachineArn: string;
  bucket: string;
  approvalUrl?: string;
  rollbackFunctionName?: string;
  /** Local mode: the Lambda Invoke endpoint of the local run. */
  lambdaEndpoint?: string;
  /** Local mode: the default model and namespaces of the local runner. */
  modelName?: string;
  /** Local mode: the runner's state directory (pod logs are kept under kube/pods/). */
  stateDir?: string;
  /** Model → ARN of its endpoint token secret (the stack output EndpointTokenSecrets; locally, local.json). */
  endpointTokenSecrets?: Record<string, string>;
  /** The pipeline's namespaces: the local runner's, or the deployed stack's outputs (stacks deployed before they were output lack them). */
  namespaces?: { staging: string; production: string };
  sfn: SFNClient;
  /** The Step Functions console page of a run (AWS mode). */
  consoleLink(executionArn: string): string | undefined;
}

export interface TargetOptions {
  local?: boolean;
  stack?: string;
  region?: string;
  /** Directory holding local.json (default: $MLPIPE_STATE_DIR or ./.mlpipe). */
  stateDir?: string;
}

function localFile(opts: TargetOptions): string {
  return join(resolve(opts.stateDir ?? process.env.MLPIPE_STATE_DIR ?? '.mlpipe'), 'local.json');
}

function readLocal(file: string): z.infer<typeof localFileSchema> | undefined {
  if (!existsSync(file)) return undefined;
  const parsed = localFileSchema.safeParse(JSON.parse(readFileSync(file, 'utf8')));
  if (!parsed.success) {
    throw new CliError(`${file} is not a local pipeline description: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  }
  return parsed.data;
}

export async function resolveTarget(opts: TargetOptions): Promise<Target> {
  const file = localFile(opts);
  const local = readLocal(file);
  const useLocal = opts.local || (local !== undefined && isAlive(local.pid));
  if (useLocal) {
    if (!local) throw new CliError(`No local pipeline: ${file} does not exist. Start one with \`npm start\`.`);
    if (!isAlive(local.pid)) throw new CliError(`The local pipeline (pid ${local.pid}) is not running any more. Start it with \`npm start\`.`);
    Object.assign(process.env, LOCAL_AWS_ENV, {
      AWS_REGION: local.region,
      AWS_ENDPOINT_URL_SFN: local.sfnEndpoint,
      AWS_ENDPOINT_URL_S3: local.s3Endpoint,
      ...(local.snsEndpoint ? { AWS_ENDPOINT_URL_SNS: local.snsEndpoint } : {}),
      ...(local.secretsEndpoint ? { AWS_ENDPOINT_URL_SECRETS_MANAGER: local.secretsEndpoint } : {}),
      ARTIFACT_BUCKET: local.bucket,
      KUBECONFIG: local.kubeconfig,
      STAGING_NAMESPACE: local.namespaces.staging,
      PRODUCTION_NAMESPACE: local.namespaces.production,
      MODEL_NAME: local.modelName,
    });
    loadSettings(CLI_SETTINGS);
    resetClients();
    return {
      mode: 'local',
      region: local.region,
      stateMachineArn: local.stateMachineArn,
      bucket: local.bucket,
      approvalUrl: local.approvalUrl,
      ...(local.lambdaEndpoint && local.rollbackFunctionName ? { lambdaEndpoint: local.lambdaEndpoint, rollbackFunctionName: local.rollbackFunctionName } : {}),
      modelName: local.modelName,
      stateDir: dirname(file),
      namespaces: local.namespaces,
      ...(local.endpointTokenSecrets ? { endpointTokenSecrets: local.endpointTokenSecrets } : {}),
      sfn: new SFNClient({ region: local.region, endpoint: local.sfnEndpoint, credentials: { accessKeyId: LOCAL_AWS_ENV.AWS_ACCESS_KEY_ID, secretAccessKey: LOCAL_AWS_ENV.AWS_SECRET_ACCESS_KEY } }),
      consoleLink: () => undefined,
    };
  }

  const stackName = opts.stack ?? 'MlPipeStack';
  const region = opts.region ?? process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION;
  const cfn = new CloudFormationClient(region ? { region } : {});
  let outputs: Record<string, string>;
  try {
    const { Stacks } = await cfn.send(new DescribeStacksCommand({ StackName: stackName }));
    outputs = Object.fromEntries((Stacks?.[0]?.Outputs ?? []).map((o) => [o.OutputKey ?? '', o.OutputValue ?? '']));
  } catch (err) {
    throw new CliError(
      `Cannot read stack ${stackName}: ${(err as Error).message}. Deploy it (npx cdk deploy), pass --stack, or use --local with \`npm start\` running.`,
    );
  }
  const need = (key: string): string => {
    const v = outputs[key];
    if (!v) throw new CliError(`Stack ${stackName} has no output ${key}; is it an mlpipe stack?`);
    return v;
  };
  const stateMachineArn = need('StateMachineArn');
  const smRegion = stateMachineArn.split(':')[3]!;
  process.env.ARTIFACT_BUCKET = need('ArtifactBucketName');
  process.env.AWS_REGION ??= smRegion;
  if (outputs.ClusterName) process.env.CLUSTER_NAME ??= outputs.ClusterName;
  const namespaces = outputs.StagingNamespace && outputs.ProductionNamespace ? { staging: outputs.StagingNamespace, production: outputs.ProductionNamespace } : undefined;
  if (namespaces) {
    process.env.STAGING_NAMESPACE = namespaces.staging;
    process.env.PRODUCTION_NAMESPACE = namespaces.production;
  }
  loadSettings(CLI_SETTINGS);
  resetClients();
  return {
    mode: 'aws',
    region: smRegion,
    stateMachineArn,
    bucket: need('ArtifactBucketName'),
    ...(outputs.ApprovalUrl ? { approvalUrl: outputs.ApprovalUrl } : {}),
    ...(outputs.RollbackFunctionName ? { rollbackFunctionName: outputs.RollbackFunctionName } : {}),
    ...(namespaces ? { namespaces } : {}),
    ...(outputs.EndpointTokenSecrets ? { endpointTokenSecrets: parseTokenSecrets(outputs.EndpointTokenSecrets, stackName) } : {}),
    sfn: new SFNClient({ region: smRegion }),
    consoleLink: (arn) => `https://${smRegion}.console.aws.amazon.com/states/home?region=${smRegion}#/v2/executions/details/${arn}`,
  };
}

function parseTokenSecrets(text: string, stackName: string): Record<string, string> {
  try {
    return z.record(z.string(), z.string()).parse(JSON.parse(text));
  } catch {
    throw new CliError(`Stack ${stackName}'s output EndpointTokenSecrets is not a JSON object of model name to secret ARN.`);
  }
}
