/**
 * Every setting mlpipe's Lambdas read, defined once: its environment variable, the zod schema that parses
 * and validates it, its default, a one-line doc, and where its value comes from (a construct prop /
 * `mlpipe:*` context key, a resource the construct creates, or the runtime). Each function's settings are
 * a composition of these (function-settings.ts), read and validated once when its module loads; the CDK
 * builds each Lambda's environment from the same composition, and docs/architecture.md's settings table
 * is generated from the definitions. Pure and free of side effects: the CDK app imports it too.
 */
import { isIPv4, isIPv6 } from 'node:net';
import * as z from 'zod';
import { ConfigurationError } from './errors';
import { RolloutSchema } from './rollout';
import { PlacementSchema } from './placement';
import { annotationKeyProblem, cpuQuantityProblem, dns1123LabelProblem, memoryQuantityProblem, modelNameProblem } from './k8s-names';

/** Where a setting's value comes from. */
export type SettingSource =
  /** A construct prop of this name, also the context key `mlpipe:<prop>`. */
  | { readonly kind: 'prop'; readonly prop: string }
  /** Set by the construct from a resource it creates (the bucket's name, the topic's ARN...). */
  | { readonly kind: 'construct'; readonly from: string }
  /** Set by the Lambda runtime or by the local runner; never by the CDK. */
  | { readonly kind: 'runtime' }
  /** Local mode only (e.g. the approval secret's value instead of a Secrets Manager ARN); never by the CDK. */
  | { readonly kind: 'local' };

export interface SettingDefinition<T = unknown, Optional extends boolean = boolean, Name extends string = string> {
  /** The environment variable. */
  readonly name: Name;
  /** Parses the variable's (trimmed, non-empty) text; its messages state the rule. */
  readonly schema: z.ZodType<T, string>;
  /** The text used when the variable is unset; the CDK writes it explicitly when the prop is unset. */
  readonly default?: string;
  /** Unset is allowed (and stays undefined). */
  readonly optional: Optional;
  readonly doc: string;
  readonly source: SettingSource;
  /** The value is a secret: never quoted in an error message. */
  readonly secret?: boolean;
}

type Options = Omit<SettingDefinition, 'schema' | 'optional' | 'name'>;

/** A setting that always has a value: required, or with a default. */
function setting<const N extends string, T>(name: N, schema: z.ZodType<T, string>, options: Options): SettingDefinition<T, false, N> {
  return { name, schema, optional: false, ...options };
}

/** A setting that may be unset. */
function optionalSetting<const N extends string, T>(name: N, schema: z.ZodType<T, string>, options: Omit<Options, 'default'>): SettingDefinition<T, true, N> {
  return { name, schema, optional: true, ...options };
}

const prop = (name: string): SettingSource => ({ kind: 'prop', prop: name });
const construct = (from: string): SettingSource => ({ kind: 'construct', from });
const RUNTIME: SettingSource = { kind: 'runtime' };
const LOCAL: SettingSource = { kind: 'local' };

// ---------------------------------------------------------------------------------------------------
// Value schemas: each parses the text of an environment variable.

/** A rule from k8s-names.ts as a zod refinement: the API's own message. */
const k8s = (problem: (v: string) => string | undefined) =>
  z.string().superRefine((v, ctx) => {
    const p = problem(v);
    if (p !== undefined) ctx.addIssue({ code: 'custom', message: p });
  });

const text = z.string().min(1, 'must not be empty');

function number(opts: { min?: number; max?: number; integer?: boolean } = {}) {
  return z.string().transform((v, ctx) => {
    const n = Number(v);
    const kind = opts.integer ? 'a whole number' : 'a number';
    const range = [opts.min !== undefined ? `>= ${opts.min}` : '', opts.max !== undefined ? `<= ${opts.max}` : ''].filter(Boolean).join(' and ');
    const rule = `must be ${kind}${range ? ` ${range}` : ''}`;
    if (!Number.isFinite(n) || (opts.integer && !Number.isInteger(n)) || (opts.min !== undefined && n < opts.min) || (opts.max !== undefined && n > opts.max)) {
      ctx.addIssue({ code: 'custom', message: rule });
      return z.NEVER;
    }
    return n;
  });
}

const fraction = number({ min: 0, max: 1 });
const boolean = z.enum(['true', 'false'], 'must be "true" or "false"').transform((v) => v === 'true');

/** JSON text holding a value of `schema`; `what` says what is expected. */
function json<T>(schema: z.ZodType<T>, what: string) {
  return z.string().transform((v, ctx) => {
    let parsed: unknown;
    try {
      parsed = JSON.parse(v);
    } catch {
      ctx.addIssue({ code: 'custom', message: `must be JSON: ${what}` });
      return z.NEVER;
    }
    const result = schema.safeParse(parsed);
    if (!result.success) {
      for (const issue of result.error.issues) {
        ctx.addIssue({ code: 'custom', message: `${issue.path.length ? `${issue.path.join('.')}: ` : ''}${issue.message} (${what})` });
      }
      return z.NEVER;
    }
    return result.data;
  });
}

