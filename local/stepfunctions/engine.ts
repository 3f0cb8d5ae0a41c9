/**
 * LocalStepFunctions: executions of one state machine on aws-local-stepfunctions, with what the library
 * lacks and the pipeline needs: execution names and ARNs, AWS StartExecution idempotency, task tokens for
 * `lambda:invoke.waitForTaskToken` (SendTaskSuccess/Failure, timeouts), StopExecution, and an execution
 * history in the shapes of the real GetExecutionHistory. Executions run in this process; with `journalFile`
 * their history is kept on disk and reloaded by the next engine (journal.ts), so the runs outlive a restart.
 */
import { EventEmitter } from 'node:events';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { ExecutionAbortedError, ExecutionError, ExecutionTimeoutError, StateMachine, type StateMachineDefinition } from 'aws-local-stepfunctions';
import { executionNameProblem } from '../../functions/shared/execution-name';
import { MAX_ENGINE_INPUT_DEPTH, MAX_EXECUTION_INPUT_BYTES, nestingDepth } from '../../functions/shared/execution-input';
import { prepareDefinition, TIMEOUT_FIELD, WAIT_FOR_TOKEN, LAMBDA_INVOKE } from './definition';
import { ExecutionJournal, type JournalledExecution } from './journal';
import {
  type ExecutionDescription,
  type ExecutionEvent,
  type ExecutionListItem,
  type ExecutionStatus,
  type HistoryEvent,
  SfnError,
} from './model';

export * from './model';

export type TaskHandler = (
  input: unknown,
  ctx: { executionArn: string; stateName: string; taskToken?: string },
) => Promise<unknown>;

export interface LocalStepFunctionsOptions {
  /** ASL, placeholders already substituted. */
  definition: string | object;
  /** e.g. arn:aws:states:us-east-1:000000000000:stateMachine:mlpipe-local */
  stateMachineArn: string;
  /** Task state name -> handler. */
  taskHandlers: Record<string, TaskHandler>;
  /**
   * Deepest execution input StartExecution accepts (InvalidExecutionInput beyond).
   * @default MAX_ENGINE_INPUT_DEPTH (what the library runs without overflowing its stack)
   */
  maxInputDepth?: number;
  /**
   * Keep every execution's history in this file (JSON lines) and reload the ones it holds at start: runs of
   * an earlier engine are listed, described and their history read as before; one that was running when
   * that engine's process ended reads ABORTED (Interrupted). @default nothing is kept
   */
  journalFile?: string;
  /**
   * A file recording the last definition that passed the library's validation (a hash of it): the same
   * definition is not validated again (the local run: 0.55 s of CPU per start, in ajv), a different one is.
   */
  validatedFile?: string;
}

/** What validates a definition: the library's version (a new one may check more); its exports hide package.json. */
const VALIDATOR = readFileSync(join(dirname(createRequire(__filename).resolve('aws-local-stepfunctions')), '..', 'package.json'), 'utf8');

type TokenState = 'open' | 'succeeded' | 'failed' | 'timedOut';

interface PendingToken {
  executionArn: string;
  stateName: string;
  state: TokenState;
  resolve(output: unknown): void;
  reject(err: Error): void;
}

/** One call of a Task's resource: what the history needs to say about it when it ends. */
interface TaskAttempt {
  stateName: string;
  kind: 'lambda' | 'integration';
  resource: string;
  closed: boolean;
  token?: string;
}

/** An execution as the journal keeps it, plus what only a live one has. */
interface Execution extends JournalledExecution {
  abort(): void;
  context: { Task: { Token: string } } & Record<string, unknown>;
  /** Task attempts the event consumer has seen start (StateEntered/StateRetried of a Task). */
  attemptsSeen: number;
  attemptWaiters: Array<{ n: number; resolve(): void }>;
  invocations: number;
  current?: TaskAttempt;
  done: Promise<void>;
  markDone(): void;
}

const TOKEN_PATTERN = /^[A-Za-z0-9_-]{64}$/;

function newToken(): string {
  return randomBytes(48).toString('base64url');
}

