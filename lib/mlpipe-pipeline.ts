/**
 * MlPipeline: the whole serverless ML pipeline as one construct. Push a training image to ECR; get a
 * trained, evaluated, human-approved model serving on an existing EKS cluster. It wires one construct
 * per concern (artifacts, cluster access, functions, state machine, approval, triggers, monitoring) and
 * validates its props up front, with messages that say how to fix them.
 */
import { readFileSync } from 'node:fs';
import { Arn, ArnFormat, Aws, Duration, Stack, Token } from 'aws-cdk-lib';
import type * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import type * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import type * as sns from 'aws-cdk-lib/aws-sns';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { Approval } from './constructs/approval';
import { Artifacts, PREFIX } from './constructs/artifacts';
import { ClusterAccess } from './constructs/cluster-access';
import { EndpointNetwork, INTERNAL_LOAD_BALANCER_ANNOTATIONS } from './constructs/endpoint-network';
import { Monitoring } from './constructs/monitoring';
import { ServingMonitor } from './constructs/serving-monitor';
import { acknowledgeApprovalEndpoint, acknowledgeScopedWildcards } from './constructs/nag-suppressions';
import { EndpointTokenRotation } from './constructs/endpoint-token-rotation';
import { KUBERNETES_GROUP, RBAC_NAMES } from './monitor-rbac';
import { FUNCTION_SPECS, PipelineFunctions, taskMemoryByState, type SettingValues } from './constructs/pipeline-functions';
import * as S from '../functions/shared/settings';
import { DEFINITION_FILE, PipelineStateMachine } from './constructs/state-machine';
import { Triggers } from './constructs/triggers';
import { CONTEXT_PREFIX } from './context';
import type { Rollout } from '../functions/shared/rollout';
import type { PlacementProps } from '../functions/shared/placement';

/** The `rollout` prop: any of the rollout's fields (the rest keep their defaults). */
export type RolloutProps = Partial<Rollout>;

