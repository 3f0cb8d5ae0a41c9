/**
 * The settings each Lambda reads, one schema per function, composed from the definitions in settings.ts.
 * The handler loads its schema when its module loads (`loadSettings(FUNCTION_SETTINGS.X)`); the CDK builds
 * the function's environment from the very same schema (lib/constructs/pipeline-functions.ts). Shared
 * groups are the settings a shared module needs from whoever calls it. Pure: the CDK app imports it.
 */
import * as S from './settings';
import { defineSettings, group, type SettingsOf } from './settings';

/** Kubernetes access (kube config): EKS by CLUSTER_NAME, or any cluster by KUBECONFIG. */
export const KUBE = group(S.CLUSTER_NAME, S.KUBECONFIG, S.AWS_REGION);
export const kubeCheck = (s: SettingsOf<typeof KUBE>) =>
  s.CLUSTER_NAME === undefined && s.KUBECONFIG === undefined ? 'set CLUSTER_NAME (EKS) or KUBECONFIG (any other cluster)' : undefined;

/** The S3 client (clients.ts): a local S3 when AWS_ENDPOINT_URL_S3 is set. */
export const S3 = group(S.AWS_ENDPOINT_URL_S3);
/** The registry and approval records (registry.ts, approvals.ts). */
export const REGISTRY = { ...S3, ...group(S.ARTIFACT_BUCKET) };
/** Approval link signing (approval-link.ts): the key in Secrets Manager, or (local mode) the key itself. */
export const APPROVAL_KEY = group(S.APPROVAL_SECRET_ARN, S.APPROVAL_SECRET);
export const approvalKeyCheck = (s: SettingsOf<typeof APPROVAL_KEY>) =>
  s.APPROVAL_SECRET_ARN === undefined && s.APPROVAL_SECRET === undefined ? 'set APPROVAL_SECRET_ARN (AWS) or APPROVAL_SECRET (local mode)' : undefined;

/** The training Job (manifests.ts trainingJob). */
export const TRAINING_JOB = group(S.TRAINER_SERVICE_ACCOUNT, S.TRAINING_CPU, S.TRAINING_MEMORY, S.TRAINING_BACKOFF_LIMIT, S.TRAINING_JOB_TTL_SECONDS, S.TRAINING_TIMEOUT_SECONDS,
  S.TRAINING_PLACEMENT);
/** A serving Deployment (manifests.ts servingDeployment): the rollout deadline caps its progress deadline. */
export const SERVING_DEPLOYMENT = group(S.SERVER_SERVICE_ACCOUNT, S.SERVING_CPU, S.SERVING_MEMORY, S.SERVING_REPLICAS, S.ROLLOUT_TIMEOUT_SECONDS,
  S.SERVING_PLACEMENT, S.ENDPOINT_AUTH, S.SERVING_DRAIN_SECONDS);
/** The production Service (manifests.ts servingService): its own annotations over the common ones, the source ranges. */
export const PRODUCTION_SERVICE = group(S.SERVICE_ANNOTATIONS, S.PRODUCTION_SERVICE_ANNOTATIONS, S.LOAD_BALANCER_SOURCE_RANGES);
/** A staging Service: its own annotations over the common ones, the source ranges. */
export const STAGING_SERVICE = group(S.SERVICE_ANNOTATIONS, S.STAGING_SERVICE_ANNOTATIONS, S.LOAD_BALANCER_SOURCE_RANGES);
/** Endpoint tokens (endpoint-auth.ts): whether endpoints require one, and where each model's is kept. */
export const ENDPOINT_TOKENS = group(S.ENDPOINT_AUTH, S.ENDPOINT_TOKEN_SECRETS);
/** The wait of each phase (phase.ts). */
export const TRAINING_WAIT = group(S.WATCH_BUDGET_SECONDS, S.TRAINING_TIMEOUT_SECONDS, S.TRAINING_CHECK_MAX_WAIT_SECONDS, S.TRAINING_WATCH_LEAD_SECONDS);
export const ROLLOUT_WAIT = group(S.WATCH_BUDGET_SECONDS, S.ROLLOUT_TIMEOUT_SECONDS);
export const ENDPOINT_WAIT = group(S.WATCH_BUDGET_SECONDS, S.ENDPOINT_TIMEOUT_SECONDS);

const kube = <G extends S.SettingsGroup>(g: G) => defineSettings({ ...KUBE, ...g }, kubeCheck);