/** Annotation keys checked with the API's qualified-name rule (values are free text). */
export const AnnotationsSchema = z.record(z.string(), z.string('values must be strings')).superRefine((annotations, ctx) => {
  for (const key of Object.keys(annotations)) {
    const problem = annotationKeyProblem(key);
    if (problem !== undefined) ctx.addIssue({ code: 'custom', path: [key], message: `invalid annotation key: ${problem}` });
  }
});
const annotations = json(AnnotationsSchema, 'an object of annotation keys to strings, e.g. {"service.beta.kubernetes.io/aws-load-balancer-scheme":"internet-facing"}');

export const HyperparametersSchema = z.record(z.string(), z.union([z.string(), z.number(), z.boolean()]), 'must be an object of strings, numbers or booleans');

/** `s3://bucket/prefix/` (shared with clients.ts parseS3Uri through its pattern). */
export const S3_URI = /^s3:\/\/([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])\/(.*)$/;
const s3Uri = z.string().regex(S3_URI, 'must be an S3 URI like s3://bucket/prefix/');
const arn = (service: string) => z.string().regex(new RegExp(`^arn:aws[\\w-]*:${service}:`), `must be an ${service} ARN`);
const httpUrl = z.string().regex(/^https?:\/\/[^/]+/, 'must be an http(s) URL');

export const ModelNameSchema = k8s(modelNameProblem);
export const NamespaceSchema = k8s(dns1123LabelProblem);
export const CpuSchema = k8s(cpuQuantityProblem);
export const MemorySchema = k8s(memoryQuantityProblem);

const PipelineSchema = z.object({
  modelName: ModelNameSchema,
  dataUri: s3Uri.optional(),
  evalDataUri: s3Uri.optional(),
  hyperparameters: HyperparametersSchema.optional(),
  servingImage: z.string().min(1).optional(),
});
export type PipelineConfig = z.infer<typeof PipelineSchema>;
const RepositoryNameSchema = z.string().min(2, 'repository names have at least 2 characters');
/**
 * Repository name → pipeline, as a Map. A plain object would answer `constructor`, `toString` or
 * `hasOwnProperty` from Object.prototype, and z.record drops an own `__proto__` key: the starter must see
 * exactly the repositories the JSON names, and nothing else.
 */
export const PipelinesSchema = z.unknown().transform((value, ctx): ReadonlyMap<string, PipelineConfig> => {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    ctx.addIssue({ code: 'custom', message: 'must be an object of repository name to pipeline' });
    return z.NEVER;
  }
  const pipelines = new Map<string, PipelineConfig>();
  for (const [name, entry] of Object.entries(value)) {
    const checked = RepositoryNameSchema.safeParse(name);
    const parsed = PipelineSchema.safeParse(entry);
    for (const issue of [...(checked.error?.issues ?? []), ...(parsed.error?.issues ?? [])]) {
      ctx.addIssue({ code: 'custom', message: issue.message, path: [name, ...issue.path] });
    }
    if (checked.success && parsed.success) pipelines.set(name, parsed.data);
  }
  return pipelines;
});

// ---------------------------------------------------------------------------------------------------
// The settings

