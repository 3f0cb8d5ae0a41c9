/**
 * Every Lambda of the pipeline: the state machine's tasks (one file each, see docs/architecture.md), plus
 * rollback. Each function gets the settings its handler's schema reads (functions/shared/function-settings.ts),
 * every one written out, and only the permissions it needs; the Kubernetes-calling ones share the role
 * from cluster-access.ts.
 */
import { Duration } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { Construct } from 'constructs';
import { Artifacts, PREFIX } from './artifacts';
import { FUNCTION_SETTINGS } from '../../functions/shared/function-settings';
import { setByCdk, type FunctionSettings } from '../../functions/shared/settings';
import { DEFAULT_MEMORY_MB, PipelineFunction, type FunctionNetwork } from './lambda-defaults';

/**
 * Setting values by variable name, as environment text (unset: the setting's default from its schema).
 * Only settings the CDK sets (prop- or construct-sourced, settings.ts) are read from here.
 */
export type SettingValues = Readonly<Record<string, string | undefined>>;

/**
 * A function's environment from its settings schema: every setting it reads that the CDK sets, with the
 * given value or else the schema's default written out, so the template shows what the function runs
 * with. Runtime-provided and local-only settings are left to the runtime. A required setting without a
 * value is a bug in the construct, reported as such.
 */
export function environmentFor(functionId: string, settings: FunctionSettings, values: SettingValues): Record<string, string> {
  const environment: Record<string, string> = {};
  for (const def of Object.values(settings.definitions)) {
    if (!setByCdk(def)) continue;
    const value = values[def.name] ?? def.default;
    if (value === undefined) {
      if (def.optional) continue;
      throw new Error(`mlpipe: no value for setting ${def.name}, which function ${functionId} requires (a bug in the construct).`);
    }
    environment[def.name] = value;
  }
  return environment;
}

/** What a function may touch beyond its logs and traces. */
type Access = 'none' | 'inspect-image' | 'kubernetes' | 'rollback' | 'evaluate' | 'request-approval' | 'record' | 'notify';

export interface FunctionSpec {
  /** Construct id, also the key in `PipelineFunctions.functions`. */
  readonly id: string;
  /** The ASL placeholder this function substitutes, or undefined when the state machine doesn't call it. */
  readonly placeholder?: string;
  readonly entry: string;
  readonly timeout: Duration;
  readonly memorySize?: number;
  /** The settings its handler loads (function-settings.ts): its environment is built from them. */
  readonly settings: FunctionSettings;
  readonly access: Access;
  readonly description: string;
  /** It calls model endpoints over HTTP, so it runs in the endpoint network when there is one. */
  readonly callsModelEndpoints?: boolean;
}

/**
 * CheckTraining runs once per wake-up of a training wait and holds nothing: small. Not the 128 MB minimum:
 * its bundle (client-node, S3 client) measured 80 MB resident right after load, and an out-of-memory
 * check would fail the run; its GB-s are a rounding error next to the watch's (bench/cost.ts).
 */
export const CHECK_TRAINING_MEMORY_MB = 192;

/**
 * The function catalog. Await tasks run 300 s (the ASL gives them 330 s; WATCH_BUDGET_SECONDS must
 * leave them time to answer); every timeout is below the TimeoutSeconds of each state that uses it
 * (test/cdk checks this against the ASL file).
 */
