/**
 * A run's log lines, from task handlers invoked against the local Kubernetes API and local S3 (the
 * functions-kube environment), read from stdout/stderr where Lambda and the local runner read them: every
 * line carries executionName, model, version and state; a function serving two states names the one it
 * runs; a new invocation drops the previous run's keys; POWERTOOLS_LOG_LEVEL filters, and Lambda's
 * AWS_LAMBDA_LOG_LEVEL wins over it (why the CDK sets both from one value).
 */
import type { Context } from 'aws-lambda';
import type { PipelineState, RunContext, TrainingResult } from '../../functions/shared/types';
import { IMAGES, startTestEnv, type TestEnv } from '../functions-kube/env';
import { captureLogs, type CapturedLogs } from './capture';

interface Handlers {
  prepare(event: unknown, context?: Context): Promise<PipelineState>;
  submitTraining(event: PipelineState, context?: Context): Promise<TrainingResult>;
  awaitTraining(event: PipelineState, context?: Context): Promise<TrainingResult>;
  cleanup(event: unknown, context?: Context): Promise<unknown>;
}

const LEVEL_SETTINGS = ['POWERTOOLS_LOG_LEVEL', 'AWS_LAMBDA_LOG_LEVEL'] as const;

/** The handlers as a fresh container loads them, with these level settings: the logger reads them once, at load. */
function loadHandlers(levels: Partial<Record<(typeof LEVEL_SETTINGS)[number], string>>): Handlers {
  const saved = LEVEL_SETTINGS.map((name) => [name, process.env[name]] as const);
  for (const name of LEVEL_SETTINGS) {
    if (levels[name] === undefined) delete process.env[name];
    else process.env[name] = levels[name];
  }
  let handlers: Handlers | undefined;
  try {
    jest.isolateModules(() => {
      handlers = {
        prepare: require('../../functions/prepare-run').handler,
        submitTraining: require('../../functions/submit-training').handler,
        awaitTraining: require('../../functions/await-training').handler,
        cleanup: require('../../functions/cleanup').handler,
      };
    });
  } finally {
    for (const [name, value] of saved) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  }
  return handlers!;
}

/** What Lambda passes; the local runner passes the same fields. */
const lambdaContext = (requestId: string): Context =>
  ({
    functionName: 'mlpipe-task',
    functionVersion: '$LATEST',
    invokedFunctionArn: 'arn:aws:lambda:us-east-1:000000000000:function:mlpipe-task',
    memoryLimitInMB: '512',
    awsRequestId: requestId,
    logGroupName: '/aws/lambda/mlpipe-task',
    logStreamName: 'local',
    callbackWaitsForEmptyEventLoop: true,
    getRemainingTimeInMillis: () => 60_000,
    done: () => undefined,
    fail: () => undefined,
    succeed: () => undefined,
  }) as Context;

let env: TestEnv;
let logs: CapturedLogs;
let runs = 0;

beforeAll(async () => {
  // The Await tasks watch this long per invocation: a slow trainer is then `pending` at once.
  env = await startTestEnv({ WATCH_BUDGET_SECONDS: '0.2' });
  logs = captureLogs();
});
afterAll(async () => {
  logs?.restore();
  await env?.stop();
});
beforeEach(() => logs.clear());

/** A fresh run's Prepare input: its own execution, model and start time. */
function prepareInput(image = IMAGES.trainerSlow): { input: unknown; executionArn: string; executionName: string; startTime: string } {
  runs += 1;
  const executionName = `logs-run-${runs}`;
  return {
    input: { image, modelName: `logs-model-${runs}` },
    executionArn: `arn:aws:states:us-east-1:000000000000:execution:mlpipe:${executionName}`,
    executionName,
    startTime: new Date(Date.UTC(2026, 0, 1, 0, 0, runs)).toISOString(),
  };
}

/** Prepare → SubmitTraining → AwaitTraining (pending: the trainer is slow): one run's first three states. */
async function startRun(h: Handlers): Promise<{ state: PipelineState; run: RunContext }> {
  const state = await h.prepare(prepareInput(), lambdaContext('req-prepare'));
  const training = await h.submitTraining(state, lambdaContext('req-submit'));
  const pending = await h.awaitTraining({ ...state, training }, lambdaContext('req-await'));
  expect(pending.status).toBe('pending');
  return { state: { ...state, training: pending }, run: state.run };
}