export const ARTIFACT_BUCKET = setting('ARTIFACT_BUCKET', text, { doc: 'the S3 bucket for models, datasets, registry and approvals', source: construct('the artifact bucket') });
export const MODEL_NAME = setting('MODEL_NAME', ModelNameSchema, { default: 'fashion-mnist', doc: 'default model name (a run request may name another); a DNS-1035 label: it names Services', source: prop('modelName') });
export const DATA_URI = optionalSetting('DATA_URI', s3Uri, { doc: 'default training data (`s3://<bucket>/datasets/fashion-mnist/v1/`)', source: prop('dataUri') });
export const EVAL_DATA_URI = optionalSetting('EVAL_DATA_URI', s3Uri, { doc: 'default held-out evaluation data', source: prop('evalDataUri') });
export const SERVING_IMAGE = optionalSetting('SERVING_IMAGE', text, { doc: 'default serving image', source: prop('servingImage') });
export const DEFAULT_HYPERPARAMETERS = setting('DEFAULT_HYPERPARAMETERS', json(HyperparametersSchema, 'an object of strings, numbers or booleans'), { default: '{}', doc: "JSON object merged under the request's hyperparameters", source: prop('defaultHyperparameters') });
export const STAGING_NAMESPACE = setting('STAGING_NAMESPACE', NamespaceSchema, { default: 'mlpipe-staging', doc: 'namespace of training Jobs and staging servers', source: prop('stagingNamespace') });
export const PRODUCTION_NAMESPACE = setting('PRODUCTION_NAMESPACE', NamespaceSchema, { default: 'mlpipe-production', doc: 'namespace of production servers', source: prop('productionNamespace') });
export const TRAINER_SERVICE_ACCOUNT = setting('TRAINER_SERVICE_ACCOUNT', k8s(dns1123LabelProblem), { default: 'mlpipe-trainer', doc: 'ServiceAccount training Jobs run as (Pod Identity)', source: prop('trainerServiceAccount') });
export const SERVER_SERVICE_ACCOUNT = setting('SERVER_SERVICE_ACCOUNT', k8s(dns1123LabelProblem), { default: 'mlpipe-server', doc: 'ServiceAccount model servers run as (Pod Identity)', source: prop('serverServiceAccount') });
export const APPROVAL_TIMEOUT_SECONDS = setting('APPROVAL_TIMEOUT_SECONDS', number({ min: 60, max: 31_536_000 }), { default: '86400', doc: 'how long a model waits for a human decision', source: prop('approvalTimeout') });
/** An ECR repository name (no registry, no tag), as ECR defines it. */
export const ECR_REPOSITORY = /^(?:[a-z0-9]+(?:[._-][a-z0-9]+)*\/)*[a-z0-9]+(?:[._-][a-z0-9]+)*$/;
export const TRAINING_REPOSITORY = setting('TRAINING_REPOSITORY', z.string().regex(ECR_REPOSITORY, 'must be an ECR repository name like "team/model-train" (no registry, no tag)'), { default: 'mlpipe/fashion-mnist-train', doc: "the training images' ECR repository: Prepare checks hyperparameters against the schema its images declare (label `io.mlpipe.hyperparameters`)", source: prop('trainingRepositoryName') });
export const ALLOW_IMAGE_TAGS = setting('ALLOW_IMAGE_TAGS', boolean, { default: 'false', doc: 'accept a training image by tag (`image:tag`) instead of pinned by digest (the local run sets true)', source: prop('allowImageTags') });

export const CLUSTER_NAME = optionalSetting('CLUSTER_NAME', text, { doc: 'the EKS cluster (required unless `KUBECONFIG` is set)', source: prop('clusterName') });
export const KUBECONFIG = optionalSetting('KUBECONFIG', text, { doc: 'a kubeconfig file to use instead of EKS (local mode, kind, minikube)', source: LOCAL });
export const AWS_REGION = optionalSetting('AWS_REGION', text, { doc: 'the region, for the EKS token (set by the Lambda runtime)', source: RUNTIME });

export const WATCH_BUDGET_SECONDS = setting('WATCH_BUDGET_SECONDS', number({ min: 0.1, max: 840 }), { default: '240', doc: 'how long one Await invocation watches before the state machine loops', source: prop('watchBudget') });
export const TRAINING_TIMEOUT_SECONDS = setting('TRAINING_TIMEOUT_SECONDS', number({ min: 1, integer: true }), { default: '14400', doc: "deadline of the training phase (the Job's activeDeadlineSeconds)", source: prop('trainingTimeout') });
export const TRAINING_CHECK_MAX_WAIT_SECONDS = setting('TRAINING_CHECK_MAX_WAIT_SECONDS', number({ min: 0, max: 3600, integer: true }), { default: '300', doc: 'longest Wait (no Lambda running) between two checks of a running training Job: how late a failed or stuck training is seen at worst; `0` watches at once, without Wait states (the local run)', source: prop('trainingCheckMaxWait') });
export const TRAINING_WATCH_LEAD_SECONDS = setting('TRAINING_WATCH_LEAD_SECONDS', number({ min: 0, max: 3600, integer: true }), { default: '60', doc: "how long before the end the trainer's progress.json predicts AwaitTraining starts watching (and how long after it the watch lasts)", source: prop('trainingWatchLead') });
export const ROLLOUT_TIMEOUT_SECONDS = setting('ROLLOUT_TIMEOUT_SECONDS', number({ min: 1, integer: true }), { default: '900', doc: "deadline of a rollout (caps the Deployment's progressDeadlineSeconds)", source: prop('rolloutTimeout') });
export const ENDPOINT_TIMEOUT_SECONDS = setting('ENDPOINT_TIMEOUT_SECONDS', number({ min: 1, integer: true }), { default: '900', doc: 'deadline for a LoadBalancer endpoint to serve the model', source: prop('endpointTimeout') });