export interface MlPipelineProps {
  /** Name of the existing EKS cluster the pipeline trains and serves on. It needs the Pod Identity agent add-on. */
  readonly clusterName: string;
  /** ARN of that cluster. @default `arn:<partition>:eks:<this region>:<this account>:cluster/<clusterName>` */
  readonly clusterArn?: string;
  /** Namespace for training Jobs and staging servers (must exist). @default 'mlpipe-staging' */
  readonly stagingNamespace?: string;
  /** Namespace for production servers (must exist). @default 'mlpipe-production' */
  readonly productionNamespace?: string;
  /**
   * Name of the model: `models/<modelName>/` in the bucket and the start of its Kubernetes object names.
   * It names the model's Services, so it must be a DNS-1035 label (lower-case letters, digits and "-",
   * starting with a letter, at most 63 characters). @default 'fashion-mnist'
   */
  readonly modelName?: string;
  /** Existing ECR repository whose successful pushes start a run. @default 'mlpipe/fashion-mnist-train' */
  readonly trainingRepositoryName?: string;
  /**
   * Image that serves the trained model (the serving contract in docs/architecture.md; stock TF Serving works).
   * @default `<account>.dkr.ecr.<region>.<urlSuffix>/mlpipe/fashion-mnist-serve:latest` — the example
   * server in examples/fashion-mnist, pushed to an ECR repository of that name in this account
   */
  readonly servingImage?: string;
  /** Default training data. @default `s3://<artifact bucket>/datasets/fashion-mnist/v1/` */
  readonly dataUri?: string;
  /** Default held-out evaluation data. @default the same as dataUri (the t10k files sit next to the train files) */
  readonly evalDataUri?: string;
  /** Hyperparameters every run gets unless its request overrides them. @default {} */
  readonly defaultHyperparameters?: Record<string, string | number | boolean>;
  /** Evaluation gate: the lowest accepted accuracy on held-out data, 0..1. @default 0.85 */
  readonly minAccuracy?: number;
  /** Evaluation gate: the highest accepted p95 request latency in milliseconds. @default 250 */
  readonly maxP95LatencyMs?: number;
  /** Evaluation gate: the highest accepted share of failed requests, 0..1. @default 0.01 */
  readonly maxErrorRate?: number;
  /** Evaluation gate: how much lower than production's the accuracy may be, 0..1. @default 0.01 */
  readonly maxAccuracyDrop?: number;
  /** Held-out samples sent to the staging endpoint. @default 10000 */
  readonly evalSamples?: number;
  /** Samples per predict request. @default 100 */
  readonly evalBatchSize?: number;
  /**
   * How often the serving monitor scrapes production's `/metrics` (EventBridge Scheduler), a rate of whole
   * minutes; it is also the serving alarms' period. @default 'rate(1 minute)'
   */
  readonly monitorSchedule?: string;
  /**
   * Serving alarm: the highest PSI of production's predicted-class distribution against the one its
   * evaluation measured (0.1-0.2 is some shift, above 0.2 a significant one). The p95 latency and error rate
   * alarms use the gate's `maxP95LatencyMs` and `maxErrorRate`. @default 0.2
   */
  readonly maxPredictionDrift?: number;
  /** Emails subscribed to approval requests and run notifications. @default [] (subscribe to the topic yourself) */
  readonly approverEmails?: readonly string[];
  /** How long a model waits for a human decision before it is rejected. 5 minutes to 7 days. @default 24 hours */
  readonly approvalTimeout?: Duration;
  /** ServiceAccount training Jobs run as (Pod Identity). @default 'mlpipe-trainer' */
  readonly trainerServiceAccount?: string;
  /** ServiceAccount model servers run as (Pod Identity). @default 'mlpipe-server' */
  readonly serverServiceAccount?: string;
  /** How long one Await invocation watches before it hands back to the state machine; under the 300 s Await timeout. @default 240 seconds */
  readonly watchBudget?: Duration;
  /** Deadline of a training Job. @default 4 hours */
  readonly trainingTimeout?: Duration;
  /**
   * Longest Wait state between two checks of a running training Job (no Lambda runs meanwhile): how late
   * a failed or stuck training is seen at worst. `Duration.seconds(0)` watches at once, as before.
   * @default 5 minutes
   */
  readonly trainingCheckMaxWait?: Duration;
  /** How long before the end the trainer's progress.json predicts AwaitTraining starts watching. @default 60 seconds */
  readonly trainingWatchLead?: Duration;
  /** Deadline of a Deployment rollout. @default 15 minutes */
  readonly rolloutTimeout?: Duration;
  /** Deadline for a LoadBalancer endpoint to serve the model. @default 15 minutes */
  readonly endpointTimeout?: Duration;
  /** Kubernetes CPU request of a training Job. @default '1' */
  readonly trainingCpu?: string;
  /** Kubernetes memory request of a training Job. @default '2Gi' */
  readonly trainingMemory?: string;
  /** Kubernetes CPU request of a model server. @default '250m' */
  readonly servingCpu?: string;
  /** Kubernetes memory request of a model server. @default '512Mi' */
  readonly servingMemory?: string;
  /** Replicas of a model server. @default 2 */
  readonly servingReplicas?: number;
  /**
   * Seconds a model server being stopped keeps serving before SIGTERM (a preStop sleep, Kubernetes 1.30+),
   * while kube-proxy and the load balancer stop sending it new connections; 0 to 300, 0 for none. @default 10
   */
  readonly servingDrainSeconds?: number;
  /** Retries of a failed training pod (the Job's backoffLimit), 0 to 10. @default 1 */
  readonly trainingBackoffLimit?: number;
  /** How long a finished training Job is kept before Kubernetes deletes it (ttlSecondsAfterFinished). @default 1 day */
  readonly trainingJobTtl?: Duration;
  /**
   * Where training pods run: `gpus` (the `nvidia.com/gpu` limit, 0 to 64; the cluster needs GPU nodes with
   * the NVIDIA device plugin), `nodeSelector`, `tolerations` (for the taints of a GPU or spot node pool),
   * `priorityClassName` (must exist in the cluster). Each is checked as the Kubernetes API checks it, and
   * only what is set reaches the pods. docs/deploy.md has a GPU node pool example.
   * @default {} (pods placed as without it)
   */
  readonly trainingPlacement?: PlacementProps;
  /** Where model servers run, as `trainingPlacement`. @default {} */
  readonly servingPlacement?: PlacementProps;
  /**
   * How production takes a new version (functions/shared/rollout.ts). `canary` (default): the new version
   * gets a growing share of the production pods (`steps`, default 10, 50, 100 %) behind the one
   * LoadBalancer Service, each step baking `bakeSeconds` (default 300) while its `/metrics` are compared
   * with the stable version's every `analysisIntervalSeconds` (default 60); a failing analysis rolls back at
   * once. Thresholds: `maxErrorRate` (0.05), `maxErrorRateIncrease` (0.02), `maxP95LatencyMs` (1000),
   * `maxP95Ratio` (1.5), `minRequests` (50, per version per step; fewer is inconclusive, extended
   * `maxInconclusive` (2) times, then a fail). `blueGreen`: switch all traffic at once. A first release
   * (nothing serving) always switches. A run may override any field (`rollout` in its input).
   * @default { strategy: 'canary', steps: [10, 50, 100], bakeSeconds: 300, analysisIntervalSeconds: 60 }
   */
  readonly rollout?: RolloutProps;
  /**
   * Hours a replaced production version is kept for `mlpipe rollback`, scaled to 0 replicas (it costs no
   * pods), 0 to 8760; the most recently replaced one is kept whatever its age. @default 72
   */
  readonly retentionHours?: number;
  /** Evaluation: predict requests in flight, 1 to 64 (more measures queueing, not the model). @default 2 */
  readonly evalConcurrency?: number;
  /** Evaluation: timeout of one predict request, at least 100 ms. @default 30 seconds */
  readonly evalRequestTimeout?: Duration;
  /**
   * Accept a training image by tag instead of pinned by digest. Tags are mutable, so a run could train
   * another image than the one pushed; the local run allows them. @default false
   */
  readonly allowImageTags?: boolean;
  /**
   * Annotations of staging Services only, over `serviceAnnotations` (with `vpcId`, the internal load
   * balancer scheme goes over these). Keys must be Kubernetes qualified names. @default {}
   */
  readonly stagingServiceAnnotations?: Record<string, string>;
  /**
   * Annotations of the LoadBalancer Services (staging and production), e.g.
   * `{ "service.beta.kubernetes.io/aws-load-balancer-scheme": "internet-facing" }` with the AWS Load
   * Balancer Controller. Without `vpcId`, EvaluateModel runs outside any VPC and calls the staging
   * endpoint, so staging must be reachable from the internet; with it, staging Services are made
   * internal whatever these say. Keys must be Kubernetes qualified names (`[prefix/]name`). @default {}
   */
  readonly serviceAnnotations?: Record<string, string>;
  /**
   * Keep the staging endpoint off the internet: the functions that call model endpoints over HTTP
   * (EvaluateModel, AwaitStagingEndpoint, AwaitProductionEndpoint) run in this VPC, and staging Services
   * get internal load balancers. Use the cluster's VPC. Requires `privateSubnetIds`.
   * @default functions outside any VPC, staging load balancers as `serviceAnnotations` say
   */
  readonly vpcId?: string;
  /**
   * Private subnets of `vpcId` for those functions. They reach S3, EKS and the Kubernetes API from here,
   * so the subnets need a NAT gateway or VPC endpoints (S3 gateway, `eks` interface). Requires `vpcId`.
   */
  readonly privateSubnetIds?: readonly string[];
  /**
   * Extra security groups for those functions, e.g. one your cluster's security group admits on 443
   * (a private cluster endpoint). Their own group (egress 80, 443, DNS) is always attached. Requires `vpcId`.
   * @default none
   */
  readonly securityGroupIds?: readonly string[];
  /**
   * Start a run with the latest training image when new data lands under this prefix of the artifact
   * bucket: uploading the marker file (`dataMarkerFile`) last starts it. It must lie under the training
   * data (`dataUri`), e.g. `datasets/fashion-mnist/v1/` with the default dataUri.
   * @default no data trigger
   */
  readonly dataPrefix?: string;
  /** The file whose upload marks a dataset version complete. @default 'dataset.json' */
  readonly dataMarkerFile?: string;
  /** EventBridge Scheduler expression for scheduled retraining, e.g. 'rate(7 days)'. @default no schedule */
  readonly schedule?: string;
  /**
   * Model endpoints require `Authorization: Bearer <token>`. The stack keeps one token per configured model
   * in Secrets Manager (KMS-encrypted with the stack's key); the Deploy steps copy it into a Kubernetes
   * Secret the serving pods read (AUTH_TOKEN_FILE), and the pipeline's probes and evaluation present it.
   * The serving image must honour AUTH_TOKEN_FILE and serve its probes and /metrics on ADMIN_PORT (the
   * example server does; for a stock TF Serving image see docs/deploy.md, auth proxy sidecar).
   * `mlpipe endpoint <model> --show-token` prints it for callers allowed to read the secret. @default true
   */
  readonly endpointAuth?: boolean;
  /**
   * Days between automatic rotations of each endpoint token (a Secrets Manager rotation schedule and
   * function), 1 to 365. A rotation keeps every serving pod answering: the Kubernetes Secret holds the
   * current, the pending and the previous token, and the new one becomes current only once every pod has
   * loaded it; the replaced token stays valid until the next rotation (docs/deploy.md). Only with
   * `endpointAuth`. @default 30
   */
  readonly endpointTokenRotationDays?: number;
  /**
   * Least privilege for the serving monitor: its EKS access entry gets this Kubernetes group and NO access
   * policy, instead of the edit policy on production (which also reads Secrets, the endpoint token among
   * them). Bind the group before the first scrape: `mlpipe monitor-rbac --group <name> | kubectl apply -f -`
   * (a Role of list pods + get pods/proxy in production). Not `system:…`. @default the edit policy on production
   */
  readonly monitorKubernetesGroup?: string;
  /**
   * Least privilege for the endpoint token rotation function (with `endpointAuth`): its EKS access entry
   * gets this Kubernetes group and NO access policy, instead of the edit policy on both serving namespaces.
   * Bind the group before the first rotation (the deploy's configuration test lists pods with it):
   * `mlpipe monitor-rbac --rotation --group <name> | kubectl apply -f -` (in staging and production:
   * get/patch/create the token Secret, list pods, get pods/proxy). Not `system:…`. @default the edit policy on both
   */
  readonly rotationKubernetesGroup?: string;
  /**
   * Least privilege for the pipeline's Kubernetes tasks (the state machine's Lambdas): their EKS access entry
   * gets this Kubernetes group and NO access policy, instead of the edit policy on both serving namespaces.
   * Bind the group before the first run: `mlpipe monitor-rbac --tasks --group <name> | kubectl apply -f -`
   * (in staging and production: Jobs, Deployments, Services; list/watch pods and events; pods/log, pods/proxy;
   * create/patch the token Secret). Not `system:…`. @default the edit policy on both
   */
  readonly tasksKubernetesGroup?: string;
  /**
   * Least privilege for the rollback function (`mlpipe rollback`): its EKS access entry gets this Kubernetes
   * group and NO access policy, instead of the edit policy on production. Bind the group before the next
   * rollback: `mlpipe monitor-rbac --rollback --group <name> | kubectl apply -f -` (in production only:
   * get/patch the Service; get/list/watch/patch Deployments; list/watch pods; get pods/log). Not `system:…`.
   * @default the edit policy on production
   */
  readonly rollbackKubernetesGroup?: string;
  /**
   * CIDR ranges allowed to reach the staging and production load balancers (the Services'
   * `loadBalancerSourceRanges`), e.g. `['203.0.113.0/24']`. The functions that call endpoints must be
   * inside them (with `vpcId`: the VPC's CIDR; without: their public egress is not fixed, so leave staging
   * open or use `vpcId`). @default [] (anyone who can route to them)
   */
  readonly loadBalancerSourceRanges?: readonly string[];
  /** Give production an internal load balancer too (only the VPC reaches it). Requires `vpcId`. @default false */
  readonly internalProduction?: boolean;
  /**
   * Annotations of production Services only, over `serviceAnnotations`. Keys must be Kubernetes qualified
   * names. @default {}
   */
  readonly productionServiceAnnotations?: Record<string, string>;
  /**
   * Network Load Balancers from the AWS Load Balancer Controller (must be installed in the cluster):
   * `type external`, `nlb-target-type ip`, and the scheme set explicitly per stage (the controller's default
   * is internal). @default false (the cluster's default load balancer)
   */
  readonly nlb?: boolean;
  /**
   * An ACM certificate ARN: production's load balancer gets a TLS listener on 443 with it (port 80 stays,
   * for the pipeline's own checks; restrict it with `loadBalancerSourceRanges`). Requires `nlb`. @default none
   */
  readonly tlsCertificateArn?: string;
}

