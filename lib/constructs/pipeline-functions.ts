/**
 * Every Lambda of the pipeline: the state machine's tasks (one file each, see docs/architecture.md), plus
 * rollback. Each function gets only the settings it reads and only the permissions it needs; the
 * Kubernetes-calling ones share the role from cluster-access.ts.
 */
import { Duration } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { Construct } from 'constructs';
import { Artifacts, PREFIX } from './artifacts';
import { PipelineFunction, type FunctionNetwork } from './lambda-defaults';

/** Names of the settings (Lambda environment variables) in docs/architecture.md. */
export type SettingName =
  | 'ARTIFACT_BUCKET'
  | 'MODEL_NAME'
  | 'DATA_URI'
  | 'EVAL_DATA_URI'
  | 'SERVING_IMAGE'
  | 'DEFAULT_HYPERPARAMETERS'
  | 'ALLOW_IMAGE_TAGS'
  | 'STAGING_NAMESPACE'
  | 'PRODUCTION_NAMESPACE'
  | 'TRAINER_SERVICE_ACCOUNT'
  | 'SERVER_SERVICE_ACCOUNT'
  | 'APPROVAL_TIMEOUT_SECONDS'
  | 'CLUSTER_NAME'
  | 'WATCH_BUDGET_SECONDS'
  | 'TRAINING_TIMEOUT_SECONDS'
  | 'ROLLOUT_TIMEOUT_SECONDS'
  | 'ENDPOINT_TIMEOUT_SECONDS'
  | 'TRAINING_CPU'
  | 'TRAINING_MEMORY'
  | 'SERVING_CPU'
  | 'SERVING_MEMORY'
  | 'SERVING_REPLICAS'
  | 'SERVICE_ANNOTATIONS'
  | 'STAGING_SERVICE_ANNOTATIONS'
  | 'MIN_ACCURACY'
  | 'MAX_P95_LATENCY_MS'
  | 'MAX_ERROR_RATE'
  | 'MAX_ACCURACY_DROP'
  | 'EVAL_SAMPLES'
  | 'EVAL_BATCH_SIZE'
  | 'NOTIFICATION_TOPIC_ARN'
  | 'APPROVAL_BASE_URL'
  | 'APPROVAL_SECRET_ARN';

export type Settings = Record<SettingName, string>;

/** What a function may touch beyond its logs and traces. */
type Access = 'none' | 'kubernetes' | 'rollback' | 'evaluate' | 'request-approval' | 'record' | 'notify';

export interface FunctionSpec {
  /** Construct id, also the key in `PipelineFunctions.functions`. */
  readonly id: string;
  /** The ASL placeholder this function substitutes, or undefined when the state machine doesn't call it. */
  readonly placeholder?: string;
  readonly entry: string;
  readonly timeout: Duration;
  readonly memorySize?: number;
  readonly settings: readonly SettingName[];
  readonly access: Access;
  readonly description: string;
  /** It calls model endpoints over HTTP, so it runs in the endpoint network when there is one. */
  readonly callsModelEndpoints?: boolean;
}

// The Kubernetes tasks find S3 objects through URIs in the state (run.modelUri), not the bucket setting.
const KUBE: readonly SettingName[] = ['CLUSTER_NAME'];
const DEPLOY: readonly SettingName[] = [...KUBE, 'SERVER_SERVICE_ACCOUNT', 'SERVING_CPU', 'SERVING_MEMORY', 'SERVING_REPLICAS'];
// Staging and production wait on rollouts and endpoints the same way.
const AWAIT_ROLLOUT: readonly SettingName[] = [...KUBE, 'WATCH_BUDGET_SECONDS', 'ROLLOUT_TIMEOUT_SECONDS'];
const AWAIT_ENDPOINT: readonly SettingName[] = [...KUBE, 'WATCH_BUDGET_SECONDS', 'ENDPOINT_TIMEOUT_SECONDS'];

/**
 * The function catalog. Await tasks run 300 s (the ASL gives them 330 s; WATCH_BUDGET_SECONDS must
 * leave them time to answer); every timeout is below the TimeoutSeconds of each state that uses it
 * (test/cdk checks this against the ASL file).
 */
