/** The local Step Functions engine on a small pipeline-shaped machine; each test runs executions of its own. */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalStepFunctions, type ExecutionEvent } from '../../local/stepfunctions';
import { taskSubmitted } from './history-events';

const ARN = 'arn:aws:states:us-east-1:000000000000:stateMachine:engine-test';

/** A small machine shaped like the pipeline: a direct Lambda task, a waitForTaskToken approval with a timeout path, a Choice and a Fail. */
const definition = {
  StartAt: 'Prepare',
  States: {
    Prepare: {
      Type: 'Task',
      Resource: 'arn:aws:lambda:us-east-1:000000000000:function:prepare',
      Parameters: { 'input.$': '$', 'executionName.$': '$$.Execution.Name' },
      ResultPath: '$',
      ResultSelector: { 'model.$': '$.model', 'run.$': '$.run' },
      Catch: [{ ErrorEquals: ['States.ALL'], ResultPath: '$.error', Next: 'Failed' }],
      Next: 'RequestApproval',
    },
    RequestApproval: {
      Type: 'Task',
      Resource: 'arn:aws:states:::lambda:invoke.waitForTaskToken',
      Parameters: { FunctionName: 'arn:aws:lambda:us-east-1:000000000000:function:approve', Payload: { 'taskToken.$': '$$.Task.Token', 'state.$': '$' } },
      TimeoutSecondsPath: '$.run.approvalTimeoutSeconds',
      ResultPath: '$.approval',
      Catch: [
        { ErrorEquals: ['States.Timeout'], ResultPath: '$.error', Next: 'Expired' },
        { ErrorEquals: ['States.ALL'], ResultPath: '$.error', Next: 'Failed' },
      ],
      Next: 'Decision',
    },
    Decision: {
      Type: 'Choice',
      Choices: [{ Variable: '$.approval.decision', StringEquals: 'approve', Next: 'Done' }],
      Default: 'Rejected',
    },
    Rejected: { Type: 'Pass', Parameters: { Error: 'ApprovalRejected', Cause: 'rejected' }, ResultPath: '$.error', Next: 'Failed' },
    Expired: { Type: 'Pass', Parameters: { Error: 'ApprovalTimedOut', Cause: 'expired' }, ResultPath: '$.error', Next: 'Failed' },
    Done: { Type: 'Succeed' },
    Failed: { Type: 'Fail', ErrorPath: '$.error.Error', CausePath: '$.error.Cause' },
  },
};

class TrainingFailedError extends Error {
  override name = 'TrainingFailedError';
}

