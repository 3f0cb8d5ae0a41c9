/**
 * How a run ended, read from the state: `$.error` (put there by a Catch or by the gate/approval Pass
 * states) decides the status that RecordRelease writes and Notify reports. Causes come in three shapes:
 * a Lambda error (JSON with errorType/errorMessage/trace), an ApprovalDecision (JSON, from SendTaskFailure),
 * or plain text (Pass states, local mode).
 */
import type { ReleaseStatus } from './registry';
import type { ApprovalDecision, PipelineError, PipelineState } from './types';

export interface Outcome {
  status: ReleaseStatus;
  error: PipelineError | null;
  /** The human part of the cause: a Lambda error's message (with any log tail), or the text itself. */
  reason: string | null;
  /** The rejecting decision, when the cause carries one. */
  rejection: ApprovalDecision | null;
}

const STATUS_BY_ERROR: Record<string, ReleaseStatus> = {
  EvaluationGateFailed: 'gate-failed',
  ApprovalRejected: 'rejected',
  ApprovalTimedOut: 'approval-timeout',
  CanaryAnalysisFailed: 'canary-rolled-back',
};

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

export function asDecision(value: unknown): ApprovalDecision | null {
  const d = value as Partial<ApprovalDecision> | undefined;
  if (!d || typeof d !== 'object' || (d.decision !== 'approve' && d.decision !== 'reject')) return null;
  if (typeof d.by !== 'string' || typeof d.at !== 'string' || typeof d.from !== 'string') return null;
  return { decision: d.decision, by: d.by, at: d.at, from: d.from, ...(typeof d.comment === 'string' ? { comment: d.comment } : {}) };
}

/** The readable text of a cause: Lambda's errorMessage (without the stack trace), else the cause as is. */
export function describeCause(cause: string | undefined): string | null {
  if (cause === undefined || cause === '') return null;
  const parsed = parseJson(cause) as { errorMessage?: unknown; errorType?: unknown } | undefined;
  if (parsed && typeof parsed === 'object' && typeof parsed.errorMessage === 'string') return parsed.errorMessage;
  const decision = asDecision(parsed);
  if (decision) {
    return `${decision.decision === 'approve' ? 'Approved' : 'Rejected'} by ${decision.by} at ${decision.at} from ${decision.from}${
      decision.comment ? `: "${decision.comment}"` : ''
    }.`;
  }
  return cause;
}

export function outcomeOf(state: Pick<PipelineState, 'error' | 'approval'>): Outcome {
  const error = state.error && typeof state.error.Error === 'string' ? { Error: state.error.Error, Cause: String(state.error.Cause ?? '') } : null;
  if (!error) return { status: 'released', error: null, reason: null, rejection: null };
  const status = STATUS_BY_ERROR[error.Error] ?? 'failed';
  let rejection: ApprovalDecision | null = null;
  if (status === 'rejected') {
    // SendTaskFailure carries the decision in Cause; a reject via SendTaskSuccess leaves it in $.approval.
    rejection = asDecision(parseJson(error.Cause)) ?? (state.approval?.decision === 'reject' ? state.approval : null);
  }
  return { status, error, reason: describeCause(error.Cause), rejection };
}
