/**
 * Zod schemas of the shapes that flow through statemachine/pipeline.asl.json; functions/shared/types.ts
 * derives the TypeScript types from them (z.infer), so a shape is written once. The state is ours, but it
 * crosses a boundary (Step Functions, or a hand-made input to a redriven execution), so each handler
 * checks what it relies on and names the field when it is wrong.
 */
import * as z from 'zod';
import { InvalidInputError } from './errors';
import { MAX_RUN_REQUEST_DEPTH, jsonKind, nestingDepth } from './execution-input';
import { DNS1123_LABEL } from './names';
import { TrainingProgressSchema } from './progress';
import { RolloutOverrideSchema, RunRolloutSchema } from './rollout';
import { RunCostSchema } from './run-cost';
import { HyperparametersSchema, ModelNameSchema, S3_URI } from './settings';

const dnsLabel = z.string().regex(DNS1123_LABEL, 'must be a DNS-1123 label (lowercase letters, digits, "-", at most 63)');
/** Service names are DNS-1035 labels (k8s-names.ts). */
const serviceName = z.string().regex(/^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$/, 'must be a DNS-1035 label (a Service name: starts with a letter)');

/** `[registry[:port]/]repo[/more][:tag][@sha256:<64 hex>]`, lowercase repository path as OCI requires. */
export const IMAGE_REF = /^(?:[a-zA-Z0-9.-]+(?::[0-9]+)?\/)?[a-z0-9]+(?:[._-][a-z0-9]+)*(?:\/[a-z0-9]+(?:[._-][a-z0-9]+)*)*(?::[\w][\w.-]{0,127})?(?:@sha256:[a-f0-9]{64})?$/;
const IMAGE_HINT = 'must be a container image reference like <registry>/<repo>@sha256:<digest>';
const s3Uri = z.string().regex(S3_URI, 'must be an S3 URI like s3://bucket/prefix/');
const TriggerSchema = z.object({ source: z.string().min(1, 'must not be empty'), detail: z.record(z.string(), z.unknown()).optional() });

/** A release version (names.ts deriveVersion): it ends up in object names and labels. */
export const VersionSchema = z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/, 'must be a version like 20260102-030405-abc1234');

/** ASL states a retry can resume at: the ResumeRun Choice after Prepare routes on these (functions/shared/resume.ts). */
export const RESUME_POINTS = ['DeployStaging', 'RequestApproval'] as const;

/** What a run was asked to do: the execution input, validated by PrepareRun. */
export const RunRequestSchema = z.object({
  /** Training image, pinned by digest (a tag only with ALLOW_IMAGE_TAGS). */
  image: z.string(IMAGE_HINT).regex(IMAGE_REF, IMAGE_HINT),
  /** Model name (defaults to the MODEL_NAME setting); it names Services, so a DNS-1035 label. */
  modelName: ModelNameSchema.optional(),
  /** Training data location, `s3://bucket/prefix/` (defaults to the DATA_URI setting). */
  dataUri: s3Uri.optional(),
  /** Held-out evaluation data location (defaults to the EVAL_DATA_URI setting). */
  evalDataUri: s3Uri.optional(),
  /** Passed to the training container as HYPERPARAMETERS (JSON). */
  hyperparameters: HyperparametersSchema.optional(),
  /** Serving image for this model (defaults to the SERVING_IMAGE setting). */
  servingImage: z.string().regex(IMAGE_REF, IMAGE_HINT).optional(),
  /** What started the run: `ecr-push`, `s3-data`, `schedule`, `cli`, `local`, `retry`. */
  trigger: TriggerSchema.optional(),
  /** Over the stack's ROLLOUT setting for this run (rollout.ts), plus `candidateFault` for a drill. */
  rollout: RolloutOverrideSchema.optional(),
  /**
   * A retry (`mlpipe retry`): the failed run to continue, and where its record is. Prepare keeps its
   * version and reuses what succeeded (functions/shared/resume.ts).
   */
  retryOf: z
    .object({
      executionArn: z.string().regex(/^arn:aws[\w-]*:states:[\w-]+:\d{12}:execution:[^:]+:[^:]+$/, 'must be a Step Functions execution ARN'),
      modelName: ModelNameSchema,
      version: VersionSchema,
    })
    .optional(),
});

/**
 * The execution input as a RunRequest. Step Functions starts an execution with any JSON: an array, null
 * or a string gets a message saying what was expected, and input nested deeper than any request could
 * be is refused before it is carried through every later state. No input at all is `{}`, as on AWS.
 */
