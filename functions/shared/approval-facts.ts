/**
 * What an approver weighs beyond the gate's verdict, derived once for the approval page (HTML) and the
 * approval email (plain text): the run's facts (trigger, image digest, data and its digest,
 * hyperparameters, training time), each class's accuracy against production's, and the latency of both
 * as measured side by side. Plain values only: the renderers escape and lay them out.
 */
import { dataLineage, type DataLineage } from './dataset';
import { formatDuration } from './progress';
import type { EvaluationResult, RunContext, TrainingResult } from './types';

/** The approval record's facts about the run (approvals.ts ApprovalRecord.facts). Compact. */
export interface RunFacts {
  imageDigest: string | null;
  trigger: RunContext['trigger'];
  data: DataLineage;
  hyperparameters: RunContext['hyperparameters'];
  /** Submission to completion of the training Job; absent when not known (a state without `$.training`). */
  trainingSeconds?: number;
  /** A retry reuses the training of the run it continues. */
  retryOf?: string;
}

export async function runFacts(
  run: Pick<RunContext, 'imageDigest' | 'trigger' | 'dataUri' | 'evalDataUri' | 'hyperparameters'> & { retry?: { of: string } | undefined },
  training: Pick<TrainingResult, 'submittedAt' | 'completedAt'> | undefined,
): Promise<RunFacts> {
  const ms = Date.parse(training?.completedAt ?? '') - Date.parse(training?.submittedAt ?? '');
  const seconds = Number.isFinite(ms) && ms >= 0 ? ms / 1000 : undefined;
  return {
    imageDigest: run.imageDigest,
    trigger: run.trigger,
    data: await dataLineage(run.dataUri, run.evalDataUri),
    hyperparameters: run.hyperparameters,
    ...(seconds !== undefined ? { trainingSeconds: Math.round(seconds) } : {}),
    ...(run.retry ? { retryOf: run.retry.of } : {}),
  };
}

const text = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);

/**
 * What started the run and who asked, in words: `trigger.source` with the detail each starter records
 * (functions/shared/starter.ts, cli/commands/run.ts, retry-start.ts, local/pipeline.ts).
 */
export function describeTrigger(trigger: RunContext['trigger']): string {
  const d = trigger.detail ?? {};
  const by = text(d.by) ? `, by ${text(d.by)}` : '';
  switch (trigger.source) {
    case 'ecr-push':
      return `push of ${text(d.repositoryName) ?? 'an image'}${text(d.imageTag) ? `:${text(d.imageTag)}` : ''} to ECR`;
    case 's3-data':
      return `new data: s3://${text(d.bucket) ?? '?'}/${text(d.key) ?? ''}`;
    case 'schedule':
      return `schedule${text(d.scheduledTime) ? ` (${text(d.scheduledTime)})` : ''}`;
    case 'cli':
      return `mlpipe run${by}`;
    case 'retry':
      return `mlpipe retry${text(d.run) ? ` of run ${text(d.run)}` : ''}${by}`;
    case 'local':
      return `npm start (the local run)${by}`;
    default: {
      const detail = Object.entries(d).filter(([, v]) => typeof v === 'string' || typeof v === 'number').map(([k, v]) => `${k}=${String(v)}`).join(', ');
      return `${trigger.source}${detail ? ` (${detail.slice(0, 200)})` : ''}`;
    }
  }
}

export function trainingTime(facts: RunFacts): string {
  if (facts.trainingSeconds === undefined) return 'not known';
  const reused = facts.retryOf ? ` (trained by run ${facts.retryOf.split(':').pop()}, reused by this retry)` : '';
  return `${formatDuration(facts.trainingSeconds)}${reused}`;
}

/** `epochs=5, learningRate=0.001`, in the order given. */
export function hyperparameterList(h: RunFacts['hyperparameters']): string {
  const entries = Object.entries(h);
  return entries.length ? entries.map(([k, v]) => `${k}=${typeof v === 'string' ? JSON.stringify(v) : String(v)}`).join(', ') : 'none (the trainer\'s defaults)';
}

/** The name of class `label`: from the held-out data's dataset.json, else the label number itself. */
export function className(evaluation: Pick<EvaluationResult, 'classes'>, label: number): string {
  return evaluation.classes?.[label] ?? String(label);
}

export interface ClassRow {
  label: number;
  name: string;
  accuracy: number;
  /** Production's accuracy on this class, measured in the same evaluation. */
  production?: number;
  /** Candidate minus production. */
  change?: number;
  /** Lower than production's on the same images. */
  worse: boolean;
  /** Below the gate's overall minimum accuracy: a weak class even if no worse than before. */
  belowMinimum: boolean;
}

/** Candidate minus production on one class, to four decimals as stored: a difference below that is no difference. */
export function accuracyChange(accuracy: number, production: number): number {
  return Math.round((accuracy - production) * 10_000) / 10_000;
}

/** Each class's accuracy against production's; empty for states made before per-class accuracy. */
export function classRows(e: EvaluationResult): ClassRow[] {
  const theirs = e.production?.perClassAccuracy;
  return (e.perClassAccuracy ?? []).map((accuracy, label) => {
    const production = theirs?.[label];
    const change = production === undefined ? undefined : accuracyChange(accuracy, production);
    return {
      label,
      name: className(e, label),
      accuracy,
      ...(production !== undefined ? { production, change } : {}),
      worse: change !== undefined && change < 0,
      belowMinimum: accuracy < e.thresholds.minAccuracy,
    };
  });
}

/** Production's column on the page and in the email. */
export interface ChampionColumn {
  version: string;
  accuracy?: number;
  errorRate?: number;
  /** p50 and p95 measured interleaved with the candidate's in this evaluation; absent otherwise. */
  latency?: { p50: number; p95: number };
}

/**
 * What served production when the candidate was evaluated, as `$.evaluation.production` has it. Latency
 * only when measured in the same evaluation: production's numbers from its own release, measured at
 * another time on a differently loaded machine, differ from the candidate's by noise. `recorded` (what
 * serves now, with its own evaluation's accuracy) stands in for states made before, or when the
 * evaluation could not compare.
 */
export function championColumn(e: EvaluationResult, recorded: { version: string; accuracy: number | null } | null): ChampionColumn | null {
  const p = e.production;
  if (p) {
    return {
      version: p.version,
      accuracy: p.accuracy,
      ...(p.errorRate !== undefined ? { errorRate: p.errorRate } : {}),
      ...(p.latencyMsP50 !== undefined && p.latencyMsP95 !== undefined ? { latency: { p50: p.latencyMsP50, p95: p.latencyMsP95 } } : {}),
    };
  }
  if (!recorded) return null;
  return { version: recorded.version, ...(recorded.accuracy !== null ? { accuracy: recorded.accuracy } : {}) };
}