export const FUNCTION_SPECS: readonly FunctionSpec[] = [
  {
    id: 'PrepareRun', placeholder: 'PrepareRunFunctionArn', entry: 'functions/prepare-run.ts',
    timeout: Duration.seconds(30), access: 'none', description: 'Validate the run request and derive version and names',
    settings: ['ARTIFACT_BUCKET', 'MODEL_NAME', 'DATA_URI', 'EVAL_DATA_URI', 'SERVING_IMAGE', 'DEFAULT_HYPERPARAMETERS',
      'STAGING_NAMESPACE', 'PRODUCTION_NAMESPACE', 'APPROVAL_TIMEOUT_SECONDS', 'ALLOW_IMAGE_TAGS'],
  },
  {
    id: 'SubmitTraining', placeholder: 'SubmitTrainingFunctionArn', entry: 'functions/submit-training.ts',
    timeout: Duration.seconds(90), access: 'kubernetes', description: 'Apply the training Job',
    settings: [...KUBE, 'TRAINER_SERVICE_ACCOUNT', 'TRAINING_CPU', 'TRAINING_MEMORY'],
  },
  {
    id: 'AwaitTraining', placeholder: 'AwaitTrainingFunctionArn', entry: 'functions/await-training.ts',
    timeout: Duration.seconds(300), access: 'kubernetes', description: 'Watch the training Job',
    settings: [...KUBE, 'WATCH_BUDGET_SECONDS', 'TRAINING_TIMEOUT_SECONDS'],
  },
  {
    id: 'DeployStaging', placeholder: 'DeployStagingFunctionArn', entry: 'functions/deploy-staging.ts',
    timeout: Duration.seconds(90), access: 'kubernetes', description: 'Apply the staging Deployment', settings: DEPLOY,
  },
  {
    id: 'AwaitStagingRollout', placeholder: 'AwaitStagingRolloutFunctionArn', entry: 'functions/await-staging-rollout.ts',
    timeout: Duration.seconds(300), access: 'kubernetes', description: 'Watch the staging rollout',
    settings: AWAIT_ROLLOUT,
  },
  {
    id: 'ExposeStaging', placeholder: 'ExposeStagingFunctionArn', entry: 'functions/expose-staging.ts',
    timeout: Duration.seconds(90), access: 'kubernetes', description: 'Apply the staging LoadBalancer Service',
    settings: [...KUBE, 'SERVICE_ANNOTATIONS', 'STAGING_SERVICE_ANNOTATIONS'],
  },
  {
    id: 'AwaitStagingEndpoint', placeholder: 'AwaitStagingEndpointFunctionArn', entry: 'functions/await-staging-endpoint.ts',
    timeout: Duration.seconds(300), access: 'kubernetes', description: 'Wait for the staging endpoint to serve the model',
    callsModelEndpoints: true,
    settings: AWAIT_ENDPOINT,
  },
  {
    id: 'EvaluateModel', placeholder: 'EvaluateModelFunctionArn', entry: 'functions/evaluate-model.ts',
    timeout: Duration.seconds(870), memorySize: 1024, access: 'evaluate', callsModelEndpoints: true,
    description: 'Evaluate the staging model on held-out data against the gate',
    settings: ['ARTIFACT_BUCKET', 'MIN_ACCURACY', 'MAX_P95_LATENCY_MS', 'MAX_ERROR_RATE', 'MAX_ACCURACY_DROP', 'EVAL_SAMPLES', 'EVAL_BATCH_SIZE'],
  },
  {
    id: 'RequestApproval', placeholder: 'RequestApprovalFunctionArn', entry: 'functions/request-approval.ts',
    timeout: Duration.seconds(30), access: 'request-approval', description: 'Record the approval request and email signed links',
    settings: ['ARTIFACT_BUCKET', 'NOTIFICATION_TOPIC_ARN', 'APPROVAL_BASE_URL', 'APPROVAL_SECRET_ARN'],
  },
  {
    id: 'DeployProduction', placeholder: 'DeployProductionFunctionArn', entry: 'functions/deploy-production.ts',
    timeout: Duration.seconds(90), access: 'kubernetes', description: 'Apply the production Deployment (blue/green)', settings: DEPLOY,
  },
  {
    id: 'AwaitProductionRollout', placeholder: 'AwaitProductionRolloutFunctionArn', entry: 'functions/await-production-rollout.ts',
    timeout: Duration.seconds(300), access: 'kubernetes', description: 'Watch the production rollout',
    settings: AWAIT_ROLLOUT,
  },
  {
    id: 'SwitchProductionTraffic', placeholder: 'SwitchProductionTrafficFunctionArn', entry: 'functions/switch-production-traffic.ts',
    timeout: Duration.seconds(90), access: 'kubernetes', description: 'Point the production Service at the new version',
    settings: [...KUBE, 'SERVICE_ANNOTATIONS'],
  },
  {
    id: 'AwaitProductionEndpoint', placeholder: 'AwaitProductionEndpointFunctionArn', entry: 'functions/await-production-endpoint.ts',
    timeout: Duration.seconds(300), access: 'kubernetes', description: 'Wait for production to serve the new version',
    callsModelEndpoints: true,
    settings: AWAIT_ENDPOINT,
  },
  {
    id: 'RecordRelease', placeholder: 'RecordReleaseFunctionArn', entry: 'functions/record-release.ts',
    timeout: Duration.seconds(45), access: 'record', description: 'Write the manifest (and production.json on release)',
    settings: ['ARTIFACT_BUCKET'],
  },
  {
    id: 'Cleanup', placeholder: 'CleanupFunctionArn', entry: 'functions/cleanup.ts',
    timeout: Duration.seconds(90), access: 'kubernetes', description: 'Delete what the run left in the cluster',
    // It may switch the production Service back after a late failure: the Service keeps its annotations.
    settings: [...KUBE, 'SERVICE_ANNOTATIONS'],
  },
  {
    id: 'Notify', placeholder: 'NotifyFunctionArn', entry: 'functions/notify.ts',
    timeout: Duration.seconds(30), access: 'notify', description: 'Email the outcome of the run', settings: ['NOTIFICATION_TOPIC_ARN'],
  },
  {
    id: 'Rollback', entry: 'functions/rollback.ts',
    timeout: Duration.seconds(300), access: 'rollback', description: 'Switch production back to the previous version (mlpipe rollback)',
    settings: [...KUBE, 'ARTIFACT_BUCKET', 'MODEL_NAME', 'PRODUCTION_NAMESPACE', 'SERVICE_ANNOTATIONS', 'WATCH_BUDGET_SECONDS',
      'ROLLOUT_TIMEOUT_SECONDS', 'ENDPOINT_TIMEOUT_SECONDS'],
  },
];

