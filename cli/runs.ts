/** Runs as the CLI shows them: finding one by name or ARN, reading its history, and summing it up. */
import {
  DescribeExecutionCommand,
  GetExecutionHistoryCommand,
  ListExecutionsCommand,
  paginateGetExecutionHistory,
  type DescribeExecutionOutput,
  type HistoryEvent,
} from '@aws-sdk/client-sfn';
import { describeCause } from '../functions/shared/outcome';
import type { PipelineState } from '../functions/shared/types';
import { CliError } from './io';
import type { Target } from './target';

/** A run id is an execution name or ARN; no id means the latest run. */
export async function resolveRun(target: Target, id: string | undefined): Promise<string> {
  if (id?.startsWith('arn:')) return id;
  if (id) return `${target.stateMachineArn.replace(':stateMachine:', ':execution:')}:${id}`;
  const { executions } = await target.sfn.send(new ListExecutionsCommand({ stateMachineArn: target.stateMachineArn, maxResults: 1 }));
  const latest = executions?.[0]?.executionArn;
  if (!latest) throw new CliError('There are no runs yet. Start one with `mlpipe run <image>`.');
  return latest;
}

/** The run name is what people type; the ARN only matters when they gave one. */
export function runNameOf(executionArn: string): string {
  return executionArn.split(':').pop() ?? executionArn;
}

function noSuchRun(executionArn: string): CliError {
  return new CliError(`There is no run "${runNameOf(executionArn)}". \`mlpipe list\` shows the runs.`);
}

export async function describeRun(target: Target, executionArn: string): Promise<DescribeExecutionOutput> {
  try {
    return await target.sfn.send(new DescribeExecutionCommand({ executionArn }));
  } catch (err) {
    if ((err as Error).name === 'ExecutionDoesNotExist') throw noSuchRun(executionArn);
    throw err;
  }
}

export async function runHistory(target: Target, executionArn: string): Promise<HistoryEvent[]> {
  const events: HistoryEvent[] = [];
  try {
    for await (const page of paginateGetExecutionHistory({ client: target.sfn }, { executionArn, maxResults: 1000 })) {
      events.push(...(page.events ?? []));
    }
  } catch (err) {
    if ((err as Error).name === 'ExecutionDoesNotExist') throw noSuchRun(executionArn);
    throw err;
  }
  return events;
}

/**
 * The model and version a run trains, from the start of its history: Prepare's output names both (a
 * dozen events in); before that, or when Prepare failed, the model the request asked for.
 */
export async function runModelOf(target: Target, executionArn: string): Promise<{ model: string | null; version: string | null }> {
  const { events = [] } = await target.sfn.send(new GetExecutionHistoryCommand({ executionArn, maxResults: 20 }));
  let model: string | null = null;
  for (const e of events) {
    if (e.executionStartedEventDetails) model = (parse(e.executionStartedEventDetails.input) as { modelName?: string } | undefined)?.modelName ?? null;
    const out = e.stateExitedEventDetails?.name === 'Prepare' ? parse(e.stateExitedEventDetails.output)?.run : undefined;
    if (out?.version) return { model: out.modelName ?? model, version: out.version };
  }
  return { model, version: null };
}

export interface StateProgress {
  /** States that were left, in order of leaving (a looping state appears once). */
  done: Set<string>;
  /** The state the run is in now (entered, not yet left), if running. */
  current?: string;
  /** The last state entered. */
  last?: string;
  /** States whose last attempt failed or timed out, and Fail states reached. */
  failed: Set<string>;
  /** The most recent state data (a state's output), for metrics. */
  data?: Partial<PipelineState>;
}

export function progressOf(events: HistoryEvent[]): StateProgress {
  const done = new Set<string>();
  let open: string | undefined;
  let last: string | undefined;
  let data: Partial<PipelineState> | undefined;
  const failed = new Set<string>();
  for (const e of events) {
    const type = e.type ?? '';
    if (open && /^(LambdaFunction|Task)(Failed|TimedOut|StartFailed|ScheduleFailed)$/.test(type)) failed.add(open);
    if (open && /^(LambdaFunction|Task)Succeeded$/.test(type)) failed.delete(open);
    if (type === 'FailStateEntered' && e.stateEnteredEventDetails?.name) failed.add(e.stateEnteredEventDetails.name);
    if (e.stateEnteredEventDetails?.name) {
      open = last = e.stateEnteredEventDetails.name;
      const input = parse(e.stateEnteredEventDetails.input);
      if (input) data = input;
    }
    if (e.stateExitedEventDetails?.name) {
      done.add(e.stateExitedEventDetails.name);
      if (open === e.stateExitedEventDetails.name) open = undefined;
      const output = parse(e.stateExitedEventDetails.output);
      if (output) data = output;
    }
  }
  return { done, failed, ...(open ? { current: open } : {}), ...(last ? { last } : {}), ...(data ? { data } : {}) };
}

function parse(text: string | undefined): Partial<PipelineState> | undefined {
  if (!text) return undefined;
  try {
    const v = JSON.parse(text) as unknown;
    return v && typeof v === 'object' && !Array.isArray(v) ? (v as Partial<PipelineState>) : undefined;
  } catch {
    return undefined;
  }
}

export function duration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`;
}

/** How long the error line of `mlpipe status` may get before it is cut. */
const ERROR_LINE_MAX = 300;

/**
 * A failed run's error as one readable line: the error name and the cause's message — a Lambda error's
 * errorMessage, never its JSON or stack trace (describeCause, as the failure email reads it). A message
 * of several lines (a failure with the pod's log tail) keeps its first line and says where the rest is.
 */
export function errorLine(error: string | undefined, cause: string | undefined, runName: string): string | undefined {
  const message = describeCause(cause)?.trim() ?? '';
  if (!error && !message) return undefined;
  const [first = '', ...more] = message.split(/\r?\n/).filter((l) => l.trim() !== '');
  let line = [error, first.replace(/\s+/g, ' ')].filter(Boolean).join(': ');
  if (line.length > ERROR_LINE_MAX) line = `${line.slice(0, ERROR_LINE_MAX - 1)}…`;
  if (more.length) line += ` (+${more.length} more line${more.length === 1 ? '' : 's'}: \`mlpipe logs ${runName}\` has the pod log)`;
  return line;
}