export const FUNCTION_SPECS: readonly FunctionSpec[] = [
  {
    id: 'PrepareRun', settings: FUNCTION_SETTINGS.PrepareRun, placeholder: 'PrepareRunFunctionArn', entry: 'functions/prepare-run.ts',
    // 45 s: it reads the training image's labels from ECR (up to three bounded calls and a download); the ASL gives it 60 s.
    timeout: Duration.seconds(45), access: 'inspect-image', description: 'Validate the run request and derive version and names',
  },
  {
    id: 'SubmitTraining', settings: FUNCTION_SETTINGS.SubmitTraining, placeholder: 'SubmitTrainingFunctionArn', entry: 'functions/submit-training.ts',
    timeout: Duration.seconds(90), access: 'kubernetes', description: 'Apply the training Job',
  },
  {
    id: 'CheckTraining', settings: FUNCTION_SETTINGS.CheckTraining, placeholder: 'CheckTrainingFunctionArn', entry: 'functions/check-training.ts',
    // One read of the Job, its pods, its events and progress.json, then it returns: a few hundred ms.
    timeout: Duration.seconds(60), memorySize: CHECK_TRAINING_MEMORY_MB, access: 'kubernetes', description: 'Look at the training Job once and plan the next wait',
  },
  {
    id: 'AwaitTraining', settings: FUNCTION_SETTINGS.AwaitTraining, placeholder: 'AwaitTrainingFunctionArn', entry: 'functions/await-training.ts',
    timeout: Duration.seconds(300), access: 'kubernetes', description: 'Watch the training Job',
  },
  {
    id: 'DeployStaging', settings: FUNCTION_SETTINGS.DeployStaging, placeholder: 'DeployStagingFunctionArn', entry: 'functions/deploy-staging.ts',
    timeout: Duration.seconds(90), access: 'kubernetes', description: 'Apply the staging Deployment',
  },
  {
    id: 'AwaitStagingRollout', settings: FUNCTION_SETTINGS.AwaitStagingRollout, placeholder: 'AwaitStagingRolloutFunctionArn', entry: 'functions/await-staging-rollout.ts',
    timeout: Duration.seconds(300), access: 'kubernetes', description: 'Watch the staging rollout',
  },
  {
    id: 'ExposeStaging', settings: FUNCTION_SETTINGS.ExposeStaging, placeholder: 'ExposeStagingFunctionArn', entry: 'functions/expose-staging.ts',
    timeout: Duration.seconds(90), access: 'kubernetes', description: 'Apply the staging LoadBalancer Service',
  },
  {
    id: 'AwaitStagingEndpoint', settings: FUNCTION_SETTINGS.AwaitStagingEndpoint, placeholder: 'AwaitStagingEndpointFunctionArn', entry: 'functions/await-staging-endpoint.ts',
    timeout: Duration.seconds(300), access: 'kubernetes', description: 'Wait for the staging endpoint to serve the model',
    callsModelEndpoints: true,
  },
  {
    id: 'EvaluateModel', settings: FUNCTION_SETTINGS.EvaluateModel, placeholder: 'EvaluateModelFunctionArn', entry: 'functions/evaluate-model.ts',
    timeout: Duration.seconds(870), memorySize: 1024, access: 'evaluate', callsModelEndpoints: true,
    description: 'Evaluate the staging model on held-out data against the gate',
  },
  {
    id: 'RequestApproval', settings: FUNCTION_SETTINGS.RequestApproval, placeholder: 'RequestApprovalFunctionArn', entry: 'functions/request-approval.ts',
    timeout: Duration.seconds(30), access: 'request-approval', description: 'Record the approval request and email signed links',
  },
  {
    id: 'DeployProduction', settings: FUNCTION_SETTINGS.DeployProduction, placeholder: 'DeployProductionFunctionArn', entry: 'functions/deploy-production.ts',
    timeout: Duration.seconds(90), access: 'kubernetes', description: 'Apply the production Deployment (a canary\'s first pods, or all for blue/green)',
  },
  {
    id: 'AwaitProductionRollout', settings: FUNCTION_SETTINGS.AwaitProductionRollout, placeholder: 'AwaitProductionRolloutFunctionArn', entry: 'functions/await-production-rollout.ts',
    timeout: Duration.seconds(300), access: 'kubernetes', description: 'Watch the production rollout',
  },
  {
    id: 'ShiftCanaryTraffic', settings: FUNCTION_SETTINGS.ShiftCanaryTraffic, placeholder: 'ShiftCanaryTrafficFunctionArn', entry: 'functions/shift-canary-traffic.ts',
    timeout: Duration.seconds(300), access: 'kubernetes', description: "Scale the canary to its step, then the stable version down; split the Service",
  },
  {
    id: 'AnalyzeCanary', settings: FUNCTION_SETTINGS.AnalyzeCanary, placeholder: 'AnalyzeCanaryFunctionArn', entry: 'functions/analyze-canary.ts',
    timeout: Duration.seconds(90), access: 'kubernetes', description: "Judge the canary on both versions' /metrics (pod proxy)",
  },
  {
    id: 'AbortCanary', settings: FUNCTION_SETTINGS.AbortCanary, placeholder: 'AbortCanaryFunctionArn', entry: 'functions/abort-canary.ts',
    timeout: Duration.seconds(90), access: 'kubernetes', description: 'Put a failed canary\'s stable version back at 100 %',
  },
  {
    id: 'SwitchProductionTraffic', settings: FUNCTION_SETTINGS.SwitchProductionTraffic, placeholder: 'SwitchProductionTrafficFunctionArn', entry: 'functions/switch-production-traffic.ts',
    timeout: Duration.seconds(90), access: 'kubernetes', description: 'Point the production Service at the new version',
  },
  {
    id: 'AwaitProductionEndpoint', settings: FUNCTION_SETTINGS.AwaitProductionEndpoint, placeholder: 'AwaitProductionEndpointFunctionArn', entry: 'functions/await-production-endpoint.ts',
    timeout: Duration.seconds(300), access: 'kubernetes', description: 'Wait for production to serve the new version',
    callsModelEndpoints: true,
  },
  {
    id: 'RecordRelease', settings: FUNCTION_SETTINGS.RecordRelease, placeholder: 'RecordReleaseFunctionArn', entry: 'functions/record-release.ts',
    timeout: Duration.seconds(45), access: 'record', description: 'Write the manifest (and production.json on release)',
  },
  {
    id: 'Cleanup', settings: FUNCTION_SETTINGS.Cleanup, placeholder: 'CleanupFunctionArn', entry: 'functions/cleanup.ts',
    timeout: Duration.seconds(90), access: 'kubernetes', description: 'Delete what the run left in the cluster',
  },
  {
    id: 'Notify', settings: FUNCTION_SETTINGS.Notify, placeholder: 'NotifyFunctionArn', entry: 'functions/notify.ts',
    timeout: Duration.seconds(30), access: 'notify', description: 'Email the outcome of the run',
  },
  {
    id: 'Rollback', settings: FUNCTION_SETTINGS.Rollback, entry: 'functions/rollback.ts',
    // Lambda's longest: it scales a retired version up and waits for it (up to 840 s) before switching.
    timeout: Duration.seconds(900), access: 'rollback', description: 'Scale a retained version up, wait until ready, switch production to it (mlpipe rollback)',
  },
];

