/**
 * NotifySuccess and NotifyFailure: one SNS message saying how the run ended. Success: what serves now, how
 * it measured and who approved it. Failure: why (the error and its cause, keeping the end of a failed
 * pod's log), what was cleaned up, and, when the run can be resumed, how: the `mlpipe retry` command and
 * a signed retry link (retry-link.ts, signed with the approval links' key; the link is opened on the
 * approval endpoint, which asks before it starts anything). Both show the run's cost estimate, each
 * component on a line (RecordRelease/RecordFailure computed it: `$.release.cost`). Works on any partial
 * state, including a failed Prepare. Once the message is out, it says how the run ended in the pipeline's
 * metrics (pipeline-metrics.ts): the failure alarm counts only the unexpected failures.
 */
import { approvalSecret } from './shared/approval-link';
import { FUNCTION_SETTINGS } from './shared/function-settings';
import { errorFields, logger, stateByPath, withLogContext } from './shared/logger';
import { canaryTable, fmt, keepTail, MAX_MESSAGE_BYTES, publish, trainingTimeText } from './shared/notifications';
import { outcomeOf, type Outcome } from './shared/outcome';
import { emfDocument, writeEmf } from './shared/emf';
import { isUnexpectedFailure, PIPELINE_METRICS, PIPELINE_NAMESPACE, stateMachineNameOf } from './shared/pipeline-metrics';
import { costLines, RunCostSchema } from './shared/run-cost';
import { describePlan, resumePlan } from './shared/resume';
import { RETRY_LINK_TTL_SECONDS, signRetryLink } from './shared/retry-link';
import { NotResumableError } from './shared/errors';
import { loadSettings } from './shared/settings';
import type { PipelineError, PipelineState } from './shared/types';
/** Read and validated once, at init: a bad value fails the Lambda's init naming the variable. */
const settings = loadSettings(FUNCTION_SETTINGS.Notify); // publish() reads NOTIFICATION_TOPIC_ARN from them

/** `executionArn` is all a run whose Prepare failed has (FailPrepare puts it there): no run, no version. */
type NotifyState = Partial<PipelineState> & { cleanupError?: PipelineError; executionArn?: unknown };

const HEADLINE: Record<string, string> = {
  TrainingFailedError: 'training failed',
  RolloutFailedError: 'rollout failed',
  EndpointUnavailableError: 'endpoint never became ready',
  PhaseTimeoutError: 'a phase timed out',
  EvaluationError: 'evaluation could not run',
  EvaluationGateFailed: 'failed the evaluation gate',
  ApprovalRejected: 'rejected',
  ApprovalTimedOut: 'approval timed out',
  InvalidInputError: 'invalid input',
  CanaryAnalysisFailed: 'the canary failed its analysis and was rolled back',
  CanaryError: 'the canary could not go on',
  NotResumableError: 'the run to retry cannot be resumed',
};

function lines(entries: [string, string | null | undefined][]): string {
  const shown = entries.filter((e): e is [string, string] => e[1] !== null && e[1] !== undefined && e[1] !== '');
  const width = Math.max(...shown.map(([k]) => k.length)) + 1;
  return shown.map(([k, v]) => `${`${k}:`.padEnd(width)} ${v}`).join('\n');
}

function cleanupText(state: NotifyState): string {
  if (state.cleanupError) return `cleanup failed (${state.cleanupError.Error}): ${state.cleanupError.Cause}`;
  const deleted = state.cleanup?.deleted ?? [];
  return deleted.length ? deleted.join(', ') : 'nothing needed cleaning up';
}

/** The run's cost estimate, a line per component; null when the run has none (its record failed, or it never started). */
function costText(state: NotifyState): string | null {
  const parsed = RunCostSchema.safeParse(state.release?.cost);
  if (!parsed.success) return null;
  const [total, ...components] = costLines(parsed.data);
  return [total, ...components.map((c) => `  ${c}`)].join('\n');
}

/** Where production traffic is after a failure: a run that failed after its switch may have moved it. */
function productionText(state: NotifyState): string {
  const c = state.cleanup;
  if (c?.switchedBack) return `Production traffic was switched back to ${c.switchedBack.to}.`;
  if (c?.trafficKept) return `Production traffic stays on this version: ${c.trafficKept.reason}.`;
  if (state.cleanupError && state.production?.switchedAt) return 'Production traffic may still be on this version: cleanup failed.';
  return 'Production is unchanged.';
}