function lambdaCause(err: unknown): string {
  const e = err as { name?: string; message?: string; stack?: string };
  const trace = (e.stack ?? '').split('\n').slice(1, 6).map((l) => l.trim());
  return JSON.stringify({ errorType: e.name ?? 'Error', errorMessage: e.message ?? String(err), trace });
}

/** Ends a Task of a stopped execution: neither retried nor caught, so the library unwinds and clears its timers. */
function stoppedError(): Error {
  return Object.assign(stateError('States.Runtime', 'The execution was stopped.'), { isRetryable: false, isCatchable: false });
}

/** An Error the library matches Retry/Catch on by `name`; its `cause` becomes the Cause (as Lambda reports it). */
function stateError(name: string, cause: string): Error {
  const err = new Error(cause, { cause });
  err.name = name;
  return err;
}

export class LocalStepFunctions extends EventEmitter {
  readonly stateMachineArn: string;
  readonly definition: string;
  private readonly machine: StateMachine;
  private readonly states: Record<string, { Type: string; Resource?: string; Parameters?: unknown }>;
  private readonly handlers: Record<string, TaskHandler>;
  private readonly executions = new Map<string, Execution>();
  private readonly tokens = new Map<string, PendingToken>();
  private readonly region: string;
  private readonly executionArnPrefix: string;
  private readonly maxInputDepth: number;
  private readonly journal: ExecutionJournal | undefined;

  constructor(opts: LocalStepFunctionsOptions) {
    super();
    const match = /^arn:aws[\w-]*:states:([a-z0-9-]+):(\d{12}):stateMachine:([A-Za-z0-9_-]{1,80})$/.exec(opts.stateMachineArn);
    if (!match) throw new SfnError('InvalidArn', `Invalid state machine ARN: ${opts.stateMachineArn}`);
    this.region = match[1]!;
    this.stateMachineArn = opts.stateMachineArn;
    this.executionArnPrefix = opts.stateMachineArn.replace(':stateMachine:', ':execution:') + ':';
    const original = (typeof opts.definition === 'string' ? JSON.parse(opts.definition) : opts.definition) as StateMachineDefinition;
    this.definition = JSON.stringify(original, null, 2);
    const runnable = prepareDefinition(original);
    this.states = original.States as unknown as typeof this.states;
    this.handlers = opts.taskHandlers;
    this.maxInputDepth = opts.maxInputDepth ?? MAX_ENGINE_INPUT_DEPTH;
    for (const [name, state] of Object.entries(this.states)) {
      if (state.Type === 'Task' && !this.handlers[name]) {
        throw new Error(`No task handler for Task state "${name}" (taskHandlers must cover every Task state).`);
      }
    }
    const validated = opts.validatedFile && createHash('sha256').update(VALIDATOR).update(JSON.stringify(runnable)).digest('hex');
    const known = validated !== undefined && existsSync(opts.validatedFile!) && readFileSync(opts.validatedFile!, 'utf8') === validated;
    this.machine = new StateMachine(runnable, { validationOptions: { checkArn: false, noValidate: known } });
    if (validated && !known) writeFileSync(opts.validatedFile!, validated);
    this.journal = opts.journalFile ? new ExecutionJournal(opts.journalFile) : undefined;
    for (const e of this.journal?.load() ?? []) {
      if (e.arn.startsWith(this.executionArnPrefix)) this.executions.set(e.arn, this.restored(e));
    }
  }

  /** An execution of an earlier engine, from the journal: ended, nothing left to run. */
  private restored(e: JournalledExecution): Execution {
    return {
      ...e,
      abort: () => undefined,
      context: { Task: { Token: newToken() } },
      attemptsSeen: 0,
      attemptWaiters: [],
      invocations: 0,
      done: Promise.resolve(),
      markDone: () => undefined,
    };
  }