export const TRAINING_CPU = setting('TRAINING_CPU', CpuSchema, { default: '1', doc: 'CPU request of a training pod (a Kubernetes quantity)', source: prop('trainingCpu') });
export const TRAINING_MEMORY = setting('TRAINING_MEMORY', MemorySchema, { default: '2Gi', doc: 'memory request and limit of a training pod (whole bytes: `2Gi`, not `500m`)', source: prop('trainingMemory') });
export const TRAINING_BACKOFF_LIMIT = setting('TRAINING_BACKOFF_LIMIT', number({ min: 0, max: 10, integer: true }), { default: '1', doc: 'retries of a failed training pod', source: prop('trainingBackoffLimit') });
export const TRAINING_JOB_TTL_SECONDS = setting('TRAINING_JOB_TTL_SECONDS', number({ min: 0, integer: true }), { default: '86400', doc: 'how long a finished training Job is kept', source: prop('trainingJobTtl') });
export const SERVING_CPU = setting('SERVING_CPU', CpuSchema, { default: '250m', doc: 'CPU request of a model server', source: prop('servingCpu') });
export const SERVING_MEMORY = setting('SERVING_MEMORY', MemorySchema, { default: '512Mi', doc: 'memory request and limit of a model server', source: prop('servingMemory') });
export const SERVING_REPLICAS = setting('SERVING_REPLICAS', number({ min: 1, max: 50, integer: true }), { default: '2', doc: 'replicas of a production model server (staging always runs 1)', source: prop('servingReplicas') });
export const SERVING_DRAIN_SECONDS = setting('SERVING_DRAIN_SECONDS', number({ min: 0, max: 300, integer: true }), {
  default: '10',
  doc: "how long a model server that is being stopped (a canary's scale-down, a retired version) keeps serving before it gets SIGTERM: a `preStop` sleep (Kubernetes 1.30+) while kube-proxy and the load balancer stop sending it new connections; 0: none",
  source: prop('servingDrainSeconds'),
});
export const SERVICE_ANNOTATIONS = setting('SERVICE_ANNOTATIONS', annotations, { default: '{}', doc: 'JSON object of LoadBalancer Service annotations (e.g. for the AWS Load Balancer Controller)', source: prop('serviceAnnotations') });
export const STAGING_SERVICE_ANNOTATIONS = setting('STAGING_SERVICE_ANNOTATIONS', annotations, { default: '{}', doc: 'JSON object of annotations for staging Services only, over `SERVICE_ANNOTATIONS` (with `vpcId` the construct adds the internal load balancer scheme)', source: prop('stagingServiceAnnotations') });
/** `a.b.c.d/n` or an IPv6 CIDR, as kube-apiserver parses loadBalancerSourceRanges (Go net.ParseCIDR). */
export function cidrProblem(value: string): string | undefined {
  const [ip, prefix, ...rest] = value.split('/');
  const bits = isIPv4(ip ?? '') ? 32 : isIPv6(ip ?? '') ? 128 : 0;
  const ok = bits > 0 && rest.length === 0 && prefix !== undefined && /^\d{1,3}$/.test(prefix) && Number(prefix) <= bits;
  return ok ? undefined : `"${value}" is not a CIDR range (an IP address and a prefix length, e.g. 203.0.113.0/24 or 2001:db8::/32)`;
}
const cidrs = json(
  z.array(z.string('must be strings')).superRefine((ranges, ctx) => {
    ranges.forEach((r, i) => {
      const problem = cidrProblem(r);
      if (problem !== undefined) ctx.addIssue({ code: 'custom', path: [i], message: problem });
    });
  }),
  'an array of CIDR ranges, e.g. ["203.0.113.0/24"]',
);
/** Model name → the ARN of its endpoint token secret. */
export const TokenSecretsSchema = z.record(ModelNameSchema, arn('secretsmanager'));
export const ENDPOINT_AUTH = setting('ENDPOINT_AUTH', boolean, { default: 'true', doc: 'model endpoints require `Authorization: Bearer <token>`: the per-model token in Secrets Manager (`ENDPOINT_TOKEN_SECRETS`) is written to a Kubernetes Secret the serving pods read (`AUTH_TOKEN_FILE`), and the pipeline presents it (docs/deploy.md, Endpoint authentication)', source: prop('endpointAuth') });
export const ENDPOINT_TOKEN_SECRETS = setting('ENDPOINT_TOKEN_SECRETS', json(TokenSecretsSchema, 'an object of model name to Secrets Manager secret ARN'), { default: '{}', doc: 'JSON: model name → ARN of its endpoint token secret (one per configured model; a model without one cannot be served while `ENDPOINT_AUTH` is on)', source: construct('one token secret per configured model') });
export const ENDPOINT_TOKEN_ROTATION_DAYS = setting('ENDPOINT_TOKEN_ROTATION_DAYS', number({ min: 1, max: 365, integer: true }), { default: '30', doc: 'days between automatic rotations of each endpoint token (Secrets Manager rotation schedule; docs/deploy.md, Endpoint authentication)', source: prop('endpointTokenRotationDays') });
export const ENDPOINT_TOKEN_LOAD_WAIT_SECONDS = setting('ENDPOINT_TOKEN_LOAD_WAIT_SECONDS', number({ min: 0, max: 600, integer: true }), { default: '180', doc: "how long a rotation's testSecret step waits for every serving pod to load the new token (the kubelet updates a mounted Secret within about a minute); past it the step fails, and with it the rotation (Secrets Manager retries a failed rotation a few times)", source: construct('its default') });
export const LOAD_BALANCER_SOURCE_RANGES = setting('LOAD_BALANCER_SOURCE_RANGES', cidrs, { default: '[]', doc: 'JSON array of CIDR ranges allowed to reach the staging and production load balancers (`loadBalancerSourceRanges`); empty: anyone who can route to them', source: prop('loadBalancerSourceRanges') });
export const PRODUCTION_SERVICE_ANNOTATIONS = setting('PRODUCTION_SERVICE_ANNOTATIONS', annotations, { default: '{}', doc: 'JSON object of annotations for production Services only, over `SERVICE_ANNOTATIONS` (`internalProduction`, `tlsCertificateArn` add theirs)', source: prop('productionServiceAnnotations') });
export const ROLLOUT = setting('ROLLOUT', json(RolloutSchema, 'an object like {"strategy":"canary","steps":[10,50,100],"bakeSeconds":300}'), { default: '{}', doc: 'JSON: how production takes a new version (rollout.ts): `strategy` `canary` (default) or `blueGreen`; canary `steps` (default [10,50,100]), `bakeSeconds` per step (300), `analysisIntervalSeconds` (60), `maxInconclusive` (2) and thresholds `maxErrorRate` (0.05), `maxErrorRateIncrease` (0.02), `maxP95LatencyMs` (1000), `maxP95Ratio` (1.5), `minRequests` (50); a run may override any of them', source: prop('rollout') });
export const RETENTION_HOURS = setting('RETENTION_HOURS', number({ min: 0, max: 8760 }), { default: '72', doc: 'hours a replaced production version is kept, scaled to 0 replicas, for `mlpipe rollback` (the newest retired one always)', source: prop('retentionHours') });
// Placement (placement.ts): rendered into the pods only when set, so the default changes nothing.
const placement = json(PlacementSchema, 'an object like {"gpus":1,"nodeSelector":{"karpenter.sh/nodepool":"gpu"},"tolerations":[{"key":"nvidia.com/gpu","operator":"Exists","effect":"NoSchedule"}],"priorityClassName":"batch"}');
export const TRAINING_PLACEMENT = setting('TRAINING_PLACEMENT', placement, { default: '{}', doc: 'JSON: where training pods run: `gpus` (`nvidia.com/gpu` limit; needs GPU nodes with the NVIDIA device plugin), `nodeSelector`, `tolerations`, `priorityClassName` (placement.ts; docs/deploy.md)', source: prop('trainingPlacement') });
export const SERVING_PLACEMENT = setting('SERVING_PLACEMENT', placement, { default: '{}', doc: 'JSON: where model servers run, as `TRAINING_PLACEMENT`', source: prop('servingPlacement') });

