/**
 * The pipeline's own CloudWatch metrics (namespace mlpipe/Pipeline, dimension StateMachine), written as
 * embedded metric format (EMF) lines: CloudWatch Logs turns them into metrics, with no PutMetricData call
 * and no extra permission. Notify says how each run ended — and whether that was an UNEXPECTED failure,
 * the one kind the failure alarm is for (a rejection, an expired approval, a failed evaluation gate or
 * canary analysis is the pipeline doing its job). RecordRelease/RecordFailure say what the run cost and how
 * long it waited for approval. The names are defined here once: lib/constructs/monitoring.ts builds its
 * alarms and dashboard from them; emf.ts writes them.
 */
import type { ReleaseStatus } from './registry';

export const PIPELINE_NAMESPACE = 'mlpipe/Pipeline';

export const PIPELINE_METRICS = {
  /** 1 for a run that failed for a reason nobody chose (outcome `failed`), else 0. Dimension StateMachine. */
  unexpectedFailures: 'UnexpectedFailures',
  /** 1 for every run whose failure was notified, deliberate or not. Dimension StateMachine. */
  failuresNotified: 'FailuresNotified',
  /** 1 per run that ended, by how. Dimensions StateMachine, Outcome (a ReleaseStatus). */
  runsEnded: 'RunsEnded',
  /** The run's estimated cost in USD (run-cost.ts). Dimension StateMachine. */
  runCost: 'RunCostUSD',
  /** Seconds the run waited for an approver (RequestApproval entered to left). Dimension StateMachine. */
  approvalWait: 'ApprovalWaitSeconds',
  /** Seconds the training pod ran, as the cost estimate counts them. Dimension StateMachine. */
  trainingTime: 'TrainingSeconds',
} as const;

/** Outcomes the pipeline reaches on purpose: people or its gates decided, nothing broke. */
export const DELIBERATE_OUTCOMES: ReadonlySet<ReleaseStatus> = new Set<ReleaseStatus>(['gate-failed', 'rejected', 'approval-timeout', 'canary-rolled-back']);

/** A run that did not release for a reason nobody chose: what the failure alarm counts. */
export function isUnexpectedFailure(status: ReleaseStatus): boolean {
  return status !== 'released' && !DELIBERATE_OUTCOMES.has(status);
}

/** The state machine's name, from an execution ARN (`arn:aws:states:<region>:<account>:execution:<machine>:<run>`). */
export function stateMachineNameOf(executionArn: string): string | undefined {
  const parts = executionArn.split(':');
  return parts[5] === 'execution' && parts[6] ? parts[6] : undefined;
}