describe('LocalStepFunctions', () => {
  /** By execution ARN: what RequestApproval was invoked with. */
  const tokens = new Map<string, string>();
  const payloads = new Map<string, unknown>();
  const events: ExecutionEvent[] = [];
  let sfn: LocalStepFunctions;

  beforeAll(() => {
    sfn = new LocalStepFunctions({
      definition: JSON.stringify(definition),
      stateMachineArn: ARN,
      taskHandlers: {
        Prepare: async (input) => {
          const { input: request } = input as { input: { fail?: boolean; timeout?: number } };
          if (request.fail) throw new TrainingFailedError('the trainer exited with code 1');
          // ResultPath "$": the result replaces the state (as the pipeline's Prepare does).
          return { model: (request as { model?: string }).model ?? null, run: { approvalTimeoutSeconds: request.timeout ?? 3600 } };
        },
        RequestApproval: async (payload, ctx) => {
          payloads.set(ctx.executionArn, payload);
          tokens.set(ctx.executionArn, ctx.taskToken!);
          return { published: true };
        },
      },
    });
    sfn.on('event', (e: ExecutionEvent) => events.push(e));
  });
  afterAll(() => sfn.close());

  /** The execution's approval token, once RequestApproval has been submitted (its handler has returned). */
  const waitForToken = async (executionArn: string): Promise<string> => {
    await taskSubmitted(sfn, executionArn, 'RequestApproval');
    const token = tokens.get(executionArn);
    if (!token) throw new Error(`RequestApproval of ${executionArn} was submitted without its handler seeing a token`);
    return token;
  };

  it('resumes a waitForTaskToken task with SendTaskSuccess and records AWS-shaped history', async () => {
    const { executionArn } = sfn.startExecution({ name: 'approve-1', input: '{"model":"m"}' });
    expect(executionArn).toBe('arn:aws:states:us-east-1:000000000000:execution:engine-test:approve-1');
    const token = await waitForToken(executionArn);
    expect(payloads.get(executionArn)).toEqual({ taskToken: token, state: { model: 'm', run: { approvalTimeoutSeconds: 3600 } } });
    expect(sfn.describeExecution(executionArn).status).toBe('RUNNING');

    sfn.sendTaskSuccess(token, JSON.stringify({ decision: 'approve', by: 'alice' }));
    const done = await sfn.waitForExecution(executionArn);
    expect(done.status).toBe('SUCCEEDED');
    expect(JSON.parse(done.output!)).toMatchObject({ approval: { decision: 'approve', by: 'alice' } });
    expect(() => sfn.sendTaskSuccess(token, '{}')).toThrow(expect.objectContaining({ name: 'TaskTimedOut' }));

    const { events: history } = sfn.getExecutionHistory(executionArn);
    expect(history.map((e) => e.type)).toEqual([
      'ExecutionStarted',
      'TaskStateEntered',
      'LambdaFunctionScheduled',
      'LambdaFunctionStarted',
      'LambdaFunctionSucceeded',
      'TaskStateExited',
      'TaskStateEntered',
      'TaskScheduled',
      'TaskStarted',
      'TaskSubmitted',
      'TaskSucceeded',
      'TaskStateExited',
      'ChoiceStateEntered',
      'ChoiceStateExited',
      'SucceedStateEntered',
      'SucceedStateExited',
      'ExecutionSucceeded',
    ]);
    expect(history.map((e) => e.id)).toEqual(history.map((_, i) => i + 1));
    const scheduled = history.find((e) => e.type === 'TaskScheduled')!.taskScheduledEventDetails!;
    expect(scheduled).toMatchObject({ resourceType: 'lambda', resource: 'invoke.waitForTaskToken', timeoutInSeconds: 3600 });
    expect(JSON.parse(scheduled.parameters)).not.toHaveProperty('__mlpipeTimeoutSeconds');
    expect(history[1]!.stateEnteredEventDetails).toEqual({ name: 'Prepare', input: '{"model":"m"}', inputDetails: { truncated: false } });
    expect(events.filter((e) => e.executionArn === executionArn).map((e) => e.type)).toEqual(history.map((e) => e.type));
  });

  it('fails the state with SendTaskFailure: error name and cause reach Catch and the Fail state', async () => {
    const { executionArn } = sfn.startExecution({ name: 'reject-1', input: '{}' });
    const token = await waitForToken(executionArn);
    sfn.sendTaskFailure(token, 'ApprovalDenied', 'not good enough');
    const done = await sfn.waitForExecution(executionArn);
    expect(done).toMatchObject({ status: 'FAILED', error: 'ApprovalDenied', cause: 'not good enough' });
    const types = sfn.getExecutionHistory(executionArn).events.map((e) => e.type);
    expect(types).toContain('TaskFailed');
    expect(types.slice(-2)).toEqual(['FailStateEntered', 'ExecutionFailed']);
  });

  it('times out a task token after TimeoutSecondsPath (read from the state input) and the token then answers TaskTimedOut', async () => {
    const { executionArn } = sfn.startExecution({ name: 'expire-1', input: '{"timeout":1}' });
    const token = await waitForToken(executionArn);
    const done = await sfn.waitForExecution(executionArn);
    expect(done).toMatchObject({ status: 'FAILED', error: 'ApprovalTimedOut' });
    expect(sfn.getExecutionHistory(executionArn).events.find((e) => e.type === 'TaskTimedOut')?.taskTimedOutEventDetails?.error).toBe('States.Timeout');
    expect(() => sfn.sendTaskSuccess(token, '{}')).toThrow(expect.objectContaining({ name: 'TaskTimedOut' }));
  });

  it('names a direct Lambda error by its name, with a Lambda-shaped cause', async () => {
    const { executionArn } = sfn.startExecution({ name: 'fail-1', input: '{"fail":true}' });
    const done = await sfn.waitForExecution(executionArn);
    expect(done.status).toBe('FAILED');
    expect(done.error).toBe('TrainingFailedError');
    expect(JSON.parse(done.cause!)).toMatchObject({ errorType: 'TrainingFailedError', errorMessage: 'the trainer exited with code 1' });
    const failed = sfn.getExecutionHistory(executionArn).events.find((e) => e.type === 'LambdaFunctionFailed');
    expect(failed?.lambdaFunctionFailedEventDetails?.error).toBe('TrainingFailedError');
  });

  it('applies StartExecution name rules like AWS', async () => {
    const first = sfn.startExecution({ name: 'dup-1', input: '{"a":1}' });
    // Same name and input while running: the same execution.
    expect(sfn.startExecution({ name: 'dup-1', input: '{"a":1}' })).toEqual(first);
    expect(() => sfn.startExecution({ name: 'dup-1', input: '{"a":2}' })).toThrow(expect.objectContaining({ name: 'ExecutionAlreadyExists' }));
    sfn.stopExecution(first.executionArn, 'Stopped', 'by the test');
    expect(sfn.describeExecution(first.executionArn)).toMatchObject({ status: 'ABORTED', error: 'Stopped' });
    // Closed: refused whatever the input.
    expect(() => sfn.startExecution({ name: 'dup-1', input: '{"a":1}' })).toThrow(expect.objectContaining({ name: 'ExecutionAlreadyExists' }));
    expect(() => sfn.startExecution({ name: 'bad name', input: '{}' })).toThrow(expect.objectContaining({ name: 'InvalidName' }));
    expect(() => sfn.startExecution({ name: 'x'.repeat(81), input: '{}' })).toThrow(expect.objectContaining({ name: 'InvalidName' }));
    expect(() => sfn.startExecution({ name: 'ok', input: '{nope' })).toThrow(expect.objectContaining({ name: 'InvalidExecutionInput' }));
    expect(() => sfn.describeExecution(`${ARN.replace(':stateMachine:', ':execution:')}:missing`)).toThrow(expect.objectContaining({ name: 'ExecutionDoesNotExist' }));
    expect(() => sfn.sendTaskSuccess('not-a-token', '{}')).toThrow(expect.objectContaining({ name: 'InvalidToken' }));
    expect(() => sfn.sendTaskSuccess('A'.repeat(64), '{}')).toThrow(expect.objectContaining({ name: 'TaskDoesNotExist' }));
  });

  it('lists newest first, filters by status and pages', async () => {
    // Executions of its own (other tests' may be listed too, before or after these): one succeeds, two fail.
    const ok = sfn.startExecution({ name: 'list-ok', input: '{}' });
    sfn.sendTaskSuccess(await waitForToken(ok.executionArn), JSON.stringify({ decision: 'approve' }));
    await sfn.waitForExecution(ok.executionArn);
    for (const name of ['list-fail-1', 'list-fail-2']) await sfn.waitForExecution(sfn.startExecution({ name, input: '{"fail":true}' }).executionArn);
    const mine = (names: string[]) => names.filter((n) => n.startsWith('list-'));
    const all = sfn.listExecutions().executions.map((e) => e.name);
    expect(mine(all)).toEqual(['list-fail-2', 'list-fail-1', 'list-ok']);
    expect(mine(sfn.listExecutions({ statusFilter: 'SUCCEEDED' }).executions.map((e) => e.name))).toEqual(['list-ok']);
    expect(sfn.listExecutions({ statusFilter: 'FAILED' }).executions.map((e) => e.status)).not.toContain('SUCCEEDED');
    const page1 = sfn.listExecutions({ maxResults: 2 });
    const page2 = sfn.listExecutions({ maxResults: 2, nextToken: page1.nextToken! });
    expect([...page1.executions, ...page2.executions].map((e) => e.name)).toEqual(all.slice(0, 4));
  });
});

