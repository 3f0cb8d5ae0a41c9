/**
 * Starting a retry of a failed run: the one implementation behind `mlpipe retry <run>`
 * (cli/commands/retry.ts) and the failure email's retry link (functions/approval-api.ts). It checks what
 * resume.ts decides (the run ended FAILED, it trained a model that is still there, its record is its own),
 * builds the request (the failed run's own input plus `retryOf` and who asked), and starts it under the
 * deterministic name `<run>-retryN` (resume.ts retryRunName), which is what makes a second click or a
 * second command start nothing new.
 */
import { DescribeExecutionCommand, StartExecutionCommand, type SFNClient } from '@aws-sdk/client-sfn';
import { NotResumableError } from './errors';
import { loadResume, retryRunName, type ResumePlan, type RetryOf } from './resume';

/** Why a run that did not end FAILED cannot be retried. */
const NOT_FAILED: Record<string, string> = {
  RUNNING: 'it is still running',
  PENDING_REDRIVE: 'it is being redriven',
  SUCCEEDED: 'it succeeded',
  ABORTED: 'it was stopped (ABORTED) before it recorded how far it got; start a new run',
  TIMED_OUT: 'it timed out before it recorded how far it got; start a new run',
};

const nameOf = (executionArn: string) => executionArn.split(':').pop() ?? executionArn;

/** The state machine an execution belongs to (…:execution:<machine>:<run> → …:stateMachine:<machine>). */
export function stateMachineOf(executionArn: string): string {
  return executionArn.replace(':execution:', ':stateMachine:').replace(/:[^:]+$/, '');
}

/** The execution ARN of `name` in the same state machine as `executionArn`. */
export function siblingExecution(executionArn: string, name: string): string {
  return executionArn.replace(/:[^:]+$/, `:${name}`);
}

/** NotResumableError unless the run ended FAILED (first: a running run has no record to check yet). */
export function assertFailed(failed: FailedExecution): void {
  const status = failed.status ?? 'UNKNOWN';
  if (status !== 'FAILED') {
    throw new NotResumableError(`Run ${nameOf(failed.executionArn)} cannot be retried: ${NOT_FAILED[status] ?? `it is ${status}`}. Only a failed run can be.`);
  }
}

/** What DescribeExecution says of the failed run (the CLI has it already; the link reads it). */
export interface FailedExecution {
  executionArn: string;
  status?: string;
  input?: string;
}

export interface PreparedRetry {
  /** `<run>-retryN`. */
  name: string;
  /** The retry's execution ARN (same state machine). */
  executionArn: string;
  stateMachineArn: string;
  /** The execution input: the failed run's request, `retryOf`, and the retry's trigger. */
  input: Record<string, unknown>;
  plan: ResumePlan;
}

/**
 * The retry of a failed run, or NotResumableError saying why there is none. `run` is the failed run's model
 * and version (from its history's `$.run`, or from a signed link); `by` says who asked (`trigger.detail.by`).
 */
export async function prepareRetry(
  failed: FailedExecution,
  run: { modelName: string; version: string; image?: string },
  trigger: { by: string } & Record<string, string>,
): Promise<PreparedRetry> {
  const name = nameOf(failed.executionArn);
  assertFailed(failed);
  const input = parseInput(failed.input, name);
  const retryOf: RetryOf = { executionArn: failed.executionArn, modelName: run.modelName, version: run.version };
  const image = typeof input.image === 'string' ? input.image : run.image;
  if (image === undefined) throw new NotResumableError(`Run ${name} was started without an image: there is nothing to resume.`);
  const { plan } = await loadResume(retryOf, image);
  const retryName = retryRunName(name);
  return {
    name: retryName,
    executionArn: siblingExecution(failed.executionArn, retryName),
    stateMachineArn: stateMachineOf(failed.executionArn),
    // The failed run's own request (Prepare checked it then and checks it again), naming what it continues.
    input: { ...input, retryOf, trigger: { source: 'retry', detail: { ...trigger, run: name } } },
    plan,
  };
}

function parseInput(text: string | undefined, name: string): Record<string, unknown> {
  try {
    const v = JSON.parse(text ?? '{}') as unknown;
    if (v && typeof v === 'object' && !Array.isArray(v)) return v as Record<string, unknown>;
  } catch {
    // reported below
  }
  throw new NotResumableError(`Run ${name} was started with an input that is not a run request: there is nothing to resume.`);
}

/** StartExecution found an execution of that name: the run was retried already (it may be running or done). */
export class RetryExistsError extends Error {
  override readonly name = 'RetryExistsError';
  constructor(readonly retryName: string, readonly executionArn: string) {
    super(`The run was already retried as ${retryName}.`);
  }
}

/**
 * Starts the prepared retry. StartExecution is idempotent for the same name and input while that execution
 * runs (it answers with it); any other existing execution of the name is a RetryExistsError.
 */
export async function startRetry(sfn: SFNClient, retry: PreparedRetry): Promise<{ executionArn: string }> {
  try {
    const out = await sfn.send(new StartExecutionCommand({ stateMachineArn: retry.stateMachineArn, name: retry.name, input: JSON.stringify(retry.input) }));
    return { executionArn: out.executionArn ?? retry.executionArn };
  } catch (err) {
    if ((err as Error).name === 'ExecutionAlreadyExists') throw new RetryExistsError(retry.name, retry.executionArn);
    throw err;
  }
}

/** The retry of a run, if one was started: its name, ARN and status. */
export async function existingRetry(sfn: SFNClient, failedExecutionArn: string): Promise<{ name: string; executionArn: string; status: string } | undefined> {
  const name = retryRunName(nameOf(failedExecutionArn));
  const executionArn = siblingExecution(failedExecutionArn, name);
  try {
    const out = await sfn.send(new DescribeExecutionCommand({ executionArn }));
    return { name, executionArn, status: out.status ?? 'UNKNOWN' };
  } catch (err) {
    if ((err as Error).name === 'ExecutionDoesNotExist') return undefined;
    throw err;
  }
}