/** Every `${X}` the construct substitutes in statemachine/pipeline.asl.json. */
export const DEFINITION_SUBSTITUTION_NAMES: readonly string[] = FUNCTION_SPECS.flatMap((s) =>
  s.placeholder === undefined ? [] : [s.placeholder],
);

export interface PipelineFunctionsProps {
  readonly settings: Settings;
  readonly artifacts: Artifacts;
  readonly kubernetesRole: iam.IRole;
  /** The rollback function's role (Kubernetes access to production only). */
  readonly rollbackRole: iam.IRole;
  /** Granted sns:Publish to request-approval and notify. */
  readonly grantPublish: (grantee: iam.IGrantable) => void;
  /** Granted secretsmanager:GetSecretValue to request-approval. */
  readonly grantReadSecret: (grantee: iam.IGrantable) => void;
  /** Where the functions that call model endpoints run. @default outside any VPC */
  readonly endpointNetwork?: FunctionNetwork;
}

export class PipelineFunctions extends Construct {
  /** By construct id (`PrepareRun`, ..., `Rollback`). */
  readonly functions: Record<string, lambda.Function> = {};

  constructor(scope: Construct, id: string, props: PipelineFunctionsProps) {
    super(scope, id);
    const { artifacts } = props;
    const models = `${artifacts.modelPrefix}*`;
    // The Kubernetes tasks read training metrics and the registry and write nothing to S3; rollback
    // rewrites production.json, with a role of its own (see cluster-access.ts).
    artifacts.grantRead(props.kubernetesRole, models);
    artifacts.grantRead(props.rollbackRole, models);
    artifacts.grantWrite(props.rollbackRole, `${artifacts.modelPrefix}production.json`);

    for (const spec of FUNCTION_SPECS) {
      const environment = Object.fromEntries(spec.settings.map((name) => [name, props.settings[name]]));
      const givenRole = spec.access === 'kubernetes' ? props.kubernetesRole : spec.access === 'rollback' ? props.rollbackRole : undefined;
      const fn = new PipelineFunction(this, spec.id, {
        entry: spec.entry,
        timeout: spec.timeout,
        memorySize: spec.memorySize,
        environment,
        description: `mlpipe: ${spec.description}`,
        role: givenRole,
        network: spec.callsModelEndpoints === true ? props.endpointNetwork : undefined,
      });
      this.grantAccess(spec.access, fn, props);
      this.functions[spec.id] = fn;
    }
  }

  get(id: string): lambda.Function {
    const fn = this.functions[id];
    if (!fn) throw new Error(`mlpipe: no function "${id}" in FUNCTION_SPECS.`);
    return fn;
  }

  private grantAccess(access: Access, fn: lambda.Function, props: PipelineFunctionsProps): void {
    const { artifacts } = props;
    const model = artifacts.modelPrefix;
    switch (access) {
      case 'none':
      case 'kubernetes':
      case 'rollback':
        return;
      case 'evaluate':
        artifacts.grantRead(fn, `${PREFIX.datasets}*`, `${model}*`);
        artifacts.grantWrite(fn, `${model}*/evaluation.json`);
        return;
      case 'request-approval':
        artifacts.grantRead(fn, `${PREFIX.approvals}*`, `${model}*`);
        artifacts.grantWrite(fn, `${PREFIX.approvals}*`);
        props.grantPublish(fn);
        props.grantReadSecret(fn);
        return;
      case 'record':
        // approvals/: RecordFailure marks a timed-out approval request expired.
        artifacts.grantRead(fn, `${model}*`, `${PREFIX.datasets}*`, `${PREFIX.approvals}*`);
        artifacts.grantWrite(fn, `${model}*/manifest.json`, `${model}production.json`, `${PREFIX.approvals}*`);
        return;
      case 'notify':
        props.grantPublish(fn);
        return;
    }
  }
}