describe('every line says which run, which state', () => {
  it('Prepare → SubmitTraining → AwaitTraining → CleanupStaging / Cleanup: run keys, state, Lambda context, stdout', async () => {
    // GIVEN handlers loaded at DEBUG
    const h = loadHandlers({ POWERTOOLS_LOG_LEVEL: 'DEBUG' });
    // WHEN a run goes through its first states, then both cleanup states (the success path has no $.error)
    const { state, run } = await startRun(h);
    await h.cleanup(state, lambdaContext('req-cleanup-staging'));
    await h.cleanup({ ...state, error: { Error: 'TrainingFailedError', Cause: 'loss diverged' } }, lambdaContext('req-cleanup'));
    // THEN one line per fact, each naming its state
    expect(logs.lines.map((l) => [l.state, l.level, l.message])).toEqual([
      ['Prepare', 'INFO', 'run prepared'],
      ['SubmitTraining', 'INFO', 'training Job applied'],
      ['AwaitTraining', 'DEBUG', 'training: still waiting'],
      ['CleanupStaging', 'INFO', 'cleaned up'],
      ['Cleanup', 'INFO', 'cleaned up'],
    ]);
    // ...and every one carries the run, the service and its invocation's Lambda context, on stdout
    const requestIds = ['req-prepare', 'req-submit', 'req-await', 'req-cleanup-staging', 'req-cleanup'];
    logs.lines.forEach((line, i) =>
      expect(line).toMatchObject({
        service: 'mlpipe',
        executionName: run.executionName,
        model: run.modelName,
        version: run.version,
        function_request_id: requestIds[i],
        function_name: 'mlpipe-task',
        stream: 'stdout',
      }),
    );
    expect(logs.lines[3]).toMatchObject({ deleted: [`Job/${run.namespaces.staging}/${run.names.trainingJob}`] });
  });

  it('a failed step is logged with its run on stderr; the next invocation carries none of that run', async () => {
    const h = loadHandlers({ POWERTOOLS_LOG_LEVEL: 'DEBUG' });
    const { state, run } = await startRun(h);
    logs.clear();
    // WHEN AwaitTraining finds no Job (deleted meanwhile)...
    const gone = { ...state, training: { ...state.training!, jobName: 'no-such-job' } };
    await expect(h.awaitTraining(gone)).rejects.toThrow('does not exist');
    // ...and Cleanup then runs for an execution whose Prepare failed (no run in the state)
    await h.cleanup({ input: { image: 'x' }, error: { Error: 'InvalidInputError', Cause: 'image: required' } });
    // THEN the failure names its run and state, with the error's name and message only
    expect(logs.lines[0]).toMatchObject({
      level: 'ERROR',
      message: 'invocation failed',
      state: 'AwaitTraining',
      executionName: run.executionName,
      model: run.modelName,
      version: run.version,
      error: { name: 'TrainingFailedError', message: expect.stringContaining('no-such-job does not exist') },
      stream: 'stderr',
    });
    expect(Object.keys(logs.lines[0]!.error as object).sort()).toEqual(['message', 'name']);
    // ...and the next invocation's line has its own state but no keys of the previous run
    expect(logs.lines[1]).toMatchObject({ level: 'INFO', message: 'nothing to clean up: the run never started', state: 'Cleanup' });
    expect(logs.lines[1]).not.toHaveProperty('executionName');
    expect(logs.lines[1]).not.toHaveProperty('model');
    expect(logs.lines[1]).not.toHaveProperty('version');
    expect(logs.lines).toHaveLength(2);
  });
});

describe('level', () => {
  it('defaults to INFO: the Await loop\'s waiting lines are not written', async () => {
    const h = loadHandlers({});
    await startRun(h);
    expect(logs.lines.map((l) => [l.state, l.level])).toEqual([
      ['Prepare', 'INFO'],
      ['SubmitTraining', 'INFO'],
    ]);
  });

  it('POWERTOOLS_LOG_LEVEL=WARN keeps failures only', async () => {
    const h = loadHandlers({ POWERTOOLS_LOG_LEVEL: 'WARN' });
    const { state } = await startRun(h);
    await expect(h.awaitTraining({ ...state, training: { ...state.training!, jobName: 'no-such-job' } })).rejects.toThrow('does not exist');
    expect(logs.lines.map((l) => [l.state, l.level, l.message])).toEqual([['AwaitTraining', 'ERROR', 'invocation failed']]);
  });

  it('Lambda\'s AWS_LAMBDA_LOG_LEVEL (ApplicationLogLevel) wins over a lower POWERTOOLS_LOG_LEVEL', async () => {
    // GIVEN the two levels apart, as they would be if the CDK did not set both from one value
    const h = loadHandlers({ POWERTOOLS_LOG_LEVEL: 'DEBUG', AWS_LAMBDA_LOG_LEVEL: 'INFO' });
    await startRun(h);
    // THEN the DEBUG lines are silently lost
    expect(logs.lines.map((l) => [l.state, l.level])).toEqual([
      ['Prepare', 'INFO'],
      ['SubmitTraining', 'INFO'],
    ]);
  });
});