const ECR_REPOSITORY = S.ECR_REPOSITORY;
const EKS_CLUSTER_NAME = /^[0-9A-Za-z][A-Za-z0-9\-_]{0,99}$/;
const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;
/** Await functions run 300 s; a watch must leave them time to answer. */
const MAX_WATCH_BUDGET_SECONDS = 270;

/** The props with every default filled in. */
type OptionalProp = 'clusterArn' | 'dataPrefix' | 'schedule' | 'vpcId' | 'privateSubnetIds' | 'securityGroupIds' | 'tlsCertificateArn' | 'monitorKubernetesGroup' | 'rotationKubernetesGroup' | 'tasksKubernetesGroup' | 'rollbackKubernetesGroup';
type ResolvedProps = Required<Omit<MlPipelineProps, OptionalProp>> & Pick<MlPipelineProps, OptionalProp>;

export class MlPipeline extends Construct {
  readonly bucket: s3.IBucket;
  readonly stateMachine: sfn.IStateMachine;
  readonly topic: sns.ITopic;
  readonly queue: sqs.IQueue;
  readonly deadLetterQueue: sqs.IQueue;
  /** Base URL of the approval endpoint (links are `<url>/approvals/<id>?...`). */
  readonly approvalUrl: string;
  readonly rollbackFunction: lambda.IFunction;
  /** Role of the Kubernetes-calling Lambdas (it has the EKS access entry). */
  readonly kubernetesRole: iam.IRole;
  /** Every Lambda, by name. */
  readonly functions: Readonly<Record<string, lambda.IFunction>>;
  /** With `vpcId`: the security group of the endpoint-calling functions (admit it where they must connect). */
  readonly endpointSecurityGroup?: ec2.ISecurityGroup;
  /** Model name → its endpoint token secret (none with `endpointAuth: false`). */
  readonly endpointTokenSecrets: Readonly<Record<string, secretsmanager.ISecret>>;
  /** The namespaces the pipeline deploys to (as resolved: the props' or the defaults). */
  readonly namespaces: { staging: string; production: string };

