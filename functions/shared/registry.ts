/**
 * The model registry: the S3 layout of docs/architecture.md (decision 11) and the records kept in it —
 * evaluation.json and manifest.json per version, production.json per model. RecordRelease, EvaluateModel,
 * rollback and the CLI all go through here so the layout lives in one place.
 */
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { getJson, getJsonVersioned, putJson, putJsonIf, s3Client } from './clients';
import { ARTIFACT_BUCKET, currentSetting } from './settings';
import { InvalidInputError, RegistryConflictError, RollbackError, S3UnavailableError } from './errors';
import type { RunCost } from './run-cost';
import type { ApprovalDecision, CanaryEvidence, CanaryState, CanaryStep, CleanupResult, EvaluationResult, PipelineError, TrainingResult } from './types';

/** The bucket for models, datasets, registry and approvals: from the loaded settings (function-settings.ts REGISTRY). */
export function artifactBucket(): string {
  return currentSetting(ARTIFACT_BUCKET);
}

const SEGMENT = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/** Model names and versions become S3 key segments: refuse anything that could escape its prefix. */
function segment(value: string, field: string): string {
  if (!SEGMENT.test(value)) {
    throw new InvalidInputError(`${field} must be 1-128 characters of letters, digits, '.', '_' or '-', got "${value}".`);
  }
  return value;
}

export const registryKeys = {
  modelPrefix: (model: string) => `models/${segment(model, 'modelName')}/`,
  versionPrefix: (model: string, version: string) => `models/${segment(model, 'modelName')}/${segment(version, 'version')}/`,
  evaluation: (model: string, version: string) => `${registryKeys.versionPrefix(model, version)}evaluation.json`,
  manifest: (model: string, version: string) => `${registryKeys.versionPrefix(model, version)}manifest.json`,
  metrics: (model: string, version: string) => `${registryKeys.versionPrefix(model, version)}metrics.json`,
  /** The training container's CHECKPOINT_URI: outside models/ (the server never reads it; a lifecycle rule expires it). */
  checkpointPrefix: (model: string, version: string) => `checkpoints/${segment(model, 'modelName')}/${segment(version, 'version')}/`,
  production: (model: string) => `${registryKeys.modelPrefix(model)}production.json`,
};

export function s3Uri(key: string, bucket = artifactBucket()): string {
  return `s3://${bucket}/${key}`;
}

// ---------------------------------------------------------------------------------------------------
// Records

export type ReleaseStatus = 'released' | 'failed' | 'rejected' | 'gate-failed' | 'approval-timeout' | 'canary-rolled-back';

/** models/<model>/production.json: what serves production now and how it got there. */
export interface ProductionRecord {
  modelName: string;
  version: string;
  previousVersion: string | null;
  endpoint: string | null;
  switchedAt: string;
  history: ProductionHistoryEntry[];
}

export interface ProductionHistoryEntry {
  version: string;
  at: string;
  /** `canary-rollback`: a release's canary failed its analysis and `version` (the stable one) took all traffic back. */
  action: 'release' | 'rollback' | 'canary-rollback';
  by?: string;
  executionArn?: string;
  /** How a canary went: each step's weight, verdict and served share; for a canary-rollback, the failing evidence. */
  canary?: CanaryRecord;
}

/** A canary, compact, for production.json's history and the manifest. */
export interface CanaryRecord {
  /** The version that was the canary (for a canary-rollback, not the one that serves). */
  version: string;
  stableVersion: string;
  steps: Array<{ weight: number; reachablePercent: number; verdict: string; servedShare: number | null }>;
  /** A canary-rollback: why, with both versions' numbers at the failing step. */
  failure?: { weight: number; reasons: string[]; canary: CanaryEvidence['canary']; stable: CanaryEvidence['stable']; failedAt: string | null; rolledBackAt: string | null };
}

/** The canary record of `$.canary`: every finished step, and the failing one when it failed. */
export function canaryRecord(version: string, c: CanaryState): CanaryRecord {
  const steps = c.steps.map((s) => ({ weight: s.weight, reachablePercent: s.reachablePercent, verdict: s.evidence.verdict, servedShare: s.evidence.servedShare }));
  const failed = c.status === 'rollback' || c.status === 'rolledBack';
  if (failed && c.last) steps.push({ weight: c.weight, reachablePercent: c.reachablePercent, verdict: 'fail', servedShare: c.last.servedShare });
  return {
    version,
    stableVersion: c.stableVersion,
    steps,
    ...(failed && c.last
      ? { failure: { weight: c.weight, reasons: c.last.reasons, canary: c.last.canary, stable: c.last.stable, failedAt: c.failedAt ?? null, rolledBackAt: c.rolledBackAt ?? null } }
      : {}),
  };
}

