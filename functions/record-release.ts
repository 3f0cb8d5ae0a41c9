/**
 * RecordRelease and RecordFailure: writes models/<model>/<version>/manifest.json — the lineage of the run
 * (image, data, hyperparameters, execution), its measurements and decisions, and how it ended — and, on a
 * release, points models/<model>/production.json at the new version. Runs after Cleanup on failure, so it
 * must cope with any partial state, including none at all when Prepare failed. It also estimates what the
 * run cost (run-cost.ts, from the execution history) for the manifest and `$.release.cost`, where the
 * emails and `mlpipe status` read it, and puts the cost and the approval wait in the pipeline's metrics.
 */
import { paginateGetExecutionHistory, type HistoryEvent } from '@aws-sdk/client-sfn';
import * as z from 'zod';
import { expireApproval, getApproval } from './shared/approvals';
import { approvalId } from './shared/approval-link';
import { getJson, parseS3Uri, sfnClient } from './shared/clients';
import { InvalidInputError } from './shared/errors';
import { errorFields, logger, stateByPath, withLogContext } from './shared/logger';
import { outcomeOf } from './shared/outcome';
import { emfDocument, writeEmf, type MetricValue } from './shared/emf';
import { PIPELINE_METRICS, PIPELINE_NAMESPACE, stateMachineNameOf } from './shared/pipeline-metrics';
import { estimateRunCost, secondsInState, trainingSeconds, type RunCost } from './shared/run-cost';
import { canaryRecord, recordCanaryRollback, recordProductionRelease, writeManifest, type ReleaseManifest, type ReleaseStatus } from './shared/registry';
import { FUNCTION_SETTINGS } from './shared/function-settings';
import { loadSettings } from './shared/settings';
import { parseInput } from './shared/state';
import type { ApprovalDecision, PipelineState, RunContext } from './shared/types';

/** Read and validated once, at init: a bad value fails the Lambda's init naming the variable. */
const settings = loadSettings(FUNCTION_SETTINGS.RecordRelease); // the registry reads ARTIFACT_BUCKET from them

export interface RecordResult {
  status: ReleaseStatus;
  manifestUri: string;
  recordedAt: string;
  /** The run's cost estimate; absent when its history could not be read. */
  cost?: RunCost;
}

const Run = z.object({
  modelName: z.string().min(1),
  version: z.string().min(1),
  image: z.string(),
  imageDigest: z.string().nullable(),
  servingImage: z.string(),
  dataUri: z.string(),
  evalDataUri: z.string(),
  hyperparameters: z.record(z.string(), z.union([z.string(), z.number(), z.boolean()])),
  modelUri: z.string(),
  executionArn: z.string().min(1),
  executionName: z.string(),
  startedAt: z.string(),
  trigger: z.object({ source: z.string(), detail: z.record(z.string(), z.unknown()).optional() }),
  retry: z.object({ of: z.string(), from: z.string() }).optional(),
});

/** dataset.json (sha256 per file) next to the training data, if the data was staged with one. */
async function datasetManifest(dataUri: string): Promise<unknown> {
  try {
    const { bucket, key } = parseS3Uri(dataUri, 'run.dataUri');
    return (await getJson<unknown>(bucket, `${key.endsWith('/') || key === '' ? key : `${key}/`}dataset.json`)) ?? null;
  } catch {
    return null; // lineage is best effort for the dataset description; the URI itself is always recorded
  }
}

/**
 * The approval record knows what the state may not carry: a timeout (then the request is marked expired so
 * its links say so) or a decision that failed the execution some other way. Best effort: the manifest
 * matters more than this detail (torn reads are already retried in approvals.ts; what is left is S3 or the
 * record itself failing).
 */
async function approvalFromStore(executionArn: string, status: ReleaseStatus): Promise<ApprovalDecision | null> {
  const id = approvalId(executionArn);
  try {
    const record = status === 'approval-timeout' ? await expireApproval(id) : await getApproval(id);
    return record?.decision ?? null;
  } catch (err) {
    logger.warn('approval record unreadable; manifest written without it', { approvalId: id, error: errorFields(err) });
    return null;
  }
}

/** The run's history without inputs and outputs (only types, times and state names are needed). */
async function executionHistory(executionArn: string): Promise<HistoryEvent[]> {
  const events: HistoryEvent[] = [];
  for await (const page of paginateGetExecutionHistory({ client: sfnClient() }, { executionArn, maxResults: 1000, includeExecutionData: false })) {
    events.push(...(page.events ?? []));
  }
  return events;
}

/** What the run cost so far, and the metrics to publish once the record is written. */
interface RunCostResult {
  cost: RunCost;
  /** The EMF document (cost, training time, approval wait), or undefined when the ARN names no state machine. */
  metrics?: Record<string, unknown>;
}

/**
 * What the run cost so far and how long it waited for approval. Best effort: the manifest matters more
 * than its cost (the history may be unreadable: throttled, or a permission missing). The metrics are only
 * returned, not written: RecordRelease and RecordFailure retry, so writing them before the record is
 * stored would publish one run's cost once per attempt.
 */