  constructor(scope: Construct, id: string, props: MlPipelineProps) {
    super(scope, id);
    const p = resolveProps(props);
    this.namespaces = { staging: p.stagingNamespace, production: p.productionNamespace };
    validateProps(p);
    validateSettings(propSettings(p));
    const stack = Stack.of(this);

    const key = new kms.Key(this, 'Key', {
      description: 'mlpipe: encrypts the notification topic and the execution logs',
      enableKeyRotation: true,
    });
    // CloudWatch alarms publish to the encrypted topic; an AWS managed key would refuse them.
    key.addToResourcePolicy(
      new iam.PolicyStatement({
        principals: [new iam.ServicePrincipal('cloudwatch.amazonaws.com')],
        actions: ['kms:Decrypt', 'kms:GenerateDataKey*'],
        resources: ['*'],
      }),
    );
    key.addToResourcePolicy(
      new iam.PolicyStatement({
        principals: [new iam.ServicePrincipal(`logs.${Aws.REGION}.amazonaws.com`)],
        actions: ['kms:Encrypt*', 'kms:Decrypt*', 'kms:ReEncrypt*', 'kms:GenerateDataKey*', 'kms:Describe*'],
        resources: ['*'],
        conditions: {
          ArnLike: { 'kms:EncryptionContext:aws:logs:arn': stack.formatArn({ service: 'logs', resource: 'log-group', resourceName: '*', arnFormat: ArnFormat.COLON_RESOURCE_NAME }) },
        },
      }),
    );

    const artifacts = new Artifacts(this, 'Artifacts', {
      modelName: p.modelName,
      eventBridgeEnabled: p.dataPrefix !== undefined,
    });
    const bucketName = artifacts.bucket.bucketName;
    const dataUri = props.dataUri ?? `s3://${bucketName}/${PREFIX.datasets}fashion-mnist/v1/`;
    const evalDataUri = props.evalDataUri ?? dataUri;

    const cluster = new ClusterAccess(this, 'ClusterAccess', {
      clusterName: p.clusterName,
      clusterArn: p.clusterArn,
      stagingNamespace: p.stagingNamespace,
      productionNamespace: p.productionNamespace,
      trainerServiceAccount: p.trainerServiceAccount,
      serverServiceAccount: p.serverServiceAccount,
      artifacts,
      tokenRotation: p.endpointAuth,
      monitorKubernetesGroup: p.monitorKubernetesGroup,
      rotationKubernetesGroup: p.rotationKubernetesGroup,
      tasksKubernetesGroup: p.tasksKubernetesGroup,
      rollbackKubernetesGroup: p.rollbackKubernetesGroup,
    });

    const approval = new Approval(this, 'Approval', { artifacts, approverEmails: p.approverEmails, key });

    const network =
      p.vpcId === undefined
        ? undefined
        : new EndpointNetwork(this, 'EndpointNetwork', {
            vpcId: p.vpcId,
            privateSubnetIds: p.privateSubnetIds ?? [],
            securityGroupIds: p.securityGroupIds,
          });

    // One endpoint token per configured model (docs/deploy.md, Endpoint authentication).
    const tokenSecrets: Record<string, secretsmanager.Secret> = {};
    if (p.endpointAuth) {
      tokenSecrets[p.modelName] = new secretsmanager.Secret(this, 'EndpointToken', {
        description: `mlpipe: bearer token of the ${p.modelName} model endpoints (staging and production)`,
        encryptionKey: key,
        generateSecretString: { passwordLength: 48, excludePunctuation: true, includeSpace: false },
      });
    }
    const exposure = loadBalancerAnnotations(p, network !== undefined);

    // Every prop-fed setting as the text its schema parses, then what the construct itself makes.
    const settings: SettingValues = {
      ...propSettings(p),
      SERVICE_ANNOTATIONS: JSON.stringify({ ...exposure.common, ...p.serviceAnnotations }),
      PRODUCTION_SERVICE_ANNOTATIONS: JSON.stringify({ ...exposure.production, ...p.productionServiceAnnotations, ...(p.internalProduction ? INTERNAL_LOAD_BALANCER_ANNOTATIONS : {}) }),
      ENDPOINT_TOKEN_SECRETS: JSON.stringify(Object.fromEntries(Object.entries(tokenSecrets).map(([model, secret]) => [model, secret.secretArn]))),
      ARTIFACT_BUCKET: bucketName,
      DATA_URI: dataUri,
      EVAL_DATA_URI: evalDataUri,
      SERVING_IMAGE:
        props.servingImage ?? `${Aws.ACCOUNT_ID}.dkr.ecr.${Aws.REGION}.${Aws.URL_SUFFIX}/mlpipe/fashion-mnist-serve:latest`,
      // Untested models behind an internal load balancer, reachable only from the functions in the VPC.
      STAGING_SERVICE_ANNOTATIONS: JSON.stringify({ ...exposure.staging, ...p.stagingServiceAnnotations, ...(network === undefined ? {} : INTERNAL_LOAD_BALANCER_ANNOTATIONS) }),
      NOTIFICATION_TOPIC_ARN: approval.topic.topicArn,
      APPROVAL_BASE_URL: approval.baseUrl,
      APPROVAL_SECRET_ARN: approval.secret.secretArn,
      TASK_MEMORY_MB: JSON.stringify(taskMemoryByState(readFileSync(DEFINITION_FILE, 'utf8'))),
    };

    const repositoryArn = stack.formatArn({ service: 'ecr', resource: 'repository', resourceName: p.trainingRepositoryName });
    const fns = new PipelineFunctions(this, 'Functions', {
      settings,
      trainingRepositoryArn: repositoryArn,
      artifacts,
      kubernetesRole: cluster.kubernetesRole,
      rollbackRole: cluster.rollbackRole,
      grantPublish: (grantee) => approval.topic.grantPublish(grantee),
      grantReadSecret: (grantee) => approval.secret.grantRead(grantee),
      endpointNetwork: network,
    });

    // Reading a model's token: the Deploy steps and endpoint probes (the shared Kubernetes role) and the
    // evaluation, each only that model's own secret (and the key, through Secrets Manager only).
    for (const secret of Object.values(tokenSecrets)) {
      secret.grantRead(cluster.kubernetesRole);
      secret.grantRead(fns.get('EvaluateModel'));
    }
    // Rotated on a schedule, without downtime (docs/deploy.md, Endpoint authentication): no SMG4 finding to acknowledge.
    const rotation = cluster.rotationRole ? new EndpointTokenRotation(this, 'EndpointTokenRotation', { settings, secrets: tokenSecrets, role: cluster.rotationRole, accessEntry: cluster.rotationAccessEntry }) : undefined;

    const taskFunctions: Record<string, lambda.IFunction> = {};
    for (const spec of FUNCTION_SPECS) {
      if (spec.placeholder !== undefined) taskFunctions[spec.placeholder] = fns.get(spec.id);
    }
    const machine = new PipelineStateMachine(this, 'StateMachine', { functions: taskFunctions, logKey: key });
    approval.allowDecisionsOn(machine.stateMachine);
    approval.allowRetriesOf(machine.stateMachine);
    allowReadingRunHistory(this, fns.get('RecordRelease'), machine.stateMachine);

    const triggers = new Triggers(this, 'Triggers', {
      stateMachine: machine.stateMachine,
      pipelines: {
        [p.trainingRepositoryName]: {
          modelName: p.modelName,
          dataUri,
          evalDataUri,
          ...(Object.keys(p.defaultHyperparameters).length > 0 ? { hyperparameters: p.defaultHyperparameters } : {}),
        },
      },
      repositoryArns: [repositoryArn],
      bucket: artifacts.bucket,
      dataPrefix: p.dataPrefix,
      dataMarkerFile: p.dataMarkerFile,
      schedule: p.schedule,
      scheduleRepositoryName: p.trainingRepositoryName,
    });

    const monitor = new ServingMonitor(this, 'ServingMonitor', {
      settings,
      modelName: p.modelName,
      artifacts,
      role: cluster.monitorRole,
      topic: approval.topic,
    });

    const allFunctions: Record<string, lambda.IFunction> = {
      ...fns.functions,
      Monitor: monitor.function,
      ApprovalApi: approval.apiFunction,
      StartPipeline: triggers.starter,
      ...(rotation ? { RotateEndpointToken: rotation.function } : {}),
    };
    new Monitoring(this, 'Monitoring', {
      topic: approval.topic,
      stateMachine: machine.stateMachine,
      functions: allFunctions,
      models: [p.modelName],
      servingPeriod: monitor.period,
      extraAlarms: [triggers.deadLetterAlarm],
    });

    // Last, so every grant above is in the policies it reads.
    acknowledgeApprovalEndpoint(approval.api, approval.secret);
    acknowledgeScopedWildcards(this);

    this.bucket = artifacts.bucket;
    this.stateMachine = machine.stateMachine;
    this.topic = approval.topic;
    this.queue = triggers.queue;
    this.deadLetterQueue = triggers.deadLetterQueue;
    this.approvalUrl = approval.baseUrl;
    this.rollbackFunction = fns.get('Rollback');
    this.kubernetesRole = cluster.kubernetesRole;
    this.functions = allFunctions;
    this.endpointSecurityGroup = network?.securityGroup;
    this.endpointTokenSecrets = tokenSecrets;
  }
}