/** evaluation.json: the EvaluationResult plus detail that is too big for the state. */
export interface EvaluationReport extends EvaluationResult {
  modelName: string;
  version: string;
  endpoint: string;
  details: {
    requests: number;
    failedRequests: number;
    batchSize: number;
    /** Which images were sent (evaluation.ts heldOutFingerprint); absent in reports made before it. */
    heldOut?: { sha256: string };
    /** The first few request failures, e.g. `batch 3: HTTP 404`. */
    errors: string[];
    /** Accuracy per class (index = label) over the instances of that label (failed requests count as wrong). */
    perClassAccuracy: number[];
    /** confusion[true][predicted], in full (`$.evaluation` carries it only for few classes). */
    confusion: number[][];
    /**
     * Production's requests in the same evaluation, or why its endpoint could not be measured; `accuracyFrom`:
     * the evaluation.json its accuracy came from (it had measured the same images), when it got only a few batches.
     */
    production?: { requests: number; failedRequests: number; errors: string[]; errorRate: number; accuracyFrom?: string } | { unreachable: string };
  };
}

/** models/<model>/<version>/manifest.json: lineage, decisions and outcome of one run. */
export interface ReleaseManifest {
  schemaVersion: 1;
  modelName: string;
  version: string;
  status: ReleaseStatus;
  recordedAt: string;
  modelUri: string;
  image: { uri: string; digest: string | null };
  servingImage: string;
  data: { uri: string; evalUri: string; dataset: unknown };
  hyperparameters: Record<string, string | number | boolean>;
  execution: { arn: string; name: string; startedAt: string; trigger: { source: string; detail?: Record<string, unknown> } };
  training: TrainingResult | null;
  evaluation: EvaluationResult | null;
  approval: ApprovalDecision | null;
  production: { endpoint: string | null; previousVersion: string | null; switchedAt: string | null; deploymentName: string } | null;
  /**
   * How production took (or refused) the version: canary or switch and why; for a canary, its steps with
   * their evidence (each analysis' verdict and both versions' numbers) and, when it failed, the failure.
   */
  rollout?: {
    strategy: string;
    reason: string;
    steps: CanaryStep[];
    failure: string | null;
    /** The failing analysis: both versions' numbers over the failing step. */
    failedEvidence: CanaryEvidence | null;
    rolledBackAt: string | null;
  } | null;
  /** Failure path: what Cleanup deleted and, for a run that failed after its switch, where traffic went. */
  cleanup: CleanupResult | null;
  error: PipelineError | null;
  /** What the run cost, estimated at list prices when this was written (run-cost.ts); null when its history was unreadable. */
  cost?: RunCost | null;
  /**
   * A retry (`mlpipe retry`) rewrites its version's manifest: the run it continued and the state it resumed
   * at; its `training` (and a passed `evaluation`) are that run's, reused. Absent on a run that is not a retry.
   */
  retryOf?: { executionArn: string; fromState: string };
}

// ---------------------------------------------------------------------------------------------------
// Reads

export async function readProduction(model: string): Promise<ProductionRecord | undefined> {
  return getJson<ProductionRecord>(artifactBucket(), registryKeys.production(model));
}

export async function readManifest(model: string, version: string): Promise<ReleaseManifest | undefined> {
  return getJson<ReleaseManifest>(artifactBucket(), registryKeys.manifest(model, version));
}

export async function readEvaluation(model: string, version: string): Promise<EvaluationReport | undefined> {
  return getJson<EvaluationReport>(artifactBucket(), registryKeys.evaluation(model, version));
}

/**
 * Versions that have anything under models/<model>/, oldest first (versions sort by time by construction:
 * `<yyyymmdd>-<hhmmss>-<hash>`). Lists under the model's prefix: s3rver misses CommonPrefixes at the root.
 */
export async function listVersions(model: string): Promise<string[]> {
  const prefix = registryKeys.modelPrefix(model);
  const versions: string[] = [];
  let token: string | undefined;
  try {
    do {
      const out = await s3Client().send(
        new ListObjectsV2Command({ Bucket: artifactBucket(), Prefix: prefix, Delimiter: '/', ContinuationToken: token }),
      );
      for (const p of out.CommonPrefixes ?? []) {
        const name = p.Prefix?.slice(prefix.length).replace(/\/$/, '');
        if (name) versions.push(name);
      }
      token = out.IsTruncated ? out.NextContinuationToken : undefined;
    } while (token);
  } catch (err) {
    throw new S3UnavailableError(`Listing s3://${artifactBucket()}/${prefix} failed: ${(err as Error).message}`);
  }
  return versions.sort();
}