async function runCost(run: RunContext, training: PipelineState['training'], now: Date): Promise<RunCostResult | undefined> {
  let events: HistoryEvent[];
  try {
    events = await executionHistory(run.executionArn);
  } catch (err) {
    logger.warn('execution history unreadable; no cost estimate', { error: errorFields(err) });
    return undefined;
  }
  const trainingReused = run.retry !== undefined; // a retry continues after the training of the run it retries
  const cost = estimateRunCost({ events, memory: settings.TASK_MEMORY_MB, training, trainingReused, region: settings.AWS_REGION, now });
  const machine = stateMachineNameOf(run.executionArn);
  if (!machine) return { cost };
  const metrics: MetricValue[] = [
    { name: PIPELINE_METRICS.runCost, unit: 'None', value: cost.usd },
    { name: PIPELINE_METRICS.trainingTime, unit: 'Seconds', value: trainingSeconds(training, events, now, trainingReused) },
  ];
  const approvalWait = secondsInState(events, 'RequestApproval', now);
  if (approvalWait !== undefined) metrics.push({ name: PIPELINE_METRICS.approvalWait, unit: 'Seconds', value: approvalWait });
  return { cost, metrics: emfDocument(PIPELINE_NAMESPACE, { StateMachine: machine }, [{ dimensionSet: ['StateMachine'], metrics }], now) };
}

async function recordRelease(event: unknown): Promise<RecordResult> {
  const state = (event ?? {}) as Partial<PipelineState>;
  const recordedAt = new Date().toISOString();
  const outcome = outcomeOf(state);
  if (state.run === undefined) {
    // Prepare failed: there is no model or version to record under.
    logger.info('nothing to record: the run never started', { errorName: outcome.error?.Error });
    return { status: 'failed', manifestUri: '', recordedAt };
  }
  const run = parseInput(z.object({ run: Run }), state, 'RecordRelease input').run as RunContext & z.infer<typeof Run>;
  const released = outcome.status === 'released';
  if (released && !state.production?.endpoint) {
    throw new InvalidInputError('RecordRelease input is invalid: production.endpoint is missing, so nothing was released.');
  }

  const approval = state.approval ?? outcome.rejection ?? (await approvalFromStore(run.executionArn, outcome.status));
  const costed = await runCost(run, state.training, new Date(recordedAt));
  const cost = costed?.cost;

  const manifest: ReleaseManifest = {
    schemaVersion: 1,
    modelName: run.modelName,
    version: run.version,
    status: outcome.status,
    recordedAt,
    modelUri: run.modelUri,
    image: { uri: run.image, digest: run.imageDigest },
    servingImage: run.servingImage,
    data: { uri: run.dataUri, evalUri: run.evalDataUri, dataset: await datasetManifest(run.dataUri) },
    hyperparameters: run.hyperparameters,
    execution: { arn: run.executionArn, name: run.executionName, startedAt: run.startedAt, trigger: run.trigger },
    training: state.training ?? null,
    evaluation: state.evaluation ?? null,
    approval,
    production: state.production
      ? {
          endpoint: state.production.endpoint ?? null,
          previousVersion: state.production.previousVersion ?? null,
          switchedAt: state.production.switchedAt ?? null,
          deploymentName: state.production.deploymentName,
        }
      : null,
    rollout: state.production?.rollout
      ? {
          strategy: state.production.rollout.strategy,
          reason: state.production.rollout.reason,
          steps: state.canary?.steps ?? [],
          failure: state.canary?.failure ?? null,
          failedEvidence: state.canary?.failure ? (state.canary.last ?? null) : null,
          rolledBackAt: state.canary?.rolledBackAt ?? null,
        }
      : null,
    // RecordRelease runs before CleanupStaging: only RecordFailure sees a cleanup result.
    cleanup: state.cleanup ?? null,
    error: outcome.error,
    cost: cost ?? null,
    ...(run.retry ? { retryOf: { executionArn: run.retry.of, fromState: run.retry.from } } : {}),
  };
  const manifestUri = await writeManifest(manifest);

  if (released) {
    await recordProductionRelease({
      modelName: run.modelName,
      version: run.version,
      previousVersion: state.production?.previousVersion ?? null,
      endpoint: state.production?.endpoint ?? null,
      switchedAt: state.production?.switchedAt ?? recordedAt,
      ...(approval?.by ? { by: approval.by } : {}),
      executionArn: run.executionArn,
      ...(state.canary ? { canary: canaryRecord(run.version, state.canary) } : {}),
    });
  } else if (outcome.status === 'canary-rolled-back' && state.canary) {
    // Production never left the stable version; its history still says a canary was tried, and why it failed.
    await recordCanaryRollback({ modelName: run.modelName, at: state.canary.rolledBackAt ?? recordedAt, executionArn: run.executionArn, canary: canaryRecord(run.version, state.canary) });
  }
  // Only now, with everything stored: an attempt that failed above published nothing, so a retried run counts once.
  if (costed?.metrics) writeEmf(costed.metrics);
  logger.info('recorded', { status: outcome.status, manifestUri, productionUpdated: released, costUsd: cost?.usd });
  return { status: outcome.status, manifestUri, recordedAt, ...(cost ? { cost } : {}) };
}

export const handler = withLogContext(stateByPath('RecordRelease', 'RecordFailure'), recordRelease);