export function parseRunRequest(input: unknown): z.infer<typeof RunRequestSchema> {
  const value = input === undefined ? {} : input;
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new InvalidInputError(`Execution input is invalid: must be a JSON object like {"image": "<registry>/<repo>@sha256:<digest>"}, got ${jsonKind(value)}.`);
  }
  const depth = nestingDepth(value);
  if (depth > MAX_RUN_REQUEST_DEPTH) {
    throw new InvalidInputError(`Execution input is invalid: nested ${depth} levels deep, at most ${MAX_RUN_REQUEST_DEPTH} are accepted.`);
  }
  return parseInput(RunRequestSchema, value, 'Execution input');
}

/** PrepareRun's input, built by the Parameters block of the Prepare state. */
export const PrepareRunInputSchema = z.object({
  input: z.unknown(),
  executionArn: z.string().min(1),
  executionName: z.string().min(1),
  startTime: z.string().refine((s) => !Number.isNaN(Date.parse(s)), 'must be an ISO timestamp'),
});

/** `$.run`: the validated request plus everything derived from it once, in PrepareRun. */
export const RunSchema = z.object({
  modelName: ModelNameSchema,
  /** Deterministic per execution: `<yyyymmdd>-<hhmmss>-<hash of execution name + image, 7 hex>`. */
  version: VersionSchema,
  image: z.string().min(1),
  imageDigest: z.string().nullable(),
  servingImage: z.string().min(1),
  dataUri: z.string().startsWith('s3://', 'must be an s3:// URI'),
  evalDataUri: z.string().startsWith('s3://', 'must be an s3:// URI'),
  hyperparameters: z.record(z.string(), z.union([z.string(), z.number(), z.boolean()])),
  /** `s3://<bucket>/models/<model>/<version>/` — the trainer writes here; the server reads it. */
  modelUri: z.string().startsWith('s3://', 'must be an s3:// URI'),
  /** `s3://<bucket>/checkpoints/<model>/<version>/` — the trainer's CHECKPOINT_URI (absent in states made before checkpoints). */
  checkpointUri: z.string().startsWith('s3://', 'must be an s3:// URI').optional(),
  executionArn: z.string(),
  executionName: z.string(),
  startedAt: z.string(),
  approvalTimeoutSeconds: z.number(),
  trigger: z.object({ source: z.string(), detail: z.record(z.string(), z.unknown()).optional() }),
  namespaces: z.object({ staging: dnsLabel, production: dnsLabel }),
  /** How production takes this version: the ROLLOUT setting with the run's override (absent in states made before canaries: blue/green). */
  rollout: RunRolloutSchema.optional(),
  /** A retry: the run it continues and the state it resumed at (the ResumeRun Choice routes on `from`). */
  retry: z.object({ of: z.string(), from: z.enum(RESUME_POINTS) }).optional(),
  /** Deterministic names (<= 63 chars) of every Kubernetes object this run owns. */
  names: z.object({
    trainingJob: dnsLabel,
    stagingDeployment: dnsLabel,
    stagingService: serviceName,
    productionDeployment: dnsLabel,
    /** Stable across versions: blue/green switches its selector. */
    productionService: serviceName,
  }),
});

export const StageNameSchema = z.enum(['staging', 'production']);

/** `$.training` (SubmitTraining, CheckTraining, AwaitTraining). */
export const TrainingSchema = z.object({
  jobName: dnsLabel,
  namespace: dnsLabel,
  submittedAt: z.string(),
  /** `pending`: WaitForTraining sleeps `waitSeconds`; `watch`: AwaitTraining watches (training-wait.ts). */
  status: z.enum(['pending', 'watch', 'succeeded']),
  /** Seconds of the next Wait (`pending`, a whole number) or watch (`watch`), as CheckTraining/AwaitTraining planned them. */
  waitSeconds: z.number().nonnegative().optional(),
  completedAt: z.string().optional(),
  /** metrics.json written by the trainer, once succeeded. */
  metrics: z.record(z.string(), z.number()).optional(),
  /** The latest progress.json the trainer wrote (progress.ts), if it writes one. */
  progress: TrainingProgressSchema.optional(),
  /** What the pod requested (SubmitTraining): its CPU (a Kubernetes quantity) and GPUs, for the run's cost (run-cost.ts). */
  request: z.object({ cpu: z.string(), gpus: z.number().int().nonnegative() }).optional(),
});