/**
 * RecordRelease/RecordFailure read their own run's history (GetExecutionHistory) for its cost estimate: on
 * this state machine's executions only. In a Policy of its own, not the role's default policy, which the
 * function depends on: the function would then depend on the state machine, which depends on the function.
 */
function allowReadingRunHistory(scope: Construct, fn: lambda.IFunction, machine: sfn.IStateMachine): void {
  if (!fn.role) throw new Error('mlpipe: the RecordRelease function has no role (a bug in the construct).');
  const executions = `${Stack.of(scope).formatArn({
    service: 'states',
    resource: 'execution',
    resourceName: Arn.split(machine.stateMachineArn, ArnFormat.COLON_RESOURCE_NAME).resourceName,
    arnFormat: ArnFormat.COLON_RESOURCE_NAME,
  })}:*`;
  new iam.Policy(scope, 'ReadRunHistory', {
    roles: [fn.role],
    statements: [new iam.PolicyStatement({ actions: ['states:GetExecutionHistory'], resources: [executions] })],
  });
}

/** A setting's default (settings.ts): the construct's defaults are the handlers' defaults. */
function defaultOf(def: S.SettingDefinition): string {
  if (def.default === undefined) throw new Error(`mlpipe: setting ${def.name} has no default (a bug in the construct).`);
  return def.default;
}

/** A prop's value as the environment text of its setting: durations in the setting's unit, objects as JSON. */
function settingText(name: string, value: unknown): string {
  if (value instanceof Duration) return String(name.endsWith('_MS') ? value.toMilliseconds() : value.toSeconds());
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  return JSON.stringify(value);
}

/** Every setting fed by a prop (settings.ts `source`), from the resolved props; unset props are left out. */
function propSettings(p: ResolvedProps): Record<string, string> {
  const values: Record<string, string> = {};
  for (const def of S.ALL_SETTINGS) {
    if (def.source.kind !== 'prop') continue;
    const value = (p as unknown as Record<string, unknown>)[def.source.prop];
    if (value === undefined || value === '') continue;
    values[def.name] = settingText(def.name, value);
  }
  return values;
}

/**
 * Checks each prop-fed setting with the very schema its handlers parse it with at init (k8s-names.ts for
 * names, annotation keys and quantities), so a value the functions would refuse fails here.
 */