/** How production took the version: the canary's steps with what each served, or the switch and why. */
function rolloutText(state: NotifyState): string | null {
  const r = state.production?.rollout;
  if (!r) return null;
  const steps = state.canary?.steps ?? [];
  if (r.strategy !== 'canary' || steps.length === 0) return `${r.strategy} (${r.reason})`;
  const shown = steps.map((s) => `${s.weight} % ${s.evidence.verdict}${s.evidence.servedShare === null ? '' : ` (served ${fmt.rate(s.evidence.servedShare)})`}`);
  return `canary over ${state.canary!.stableVersion}: ${[...shown, '100 %'].join(' → ')}`;
}

/** A failed canary: both versions' numbers side by side over the failing step. */
function canaryEvidence(state: NotifyState): string[] {
  const c = state.canary;
  if (!c?.last || !state.run?.rollout || (c.status !== 'rollback' && c.status !== 'rolledBack')) return [];
  return ['', `Canary at ${c.weight} % (step ${c.step + 1}), analysis ${c.analyses}: ${c.last.verdict}`, canaryTable(c, state.run.version, state.run.rollout)];
}

function successMessage(state: NotifyState, now: Date): { subject: string; message: string } {
  const run = state.run!;
  const e = state.evaluation;
  const a = state.approval;
  return {
    subject: `[mlpipe] Released ${run.modelName} ${run.version}`,
    message: [
      `${run.modelName} ${run.version} is serving in production.`,
      '',
      lines([
        ['Endpoint', state.production?.endpoint ?? 'unknown'],
        ['Accuracy', e ? fmt.accuracy(e.accuracy) + (e.production ? ` (previous production ${e.production.version}: ${fmt.accuracy(e.production.accuracy)})` : '') : 'not evaluated'],
        ['p95 latency', e ? fmt.ms(e.latencyMsP95) : null],
        ['Error rate', e ? fmt.rate(e.errorRate) : null],
        ['Training', trainingTimeText(state.training, now, run.retry?.of)],
        ['Approved by', a ? `${a.by} at ${a.at} from ${a.from}${a.comment ? ` ("${a.comment}")` : ''}` : 'unknown'],
        ['Replaced', state.production?.previousVersion ?? 'nothing (first release)'],
        ['Rollout', rolloutText(state)],
        ['Image', run.image],
        ['Manifest', state.release?.manifestUri],
        ['Cost', costText(state)],
        ['Staging cleanup', cleanupText(state)],
        ['Execution', run.executionArn],
      ]),
    ].join('\n'),
  };
}

/**
 * How to continue the run, when a retry can reuse what it finished (functions/shared/resume.ts decides, as
 * Prepare will): the command, and what it skips. Nothing when it cannot (never trained, rejected...).
 */
function retryText(state: NotifyState, outcome: Outcome): string | null {
  const run = state.run;
  if (!run) return null;
  const name = run.executionName;
  try {
    const plan = resumePlan({ status: outcome.status, training: state.training ?? null, evaluation: state.evaluation ?? null }, name);
    // The same model meets the same gate again: worth it only once the gate's thresholds changed.
    const when = outcome.status === 'gate-failed' ? '; worth it once the gate\'s thresholds changed' : '';
    return `mlpipe retry ${name}   (${describePlan(plan)}${when})`;
  } catch (err) {
    if (err instanceof NotResumableError) return null;
    throw err;
  }
}

/**
 * The signed retry link for a run a retry can resume (retryText says so), valid RETRY_LINK_TTL_SECONDS; the
 * approval endpoint checks again, when it is opened, that the run can still be resumed. Null when the run
 * cannot be, or when the key cannot be read: the email matters more than its link, and still names the
 * command. Neither the link nor the key is logged.
 */
async function retryLink(state: NotifyState, outcome: Outcome, now = Date.now()): Promise<string | null> {
  const run = state.run;
  if (!run || retryText(state, outcome) === null) return null;
  try {
    const secret = await approvalSecret();
    const expiresAt = Math.floor(now / 1000) + RETRY_LINK_TTL_SECONDS;
    return signRetryLink({ baseUrl: settings.APPROVAL_BASE_URL, executionArn: run.executionArn, modelName: run.modelName, version: run.version, expiresAt, secret });
  } catch (err) {
    logger.warn('retry link not signed: the email names the command only', { error: errorFields(err) });
    return null;
  }
}