  startExecution(p: { name?: string; input?: string }): { executionArn: string; startDate: Date } {
    const name = p.name ?? randomUUID();
    // StartExecution's rule, defined once (the CLI checks run names with it too).
    if (executionNameProblem(name) !== undefined) {
      throw new SfnError('InvalidName', `Invalid Name: '${name}'`);
    }
    const input = p.input ?? '{}';
    const parsed = parseExecutionInput(input, this.maxInputDepth);
    const arn = this.executionArnPrefix + name;
    const existing = this.executions.get(arn);
    if (existing) {
      // AWS: same name and input while the first is still running is idempotent; anything else is refused.
      if (existing.status === 'RUNNING' && existing.input === input) {
        return { executionArn: arn, startDate: existing.startDate };
      }
      throw new SfnError('ExecutionAlreadyExists', `Execution Already Exists: '${arn}'`);
    }
    const exec = this.launch(arn, name, input, parsed);
    return { executionArn: arn, startDate: exec.startDate };
  }

  private launch(arn: string, name: string, input: string, parsed: unknown): Execution {
    const startDate = new Date();
    let markDone!: () => void;
    const done = new Promise<void>((resolve) => (markDone = resolve));
    const exec: Execution = {
      arn,
      name,
      input,
      status: 'RUNNING',
      startDate,
      history: [],
      abort: () => undefined,
      context: {
        Task: { Token: newToken() },
        Execution: { Id: arn, Name: name, RoleArn: `arn:aws:iam::${arn.split(':')[4]}:role/mlpipe-local` },
        StateMachine: { Id: this.stateMachineArn, Name: this.stateMachineArn.split(':').pop() },
      },
      attemptsSeen: 0,
      attemptWaiters: [],
      invocations: 0,
      done,
      markDone,
    };
    this.executions.set(arn, exec);
    this.journal?.started(exec);
    const handlers: Record<string, (input: unknown) => Promise<never>> = {};
    for (const stateName of Object.keys(this.handlers)) {
      handlers[stateName] = (effective) => this.invokeTask(exec, stateName, effective) as Promise<never>;
    }
    const run = this.machine.run(parsed as never, {
      overrides: { taskResourceLocalHandlers: handlers },
      context: exec.context as never,
      noThrowOnAbort: true,
    });
    exec.abort = run.abort;
    // The outcome is read from the event log. The library's own outcomes (failed, aborted, timed out) are
    // in it; anything else it threw never reached it, and the log will not end: fail the execution here.
    run.result.catch((err: unknown) => {
      if (err instanceof ExecutionError || err instanceof ExecutionAbortedError || err instanceof ExecutionTimeoutError) return;
      this.crash(exec, err);
    });
    void this.consume(exec, run.eventLogs as unknown as AsyncGenerator<Record<string, unknown>>);
    return exec;
  }

  /**
   * The engine itself failed (the library threw outside a state, or turning its events into history
   * did): the execution fails with the reason, as AWS ends one with States.Runtime, instead of staying
   * RUNNING with nobody left to end it.
   */
  private crash(exec: Execution, err: unknown): void {
    if (exec.status !== 'RUNNING') return;
    const e = err as { name?: unknown; message?: unknown };
    const reason = `${typeof e?.name === 'string' ? e.name : 'Error'}: ${typeof e?.message === 'string' ? e.message : String(err)}`;
    exec.error = 'States.Runtime';
    exec.cause = `The local Step Functions engine failed: ${reason}`;
    this.finish(exec, 'FAILED', 'ExecutionFailed', { executionFailedEventDetails: { error: exec.error, cause: exec.cause } });
    exec.abort();
    exec.markDone();
  }