function validateSettings(values: Record<string, string>): void {
  for (const def of S.ALL_SETTINGS) {
    const text = values[def.name];
    if (def.source.kind !== 'prop' || text === undefined || !known(text)) continue;
    const problem = S.settingProblem(def, text);
    if (problem !== undefined) {
      throw new Error(`mlpipe: The "${def.source.prop}" property is not valid: ${problem}; got ${text.length > 200 ? `${text.slice(0, 200)}...` : `"${text}"`}. Fix it (context key ${CONTEXT_PREFIX}${def.source.prop}); the functions read it as ${def.name}.`);
    }
  }
}

function resolveProps(props: MlPipelineProps): ResolvedProps {
  return {
    clusterName: props.clusterName,
    clusterArn: props.clusterArn,
    stagingNamespace: props.stagingNamespace ?? defaultOf(S.STAGING_NAMESPACE),
    productionNamespace: props.productionNamespace ?? defaultOf(S.PRODUCTION_NAMESPACE),
    modelName: props.modelName ?? defaultOf(S.MODEL_NAME),
    trainingRepositoryName: props.trainingRepositoryName ?? defaultOf(S.TRAINING_REPOSITORY),
    servingImage: props.servingImage ?? '',
    dataUri: props.dataUri ?? '',
    evalDataUri: props.evalDataUri ?? '',
    defaultHyperparameters: props.defaultHyperparameters ?? (JSON.parse(defaultOf(S.DEFAULT_HYPERPARAMETERS)) as Record<string, string>),
    minAccuracy: props.minAccuracy ?? Number(defaultOf(S.MIN_ACCURACY)),
    maxP95LatencyMs: props.maxP95LatencyMs ?? Number(defaultOf(S.MAX_P95_LATENCY_MS)),
    maxErrorRate: props.maxErrorRate ?? Number(defaultOf(S.MAX_ERROR_RATE)),
    maxAccuracyDrop: props.maxAccuracyDrop ?? Number(defaultOf(S.MAX_ACCURACY_DROP)),
    evalSamples: props.evalSamples ?? Number(defaultOf(S.EVAL_SAMPLES)),
    evalBatchSize: props.evalBatchSize ?? Number(defaultOf(S.EVAL_BATCH_SIZE)),
    monitorSchedule: props.monitorSchedule ?? defaultOf(S.MONITOR_SCHEDULE),
    maxPredictionDrift: props.maxPredictionDrift ?? Number(defaultOf(S.MAX_PREDICTION_DRIFT)),
    approverEmails: props.approverEmails ?? [],
    approvalTimeout: props.approvalTimeout ?? Duration.seconds(Number(defaultOf(S.APPROVAL_TIMEOUT_SECONDS))),
    trainerServiceAccount: props.trainerServiceAccount ?? defaultOf(S.TRAINER_SERVICE_ACCOUNT),
    serverServiceAccount: props.serverServiceAccount ?? defaultOf(S.SERVER_SERVICE_ACCOUNT),
    watchBudget: props.watchBudget ?? Duration.seconds(Number(defaultOf(S.WATCH_BUDGET_SECONDS))),
    trainingTimeout: props.trainingTimeout ?? Duration.seconds(Number(defaultOf(S.TRAINING_TIMEOUT_SECONDS))),
    trainingCheckMaxWait: props.trainingCheckMaxWait ?? Duration.seconds(Number(defaultOf(S.TRAINING_CHECK_MAX_WAIT_SECONDS))),
    trainingWatchLead: props.trainingWatchLead ?? Duration.seconds(Number(defaultOf(S.TRAINING_WATCH_LEAD_SECONDS))),
    rolloutTimeout: props.rolloutTimeout ?? Duration.seconds(Number(defaultOf(S.ROLLOUT_TIMEOUT_SECONDS))),
    endpointTimeout: props.endpointTimeout ?? Duration.seconds(Number(defaultOf(S.ENDPOINT_TIMEOUT_SECONDS))),
    trainingCpu: props.trainingCpu ?? defaultOf(S.TRAINING_CPU),
    trainingMemory: props.trainingMemory ?? defaultOf(S.TRAINING_MEMORY),
    servingCpu: props.servingCpu ?? defaultOf(S.SERVING_CPU),
    servingMemory: props.servingMemory ?? defaultOf(S.SERVING_MEMORY),
    servingReplicas: props.servingReplicas ?? Number(defaultOf(S.SERVING_REPLICAS)),
    servingDrainSeconds: props.servingDrainSeconds ?? Number(defaultOf(S.SERVING_DRAIN_SECONDS)),
    trainingBackoffLimit: props.trainingBackoffLimit ?? Number(defaultOf(S.TRAINING_BACKOFF_LIMIT)),
    trainingJobTtl: props.trainingJobTtl ?? Duration.seconds(Number(defaultOf(S.TRAINING_JOB_TTL_SECONDS))),
    trainingPlacement: props.trainingPlacement ?? {},
    servingPlacement: props.servingPlacement ?? {},
    rollout: props.rollout ?? {},
    retentionHours: props.retentionHours ?? Number(defaultOf(S.RETENTION_HOURS)),
    evalConcurrency: props.evalConcurrency ?? Number(defaultOf(S.EVAL_CONCURRENCY)),
    evalRequestTimeout: props.evalRequestTimeout ?? Duration.millis(Number(defaultOf(S.EVAL_REQUEST_TIMEOUT_MS))),
    allowImageTags: props.allowImageTags ?? defaultOf(S.ALLOW_IMAGE_TAGS) === 'true',
    stagingServiceAnnotations: props.stagingServiceAnnotations ?? (JSON.parse(defaultOf(S.STAGING_SERVICE_ANNOTATIONS)) as Record<string, string>),
    serviceAnnotations: props.serviceAnnotations ?? (JSON.parse(defaultOf(S.SERVICE_ANNOTATIONS)) as Record<string, string>),
    productionServiceAnnotations: props.productionServiceAnnotations ?? (JSON.parse(defaultOf(S.PRODUCTION_SERVICE_ANNOTATIONS)) as Record<string, string>),
    loadBalancerSourceRanges: props.loadBalancerSourceRanges ?? (JSON.parse(defaultOf(S.LOAD_BALANCER_SOURCE_RANGES)) as string[]),
    endpointAuth: props.endpointAuth ?? defaultOf(S.ENDPOINT_AUTH) === 'true',
    endpointTokenRotationDays: props.endpointTokenRotationDays ?? Number(defaultOf(S.ENDPOINT_TOKEN_ROTATION_DAYS)),
    internalProduction: props.internalProduction ?? false,
    nlb: props.nlb ?? false,
    tlsCertificateArn: props.tlsCertificateArn,
    monitorKubernetesGroup: props.monitorKubernetesGroup,
    rotationKubernetesGroup: props.rotationKubernetesGroup,
    tasksKubernetesGroup: props.tasksKubernetesGroup,
    rollbackKubernetesGroup: props.rollbackKubernetesGroup,
    dataPrefix: props.dataPrefix,
    dataMarkerFile: props.dataMarkerFile ?? 'dataset.json',
    schedule: props.schedule,
    vpcId: props.vpcId,
    privateSubnetIds: props.privateSubnetIds,
    securityGroupIds: props.securityGroupIds,
  };
}