/** `$.staging` and `$.production` (Deploy*, Await*Rollout, ExposeStaging/SwitchProductionTraffic, Await*Endpoint). */
export const StageSchema = z.object({
  stage: StageNameSchema,
  namespace: dnsLabel,
  deploymentName: dnsLabel,
  serviceName: serviceName,
  deployedAt: z.string(),
  status: z.enum(['pending', 'ready', 'exposed', 'serving']),
  /** Base URL of the LoadBalancer endpoint, e.g. `http://a1b2.elb.amazonaws.com:80`, once serving. */
  endpoint: z.string().optional(),
  /** production only: the version the production Service selected before this run switched it. */
  previousVersion: z.string().nullable().optional(),
  switchedAt: z.string().optional(),
  /**
   * production only, set by DeployProduction: `canary` when a stable version serves and the rollout is a
   * canary (ShiftCanaryTraffic follows), else `switch` (SwitchProductionTraffic at once), and why.
   */
  rollout: z.object({ strategy: z.enum(['canary', 'switch']), stableVersion: VersionSchema.nullable(), reason: z.string() }).optional(),
});

/** One version's summed counters from its pods' /metrics (canary-analysis.ts VersionCounters). */
const CountersSchema = z.object({
  requests: z.number(),
  errors: z.number(),
  buckets: z.array(z.tuple([z.number(), z.number()])),
  pods: z.number(),
  podsRead: z.number(),
  /** Per pod, so a restarted pod's reset counters are told from traffic (kept in the baseline only). */
  byPod: z.record(z.string(), z.object({ requests: z.number(), errors: z.number(), buckets: z.array(z.tuple([z.number(), z.number()])), restarts: z.number() })).optional(),
});
const StatsSchema = z.object({ requests: z.number(), errors: z.number(), errorRate: z.number(), p95Ms: z.number().nullable() });

/** A verdict with its evidence (canary-analysis.ts CanaryVerdict). */
export const CanaryEvidenceSchema = z.object({
  verdict: z.enum(['pass', 'fail', 'inconclusive']),
  reasons: z.array(z.string()),
  canary: StatsSchema,
  stable: StatsSchema.nullable(),
  servedShare: z.number().nullable(),
});

/** A finished canary step, as the manifest and the failure email show it. */
export const CanaryStepSchema = z.object({
  weight: z.number(),
  canaryReplicas: z.number(),
  stableReplicas: z.number(),
  reachablePercent: z.number(),
  startedAt: z.string(),
  endedAt: z.string(),
  /** Analyses run during the step. */
  analyses: z.number(),
  evidence: CanaryEvidenceSchema,
});

/**
 * `$.canary` (ShiftCanaryTraffic, AnalyzeCanary, AbortCanary): where the canary is. `scaling`: the
 * step's pods are being brought up (Shift loops); `baking`: the BakeCanary Wait, then AnalyzeCanary;
 * `promote`: the last step (100 %) passed, SwitchProductionTraffic follows; `rollback`: the last analysis
 * failed; `rolledBack`: stable serves alone again. Compact: counters are a few numbers per version.
 */
export const CanarySchema = z.object({
  status: z.enum(['scaling', 'baking', 'promote', 'rollback', 'rolledBack']),
  stableVersion: VersionSchema,
  totalReplicas: z.number().int().min(1),
  /** Index into $.run.rollout.steps. */
  step: z.number().int().min(0),
  weight: z.number(),
  canaryReplicas: z.number(),
  stableReplicas: z.number(),
  reachablePercent: z.number(),
  /** When this step's scaling began (its rollout deadline counts from here). */
  scaledAt: z.string(),
  stepStartedAt: z.string().optional(),
  /** The bake of this step ends here (moved on by an inconclusive extension). */
  bakeUntil: z.string().optional(),
  inconclusive: z.number().int().min(0),
  analyses: z.number().int().min(0),
  /** The BakeCanary Wait's length (SecondsPath). */
  waitSeconds: z.number().int().min(1),
  /** Counters at the start of the step: analysis compares against these. */
  baseline: z.object({ canary: CountersSchema, stable: CountersSchema }).optional(),
  last: CanaryEvidenceSchema.optional(),
  steps: z.array(CanaryStepSchema),
  /** Why the canary failed (the Cause of CanaryAnalysisFailed). */
  failure: z.string().optional(),
  failedAt: z.string().optional(),
  rolledBackAt: z.string().optional(),
});