/** The records mlpipe writes next to a version's model files; anything else there is the model. */
const RECORD_FILES = new Set(['metrics.json', 'evaluation.json', 'manifest.json']);

/** Whether models/<model>/<version>/ holds model files (not only mlpipe's records about them). */
export async function hasModelFiles(model: string, version: string): Promise<boolean> {
  const prefix = registryKeys.versionPrefix(model, version);
  let token: string | undefined;
  try {
    do {
      const out = await s3Client().send(new ListObjectsV2Command({ Bucket: artifactBucket(), Prefix: prefix, ContinuationToken: token }));
      if ((out.Contents ?? []).some((o) => o.Key && !RECORD_FILES.has(o.Key.slice(prefix.length)))) return true;
      token = out.IsTruncated ? out.NextContinuationToken : undefined;
    } while (token);
  } catch (err) {
    throw new S3UnavailableError(`Listing s3://${artifactBucket()}/${prefix} failed: ${(err as Error).message}`);
  }
  return false;
}

/** Production's numbers, shown next to a candidate's on the approval email and page. */
export interface ProductionComparison {
  version: string;
  accuracy: number | null;
  latencyMsP95: number | null;
  errorRate: number | null;
  endpoint: string | null;
}

/** What serves production now and how it measured; null if nothing does (or it is `exceptVersion`). */
export async function productionComparison(model: string, exceptVersion?: string): Promise<ProductionComparison | null> {
  const current = await readProduction(model);
  if (!current || current.version === exceptVersion) return null;
  const evaluation = await readEvaluation(model, current.version);
  return {
    version: current.version,
    accuracy: evaluation?.accuracy ?? null,
    latencyMsP95: evaluation?.latencyMsP95 ?? null,
    errorRate: evaluation?.errorRate ?? null,
    endpoint: current.endpoint,
  };
}

// ---------------------------------------------------------------------------------------------------
// Writes

export async function writeEvaluation(report: EvaluationReport): Promise<string> {
  const key = registryKeys.evaluation(report.modelName, report.version);
  await putJson(artifactBucket(), key, report);
  return s3Uri(key);
}

export async function writeManifest(manifest: ReleaseManifest): Promise<string> {
  const key = registryKeys.manifest(manifest.modelName, manifest.version);
  await putJson(artifactBucket(), key, manifest);
  return s3Uri(key);
}

/** How a production.json update retries when another writer got there first. */
export interface ConditionalUpdateRetry {
  /** Read-modify-write attempts in all, the first included. */
  attempts: number;
  /** Backoff before retry n is a random delay in [0, min(maxDelayMs, baseDelayMs * 2^(n-1))) ("full jitter"). */
  baseDelayMs: number;
  maxDelayMs: number;
  /** Injected by tests; default: a timer and Math.random. */
  sleep?: (ms: number) => Promise<void>;
  random?: () => number;
}

/**
 * Enough for a release and a few rollbacks racing on one model (each round one writer wins) while staying
 * well inside RecordRelease's and Rollback's Lambda timeouts: at most 3.55 s of backoff in all (1.8 s expected).
 */
export const PRODUCTION_UPDATE_RETRY: ConditionalUpdateRetry = { attempts: 8, baseDelayMs: 50, maxDelayMs: 1000 };

const timer = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * production.json is read, changed and written back by RecordRelease, Rollback and the local restore,
 * which can run at the same time (a rollback while a release records). A plain put would let the later
 * writer drop the other's history entry, so each write names the version it read: `If-Match: <ETag>`, or
 * `If-None-Match: *` when creating. When S3 refuses (412/409: someone wrote in between) the whole
 * read-modify-write runs again on the fresh record, after a jittered backoff, a bounded number of times.
 * `change` returns the new record, or undefined to leave the current one as it is. (Conditional puts need
 * no IAM beyond s3:PutObject; the s3:if-match condition keys only matter to policies that require them.)
 */
