/**
 * The run cost estimate (functions/shared/run-cost.ts) on histories in GetExecutionHistory's shapes, with exact
 * numbers: written out, and recorded by the local Step Functions engine for retries (the shapes it makes).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { LocalStepFunctions } from '../../local/stepfunctions';
import { WAIT_FOR_TOKEN } from '../../local/stepfunctions/definition';
import { taskSubmitted } from '../stepfunctions/history-events';
import { costLines, estimateRunCost, formatUsd, PRICES, secondsInState, type CostHistoryEvent } from '../../functions/shared/run-cost';

const T0 = Date.parse('2026-01-01T12:00:00.000Z');
const at = (seconds: number) => new Date(T0 + seconds * 1000);
const entered = (type: string, name: string, s: number): CostHistoryEvent => ({ type: `${type}StateEntered`, timestamp: at(s), stateEnteredEventDetails: { name } });
const event = (type: string, s: number): CostHistoryEvent => ({ type, timestamp: at(s) });

/** Prepare (0.5 s), a Choice, EvaluateModel (2.001 s at 1 GB), RequestApproval (a 0.2 s invoke, then ~96 s waiting), RecordRelease running. */
const HISTORY: CostHistoryEvent[] = [
  event('ExecutionStarted', 0),
  entered('Task', 'Prepare', 0.01),
  event('LambdaFunctionScheduled', 0.015),
  event('LambdaFunctionStarted', 0.02),
  event('LambdaFunctionSucceeded', 0.52),
  event('TaskStateExited', 0.53),
  entered('Choice', 'ResumeRun', 0.54),
  entered('Task', 'EvaluateModel', 1),
  event('LambdaFunctionStarted', 1),
  event('LambdaFunctionSucceeded', 3.001),
  entered('Task', 'RequestApproval', 4),
  event('TaskScheduled', 4),
  event('TaskStarted', 4),
  event('TaskSubmitted', 4.2),
  event('TaskSucceeded', 100),
  entered('Choice', 'ApprovalDecision', 100),
  entered('Task', 'RecordRelease', 101),
  event('LambdaFunctionStarted', 101),
];
const MEMORY = { '*': 256, EvaluateModel: 1024 };

describe('estimateRunCost', () => {
  it('counts transitions, GB-s per attempt at its state\'s memory (a waitForTaskToken task only while invoked), requests and pod seconds', () => {
    // GIVEN a run whose 500m-CPU, 1-GPU training pod ran 60 s, and the RecordRelease attempt 0.3 s old
    const training = { submittedAt: at(1).toISOString(), completedAt: at(61).toISOString(), request: { cpu: '500m', gpus: 1 } };
    // WHEN
    const cost = estimateRunCost({ events: HISTORY, memory: MEMORY, training, region: 'us-east-1', now: at(101.3) });
    // THEN 0.125 + 2.001 (1 GB) + 0.05 + 0.075 GB-s over 4 requests; 6 states entered
    expect(cost.transitions).toEqual({ count: 6, usd: 0.00015 });
    expect(cost.lambda).toEqual({ gbSeconds: 2.251, requests: 4, usd: 0.000031 });
    // 30 vCPU-s at $0.0408/vCPU-h and 60 GPU-s at $1.006/h
    expect(cost.training).toEqual({ cpuSeconds: 30, gpuSeconds: 60, usd: 0.017107 });
    expect(cost.usd).toBe(0.017287);
    expect(cost).toMatchObject({ prices: 'us-east-1', asOf: at(101.3).toISOString() });
  });

  it('prices a region without a row as us-east-1 and says so; a retry has no pod time; an unfinished Job runs until Cleanup', () => {
    const training = { submittedAt: at(1).toISOString(), request: { cpu: '2', gpus: 0 } };
    const failed = [...HISTORY.slice(0, 8), entered('Task', 'Cleanup', 41), event('LambdaFunctionStarted', 41), event('LambdaFunctionSucceeded', 42)];
    const cost = estimateRunCost({ events: failed, memory: MEMORY, training, region: 'eu-north-1', now: at(50) });
    expect(cost.prices).toBe('us-east-1');
    expect(cost.training).toEqual({ cpuSeconds: 80, gpuSeconds: 0, usd: 0.000907 }); // 40 s x 2 CPU
    const retry = estimateRunCost({ events: failed, memory: MEMORY, training, trainingReused: true, region: 'us-west-2', now: at(50) });
    expect(retry.training).toEqual({ cpuSeconds: 0, gpuSeconds: 0, usd: 0 });
    expect(retry.prices).toBe('us-west-2');
    expect(PRICES['us-west-2']).toBeDefined();
  });

  it('refuses a memory table without "*" for a state it does not name', () => {
    expect(() => estimateRunCost({ events: HISTORY, memory: { EvaluateModel: 1024 }, region: 'us-east-1', now: at(102) })).toThrow(/no memory for state Prepare/);
  });

  it('shows each component on a line; the approval wait is the time in RequestApproval', () => {
    const cost = estimateRunCost({ events: HISTORY, memory: MEMORY, region: 'us-east-1', now: at(101.3) });
    expect(costLines(cost)).toEqual([
      '$0.00018 at us-east-1 list prices',
      'state transitions 6: $0.00015',
      'Lambda 2.251 GB-s, 4 requests: $0.000031',
      'training pod 0 CPU-s, 0 GPU-s: $0',
    ]);
    expect(formatUsd(1.234)).toBe('$1.23');
    expect(secondsInState(HISTORY, 'RequestApproval', at(200))).toBe(96);
    expect(secondsInState(HISTORY, 'Rollback', at(200))).toBeUndefined();
  });
});