export const MIN_ACCURACY = setting('MIN_ACCURACY', fraction, { default: '0.85', doc: 'gate: lowest accuracy on held-out data', source: prop('minAccuracy') });
export const MAX_P95_LATENCY_MS = setting('MAX_P95_LATENCY_MS', number({ min: 0 }), { default: '250', doc: "gate: highest p95 latency of a predict request (ms); also the serving monitor's p95 alarm", source: prop('maxP95LatencyMs') });
export const MAX_ERROR_RATE = setting('MAX_ERROR_RATE', fraction, { default: '0.01', doc: "gate: highest share of failed requests; also the serving monitor's error-rate alarm", source: prop('maxErrorRate') });
export const MAX_ACCURACY_DROP = setting('MAX_ACCURACY_DROP', fraction, { default: '0.01', doc: "gate: how far below production's accuracy a model may be", source: prop('maxAccuracyDrop') });
export const EVAL_SAMPLES = setting('EVAL_SAMPLES', number({ min: 1, integer: true }), { default: '10000', doc: 'held-out samples sent to the staging endpoint', source: prop('evalSamples') });
export const EVAL_BATCH_SIZE = setting('EVAL_BATCH_SIZE', number({ min: 1, max: 10_000, integer: true }), { default: '100', doc: 'samples per predict request', source: prop('evalBatchSize') });
export const EVAL_CONCURRENCY = setting('EVAL_CONCURRENCY', number({ min: 1, max: 64, integer: true }), { default: '2', doc: 'predict requests in flight (more measures queueing, not the model)', source: prop('evalConcurrency') });
export const EVAL_REQUEST_TIMEOUT_MS = setting('EVAL_REQUEST_TIMEOUT_MS', number({ min: 100, integer: true }), { default: '30000', doc: 'timeout of one predict request (ms)', source: prop('evalRequestTimeout') });