  /** Turns the library's event log into AWS history events, in order, and settles the execution. */
  private async consume(exec: Execution, events: AsyncGenerator<Record<string, unknown>>): Promise<void> {
    try {
      for await (const ev of events) {
        if (exec.status !== 'RUNNING') break;
        const state = ev.state as { name: string; type: string; input: unknown; output?: unknown } | undefined;
        switch (ev.type) {
          case 'ExecutionStarted':
            this.record(exec, 'ExecutionStarted', {
              executionStartedEventDetails: { input: exec.input, inputDetails: { truncated: false }, roleArn: (exec.context.Execution as { RoleArn: string }).RoleArn },
            });
            break;
          case 'StateEntered':
            this.record(exec, `${state!.type}StateEntered`, {
              stateEnteredEventDetails: { name: state!.name, input: JSON.stringify(state!.input), inputDetails: { truncated: false } },
            }, state!.name);
            if (state!.type === 'Task') this.attemptStarted(exec);
            break;
          case 'StateRetried':
            if (state!.type === 'Task') this.attemptStarted(exec);
            break;
          case 'StateFailed':
            // A failure the handler reported is already in the history; a library timeout is not.
            if (exec.current && !exec.current.closed && state?.name === exec.current.stateName) {
              this.closeAttempt(exec, exec.current, 'TimedOut', { error: String(ev.Error), cause: String(ev.Cause ?? '') });
            }
            break;
          case 'StateExited':
            if (state!.type !== 'Fail') {
              this.record(exec, `${state!.type}StateExited`, {
                stateExitedEventDetails: { name: state!.name, output: JSON.stringify(state!.output ?? null), outputDetails: { truncated: false } },
              }, state!.name);
            }
            break;
          case 'ExecutionSucceeded':
            exec.output = JSON.stringify(ev.output ?? null);
            this.finish(exec, 'SUCCEEDED', 'ExecutionSucceeded', {
              executionSucceededEventDetails: { output: exec.output, outputDetails: { truncated: false } },
            });
            break;
          case 'ExecutionFailed':
            exec.error = String(ev.Error);
            exec.cause = typeof ev.Cause === 'string' ? ev.Cause : JSON.stringify(ev.Cause ?? '');
            this.finish(exec, 'FAILED', 'ExecutionFailed', { executionFailedEventDetails: { error: exec.error, cause: exec.cause } });
            break;
          case 'ExecutionTimeout':
            exec.error = 'States.Timeout';
            this.finish(exec, 'TIMED_OUT', 'ExecutionTimedOut', { executionTimedOutEventDetails: { error: 'States.Timeout' } });
            break;
          default:
            break;
        }
      }
    } catch (err) {
      this.crash(exec, err);
    } finally {
      if (exec.status === 'RUNNING') {
        // The log closed without a terminal event (aborted by close()).
        this.finish(exec, 'ABORTED', 'ExecutionAborted', { executionAbortedEventDetails: {} });
      }
      this.closeTokens(exec);
      exec.markDone();
    }
  }

  private attemptStarted(exec: Execution): void {
    exec.attemptsSeen += 1;
    const ready = exec.attemptWaiters.filter((w) => w.n <= exec.attemptsSeen);
    exec.attemptWaiters = exec.attemptWaiters.filter((w) => w.n > exec.attemptsSeen);
    for (const w of ready) w.resolve();
  }

