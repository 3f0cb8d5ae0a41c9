/**
 * The shapes that flow through statemachine/pipeline.asl.json. Every Task handler except PrepareRun and
 * RequestApproval receives the whole PipelineState (`$`) and returns the slice that the state's
 * ResultPath names. Keep this file in step with the ASL file and docs/architecture.md.
 */

export type Stage = 'staging' | 'production';

/** What a run was asked to do: the execution input, validated by PrepareRun. */
export interface RunRequest {
  /** Training image, pinned by digest: `<registry>/<repo>@sha256:<64 hex>` (a tag is accepted locally). */
  image: string;
  /** Model name, a DNS-1123 label (defaults to the MODEL_NAME setting). */
  modelName?: string;
  /** Training data location, `s3://bucket/prefix/` (defaults to the DATA_URI setting). */
  dataUri?: string;
  /** Held-out evaluation data location (defaults to the EVAL_DATA_URI setting). */
  evalDataUri?: string;
  /** Passed to the training container as HYPERPARAMETERS (JSON). */
  hyperparameters?: Record<string, string | number | boolean>;
  /** Serving image for this model (defaults to the SERVING_IMAGE setting). */
  servingImage?: string;
  /** What started the run: `ecr-push`, `s3-data`, `schedule`, `cli`, `local`. */
  trigger?: { source: string; detail?: Record<string, unknown> };
}

/** `$.run`: the validated request plus everything derived from it once, in PrepareRun. */
export interface RunContext {
  modelName: string;
  /** Deterministic per execution: `<yyyymmdd>-<hhmmss>-<hash of execution name + image, 7 hex>`. */
  version: string;
  image: string;
  imageDigest: string | null;
  servingImage: string;
  dataUri: string;
  evalDataUri: string;
  hyperparameters: Record<string, string | number | boolean>;
  /** `s3://<bucket>/models/<model>/<version>/` — the trainer writes here; the server reads it. */
  modelUri: string;
  executionArn: string;
  executionName: string;
  startedAt: string;
  approvalTimeoutSeconds: number;
  trigger: { source: string; detail?: Record<string, unknown> };
  namespaces: { staging: string; production: string };
  /** Deterministic DNS-1123 names (<= 63 chars) of every Kubernetes object this run owns. */
  names: {
    trainingJob: string;
    stagingDeployment: string;
    stagingService: string;
    productionDeployment: string;
    /** Stable across versions: blue/green switches its selector. */
    productionService: string;
  };
}

/** `$.training` (SubmitTraining, AwaitTraining). */
export interface TrainingResult {
  jobName: string;
  namespace: string;
  submittedAt: string;
  status: 'pending' | 'succeeded';
  completedAt?: string;
  /** metrics.json written by the trainer, once succeeded. */
  metrics?: Record<string, number>;
}

/** `$.staging` and `$.production` (Deploy*, Await*Rollout, ExposeStaging/SwitchProductionTraffic, Await*Endpoint). */
export interface StageResult {
  stage: Stage;
  namespace: string;
  deploymentName: string;
  serviceName: string;
  deployedAt: string;
  status: 'pending' | 'ready' | 'exposed' | 'serving';
  /** Base URL of the LoadBalancer endpoint, e.g. `http://a1b2.elb.amazonaws.com:80`, once serving. */
  endpoint?: string;
  /** production only: the version the production Service selected before this run switched it. */
  previousVersion?: string | null;
  switchedAt?: string;
}

/** `$.evaluation` (EvaluateModel); also written to models/<model>/<version>/evaluation.json. */
export interface EvaluationResult {
  passed: boolean;
  /** One line a human can read: why it passed or failed. */
  summary: string;
  accuracy: number;
  latencyMsP50: number;
  latencyMsP95: number;
  errorRate: number;
  samples: number;
  thresholds: { minAccuracy: number; maxP95LatencyMs: number; maxErrorRate: number; maxAccuracyDrop: number };
  production: { version: string; accuracy: number } | null;
  evaluatedAt: string;
  reportUri: string;
}

/** `$.approval`: the output given to SendTaskSuccess by the approval endpoint or `mlpipe approve`. */
export interface ApprovalDecision {
  decision: 'approve' | 'reject';
  by: string;
  at: string;
  /** Source IP for links, `iam:<arn>` for the CLI. */
  from: string;
  comment?: string;
}

/** `$.cleanup` (Cleanup, CleanupStaging): what was deleted and, after a late failure, where traffic went. */
export interface CleanupResult {
  /** `<Kind>/<namespace>/<name>` of every object this call deleted. */
  deleted: string[];
  /** The run failed after its switch and production traffic went back to the version that served before. */
  switchedBack?: { from: string; to: string };
  /** The run failed after its switch and traffic stays on its version: why it could not go back. */
  trafficKept?: { version: string; reason: string };
}

/** `$.error`, put there by every Catch (ResultPath) or by a Pass state on gate failure / rejection / timeout. */
export interface PipelineError {
  Error: string;
  Cause: string;
}

export interface PipelineState {
  run: RunContext;
  training?: TrainingResult;
  staging?: StageResult;
  evaluation?: EvaluationResult;
  approval?: ApprovalDecision;
  production?: StageResult;
  release?: { status: string; manifestUri: string; recordedAt: string };
  cleanup?: CleanupResult;
  error?: PipelineError;
}

/** PrepareRun's input, built by the Parameters block of the Prepare state. */
export interface PrepareRunInput {
  input: unknown;
  executionArn: string;
  executionName: string;
  startTime: string;
}

/** RequestApproval's input (lambda:invoke.waitForTaskToken Payload). */
export interface RequestApprovalInput {
  taskToken: string;
  state: PipelineState;
}