/** `rate(<n> minute[s])`: the serving monitor's period, which is also its alarms' period (a whole number of minutes). */
export const MONITOR_SCHEDULE_PATTERN = /^rate\(([1-9]\d{0,3}) minutes?\)$/;
export const MONITOR_SCHEDULE = setting('MONITOR_SCHEDULE', z.string().regex(MONITOR_SCHEDULE_PATTERN, 'must be an EventBridge Scheduler rate of whole minutes like "rate(1 minute)" or "rate(5 minutes)" (it is also the alarms\' period)'), { default: 'rate(1 minute)', doc: "how often the serving monitor scrapes production's `/metrics` (also its alarms' period)", source: prop('monitorSchedule') });
export const MAX_PREDICTION_DRIFT = setting('MAX_PREDICTION_DRIFT', number({ min: 0.01, max: 10 }), { default: '0.2', doc: "serving alarm: highest PSI of production's predicted-class distribution against its evaluation's (0.1-0.2 is some shift, above 0.2 a significant one)", source: prop('maxPredictionDrift') });

export const NOTIFICATION_TOPIC_ARN = setting('NOTIFICATION_TOPIC_ARN', arn('sns'), { doc: 'the SNS topic of approval requests and notifications', source: construct('the notification topic') });
export const APPROVAL_BASE_URL = setting('APPROVAL_BASE_URL', httpUrl, { doc: 'base URL of the approval links, e.g. `https://abc.execute-api.us-east-1.amazonaws.com`', source: construct('the approval API') });
export const APPROVAL_SECRET_ARN = optionalSetting('APPROVAL_SECRET_ARN', arn('secretsmanager'), { doc: 'the HMAC key of approval links, in Secrets Manager', source: construct('the approval secret') });
export const APPROVAL_SECRET = optionalSetting('APPROVAL_SECRET', z.string().min(16, 'must be at least 16 characters'), { doc: 'the HMAC key itself, instead of `APPROVAL_SECRET_ARN` (local mode)', source: LOCAL, secret: true });

export const STATE_MACHINE_ARN = setting('STATE_MACHINE_ARN', z.string().regex(/^arn:aws[\w-]*:states:[a-z0-9-]+:\d{12}:stateMachine:[A-Za-z0-9_-]+$/, 'must be a state machine ARN'), { doc: 'the pipeline state machine the starter starts', source: construct('the state machine') });
export const PIPELINES = setting('PIPELINES', json(PipelinesSchema, 'an object of ECR repository name to {"modelName": ..., "dataUri"?: ...}'), { doc: 'JSON: `{ "<repositoryName>": { "modelName": "...", "dataUri": "...", ... } }`', source: construct('trainingRepositoryName, modelName, dataUri, evalDataUri, defaultHyperparameters') });
export const DEAD_LETTER_QUEUE_URL = setting('DEAD_LETTER_QUEUE_URL', httpUrl, { doc: "the starter's dead-letter queue (messages that can never start a run)", source: construct('the dead-letter queue') });
export const STARTER_MAX_ATTEMPTS = setting('STARTER_MAX_ATTEMPTS', number({ min: 1, max: 20, integer: true }), { default: '5', doc: 'StartExecution attempts before a message goes back to SQS', source: construct('its default') });
export const STARTER_RETRY_BASE_MS = setting('STARTER_RETRY_BASE_MS', number({ min: 0, max: 2000, integer: true }), { default: '100', doc: 'first backoff ceiling of the starter (ms), doubled per attempt up to 2 s', source: construct('its default') });

/** Memory (MB) per Task state, `*` for the rest: what the run-cost estimate multiplies each Lambda's time by. */
const TaskMemorySchema = z
  .record(z.string(), z.number('must be a number of MB').int('must be a whole number of MB').min(128, 'must be >= 128 (MB)').max(10_240, 'must be <= 10240 (MB)'))
  .refine((m) => m['*'] !== undefined, 'must give "*", the memory of every state not named');
export const TASK_MEMORY_MB = setting('TASK_MEMORY_MB', json(TaskMemorySchema, 'an object of Task state name to MB, e.g. {"*":256,"EvaluateModel":1024}'), { doc: "JSON: the memory (MB) of the function behind each Task state, `*` for the rest, for the run's cost estimate (run-cost.ts)", source: construct("each function's memorySize (FUNCTION_SPECS) and the state machine definition") });

export const AWS_ENDPOINT_URL_S3 = optionalSetting('AWS_ENDPOINT_URL_S3', httpUrl, { doc: 'a local S3 (path-style addressing; local mode only)', source: LOCAL });
export const AWS_ENDPOINT_URL_ECR = optionalSetting('AWS_ENDPOINT_URL_ECR', httpUrl, { doc: 'a local ECR (local mode only): training images named without a registry host are read from it', source: LOCAL });
export const AWS_ENDPOINT_URL_SFN = optionalSetting('AWS_ENDPOINT_URL_SFN', httpUrl, { doc: 'a local Step Functions endpoint (local mode only: no console links)', source: LOCAL });