describe('LocalStepFunctions definition validation (validatedFile)', () => {
  const handlers = { Prepare: async () => ({}), RequestApproval: async () => ({}) };
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'mlpipe-validated-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('records a definition that passed, and still validates a different one', () => {
    const validatedFile = join(dir, 'definition.validated');
    // GIVEN a definition that passed validation once
    new LocalStepFunctions({ definition, stateMachineArn: ARN, taskHandlers: handlers, validatedFile }).close();
    expect(readFileSync(validatedFile, 'utf8')).toMatch(/^[0-9a-f]{64}$/);
    // WHEN another one, invalid (a Choice without a Next or Default it can reach), starts with the record of the first
    const invalid = { ...definition, States: { ...definition.States, Decision: { Type: 'Choice', Choices: [{ Variable: '$.x', StringEquals: 'y', Next: 'Nowhere' }] } } };
    // THEN the library validates it and refuses it
    expect(() => new LocalStepFunctions({ definition: invalid, stateMachineArn: ARN, taskHandlers: handlers, validatedFile })).toThrow();
  });

  it('an invalid definition is refused whatever a record from elsewhere says', () => {
    const validatedFile = join(dir, 'definition.validated');
    writeFileSync(validatedFile, 'not a hash of this definition');
    const invalid = { ...definition, StartAt: 'Missing' };
    expect(() => new LocalStepFunctions({ definition: invalid, stateMachineArn: ARN, taskHandlers: handlers, validatedFile })).toThrow();
    expect(readFileSync(validatedFile, 'utf8')).toBe('not a hash of this definition');
  });
});