  /**
   * Runs one Task attempt. It first waits until the event consumer has recorded the state's entry (the
   * library calls us synchronously right after dispatching it), so the history stays in AWS order.
   */
  private async invokeTask(exec: Execution, stateName: string, effective: unknown): Promise<unknown> {
    const n = ++exec.invocations;
    const state = this.states[stateName]!;
    const resource = state.Resource ?? '';
    let token: string | undefined;
    if (resource === WAIT_FOR_TOKEN) {
      token = exec.context.Task.Token;
      // Every attempt gets its own token, as on AWS: the next Parameters evaluation sees a fresh one.
      exec.context.Task.Token = newToken();
    }
    let timeoutSeconds: number | undefined;
    if (effective && typeof effective === 'object' && TIMEOUT_FIELD in effective) {
      const { [TIMEOUT_FIELD]: t, ...rest } = effective as Record<string, unknown>;
      timeoutSeconds = Number(t);
      effective = rest;
    }
    if (exec.attemptsSeen < n) await new Promise<void>((resolve) => exec.attemptWaiters.push({ n, resolve }));
    if (exec.status !== 'RUNNING') throw stoppedError();

    const integration = resource === WAIT_FOR_TOKEN || resource === LAMBDA_INVOKE;
    const attempt: TaskAttempt = { stateName, kind: integration ? 'integration' : 'lambda', resource, closed: false, token };
    exec.current = attempt;
    const payload = integration ? (effective as { Payload?: unknown }).Payload : effective;
    if (integration) {
      this.record(exec, 'TaskScheduled', {
        taskScheduledEventDetails: {
          resourceType: 'lambda',
          resource: resource.replace('arn:aws:states:::lambda:', ''),
          region: this.region,
          parameters: JSON.stringify(effective),
          ...(timeoutSeconds !== undefined ? { timeoutInSeconds: timeoutSeconds } : {}),
        },
      }, stateName);
      this.record(exec, 'TaskStarted', { taskStartedEventDetails: { resourceType: 'lambda', resource: resource.replace('arn:aws:states:::lambda:', '') } }, stateName);
    } else {
      this.record(exec, 'LambdaFunctionScheduled', {
        lambdaFunctionScheduledEventDetails: { resource, input: JSON.stringify(effective), inputDetails: { truncated: false }, ...(timeoutSeconds ? { timeoutInSeconds: timeoutSeconds } : {}) },
      }, stateName);
      this.record(exec, 'LambdaFunctionStarted', {}, stateName);
    }

    let tokenResult: Promise<unknown> | undefined;
    if (token) {
      tokenResult = new Promise((resolve, reject) => {
        this.tokens.set(token, { executionArn: exec.arn, stateName, state: 'open', resolve, reject });
      });
      tokenResult.catch(() => undefined);
    }
    let result: unknown;
    try {
      result = await this.handlers[stateName]!(payload, { executionArn: exec.arn, stateName, ...(token ? { taskToken: token } : {}) });
    } catch (err) {
      const name = (err as { name?: string }).name ?? 'Error';
      const cause = lambdaCause(err);
      if (token) this.tokens.get(token)!.state = 'failed';
      this.closeAttempt(exec, attempt, 'Failed', { error: name, cause });
      throw stateError(name, cause);
    }
    if (resource === LAMBDA_INVOKE) {
      result = { ExecutedVersion: '$LATEST', Payload: result ?? null, StatusCode: 200 };
    }
    if (!tokenResult) {
      this.closeAttempt(exec, attempt, 'Succeeded', { output: JSON.stringify(result ?? null) });
      return result ?? null;
    }
    if (!attempt.closed) {
      this.record(exec, 'TaskSubmitted', {
        taskSubmittedEventDetails: {
          resourceType: 'lambda',
          resource: 'invoke.waitForTaskToken',
          output: JSON.stringify({ ExecutedVersion: '$LATEST', Payload: result ?? null, StatusCode: 200 }),
        },
      }, stateName);
    }
    return tokenResult;
  }

  private closeAttempt(
    exec: Execution,
    attempt: TaskAttempt,
    outcome: 'Succeeded' | 'Failed' | 'TimedOut',
    details: { output?: string; error?: string; cause?: string },
  ): void {
    if (attempt.closed) return;
    attempt.closed = true;
    if (attempt.token) {
      const pending = this.tokens.get(attempt.token);
      if (pending && pending.state === 'open') pending.state = 'timedOut';
    }
    if (exec.status !== 'RUNNING') return;
    if (attempt.kind === 'integration') {
      const base = { resourceType: 'lambda', resource: attempt.resource.replace('arn:aws:states:::lambda:', '') };
      const key = `task${outcome}EventDetails`;
      const body = outcome === 'Succeeded' ? { ...base, output: details.output, outputDetails: { truncated: false } } : { ...base, error: details.error, cause: details.cause };
      this.record(exec, `Task${outcome}`, { [key]: body }, attempt.stateName);
    } else {
      const key = `lambdaFunction${outcome}EventDetails`;
      const body = outcome === 'Succeeded' ? { output: details.output, outputDetails: { truncated: false } } : { error: details.error, cause: details.cause };
      this.record(exec, `LambdaFunction${outcome}`, { [key]: body }, attempt.stateName);
    }
  }

  private record(exec: Execution, type: string, details: Record<string, unknown>, stateName?: string): HistoryEvent {
    const id = exec.history.length + 1;
    const event = { id, previousEventId: id - 1, timestamp: new Date(), type, ...details } as HistoryEvent;
    exec.history.push(event);
    this.journal?.event(exec.arn, event);
    const emitted: ExecutionEvent = {
      executionArn: exec.arn,
      executionName: exec.name,
      type,
      timestamp: event.timestamp,
      ...(stateName ? { stateName } : {}),
      event,
    };
    this.emit('event', emitted);
    return event;
  }