/** Every definition, in the order of the docs table. */
export const ALL_SETTINGS: readonly SettingDefinition[] = [
  ARTIFACT_BUCKET, MODEL_NAME, DATA_URI, EVAL_DATA_URI, SERVING_IMAGE, DEFAULT_HYPERPARAMETERS, STAGING_NAMESPACE, PRODUCTION_NAMESPACE,
  TRAINER_SERVICE_ACCOUNT, SERVER_SERVICE_ACCOUNT, APPROVAL_TIMEOUT_SECONDS, TRAINING_REPOSITORY, ALLOW_IMAGE_TAGS, CLUSTER_NAME, KUBECONFIG, AWS_REGION,
  WATCH_BUDGET_SECONDS, TRAINING_TIMEOUT_SECONDS, TRAINING_CHECK_MAX_WAIT_SECONDS, TRAINING_WATCH_LEAD_SECONDS, ROLLOUT_TIMEOUT_SECONDS, ENDPOINT_TIMEOUT_SECONDS, TRAINING_CPU, TRAINING_MEMORY,
  TRAINING_BACKOFF_LIMIT, TRAINING_JOB_TTL_SECONDS, SERVING_CPU, SERVING_MEMORY, SERVING_REPLICAS, SERVING_DRAIN_SECONDS, SERVICE_ANNOTATIONS,
  STAGING_SERVICE_ANNOTATIONS, PRODUCTION_SERVICE_ANNOTATIONS, LOAD_BALANCER_SOURCE_RANGES, ENDPOINT_AUTH, ENDPOINT_TOKEN_SECRETS, ENDPOINT_TOKEN_ROTATION_DAYS, ENDPOINT_TOKEN_LOAD_WAIT_SECONDS, ROLLOUT, RETENTION_HOURS, TRAINING_PLACEMENT, SERVING_PLACEMENT, MIN_ACCURACY, MAX_P95_LATENCY_MS, MAX_ERROR_RATE, MAX_ACCURACY_DROP,
  EVAL_SAMPLES, EVAL_BATCH_SIZE, EVAL_CONCURRENCY, EVAL_REQUEST_TIMEOUT_MS, MONITOR_SCHEDULE, MAX_PREDICTION_DRIFT, NOTIFICATION_TOPIC_ARN, APPROVAL_BASE_URL,
  APPROVAL_SECRET_ARN, APPROVAL_SECRET, STATE_MACHINE_ARN, PIPELINES, DEAD_LETTER_QUEUE_URL, STARTER_MAX_ATTEMPTS,
  STARTER_RETRY_BASE_MS, TASK_MEMORY_MB, AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL_ECR, AWS_ENDPOINT_URL_SFN,
];

/** The CDK never sets these: the runtime or the local runner does. */
export function setByCdk(def: SettingDefinition): boolean {
  return def.source.kind === 'prop' || def.source.kind === 'construct';
}

// ---------------------------------------------------------------------------------------------------
// Compositions and loading

/** Definitions keyed by their variable name. */
export type SettingsGroup = Readonly<Record<string, SettingDefinition<any, boolean>>>; // eslint-disable-line @typescript-eslint/no-explicit-any

type ValueOf<D> = D extends SettingDefinition<infer T, infer O> ? (O extends true ? T | undefined : T) : never;

/** The loaded values of a group, typed from its schemas. */
export type SettingsOf<G extends SettingsGroup> = { readonly [K in keyof G]: ValueOf<G[K]> };

/** A rule across a function's settings: the problem, or undefined. (Method syntax: any function's settings are FunctionSettings.) */
type Check<G extends SettingsGroup> = { check(values: SettingsOf<G>): string | undefined }['check'];

/** A function's settings: its definitions, plus rules across them (e.g. one of two must be set). */
export interface FunctionSettings<G extends SettingsGroup = SettingsGroup> {
  readonly definitions: G;
  readonly checks: ReadonlyArray<Check<G>>;
}

/** Composes groups into one schema; the same key twice must be the same definition. */
export function defineSettings<G extends SettingsGroup>(definitions: G, ...checks: Array<Check<NoInfer<G>>>): FunctionSettings<G> {
  for (const [key, def] of Object.entries(definitions)) {
    if (key !== def.name) throw new Error(`settings: key ${key} holds the definition of ${def.name}`);
  }
  return { definitions, checks };
}

/** Builds a group from definitions. */
export function group<const D extends readonly SettingDefinition<any, boolean>[]>(...defs: D): { readonly [E in D[number] as E['name']]: E } { // eslint-disable-line @typescript-eslint/no-explicit-any
  return Object.fromEntries(defs.map((d) => [d.name, d])) as never;
}