export const FUNCTION_SETTINGS = {
  PrepareRun: defineSettings({
    ...REGISTRY,
    ...group(S.MODEL_NAME, S.DATA_URI, S.EVAL_DATA_URI, S.SERVING_IMAGE, S.DEFAULT_HYPERPARAMETERS, S.STAGING_NAMESPACE, S.PRODUCTION_NAMESPACE,
      S.APPROVAL_TIMEOUT_SECONDS, S.ALLOW_IMAGE_TAGS, S.ROLLOUT),
    // The training image's hyperparameter schema (hyperparameters.ts), read from ECR or the local ECR.
    ...group(S.TRAINING_REPOSITORY, S.AWS_ENDPOINT_URL_ECR),
  }),
  // CheckTraining/AwaitTraining read S3 (metrics.json, progress.json), the endpoint waits nothing there; the S3 group is harmless.
  SubmitTraining: kube(TRAINING_JOB),
  // Both plan the next wait (phase.ts planTrainingCheck) from the Job and progress.json.
  CheckTraining: kube({ ...S3, ...TRAINING_WAIT }),
  AwaitTraining: kube({ ...S3, ...TRAINING_WAIT }),
  // The Deploy steps write the model's endpoint token into a Kubernetes Secret before the Deployment.
  DeployStaging: kube({ ...SERVING_DEPLOYMENT, ...ENDPOINT_TOKENS }),
  AwaitStagingRollout: kube(ROLLOUT_WAIT),
  ExposeStaging: kube(STAGING_SERVICE),
  // Endpoint probes, the evaluation and the canary present the token.
  AwaitStagingEndpoint: kube({ ...ENDPOINT_WAIT, ...ENDPOINT_TOKENS }),
  EvaluateModel: defineSettings({
    ...REGISTRY,
    ...ENDPOINT_TOKENS,
    ...group(S.MIN_ACCURACY, S.MAX_P95_LATENCY_MS, S.MAX_ERROR_RATE, S.MAX_ACCURACY_DROP, S.EVAL_SAMPLES, S.EVAL_BATCH_SIZE, S.EVAL_CONCURRENCY,
      S.EVAL_REQUEST_TIMEOUT_MS),
  }),
  RequestApproval: defineSettings({ ...REGISTRY, ...APPROVAL_KEY, ...group(S.NOTIFICATION_TOPIC_ARN, S.APPROVAL_BASE_URL) }, approvalKeyCheck),
  DeployProduction: kube({ ...SERVING_DEPLOYMENT, ...ENDPOINT_TOKENS }),
  AwaitProductionRollout: kube(ROLLOUT_WAIT),
  // The canary (canary.ts): its Lambdas read the run's rollout from $.run, the cluster layout from here.
  ShiftCanaryTraffic: kube({ ...PRODUCTION_SERVICE, ...ROLLOUT_WAIT, ...group(S.SERVING_REPLICAS) }),
  AnalyzeCanary: kube({}),
  AbortCanary: kube(PRODUCTION_SERVICE),
  SwitchProductionTraffic: kube(PRODUCTION_SERVICE),
  AwaitProductionEndpoint: kube({ ...ENDPOINT_WAIT, ...ENDPOINT_TOKENS }),
  // The run's cost estimate (run-cost.ts): its execution history (a local Step Functions in local mode), the
  // memory behind each Task state, the region's prices.
  RecordRelease: defineSettings({ ...REGISTRY, ...group(S.TASK_MEMORY_MB, S.AWS_REGION, S.AWS_ENDPOINT_URL_SFN) }),
  // SERVING_REPLICAS: a failed canary's stable version goes back to all of them.
  Cleanup: kube({ ...PRODUCTION_SERVICE, ...group(S.RETENTION_HOURS, S.SERVING_REPLICAS) }),
  // The failure email's retry link is signed with the approval links' key and points at the approval endpoint.
  Notify: defineSettings({ ...APPROVAL_KEY, ...group(S.NOTIFICATION_TOPIC_ARN, S.APPROVAL_BASE_URL) }, approvalKeyCheck),
  // Rollback scales a retired (0-replica) version back up to SERVING_REPLICAS and waits at most ROLLOUT_TIMEOUT_SECONDS for it.
  Rollback: kube({ ...REGISTRY, ...PRODUCTION_SERVICE, ...group(S.PRODUCTION_NAMESPACE, S.SERVING_REPLICAS, S.ROLLOUT_TIMEOUT_SECONDS) }),
  ApprovalApi: defineSettings({ ...REGISTRY, ...APPROVAL_KEY, ...group(S.AWS_ENDPOINT_URL_SFN) }, approvalKeyCheck),
  // The serving monitor scrapes the stack's model in production; the schedule and alarm thresholds go into its snapshot.
  Monitor: kube({ ...REGISTRY, ...group(S.MODEL_NAME, S.PRODUCTION_NAMESPACE, S.MONITOR_SCHEDULE, S.MAX_P95_LATENCY_MS, S.MAX_ERROR_RATE, S.MAX_PREDICTION_DRIFT) }),
  // The endpoint token's rotation (Secrets Manager calls it): both namespaces' token Secrets, the pods' /metrics.
  RotateEndpointToken: kube({ ...ENDPOINT_TOKENS, ...group(S.STAGING_NAMESPACE, S.PRODUCTION_NAMESPACE, S.ENDPOINT_TOKEN_LOAD_WAIT_SECONDS, S.ENDPOINT_TOKEN_ROTATION_DAYS) }),
  StartPipeline: defineSettings(group(S.STATE_MACHINE_ARN, S.PIPELINES, S.DEAD_LETTER_QUEUE_URL, S.STARTER_MAX_ATTEMPTS, S.STARTER_RETRY_BASE_MS)),
};

export type FunctionName = keyof typeof FUNCTION_SETTINGS;