  private finish(exec: Execution, status: ExecutionStatus, type: string, details: Record<string, unknown>): void {
    if (exec.status !== 'RUNNING') return;
    if (exec.current && !exec.current.closed) exec.current.closed = true;
    this.record(exec, type, details);
    exec.status = status;
    exec.stopDate = new Date();
    this.journal?.ended(exec);
    this.closeTokens(exec);
    // Tasks still waiting for their entry to be recorded now end with stoppedError.
    for (const w of exec.attemptWaiters.splice(0)) w.resolve();
  }

  /** A closed execution's tokens answer TaskTimedOut; a Task still waiting on one is ended. */
  private closeTokens(exec: Execution): void {
    for (const pending of this.tokens.values()) {
      if (pending.executionArn === exec.arn && pending.state === 'open') {
        pending.state = 'timedOut';
        pending.reject(stoppedError());
      }
    }
  }

  private get(arn: string): Execution {
    if (!/^arn:aws[\w-]*:states:[a-z0-9-]+:\d{12}:execution:[^:]+:[^:]+$/.test(arn)) {
      throw new SfnError('InvalidArn', `Invalid Arn: '${arn}'`);
    }
    const exec = this.executions.get(arn);
    if (!exec) throw new SfnError('ExecutionDoesNotExist', `Execution Does Not Exist: '${arn}'`);
    return exec;
  }

  describeExecution(arn: string): ExecutionDescription {
    const e = this.get(arn);
    return {
      executionArn: e.arn,
      stateMachineArn: this.stateMachineArn,
      name: e.name,
      status: e.status,
      input: e.input,
      startDate: e.startDate,
      ...(e.output !== undefined ? { output: e.output } : {}),
      ...(e.error !== undefined ? { error: e.error } : {}),
      ...(e.cause !== undefined ? { cause: e.cause } : {}),
      ...(e.stopDate ? { stopDate: e.stopDate } : {}),
    };
  }

  listExecutions(p: { statusFilter?: string; maxResults?: number; nextToken?: string } = {}): {
    executions: ExecutionListItem[];
    nextToken?: string;
  } {
    const max = p.maxResults && p.maxResults > 0 ? Math.min(p.maxResults, 1000) : 100;
    // Newest first, as AWS lists them.
    let all = [...this.executions.values()].reverse();
    if (p.statusFilter) all = all.filter((e) => e.status === p.statusFilter);
    let start = 0;
    if (p.nextToken) {
      const after = decodeToken(p.nextToken, 'after');
      const idx = all.findIndex((e) => e.arn === after);
      if (idx < 0) throw new SfnError('InvalidToken', 'Invalid pagination token.');
      start = idx + 1;
    }
    const page = all.slice(start, start + max);
    const more = start + max < all.length;
    return {
      executions: page.map((e) => ({
        executionArn: e.arn,
        stateMachineArn: this.stateMachineArn,
        name: e.name,
        status: e.status,
        startDate: e.startDate,
        ...(e.stopDate ? { stopDate: e.stopDate } : {}),
      })),
      ...(more ? { nextToken: encodeToken('after', page[page.length - 1]!.arn) } : {}),
    };
  }

  getExecutionHistory(
    arn: string,
    p: { reverseOrder?: boolean; maxResults?: number; nextToken?: string } = {},
  ): { events: HistoryEvent[]; nextToken?: string } {
    const e = this.get(arn);
    const max = p.maxResults && p.maxResults > 0 ? Math.min(p.maxResults, 1000) : 100;
    const events = p.reverseOrder ? [...e.history].reverse() : [...e.history];
    let start = 0;
    if (p.nextToken) {
      start = Number(decodeToken(p.nextToken, 'offset'));
      if (!Number.isInteger(start) || start < 0) throw new SfnError('InvalidToken', 'Invalid pagination token.');
    }
    const page = events.slice(start, start + max);
    return {
      events: page,
      ...(start + max < events.length ? { nextToken: encodeToken('offset', String(start + max)) } : {}),
    };
  }

  private pendingToken(taskToken: string): PendingToken {
    if (typeof taskToken !== 'string' || !TOKEN_PATTERN.test(taskToken)) {
      throw new SfnError('InvalidToken', 'Invalid Token');
    }
    const pending = this.tokens.get(taskToken);
    if (!pending) throw new SfnError('TaskDoesNotExist', 'Task Does Not Exist');
    if (pending.state !== 'open') throw new SfnError('TaskTimedOut', 'Task Timed Out');
    return pending;
  }