function failureMessage(state: NotifyState, outcome: Outcome, link: string | null, now: Date): { subject: string; message: string } {
  const run = state.run;
  const errorName = outcome.error?.Error ?? 'UnknownError';
  const headline = HEADLINE[errorName] ?? `failed (${errorName})`;
  const what = run ? `${run.modelName} ${run.version}` : 'a run that never started';
  const header = [
    `${run ? `${run.modelName} ${run.version}` : 'The run'} did not reach production: ${headline}. ${productionText(state)}`,
    '',
    lines([
      ['Error', errorName],
      ['Training', trainingTimeText(state.training, now, run?.retry?.of)],
      ['Evaluation', state.evaluation?.summary],
      ['Rejected by', outcome.rejection ? `${outcome.rejection.by} at ${outcome.rejection.at} from ${outcome.rejection.from}` : null],
      ['Comment', outcome.rejection?.comment],
      ['Cleaned up', cleanupText(state)],
      ['Manifest', state.release?.manifestUri],
      ['Cost', costText(state)],
      ['Image', run?.image],
      ['Execution', run?.executionArn ?? (typeof state.executionArn === 'string' ? state.executionArn : null)],
      ['Retry', retryText(state, outcome)],
      // On a line of its own, the link last on it: mail programs then keep it whole.
      ['Retry link', link && `(asks before it starts; valid ${RETRY_LINK_TTL_SECONDS / 86400} days)\n  ${link}`],
    ]),
    ...canaryEvidence(state),
    '',
    'Reason:',
  ].join('\n');
  // The cause goes last and keeps its end: for a failed training Job that is the pod's log tail.
  const room = MAX_MESSAGE_BYTES - Buffer.byteLength(header, 'utf8') - 64;
  return {
    subject: `[mlpipe] ${what}: ${headline}`,
    message: `${header}\n${keepTail(outcome.reason ?? 'no cause was recorded', room)}\n`,
  };
}

async function notify(event: unknown): Promise<{ messageId: string }> {
  const state = (event ?? {}) as NotifyState;
  const outcome = outcomeOf(state);
  const released = outcome.status === 'released' && state.run;
  const now = new Date();
  const { subject, message } = released ? successMessage(state, now) : failureMessage(state, outcome, await retryLink(state, outcome), now);
  const messageId = await publish(subject, message);
  logger.info('notified', { status: outcome.status, subject, messageId });
  recordOutcome(state, outcome, now);
  return { messageId };
}

/**
 * How the run ended, in the pipeline's metrics, once its message is out: a failure that could not be
 * notified is left to the alarms that do not rely on this one (monitoring.ts). A run that never started
 * names its state machine only in `executionArn` (FailPrepare puts it there).
 */
function recordOutcome(state: NotifyState, outcome: Outcome, now: Date): void {
  const arn = state.run?.executionArn ?? (typeof state.executionArn === 'string' ? state.executionArn : '');
  const machine = stateMachineNameOf(arn);
  if (!machine) {
    logger.warn('outcome not in the metrics: no execution ARN in the state', { status: outcome.status });
    return;
  }
  const failed = outcome.status !== 'released';
  writeEmf(
    emfDocument(PIPELINE_NAMESPACE, { StateMachine: machine, Outcome: outcome.status }, [
      {
        dimensionSet: ['StateMachine'],
        metrics: [
          { name: PIPELINE_METRICS.unexpectedFailures, unit: 'Count', value: isUnexpectedFailure(outcome.status) ? 1 : 0 },
          { name: PIPELINE_METRICS.failuresNotified, unit: 'Count', value: failed ? 1 : 0 },
        ],
      },
      { dimensionSet: ['StateMachine', 'Outcome'], metrics: [{ name: PIPELINE_METRICS.runsEnded, unit: 'Count', value: 1 }] },
    ], now),
  );
}

export const handler = withLogContext(stateByPath('NotifySuccess', 'NotifyFailure'), notify);