/**
 * TASK_MEMORY_MB's value: the memory of the function behind each Task state of `definition` (an ASL text
 * with `${XFunctionArn}` placeholders, in Resource or in Parameters.FunctionName), only where it is not
 * DEFAULT_MEMORY_MB, which `*` gives. The run-cost estimate multiplies each Lambda attempt by it.
 */
export function taskMemoryByState(definition: string): Record<string, number> {
  const memory: Record<string, number> = { '*': DEFAULT_MEMORY_MB };
  const visit = (states: Record<string, { Type?: string; Resource?: string; Parameters?: Record<string, unknown> } & Record<string, unknown>>) => {
    for (const [name, state] of Object.entries(states)) {
      const nested = [state.Branches, [state.Iterator, state.ItemProcessor]].flat().filter((b): b is { States: typeof states } => typeof b === 'object' && b !== null && 'States' in b);
      for (const branch of nested) visit(branch.States);
      if (state.Type !== 'Task') continue;
      const target = `${state.Resource ?? ''} ${String(state.Parameters?.FunctionName ?? state.Parameters?.['FunctionName.$'] ?? '')}`;
      const spec = FUNCTION_SPECS.find((s) => s.placeholder !== undefined && target.includes(`\${${s.placeholder}}`));
      if (!spec) throw new Error(`mlpipe: Task state ${name} calls no function of FUNCTION_SPECS; its cost cannot be estimated (lib/constructs/pipeline-functions.ts).`);
      const mb = spec.memorySize ?? DEFAULT_MEMORY_MB;
      if (mb !== DEFAULT_MEMORY_MB) memory[name] = mb;
    }
  };
  visit((JSON.parse(definition) as { States: Parameters<typeof visit>[0] }).States);
  return memory;
}

/** Every `${X}` the construct substitutes in statemachine/pipeline.asl.json. */
export const DEFINITION_SUBSTITUTION_NAMES: readonly string[] = FUNCTION_SPECS.flatMap((s) =>
  s.placeholder === undefined ? [] : [s.placeholder],
);

export interface PipelineFunctionsProps {
  /** Values of the settings the functions read (their schemas say which each gets). */
  readonly settings: SettingValues;
  readonly artifacts: Artifacts;
  readonly kubernetesRole: iam.IRole;
  /** The rollback function's role (Kubernetes access to production only). */
  readonly rollbackRole: iam.IRole;
  /** Granted sns:Publish to request-approval and notify. */
  readonly grantPublish: (grantee: iam.IGrantable) => void;
  /** Granted secretsmanager:GetSecretValue to request-approval and notify (both sign links). */
  readonly grantReadSecret: (grantee: iam.IGrantable) => void;
  /** The training images' ECR repository: Prepare reads their hyperparameter schema label (manifest + config blob). */
  readonly trainingRepositoryArn: string;
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
    // The Kubernetes tasks read only what the trainer reports (CheckTraining and AwaitTraining: metrics.json
    // and progress.json under a version's prefix), never the model files or the registry, and write nothing
    // to S3; rollback rewrites production.json, with a role of its own (see cluster-access.ts).
    artifacts.grantRead(props.kubernetesRole, `${models}/metrics.json`, `${models}/progress.json`);
    artifacts.grantRead(props.rollbackRole, models);
    artifacts.grantWrite(props.rollbackRole, `${artifacts.modelPrefix}production.json`);

    for (const spec of FUNCTION_SPECS) {
      const environment = environmentFor(spec.id, spec.settings, props.settings);
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
      case 'inspect-image':
        // The manifest (BatchGetImage) and the config blob's download URL: the image's labels, not its layers' worth of access.
        fn.addToRolePolicy(new iam.PolicyStatement({ actions: ['ecr:BatchGetImage', 'ecr:GetDownloadUrlForLayer'], resources: [props.trainingRepositoryArn] }));
        // A retry (functions/shared/resume.ts): the failed run's manifest, and a listing to see its model files are still there.
        artifacts.grantRead(fn, `${model}*/manifest.json`);
        return;
      case 'none':
      case 'kubernetes':
      case 'rollback':
        return;
      case 'evaluate':
        artifacts.grantRead(fn, `${PREFIX.datasets}*`, `${model}*`);
        artifacts.grantWrite(fn, `${model}*/evaluation.json`);
        return;
      case 'request-approval':
        // datasets/: only the dataset.json manifests (data version and sha256 for the approval page), not the data.
        artifacts.grantRead(fn, `${PREFIX.approvals}*`, `${model}*`, `${PREFIX.datasets}*/dataset.json`);
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
        // The failure email's retry link is signed with the approval links' key.
        props.grantReadSecret(fn);
        return;
    }
  }
}