/**
 * `$.evaluation` (EvaluateModel); also written to models/<model>/<version>/evaluation.json. The per-class
 * fields are optional: states made before them lack them, and a model with more classes than
 * evaluation.ts's MAX_STATE_CLASSES / MAX_STATE_CONFUSION_CLASSES keeps them in evaluation.json only, so
 * the state stays far below Step Functions' 256 KiB.
 */
export const EvaluationSchema = z.object({
  passed: z.boolean(),
  /** One line a human can read: why it passed or failed. */
  summary: z.string(),
  accuracy: z.number(),
  latencyMsP50: z.number(),
  latencyMsP95: z.number(),
  errorRate: z.number(),
  samples: z.number(),
  thresholds: z.object({ minAccuracy: z.number(), maxP95LatencyMs: z.number(), maxErrorRate: z.number(), maxAccuracyDrop: z.number() }),
  /** Class names, index = label: the held-out data's dataset.json `classNames` (absent: label numbers). */
  classes: z.array(z.string()).optional(),
  /** Accuracy per class, index = label. */
  perClassAccuracy: z.array(z.number()).optional(),
  /** confusion[true label][predicted label]: counts of answered predictions. */
  confusion: z.array(z.array(z.number())).optional(),
  /**
   * The champion: what served production when the candidate was evaluated. Its per-class accuracy and
   * latency were measured in the same evaluation, on the same images, with requests interleaved with the
   * candidate's; without them (its endpoint could not be measured, or an older state) `accuracy` is from
   * its own evaluation.json.
   */
  production: z
    .object({
      version: z.string(),
      accuracy: z.number(),
      perClassAccuracy: z.array(z.number()).optional(),
      latencyMsP50: z.number().optional(),
      latencyMsP95: z.number().optional(),
      errorRate: z.number().optional(),
    })
    .nullable(),
  evaluatedAt: z.string(),
  reportUri: z.string(),
});

/** `$.approval`: the output given to SendTaskSuccess by the approval endpoint or `mlpipe approve`. */
export const ApprovalDecisionSchema = z.object({
  decision: z.enum(['approve', 'reject']),
  by: z.string(),
  at: z.string(),
  /** Source IP for links, `iam:<arn>` for the CLI. */
  from: z.string(),
  comment: z.string().optional(),
});

/** `$.cleanup` (Cleanup, CleanupStaging): what was deleted and, after a late failure, where traffic went. */
export const CleanupSchema = z.object({
  /** `<Kind>/<namespace>/<name>` of every object this call deleted. */
  deleted: z.array(z.string()),
  /** The run failed after its switch and production traffic went back to the version that served before. */
  switchedBack: z.object({ from: z.string(), to: z.string() }).optional(),
  /** The run failed after its switch and traffic stays on its version: why it could not go back. */
  trafficKept: z.object({ version: z.string(), reason: z.string() }).optional(),
  /** Versions this call scaled to 0 replicas and marked retired (kept for rollback, RETENTION_HOURS). */
  retired: z.array(z.string()).optional(),
});

/** `$.error`, put there by every Catch (ResultPath) or by a Pass state on gate failure / rejection / timeout. */
export const PipelineErrorSchema = z.object({ Error: z.string(), Cause: z.string() });

export const PipelineStateSchema = z.object({
  run: RunSchema,
  training: TrainingSchema.optional(),
  staging: StageSchema.optional(),
  evaluation: EvaluationSchema.optional(),
  approval: ApprovalDecisionSchema.optional(),
  production: StageSchema.optional(),
  canary: CanarySchema.optional(),
  release: z.object({ status: z.string(), manifestUri: z.string(), recordedAt: z.string(), cost: RunCostSchema.optional() }).optional(),
  cleanup: CleanupSchema.optional(),
  error: PipelineErrorSchema.optional(),
});

/** RequestApproval's input (lambda:invoke.waitForTaskToken Payload). */
export const RequestApprovalInputSchema = z.object({ taskToken: z.string(), state: PipelineStateSchema });

/** Parses `input` with `schema`; failures become InvalidInputError listing each field and why. */
export function parseInput<T>(schema: z.ZodType<T>, input: unknown, what: string): T {
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  const problems = result.error.issues.map((i) => `${i.path.length ? i.path.join('.') : '(input)'}: ${i.message}`);
  throw new InvalidInputError(`${what} is invalid: ${problems.join('; ')}`);
}

/** `{ run }` plus the given slices, for handlers that need them. */
export function stateWith<S extends z.ZodRawShape>(shape: S) {
  return z.object({ run: RunSchema, ...shape });
}