  sendTaskSuccess(taskToken: string, output: string): void {
    const pending = this.pendingToken(taskToken);
    let parsed: unknown;
    try {
      parsed = JSON.parse(output);
    } catch (err) {
      throw new SfnError('InvalidOutput', `Invalid Output: '${(err as Error).message}'`);
    }
    pending.state = 'succeeded';
    const exec = this.executions.get(pending.executionArn)!;
    if (exec.current && exec.current.token === taskToken) this.closeAttempt(exec, exec.current, 'Succeeded', { output });
    pending.resolve(parsed);
  }

  sendTaskFailure(taskToken: string, error?: string, cause?: string): void {
    const pending = this.pendingToken(taskToken);
    pending.state = 'failed';
    const exec = this.executions.get(pending.executionArn)!;
    if (exec.current && exec.current.token === taskToken) {
      this.closeAttempt(exec, exec.current, 'Failed', { error: error ?? '', cause: cause ?? '' });
    }
    pending.reject(stateError(error ?? '', cause ?? ''));
  }

  stopExecution(arn: string, error?: string, cause?: string): { stopDate: Date } {
    const e = this.get(arn);
    if (e.status === 'RUNNING') {
      if (error !== undefined) e.error = error;
      if (cause !== undefined) e.cause = cause;
      this.finish(e, 'ABORTED', 'ExecutionAborted', {
        executionAbortedEventDetails: { ...(error !== undefined ? { error } : {}), ...(cause !== undefined ? { cause } : {}) },
      });
      e.abort();
    }
    return { stopDate: e.stopDate ?? new Date() };
  }

  async waitForExecution(arn: string): Promise<ExecutionDescription> {
    const e = this.get(arn);
    await e.done;
    return this.describeExecution(arn);
  }

  /**
   * Aborts every running execution and waits until their logs are closed. `reason` is what their
   * history and DescribeExecution then say (the local run passes Interrupted and why).
   */
  async close(reason: { error: string; cause: string } = { error: 'LocalStepFunctions.Closed', cause: 'The local Step Functions engine was closed.' }): Promise<void> {
    const running = [...this.executions.values()].filter((e) => e.status === 'RUNNING');
    for (const e of running) this.stopExecution(e.arn, reason.error, reason.cause);
    await Promise.all(running.map((e) => e.done));
  }
}

/**
 * StartExecution's checks of `input`, as AWS makes them: at most 256 KiB of UTF-8 (ValidationException)
 * and JSON (InvalidExecutionInput); and at most `maxDepth` levels deep, which the library can run
 * without overflowing its stack.
 */
function parseExecutionInput(input: string, maxDepth: number): unknown {
  const bytes = Buffer.byteLength(input, 'utf8');
  if (bytes > MAX_EXECUTION_INPUT_BYTES) {
    throw new SfnError(
      'ValidationException',
      `1 validation error detected: Value at 'input' failed to satisfy constraint: Member must have length less than or equal to ${MAX_EXECUTION_INPUT_BYTES} (got ${bytes} bytes)`,
    );
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(input);
  } catch (err) {
    throw new SfnError('InvalidExecutionInput', `Invalid State Machine Execution Input: '${(err as Error).message}'`);
  }
  const depth = nestingDepth(parsed);
  if (depth > maxDepth) {
    throw new SfnError('InvalidExecutionInput', `Invalid State Machine Execution Input: nested ${depth} levels deep, at most ${maxDepth} are accepted`);
  }
  return parsed;
}

function encodeToken(kind: string, value: string): string {
  return Buffer.from(JSON.stringify({ [kind]: value })).toString('base64url');
}

function decodeToken(token: string, kind: string): string {
  try {
    const value = (JSON.parse(Buffer.from(token, 'base64url').toString('utf8')) as Record<string, unknown>)[kind];
    if (typeof value === 'string') return value;
  } catch {
    // fall through
  }
  throw new SfnError('InvalidToken', 'Invalid pagination token.');
}