async function updateProduction(
  model: string,
  change: (current: ProductionRecord | undefined) => ProductionRecord | undefined,
  retry: ConditionalUpdateRetry,
): Promise<ProductionRecord | undefined> {
  const bucket = artifactBucket();
  const key = registryKeys.production(model);
  const sleep = retry.sleep ?? timer;
  const random = retry.random ?? Math.random;
  for (let attempt = 1; ; attempt++) {
    const current = await getJsonVersioned<ProductionRecord>(bucket, key);
    const next = change(current?.value);
    if (next === undefined) return current?.value;
    if (await putJsonIf(bucket, key, next, current ? { ifMatch: current.etag } : { ifNoneMatch: '*' })) return next;
    if (attempt >= retry.attempts) {
      throw new RegistryConflictError(
        `${s3Uri(key, bucket)} kept changing while it was being updated: ${attempt} conditional writes in a row lost to other ` +
          'writers (S3 412/409). Nothing was written by this update; run it again.',
      );
    }
    await sleep(Math.floor(random() * Math.min(retry.maxDelayMs, retry.baseDelayMs * 2 ** (attempt - 1))));
  }
}

/**
 * Points production.json at a newly released version and appends to its history. A retried RecordRelease
 * (same version, same execution) whose entry is already in the history leaves the record as it is: it
 * neither appends twice nor points production back at its version after a rollback recorded since.
 */
export async function recordProductionRelease(
  opts: {
    modelName: string;
    version: string;
    previousVersion: string | null;
    endpoint: string | null;
    switchedAt: string;
    by?: string;
    executionArn: string;
    /** The release went through a canary: its steps, for the history. */
    canary?: CanaryRecord;
  },
  retry = PRODUCTION_UPDATE_RETRY,
): Promise<ProductionRecord> {
  const entry: ProductionHistoryEntry = { version: opts.version, at: opts.switchedAt, action: 'release', executionArn: opts.executionArn };
  if (opts.by) entry.by = opts.by;
  if (opts.canary) entry.canary = opts.canary;
  const record = await updateProduction(
    opts.modelName,
    (current) => {
      const recorded = current?.history.some((h) => h.action === 'release' && h.version === opts.version && h.executionArn === opts.executionArn);
      if (current && recorded) return undefined;
      return {
        modelName: opts.modelName,
        version: opts.version,
        // The Service selector is the truth about what served before; production.json is the fallback.
        previousVersion: opts.previousVersion ?? (current && current.version !== opts.version ? current.version : null),
        endpoint: opts.endpoint ?? current?.endpoint ?? null,
        switchedAt: opts.switchedAt,
        history: [...(current?.history ?? []), entry],
      };
    },
    retry,
  );
  // updateProduction returns a record whenever `change` made one or one existed.
  return record!;
}

/**
 * Records a canary that failed and was rolled back: production.json keeps its version (the stable one
 * never stopped serving) and its history gets a `canary-rollback` entry with the evidence. A retried
 * RecordFailure of the same execution appends nothing more; without a production.json (nothing was ever
 * released, which a canary needs) there is nothing to append to.
 */
export async function recordCanaryRollback(
  opts: { modelName: string; at: string; executionArn: string; canary: CanaryRecord },
  retry = PRODUCTION_UPDATE_RETRY,
): Promise<ProductionRecord | undefined> {
  return updateProduction(
    opts.modelName,
    (current) => {
      if (!current || current.history.some((h) => h.action === 'canary-rollback' && h.executionArn === opts.executionArn)) return undefined;
      const entry: ProductionHistoryEntry = { version: opts.canary.stableVersion, at: opts.at, action: 'canary-rollback', executionArn: opts.executionArn, canary: opts.canary };
      return { ...current, history: [...current.history, entry] };
    },
    retry,
  );
}

/**
 * Points production.json at the endpoint production answers on now, without a history entry: the same
 * version serves, from a new address (a local cluster restored at startup gets a new port).
 */
export async function recordProductionEndpoint(model: string, endpoint: string, retry = PRODUCTION_UPDATE_RETRY): Promise<ProductionRecord | undefined> {
  return updateProduction(model, (current) => (!current || current.endpoint === endpoint ? undefined : { ...current, endpoint }), retry);
}

/**
 * Records that production was switched back to `toVersion`. functions/rollback.ts calls it after it has
 * switched the Service (and checked the target can serve), so this records what happened rather than
 * judging it; it only needs a production.json to append to.
 */
export async function recordRollback(
  opts: { modelName: string; toVersion: string; by: string; at?: string },
  retry = PRODUCTION_UPDATE_RETRY,
): Promise<ProductionRecord> {
  const at = opts.at ?? new Date().toISOString();
  const record = await updateProduction(
    opts.modelName,
    (current) => {
      if (!current) {
        throw new RollbackError(`Model ${opts.modelName} has no production.json: nothing was ever released, so there is nothing to roll back.`);
      }
      return {
        ...current,
        version: opts.toVersion,
        previousVersion: current.version,
        switchedAt: at,
        history: [...current.history, { version: opts.toVersion, at, action: 'rollback', by: opts.by }],
      };
    },
    retry,
  );
  return record!;
}
