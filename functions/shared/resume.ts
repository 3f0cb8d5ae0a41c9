/**
 * Resuming a failed run (`mlpipe retry <run>`) without redoing what succeeded. Step Functions redrive
 * cannot do it here: every Task's Catch leads to Cleanup → RecordFailure → NotifyFailure → PipelineFailed,
 * so the "unsuccessful step" a redrive restarts at is the Fail state at the end (and Cleanup has already
 * deleted the staging objects). Instead a retry is a new execution of the same state machine whose input
 * names the failed run (`retryOf`); Prepare loads that run's record (its manifest.json, written by
 * RecordFailure), keeps its version, model and names, and the ResumeRun Choice after Prepare jumps to
 * the first step that has to run again. One rule, here, decides where that is: the CLI (to refuse early,
 * with a clear message), Prepare (which decides) and the failure email (to offer the command) all use it.
 */
import { NotResumableError } from './errors';
import { hasModelFiles, listVersions, readManifest, type ReleaseManifest, type ReleaseStatus } from './registry';
import type { RESUME_POINTS } from './state';
import type { EvaluationResult, RunRequest, TrainingResult } from './types';

export type ResumePoint = (typeof RESUME_POINTS)[number];

/** What a failed run left that a retry may reuse: the manifest's fields, or the failure path's state. */
export interface FailedRunRecord {
  status: ReleaseStatus;
  training: TrainingResult | null;
  evaluation: EvaluationResult | null;
}

export interface ResumePlan {
  /** The first state the retry runs after Prepare. */
  from: ResumePoint;
  /** The trained model's result, reused: no training Job runs again. */
  training: TrainingResult;
  /** A passed evaluation, reused (then the retry goes straight to approval); null: staging and evaluation run again. */
  evaluation: EvaluationResult | null;
}

/**
 * Where a failed run continues, or NotResumableError saying why it cannot. The trained model is always
 * reused (a run that never trained has nothing to resume: a new run is the same thing); a passed
 * evaluation is reused too, so the retry asks for approval again (a decision is never replayed: the run
 * may have failed after it, and whoever retries is not whoever approved). A failed or errored evaluation
 * runs again on a fresh staging server (Cleanup deleted the old one), with the gate's current thresholds.
 */
export function resumePlan(record: FailedRunRecord, run: string): ResumePlan {
  if (record.status === 'released') throw new NotResumableError(`Run ${run} was released: there is nothing to retry.`);
  if (record.status === 'rejected') {
    throw new NotResumableError(`Run ${run} was rejected by a reviewer: a rejection is a decision, not a failure, so it is not retried. Start a new run with \`mlpipe run <image>\`.`);
  }
  const training = record.training;
  if (!training || training.status !== 'succeeded') {
    throw new NotResumableError(`Run ${run} failed before its model was trained: there is nothing to resume. Start a new run with \`mlpipe run <image>\`.`);
  }
  if (record.evaluation?.passed === true) return { from: 'RequestApproval', training, evaluation: record.evaluation };
  return { from: 'DeployStaging', training, evaluation: null };
}

/** One line for the failure email and the CLI: what a retry would skip and redo. */
export function describePlan(plan: ResumePlan): string {
  return plan.from === 'RequestApproval'
    ? 'reuses the trained model and its passed evaluation, and asks for approval again'
    : 'reuses the trained model; staging and the evaluation run again';
}

/** `retryOf` in a run request: the failed run, and where its record is. */
export type RetryOf = NonNullable<RunRequest['retryOf']>;

const runName = (executionArn: string) => executionArn.split(':').pop() ?? executionArn;

/**
 * The failed run's record and the plan to resume it, checked against what a retry relies on: the record
 * is that run's (a retry rewrites the version's manifest, so a run already retried is refused: retry the
 * newest one), the model files are still in S3, and the request trains nothing different.
 */
export async function loadResume(retryOf: RetryOf, image: string): Promise<{ manifest: ReleaseManifest; plan: ResumePlan }> {
  const run = runName(retryOf.executionArn);
  const manifest = await readManifest(retryOf.modelName, retryOf.version);
  if (!manifest) {
    throw new NotResumableError(`Run ${run} left no record (models/${retryOf.modelName}/${retryOf.version}/manifest.json): it cannot be resumed. Start a new run.`);
  }
  if (manifest.execution.arn !== retryOf.executionArn) {
    throw new NotResumableError(
      `Run ${run} is not the latest run of ${retryOf.modelName} ${retryOf.version}: ${runName(manifest.execution.arn)} (${manifest.status}) ran it since. ` +
        `Retry that one instead.`,
    );
  }
  const plan = resumePlan(manifest, run);
  if (manifest.image.uri !== image) {
    throw new NotResumableError(`retryOf: run ${run} trained image ${manifest.image.uri}, but this request names ${image}; a retry reuses that model, so it must name the same image.`);
  }
  if (!(await hasModelFiles(retryOf.modelName, retryOf.version))) {
    throw new NotResumableError(`Run ${run}'s model files are gone from ${manifest.modelUri}: there is no trained model to reuse. Start a new run.`);
  }
  return { manifest, plan };
}

/**
 * The execution name of a retry: `<run>-retry1`, then `<run>-retry2` for a retry of that, within the
 * 80 characters StartExecution allows. Deterministic, so running `mlpipe retry` twice while the retry
 * runs starts nothing new (same name and input: StartExecution returns the running one), and retrying a
 * run that was already retried is refused by name (ExecutionAlreadyExists).
 */
export function retryRunName(run: string): string {
  const m = /^(.*)-retry(\d+)$/.exec(run);
  const base = m ? m[1]! : run;
  const suffix = `-retry${m ? Number(m[2]) + 1 : 1}`;
  return `${base.slice(0, 80 - suffix.length)}${suffix}`;
}

/** How many of a model's newest versions findRunRecord reads before giving up. */
const RECORD_SEARCH_LIMIT = 200;

/**
 * The record (manifest.json) of a run's version, found by the run's execution name among the model's newest
 * versions, with the run's execution ARN: for when the execution's history is gone (a local engine
 * restarted), while the S3 registry is kept.
 */
export async function findRunRecord(modelName: string, run: string): Promise<{ manifest: ReleaseManifest; executionArn: string } | undefined> {
  const versions = (await listVersions(modelName)).reverse().slice(0, RECORD_SEARCH_LIMIT);
  for (const version of versions) {
    const manifest = await readManifest(modelName, version);
    if (manifest?.execution.name === run) return { manifest, executionArn: manifest.execution.arn };
    // A run already retried: its version's record is now the retry's (loadResume then says so).
    if (manifest?.retryOf && runName(manifest.retryOf.executionArn) === run) return { manifest, executionArn: manifest.retryOf.executionArn };
  }
  return undefined;
}

/** The request that retries a failed run, from its record alone: what trained its model, and `retryOf`. */
export function retryRequestFrom(manifest: ReleaseManifest, by: string): Record<string, unknown> {
  return {
    image: manifest.image.uri,
    modelName: manifest.modelName,
    dataUri: manifest.data.uri,
    evalDataUri: manifest.data.evalUri,
    hyperparameters: manifest.hyperparameters,
    servingImage: manifest.servingImage,
    retryOf: { executionArn: manifest.execution.arn, modelName: manifest.modelName, version: manifest.version },
    trigger: { source: 'retry', detail: { by, run: manifest.execution.name } },
  };
}