/** Why `text` is not a valid value of the setting (its schema's rules, joined), or undefined. */
export function settingProblem(def: SettingDefinition, text: string): string | undefined {
  const result = def.schema.safeParse(text);
  if (result.success) return undefined;
  return [...new Set(result.error.issues.map((i) => (i.path.length ? `${i.path.join('.')}: ${i.message}` : i.message)))].join('; ');
}

/** Parses one setting's raw text; a bad or missing value is a ConfigurationError naming it and the rule. */
export function parseSetting<T>(def: SettingDefinition<T>, raw: string | undefined): T | undefined {
  const trimmed = raw?.trim();
  const text = trimmed === undefined || trimmed === '' ? def.default : trimmed;
  if (text === undefined) {
    if (def.optional) return undefined;
    throw new ConfigurationError(`Missing required setting: environment variable ${def.name} is not set (${def.doc}).`);
  }
  const result = def.schema.safeParse(text);
  if (result.success) return result.data;
  const rules = settingProblem(def, text);
  const got = def.secret ? '' : `; got "${text.length > 200 ? `${text.slice(0, 200)}...` : text}"`;
  throw new ConfigurationError(`Setting ${def.name} is invalid: ${rules}${got}.`);
}

/** What loaded settings hold, for the shared modules that serve every function (clients, registry, kube). */
const current = new Map<string, unknown>();
const loadedGroups: Array<{ settings: FunctionSettings; target: Record<string, unknown> }> = [];

function parseAll<G extends SettingsGroup>(settings: FunctionSettings<G>, env: Readonly<Record<string, string | undefined>>): SettingsOf<G> {
  // In a Lambda (on AWS, or the local runner's), a default never stands in for a setting the CDK sets: the
  // CDK writes every such setting, defaults included, so a missing one means template and handler disagree
  // (as TRAINING_TIMEOUT_SECONDS once did) and must fail the init rather than run on a silent default.
  const inLambda = (env.AWS_LAMBDA_FUNCTION_NAME ?? '') !== '';
  const values: Record<string, unknown> = {};
  for (const [name, def] of Object.entries(settings.definitions)) {
    if (inLambda && setByCdk(def) && !def.optional && (env[name] ?? '').trim() === '') {
      throw new ConfigurationError(
        `Missing required setting: environment variable ${name} is not set in this function's environment (${def.doc}); ` +
          'the CDK writes every setting a function reads, defaults included (lib/constructs/pipeline-functions.ts).',
      );
    }
    values[name] = parseSetting(def, env[name]);
  }
  for (const check of settings.checks) {
    const problem = check(values as SettingsOf<G>);
    if (problem !== undefined) throw new ConfigurationError(`Settings are invalid: ${problem}.`);
  }
  return values as SettingsOf<G>;
}

/** Parses `env` with a function's settings without recording them (tests, benches, the starter's callers). */
export function readSettings<G extends SettingsGroup>(settings: FunctionSettings<G>, env: Readonly<Record<string, string | undefined>>): SettingsOf<G> {
  return parseAll(settings, env);
}

/**
 * Reads and validates a function's settings from the environment — once, when its module loads — and
 * records them for the shared modules (currentSetting). Throws a ConfigurationError naming the variable
 * and the rule, which fails the Lambda's init.
 */
export function loadSettings<G extends SettingsGroup>(settings: FunctionSettings<G>, env: Readonly<Record<string, string | undefined>> = process.env): SettingsOf<G> {
  const values = parseAll(settings, env) as Record<string, unknown>;
  for (const [name, value] of Object.entries(values)) current.set(name, value);
  loadedGroups.push({ settings: settings as unknown as FunctionSettings, target: values });
  return values as SettingsOf<G>;
}

/**
 * Re-reads every settings object loaded so far, in place. Only for processes that change their own
 * environment after loading handler modules: tests, the CLI, the in-process local runner. A Lambda
 * never calls it.
 */
export function reloadSettings(env: Readonly<Record<string, string | undefined>> = process.env): void {
  current.clear();
  for (const { settings, target } of loadedGroups) {
    const values = parseAll(settings, env) as Record<string, unknown>;
    for (const key of Object.keys(target)) delete target[key];
    Object.assign(target, values);
    for (const [name, value] of Object.entries(values)) current.set(name, value);
  }
}

/**
 * A loaded setting, for shared modules used by many functions (the S3 client, the registry, Kubernetes
 * access). Throws if no loaded settings include it: the function using the module must declare it.
 */
export function currentSetting<T, O extends boolean>(def: SettingDefinition<T, O>): O extends true ? T | undefined : T {
  if (!current.has(def.name)) {
    throw new ConfigurationError(`Setting ${def.name} was not loaded: add it to this function's settings (functions/shared/function-settings.ts).`);
  }
  return current.get(def.name) as O extends true ? T | undefined : T;
}