/** Values that are still tokens (resolved at deploy time) cannot be checked at synth. */
const known = (v: string): boolean => !Token.isUnresolved(v);

/** Throws the first problem found, naming the prop and how to fix it. Unresolved tokens are not checked. */
function validateProps(p: ResolvedProps): void {
  const fail = (message: string): never => {
    throw new Error(`mlpipe: ${message}`);
  };

  if (typeof p.clusterName !== 'string' || p.clusterName === '') {
    fail('The "clusterName" property must be the name of an existing EKS cluster.');
  }
  if (known(p.clusterName) && !EKS_CLUSTER_NAME.test(p.clusterName)) {
    fail(`The "clusterName" property must be an EKS cluster name (letters, digits, "-" and "_", at most 100 characters, starting with a letter or digit); got "${p.clusterName}".`);
  }
  if (p.clusterArn !== undefined && known(p.clusterArn) && !/^arn:[a-z-]+:eks:[a-z0-9-]+:\d{12}:cluster\/.+$/.test(p.clusterArn)) {
    fail(`The "clusterArn" property must look like arn:aws:eks:<region>:<account>:cluster/<name>; got "${p.clusterArn}".`);
  }
  if (p.clusterArn !== undefined && known(p.clusterArn) && known(p.clusterName) && !p.clusterArn.endsWith(`:cluster/${p.clusterName}`)) {
    fail(`The "clusterArn" property (${p.clusterArn}) names another cluster than "clusterName" (${p.clusterName}); make them agree or leave clusterArn out.`);
  }
  // Names, annotation keys and quantities: validateSettings, with the handlers' own schemas.
  if (p.stagingNamespace === p.productionNamespace) {
    fail(`The "stagingNamespace" and "productionNamespace" properties must differ (both are "${p.stagingNamespace}"): staging runs untested models.`);
  }
  if (known(p.trainingRepositoryName) && !ECR_REPOSITORY.test(p.trainingRepositoryName)) {
    fail(`The "trainingRepositoryName" property must be an ECR repository name like "team/model-train" (no registry, no tag); got "${p.trainingRepositoryName}".`);
  }
  for (const key of ['dataUri', 'evalDataUri'] as const) {
    const value = p[key];
    if (value !== '' && known(value) && !/^s3:\/\/[a-z0-9.-]{3,63}\/(.+\/)?$/.test(value)) {
      fail(`The "${key}" property must be an S3 prefix like s3://bucket/datasets/fashion-mnist/v1/ (ending in "/"); got "${value}".`);
    }
  }
  for (const key of ['minAccuracy', 'maxErrorRate', 'maxAccuracyDrop'] as const) {
    const value = p[key];
    if (!Number.isFinite(value) || value < 0 || value > 1) {
      fail(`The "${key}" property must be a fraction between 0 and 1 (e.g. 0.85, not 85); got ${value}.`);
    }
  }
  if (!Number.isFinite(p.maxP95LatencyMs) || p.maxP95LatencyMs <= 0) {
    fail(`The "maxP95LatencyMs" property must be a positive number of milliseconds; got ${p.maxP95LatencyMs}.`);
  }
  for (const key of ['evalSamples', 'evalBatchSize', 'servingReplicas'] as const) {
    const value = p[key];
    if (!Number.isInteger(value) || value < 1) {
      fail(`The "${key}" property must be a whole number of at least 1; got ${value}.`);
    }
  }
  if (p.evalBatchSize > p.evalSamples) {
    fail(`The "evalBatchSize" property (${p.evalBatchSize}) must not exceed "evalSamples" (${p.evalSamples}).`);
  }
  for (const email of p.approverEmails) {
    if (known(email) && !EMAIL.test(email)) {
      fail(`The "approverEmails" property must hold email addresses; "${email}" is not one.`);
    }
  }
  const approvalSeconds = p.approvalTimeout.toSeconds();
  if (approvalSeconds < 300 || approvalSeconds > 7 * 24 * 3600) {
    fail(`The "approvalTimeout" property must be between 5 minutes and 7 days (an execution may run 14 days in all); got ${approvalSeconds} seconds.`);
  }
  const watchSeconds = p.watchBudget.toSeconds();
  if (watchSeconds < 5 || watchSeconds > MAX_WATCH_BUDGET_SECONDS) {
    fail(`The "watchBudget" property must be between 5 and ${MAX_WATCH_BUDGET_SECONDS} seconds, so an Await function (300 s timeout) can answer before it is cut off; got ${watchSeconds} seconds.`);
  }
  for (const key of ['trainingTimeout', 'rolloutTimeout', 'endpointTimeout'] as const) {
    const seconds = p[key].toSeconds();
    if (seconds < watchSeconds) {
      fail(`The "${key}" property (${seconds} s) must be at least "watchBudget" (${watchSeconds} s).`);
    }
  }
  if (p.dataPrefix !== undefined && known(p.dataPrefix) && (!p.dataPrefix.endsWith('/') || p.dataPrefix.startsWith('/') || !p.dataPrefix.startsWith(PREFIX.datasets))) {
    fail(`The "dataPrefix" property must be a key prefix under "${PREFIX.datasets}" ending in "/", e.g. "datasets/fashion-mnist/"; got "${p.dataPrefix}".`);
  }
  if (p.dataPrefix !== undefined && known(p.dataPrefix)) {
    // The starter maps a new object to the pipeline whose dataUri it lies under, and reruns on that dataUri.
    const dataKey = p.dataUri === '' ? `${PREFIX.datasets}fashion-mnist/v1/` : p.dataUri.replace(/^s3:\/\/[^/]+\//, '');
    if (known(dataKey) && !p.dataPrefix.startsWith(dataKey)) {
      fail(`The "dataPrefix" property ("${p.dataPrefix}") must lie under the training data "${dataKey}" in the artifact bucket: a new dataset is announced where the pipeline reads it. Set dataPrefix to "${dataKey}" or point dataUri at s3://<artifact bucket>/${p.dataPrefix}.`);
    }
  }
  validateNetwork(p, fail);
  if (p.internalProduction && p.vpcId === undefined) {
    fail('The "internalProduction" property needs "vpcId" (and "privateSubnetIds"): the functions that check the production endpoint must run in the VPC to reach an internal load balancer.');
  }
  if (p.tlsCertificateArn !== undefined) {
    if (!p.nlb) fail('The "tlsCertificateArn" property needs "nlb: true": the TLS listener is set up by the AWS Load Balancer Controller.');
    if (known(p.tlsCertificateArn) && !/^arn:aws[\w-]*:acm:[a-z0-9-]+:\d{12}:certificate\/[\w-]+$/.test(p.tlsCertificateArn)) {
      fail(`The "tlsCertificateArn" property must be an ACM certificate ARN like arn:aws:acm:us-east-1:123456789012:certificate/<id>; got "${p.tlsCertificateArn}".`);
    }
  }
  for (const [prop, example] of [['monitorKubernetesGroup', RBAC_NAMES.monitor], ['rotationKubernetesGroup', RBAC_NAMES.rotation], ['tasksKubernetesGroup', RBAC_NAMES.tasks], ['rollbackKubernetesGroup', RBAC_NAMES.rollback]] as const) {
    const group = p[prop];
    if (group !== undefined && known(group) && !KUBERNETES_GROUP.test(group)) {
      fail(`The "${prop}" property must be a Kubernetes group name (letters, digits, ":", ".", "_", "-", at most 63 characters, not starting with "system:"), e.g. "${example}"; got "${group}".`);
    }
  }
  // One group per principal: two options naming the same group would give each principal the other's
  // Roles too (the monitor would get the tasks' writes in production), which is what the options avoid.
  const groups = (['monitorKubernetesGroup', 'rotationKubernetesGroup', 'tasksKubernetesGroup', 'rollbackKubernetesGroup'] as const).filter((prop) => p[prop] !== undefined && known(p[prop]));
  for (const [i, a] of groups.entries()) {
    const b = groups.slice(i + 1).find((other) => p[other] === p[a]);
    if (b) fail(`The "${a}" and "${b}" properties name the same Kubernetes group "${p[a]}": each principal needs a group of its own, or it gets the other's Roles too.`);
  }
  if (p.rotationKubernetesGroup !== undefined && !p.endpointAuth) {
    fail('The "rotationKubernetesGroup" property needs "endpointAuth: true": without endpoint auth there is no token rotation function to give a group.');
  }
  if (p.schedule !== undefined && known(p.schedule) && !/^(rate\(.+\)|cron\(.+\)|at\(.+\))$/.test(p.schedule)) {
    fail(`The "schedule" property must be an EventBridge Scheduler expression like "rate(7 days)" or "cron(0 3 ? * MON *)"; got "${p.schedule}".`);
  }
}

const LB = 'service.beta.kubernetes.io/aws-load-balancer-';

/**
 * The AWS Load Balancer Controller's annotations the `nlb` and `tlsCertificateArn` props stand for. The
 * controller makes internal load balancers unless told otherwise, so each stage's scheme is explicit:
 * staging internal with a VPC (the functions reach it there), production unless `internalProduction`.
 */
function loadBalancerAnnotations(p: ResolvedProps, inVpc: boolean): { common: Record<string, string>; staging: Record<string, string>; production: Record<string, string> } {
  if (!p.nlb) return { common: {}, staging: {}, production: {} };
  const scheme = (internal: boolean) => ({ [`${LB}scheme`]: internal ? 'internal' : 'internet-facing' });
  return {
    common: { [`${LB}type`]: 'external', [`${LB}nlb-target-type`]: 'ip' },
    staging: scheme(inVpc),
    production: {
      ...scheme(p.internalProduction),
      ...(p.tlsCertificateArn !== undefined ? { [`${LB}ssl-cert`]: p.tlsCertificateArn, [`${LB}ssl-ports`]: 'https' } : {}),
    },
  };
}

/** vpcId, privateSubnetIds and securityGroupIds: all or nothing, and ids of the right kind. */
function validateNetwork(p: ResolvedProps, fail: (message: string) => never): void {
  const subnets = p.privateSubnetIds ?? [];
  if (p.vpcId === undefined) {
    if (subnets.length > 0) {
      fail('The "privateSubnetIds" property needs "vpcId" too: set vpcId to the VPC those subnets belong to (the cluster\'s), or leave both out.');
    }
    if ((p.securityGroupIds ?? []).length > 0) {
      fail('The "securityGroupIds" property only applies with "vpcId" and "privateSubnetIds"; set them or leave securityGroupIds out.');
    }
    return;
  }
  if (known(p.vpcId) && !/^vpc-[0-9a-f]{8,17}$/.test(p.vpcId)) {
    fail(`The "vpcId" property must be a VPC id like vpc-0123456789abcdef0; got "${p.vpcId}".`);
  }
  if (subnets.length === 0) {
    fail('The "vpcId" property needs "privateSubnetIds" too: the private subnets (ideally in two or more zones) the endpoint-calling functions run in.');
  }
  for (const subnet of subnets) {
    if (known(subnet) && !/^subnet-[0-9a-f]{8,17}$/.test(subnet)) {
      fail(`The "privateSubnetIds" property must hold subnet ids like subnet-0123456789abcdef0; "${subnet}" is not one.`);
    }
  }
  for (const sg of p.securityGroupIds ?? []) {
    if (known(sg) && !/^sg-[0-9a-f]{8,17}$/.test(sg)) {
      fail(`The "securityGroupIds" property must hold security group ids like sg-0123456789abcdef0; "${sg}" is not one.`);
    }
  }
}