describe('estimateRunCost on a history the local engine recorded', () => {
  /** The pipeline's own Retry clauses (2 s, FULL jitter), as deployed. */
  const PIPELINE = JSON.parse(readFileSync(join(__dirname, '..', '..', 'statemachine', 'pipeline.asl.json'), 'utf8')) as { States: Record<string, { Retry: unknown[] }> };
  const ARN = 'arn:aws:states:us-east-1:000000000000:stateMachine:run-cost';
  let sfn: LocalStepFunctions | undefined;

  beforeEach(() => {
    // The engine stamps its events with `new Date()`: a clock that moves only when a task says it spent time.
    // FULL jitter draws the wait before a retry from [0, interval]: it draws 0, so no test time is spent waiting.
    jest.useFakeTimers({ now: T0, doNotFake: ['hrtime', 'nextTick', 'performance', 'queueMicrotask', 'setImmediate', 'clearImmediate', 'setInterval', 'clearInterval', 'setTimeout', 'clearTimeout'] });
    jest.spyOn(Math, 'random').mockReturnValue(0);
  });
  afterEach(async () => {
    await sfn?.close();
    jest.restoreAllMocks();
    jest.useRealTimers();
  });

  it('counts each retry of a state as a transition (repeated LambdaFunctionScheduled and TaskScheduled), each attempt as a request', async () => {
    // GIVEN Prepare throttled once (0.1 s) then done (0.3 s), and RequestApproval's invocation failing once
    // (0.05 s) then submitted (0.15 s), approved a minute later: each retried by the pipeline's Retry clause
    const spend = (ms: number) => jest.setSystemTime(Date.now() + ms);
    /** An error as the Lambda service reports it, which the Retry clauses name. */
    const lambdaError = (name: string) => Object.assign(new Error('Rate exceeded'), { name });
    let prepareCalls = 0;
    let approvalCalls = 0;
    let token: string | undefined;
    const engine = new LocalStepFunctions({
      stateMachineArn: ARN,
      definition: {
        StartAt: 'Prepare',
        States: {
          Prepare: { Type: 'Task', Resource: 'arn:aws:lambda:us-east-1:000000000000:function:prepare', Retry: PIPELINE.States.Prepare!.Retry, Next: 'RequestApproval' },
          RequestApproval: {
            Type: 'Task',
            Resource: WAIT_FOR_TOKEN,
            Parameters: { FunctionName: 'arn:aws:lambda:us-east-1:000000000000:function:approve', Payload: { 'taskToken.$': '$$.Task.Token' } },
            Retry: PIPELINE.States.RequestApproval!.Retry,
            ResultPath: '$.approval',
            Next: 'Released',
          },
          Released: { Type: 'Succeed' },
        },
      },
      taskHandlers: {
        Prepare: async () => {
          prepareCalls += 1;
          spend(prepareCalls === 1 ? 100 : 300);
          if (prepareCalls === 1) throw lambdaError('Lambda.TooManyRequestsException');
          return { run: 'r' };
        },
        RequestApproval: async (_payload, ctx) => {
          approvalCalls += 1;
          spend(approvalCalls === 1 ? 50 : 150);
          if (approvalCalls === 1) throw lambdaError('Lambda.ServiceException');
          token = ctx.taskToken;
          return { published: true };
        },
      },
    });
    sfn = engine; // closed after the test, whatever its outcome
    const { executionArn } = engine.startExecution({ name: 'retried', input: '{}' });
    await taskSubmitted(engine, executionArn, 'RequestApproval');
    spend(60_000);
    engine.sendTaskSuccess(token!, '{"decision":"approve"}');
    expect((await engine.waitForExecution(executionArn)).status).toBe('SUCCEEDED');
    const { events } = engine.getExecutionHistory(executionArn, { maxResults: 1000 });
    expect(events.map((e) => e.type)).toEqual([
      'ExecutionStarted',
      // Prepare: an attempt failed, a second one scheduled in the same state
      ...['TaskStateEntered', 'LambdaFunctionScheduled', 'LambdaFunctionStarted', 'LambdaFunctionFailed'],
      ...['LambdaFunctionScheduled', 'LambdaFunctionStarted', 'LambdaFunctionSucceeded', 'TaskStateExited'],
      // RequestApproval: the invocation failed, a second one scheduled, submitted, then the token came back
      ...['TaskStateEntered', 'TaskScheduled', 'TaskStarted', 'TaskFailed'],
      ...['TaskScheduled', 'TaskStarted', 'TaskSubmitted', 'TaskSucceeded', 'TaskStateExited'],
      ...['SucceedStateEntered', 'SucceedStateExited', 'ExecutionSucceeded'],
    ]);

    // WHEN
    const now = new Date();
    const cost = estimateRunCost({ events, memory: { '*': 256, RequestApproval: 128 }, region: 'us-east-1', now });

    // THEN 3 states entered + a retry in each; 4 attempts: (0.1 + 0.3) s at 256 MB + (0.05 + 0.15) s at 128 MB
    expect(cost.transitions).toEqual({ count: 5, usd: 0.000125 });
    expect(cost.lambda).toEqual({ gbSeconds: 0.125, requests: 4, usd: 0.000002 });
    // The approval wait is the state's time, both attempts and the minute for the token included
    expect(secondsInState(events, 'RequestApproval', now)).toBe(60.2);
  });
});
