/**
 * statemachine/pipeline.asl.json: static checks (placeholders, transitions, timeouts, catches, retries,
 * loops, names) and end-to-end runs of its control flow on aws-local-stepfunctions. In the runs, stub
 * handlers stand in for the Lambdas; the thing under test is the ASL itself.
 */
import { readFileSync } from 'node:fs';
import { StateMachine, type StateMachineDefinition } from 'aws-local-stepfunctions';
import { prepareDefinition } from '../../local/stepfunctions/definition';
import { DEFINITION_SUBSTITUTION_NAMES, FUNCTION_SPECS } from '../../lib/constructs/pipeline-functions';
import { DEFINITION_FILE, placeholdersIn } from '../../lib/constructs/state-machine';
import {
  type AslDefinition,
  catchProblems,
  loopProblems,
  missingTargets,
  nonPascalCaseStates,
  retriesWithoutFullJitter,
  taskPlaceholder,
  tasksWithoutTimeout,
  unreachableStates,
} from './asl-checks';

const TEXT = readFileSync(DEFINITION_FILE, 'utf8');
const load = (): AslDefinition => JSON.parse(TEXT) as AslDefinition;
const DEF = load();

const isNotify = (def: AslDefinition) => (name: string) => taskPlaceholder(def.States[name] ?? { Type: '' }) === 'NotifyFunctionArn';
const isExitTask = (def: AslDefinition) => (name: string) =>
  ['NotifyFunctionArn', 'CleanupFunctionArn'].includes(taskPlaceholder(def.States[name] ?? { Type: '' }) ?? '');
const isAwait = (name: string) => name.startsWith('Await');

describe('pipeline.asl.json, statically', () => {
  it('uses only placeholders the construct substitutes, and every substitution is used', () => {
    // GIVEN the placeholders in the file and the names lib/ substitutes
    const used = placeholdersIn(TEXT);
    // THEN they are the same set
    expect(used.filter((p) => !DEFINITION_SUBSTITUTION_NAMES.includes(p))).toEqual([]);
    expect(DEFINITION_SUBSTITUTION_NAMES.filter((p) => !used.includes(p))).toEqual([]);
  });

  it('has no ${...} outside a Resource or FunctionName', () => {
    const stray: string[] = [];
    for (const [name, state] of Object.entries(DEF.States)) {
      const { Resource: _r, Parameters, ...rest } = state;
      const { FunctionName: _f, ...params } = Parameters ?? {};
      if (JSON.stringify(rest).includes('${') || JSON.stringify(params).includes('${')) stray.push(name);
    }
    expect(stray).toEqual([]);
  });

  it('every Next, Default, Choice and Catch target exists', () => {
    expect(missingTargets(DEF)).toEqual([]);
  });

  it('every state is reachable from StartAt', () => {
    expect(unreachableStates(DEF)).toEqual([]);
  });

  it('every Task (including the approval wait) has a timeout', () => {
    expect(tasksWithoutTimeout(DEF)).toEqual([]);
    expect(DEF.States.RequestApproval?.TimeoutSecondsPath).toBe('$.run.approvalTimeoutSeconds');
  });

  it('every Task catches States.ALL into Cleanup and no failure path ends without a notification', () => {
    expect(catchProblems(DEF, 'Cleanup', isNotify(DEF), isExitTask(DEF))).toEqual([]);
  });

  it('the gate, rejection and timeout states lead to Cleanup with $.error set', () => {
    for (const name of ['FailEvaluationGate', 'ExpireApproval', 'RejectModel']) {
      const state = DEF.States[name] as unknown as { Type: string; Next: string; ResultPath: string };
      expect({ name, type: state.Type, next: state.Next, resultPath: state.ResultPath }).toEqual({
        name, type: 'Pass', next: 'Cleanup', resultPath: '$.error',
      });
    }
  });

  it('every Retry uses full jitter', () => {
    expect(retriesWithoutFullJitter(DEF)).toEqual([]);
  });

  it('every Task retries the transient Lambda service errors (a push whose run failed cannot start again)', () => {
    // The starter names executions after repository + digest, so the same push never starts a second run:
    // a run lost to a Lambda hiccup would stay lost.
    const transient = ['Lambda.ServiceException', 'Lambda.AWSLambdaException', 'Lambda.SdkClientException', 'Lambda.TooManyRequestsException'];
    const without = Object.entries(DEF.States)
      .filter(([, s]) => s.Type === 'Task')
      .filter(([, s]) => !transient.every((e) => ((s as { Retry?: Array<{ ErrorEquals: string[] }> }).Retry ?? []).some((r) => r.ErrorEquals.includes(e) || r.ErrorEquals.includes('States.ALL'))))
      .map(([name]) => name);
    expect(without).toEqual([]);
  });

  it('every wait loop falls back to its Await state', () => {
    expect(loopProblems(DEF, isAwait)).toEqual([]);
    expect(Object.keys(DEF.States).filter(isAwait)).toHaveLength(5);
  });

  it('state names are PascalCase', () => {
    expect(nonPascalCaseStates(DEF)).toEqual([]);
  });

  it("each function's Lambda timeout is below the TimeoutSeconds of every state that calls it", () => {
    const tooLong: string[] = [];
    for (const [name, state] of Object.entries(DEF.States)) {
      const placeholder = taskPlaceholder(state);
      const spec = FUNCTION_SPECS.find((s) => s.placeholder === placeholder);
      if (placeholder === undefined || spec === undefined || state.TimeoutSeconds === undefined) continue;
      if (spec.timeout.toSeconds() >= state.TimeoutSeconds) {
        tooLong.push(`${name}: Lambda ${spec.timeout.toSeconds()} s >= state ${state.TimeoutSeconds} s`);
      }
    }
    expect(tooLong).toEqual([]);
  });
});

describe('the static checks catch broken copies', () => {
  // Each check must be able to fail: run it on a copy of the real file with one defect.
  it.each<[string, (d: AslDefinition) => void, (d: AslDefinition) => string[]]>([
    ['a dangling Next', (d) => { (d.States.DeployStaging as { Next: string }).Next = 'DeployStagign'; }, missingTargets],
    ['an orphan state', (d) => { d.States.Orphan = { Type: 'Succeed' }; }, unreachableStates],
    ['a Task without timeout', (d) => { delete d.States.EvaluateModel?.TimeoutSeconds; }, tasksWithoutTimeout],
    ['a retry without jitter', (d) => { const r = d.States.SubmitTraining?.Retry?.[0]; if (r) delete r.JitterStrategy; }, retriesWithoutFullJitter],
    ['a snake_case name', (d) => { d.States.deploy_staging = { Type: 'Succeed' }; }, nonPascalCaseStates],
    ['a Catch straight to the Fail state', (d) => { const c = d.States.SubmitTraining?.Catch?.[0]; if (c) c.Next = 'PipelineFailed'; },
      (d) => catchProblems(d, 'Cleanup', isNotify(d), isExitTask(d))],
    ['a Task without Catch', (d) => { delete d.States.AwaitTraining?.Catch; }, (d) => catchProblems(d, 'Cleanup', isNotify(d), isExitTask(d))],
    ['a loop that does not loop', (d) => { const c = d.States.IsTrainingComplete; if (c) c.Default = 'Cleanup'; }, (d) => loopProblems(d, isAwait)],
  ])('%s', (_what, breakIt, check) => {
    const copy = load();
    breakIt(copy);
    expect(check(copy)).not.toEqual([]);
  });
});

// ---------------------------------------------------------------------------------------------------
// End-to-end control flow on aws-local-stepfunctions

type Json = Parameters<StateMachine['run']>[0];
type Handler = (input: Json) => Promise<Json> | Json;
const TOKEN = 'task-token-for-tests';

class NamedError extends Error {
  constructor(name: string, message: string) {
    super(message);
    this.name = name;
  }
}

/** Returns each answer in turn, the last one from then on. */
function sequence(...answers: Array<Record<string, unknown>>): Handler {
  let calls = 0;
  return () => answers[Math.min(calls++, answers.length - 1)] as Json;
}

/** Returns `pending` the first time and `done` after: each wait loop goes round once. */
function pendingThen(done: Record<string, unknown>): Handler {
  let calls = 0;
  return () => (calls++ === 0 ? { status: 'pending' } : done) as Json;
}

function stubs(overrides: Record<string, Handler> = {}, approvalTimeoutSeconds = 60): Record<string, Handler> {
  return {
    Prepare: (input) => ({ run: { modelName: 'fashion-mnist', version: 'v1', approvalTimeoutSeconds, request: input } }) as Json,
    SubmitTraining: () => ({ status: 'pending', jobName: 'fashion-mnist-v1-train' }),
    // A Wait first (no progress yet), then a watch that sees the end.
    CheckTraining: sequence({ status: 'pending', waitSeconds: 10 }, { status: 'watch', waitSeconds: 70 }),
    AwaitTraining: () => ({ status: 'succeeded', metrics: { accuracy: 0.88 } }),
    DeployStaging: () => ({ status: 'pending' }),
    AwaitStagingRollout: pendingThen({ status: 'ready' }),
    ExposeStaging: () => ({ status: 'exposed' }),
    AwaitStagingEndpoint: pendingThen({ status: 'serving', endpoint: 'http://127.0.0.1:1' }),
    EvaluateModel: () => ({ passed: true, summary: 'accuracy 0.88 >= 0.85' }),
    RequestApproval: (input) => {
      const payload = (input as { Payload?: { taskToken?: string } }).Payload;
      if (payload?.taskToken !== TOKEN) throw new NamedError('TestError', 'RequestApproval did not get the task token');
      return { decision: 'approve', by: 'tester', at: '2025-01-01T00:00:00Z', from: '127.0.0.1' };
    },
    DeployProduction: () => ({ status: 'pending' }),
    AwaitProductionRollout: () => ({ status: 'ready' }),
    SwitchProductionTraffic: () => ({ status: 'exposed', previousVersion: null }),
    AwaitProductionEndpoint: () => ({ status: 'serving' }),
    RecordRelease: () => ({ status: 'released', manifestUri: 's3://b/m.json', recordedAt: 'now' }),
    CleanupStaging: () => ({ deleted: ['staging'] }),
    NotifySuccess: () => ({ messageId: 'm-1' }),
    Cleanup: () => ({ deleted: ['everything'] }),
    RecordFailure: (state) => ({ status: 'failed', manifestUri: '', recordedAt: 'now', sawError: (state as { error?: unknown }).error ?? null }) as Json,
    NotifyFailure: () => ({ messageId: 'm-2' }),
    ...overrides,
  };
}

interface RunOutcome {
  visited: string[];
  output?: unknown;
  failure?: Error;
  /** Input of each state by name (the last time it was entered). */
  inputs: Record<string, unknown>;
}

/**
 * The definition as deployed (every `${X}` replaced by a Lambda ARN, like definitionSubstitutions does),
 * through the local runner's adapter for where aws-local-stepfunctions 3.0.0 differs from AWS (it reads
 * TimeoutSecondsPath after Parameters): the same adapter `npm start` uses.
 */
function deployedDefinition(): StateMachineDefinition {
  const text = TEXT.replace(/\$\{([A-Za-z0-9_]+)\}/g, (_m, name: string) => `arn:aws:lambda:eu-west-1:123456789012:function:${name}`);
  const adapted = prepareDefinition(JSON.parse(text) as StateMachineDefinition);
  // structuredClone inside the adapter makes objects of Node's realm, not jest's sandbox, and the engine's
  // plain-object check then skips nested Parameters: copy back into this realm.
  return JSON.parse(JSON.stringify(adapted)) as StateMachineDefinition;
}

async function runPipeline(handlers: Record<string, Handler>): Promise<RunOutcome> {
  const machine = new StateMachine(deployedDefinition());
  // Retry intervals are zeroed: the tests are about where the flow goes, not how long it waits.
  const retryIntervalOverrides = Object.fromEntries(Object.keys(DEF.States).map((name) => [name, 0]));
  // So is the canary's bake (its length is the state's business: canary.ts computes it).
  const waitTimeOverrides = { BakeCanary: 0, WaitForTraining: 0 };
  const execution = machine.run({ image: 'registry.example/mlpipe/fashion-mnist-train@sha256:' + 'a'.repeat(64) }, {
    overrides: { taskResourceLocalHandlers: handlers, retryIntervalOverrides, waitTimeOverrides },
    context: {
      Execution: { Id: 'arn:aws:states:eu-west-1:123456789012:execution:pipeline:test', Name: 'test', StartTime: '2025-01-01T00:00:00Z' },
      Task: { Token: TOKEN },
    },
  });
  const visited: string[] = [];
  const inputs: Record<string, unknown> = {};
  const logs = (async () => {
    for await (const event of execution.eventLogs) {
      if (event.type === 'StateEntered') {
        visited.push(event.state.name);
        inputs[event.state.name] = event.state.input;
      }
    }
  })();
  let output: unknown;
  let failure: Error | undefined;
  try {
    output = await execution.result;
  } catch (err) {
    failure = err as Error;
  }
  await logs;
  return { visited, output, failure, inputs };
}

const FAILURE_TAIL = ['Cleanup', 'RecordFailure', 'NotifyFailure', 'PipelineFailed'];

describe('pipeline.asl.json, run locally', () => {
  it('happy path: every stage in order, each wait loop once, ending in Succeeded', async () => {
    // WHEN a run whose every step succeeds (each Await first reports pending)
    const run = await runPipeline(stubs());
    // THEN
    expect(run.failure).toBeUndefined();
    expect(run.visited).toEqual([
      'Prepare', 'ResumeRun', 'SubmitTraining',
      'CheckTraining', 'IsTrainingComplete', 'WaitForTraining', 'CheckTraining', 'IsTrainingComplete', 'AwaitTraining', 'IsTrainingComplete',
      'DeployStaging', 'AwaitStagingRollout', 'IsStagingRolledOut', 'AwaitStagingRollout', 'IsStagingRolledOut',
      'ExposeStaging', 'AwaitStagingEndpoint', 'IsStagingEndpointReady', 'AwaitStagingEndpoint', 'IsStagingEndpointReady',
      'EvaluateModel', 'EvaluationGate', 'RequestApproval', 'ApprovalDecision',
      'DeployProduction', 'AwaitProductionRollout', 'IsProductionRolledOut', 'ChooseRolloutStrategy',
      'SwitchProductionTraffic', 'AwaitProductionEndpoint', 'IsProductionEndpointReady',
      'RecordRelease', 'CleanupStaging', 'NotifySuccess', 'Succeeded',
    ]);
    const output = run.output as Record<string, { status?: string; decision?: string }>;
    expect(output.training?.status).toBe('succeeded');
    expect(output.approval?.decision).toBe('approve');
    expect(output.release?.status).toBe('released');
    expect(output).not.toHaveProperty('error');
    // Prepare gets the execution input plus the execution's identity, built by its Parameters block.
    expect((run.output as { run: { request: unknown } }).run.request).toEqual({
      input: { image: expect.stringContaining('@sha256:') },
      executionArn: 'arn:aws:states:eu-west-1:123456789012:execution:pipeline:test',
      executionName: 'test',
      startTime: expect.any(String), // the engine sets its own start time
    });
  });

  it('the training wait goes where CheckTraining and AwaitTraining plan it: Wait (for $.training.waitSeconds), watch, or on', async () => {
    // GIVEN a check that plans a Wait, one that plans a watch, a watch that ends before the Job does (so it
    // plans a Wait itself), then a check that finds the Job done
    const run = await runPipeline(stubs({
      CheckTraining: sequence({ status: 'pending', waitSeconds: 300 }, { status: 'watch', waitSeconds: 70 }, { status: 'succeeded', metrics: { accuracy: 0.9 } }),
      AwaitTraining: () => ({ status: 'pending', waitSeconds: 20 }),
    }));
    // THEN each status leads to its state, and the Job done at a check goes straight on to staging
    expect(run.failure).toBeUndefined();
    const training = run.visited.slice(run.visited.indexOf('SubmitTraining') + 1, run.visited.indexOf('DeployStaging'));
    expect(training).toEqual([
      'CheckTraining', 'IsTrainingComplete', 'WaitForTraining',
      'CheckTraining', 'IsTrainingComplete', 'AwaitTraining', 'IsTrainingComplete', 'WaitForTraining',
      'CheckTraining', 'IsTrainingComplete',
    ]);
    expect(run.inputs.WaitForTraining).toMatchObject({ training: { status: 'pending', waitSeconds: 20 } });
    // The Wait sleeps what the Lambda planned (the runs above override its length to 0).
    expect(DEF.States.WaitForTraining).toMatchObject({ Type: 'Wait', SecondsPath: '$.training.waitSeconds', Next: 'CheckTraining' });
  });

  it('a training failure seen by CheckTraining (no watch running) cleans up and notifies like one seen by the watch', async () => {
    const run = await runPipeline(stubs({
      CheckTraining: () => { throw new NamedError('TrainingFailedError', 'ImagePullBackOff: Back-off pulling image'); },
    }));
    expect(run.visited.slice(-4)).toEqual(FAILURE_TAIL);
    expect(run.visited).not.toContain('AwaitTraining');
    expect(run.inputs.Cleanup).toMatchObject({ error: { Error: 'TrainingFailedError', Cause: 'ImagePullBackOff: Back-off pulling image' } });
  });

  it('a training failure goes Cleanup -> RecordFailure -> NotifyFailure -> PipelineFailed with $.error set', async () => {
    const run = await runPipeline(stubs({
      AwaitTraining: () => { throw new NamedError('TrainingFailedError', 'BackoffLimitExceeded: loss is NaN'); },
    }));
    expect(run.visited.slice(-4)).toEqual(FAILURE_TAIL);
    expect(run.visited).not.toContain('DeployStaging');
    expect(run.inputs.Cleanup).toMatchObject({ error: { Error: 'TrainingFailedError', Cause: 'BackoffLimitExceeded: loss is NaN' } });
    expect(run.inputs.NotifyFailure).toMatchObject({ error: { Error: 'TrainingFailedError' }, release: { status: 'failed' } });
    expect(run.failure).toBeDefined();
  });

  it('a transient Kubernetes error is retried, not failed', async () => {
    let calls = 0;
    const run = await runPipeline(stubs({
      SubmitTraining: () => {
        if (calls++ === 0) throw new NamedError('KubernetesUnavailableError', '503 from the API server');
        return { status: 'pending' };
      },
    }));
    expect(calls).toBe(2);
    expect(run.visited.at(-1)).toBe('Succeeded');
  });

  it.each([
    ['DeployStaging', 'the trained model', ['Prepare', 'ResumeRun', 'DeployStaging']],
    ['RequestApproval', 'the trained model and its passed evaluation', ['Prepare', 'ResumeRun', 'RequestApproval']],
  ])('a retry resuming at %s reuses %s: no training step runs, and it ends released', async (from, _what, start) => {
    // GIVEN Prepare found a failed run to continue (functions/shared/resume.ts) and says where
    const retried = stubs();
    const run = await runPipeline({
      ...retried,
      Prepare: (input) => ({
        run: { modelName: 'fashion-mnist', version: 'v1', approvalTimeoutSeconds: 60, request: input, retry: { of: 'arn:aws:states:eu-west-1:123456789012:execution:pipeline:failed', from } },
        training: { status: 'succeeded', jobName: 'fashion-mnist-v1-train' },
        ...(from === 'RequestApproval' ? { evaluation: { passed: true, summary: 'reused' } } : {}),
      }) as Json,
    });
    // THEN the Choice after Prepare jumps there, and nothing before it runs again
    expect(run.failure).toBeUndefined();
    expect(run.visited.slice(0, 3)).toEqual(start);
    expect(run.visited).not.toContain('SubmitTraining');
    expect(run.visited).not.toContain('AwaitTraining');
    expect(run.visited.includes('EvaluateModel')).toBe(from === 'DeployStaging');
    expect(run.visited.at(-1)).toBe('Succeeded');
  });

  it('a failed Prepare (bad input) still cleans up and notifies', async () => {
    const run = await runPipeline(stubs({ Prepare: () => { throw new NamedError('InvalidInputError', 'image: must be pinned'); } }));
    expect(run.visited).toEqual(['Prepare', 'FailPrepare', ...FAILURE_TAIL]);
    expect(run.inputs.Cleanup).toMatchObject({ error: { Error: 'InvalidInputError' } });
  });

  it('a failing Cleanup does not stop the failure notification', async () => {
    let cleanups = 0;
    const run = await runPipeline(stubs({
      AwaitStagingRollout: () => { throw new NamedError('RolloutFailedError', 'CrashLoopBackOff'); },
      Cleanup: () => { cleanups++; throw new NamedError('KubernetesUnavailableError', 'down'); },
    }));
    expect(cleanups).toBe(4); // first try + 3 retries
    expect(run.visited.slice(-3)).toEqual(['RecordFailure', 'NotifyFailure', 'PipelineFailed']);
    expect(run.inputs.NotifyFailure).toMatchObject({ error: { Error: 'RolloutFailedError' }, cleanupError: { Error: 'KubernetesUnavailableError' } });
  });

  it('a model that fails the gate never reaches RequestApproval', async () => {
    const run = await runPipeline(stubs({ EvaluateModel: () => ({ passed: false, summary: 'accuracy 0.61 < 0.85' }) }));
    expect(run.visited).not.toContain('RequestApproval');
    expect(run.visited.slice(-5)).toEqual(['FailEvaluationGate', ...FAILURE_TAIL]);
    expect(run.inputs.Cleanup).toMatchObject({ error: { Error: 'EvaluationGateFailed', Cause: 'accuracy 0.61 < 0.85' } });
  });

  it('nobody decides before the approval timeout -> ExpireApproval', async () => {
    // GIVEN a 1 s approval timeout and an approval that never comes
    const run = await runPipeline(stubs({ RequestApproval: () => new Promise<Json>(() => undefined) }, 1));
    expect(run.visited.slice(-6)).toEqual(['RequestApproval', 'ExpireApproval', ...FAILURE_TAIL]);
    expect(run.inputs.Cleanup).toMatchObject({ error: { Error: 'ApprovalTimedOut' } });
    expect(run.visited).not.toContain('DeployProduction');
  });

  /** AwaitProductionRollout as the handler answers: the stage it was given (DeployProduction's decision included), now ready. */
  const keepsRollout: Handler = (state) => ({ ...(state as { production: Record<string, Json> }).production, status: 'ready' }) as Json;

  /** A canary's handlers: DeployProduction decides canary; Shift and Analyze walk `statuses` in turn. */
  function canaryStubs(analyses: string[]): Record<string, Handler> {
    const shifts = ['scaling', 'baking', 'baking', 'baking'];
    const canary = (status: string) => ({ status, failure: status === 'rollback' ? 'Canary v1 failed at 10 %: error rate 20 %' : undefined }) as Json;
    return stubs({
      DeployProduction: () => ({ status: 'pending', rollout: { strategy: 'canary', stableVersion: 'v0', reason: 'canary over v0' } }),
      AwaitProductionRollout: keepsRollout,
      ShiftCanaryTraffic: () => canary(shifts.shift() ?? 'baking'),
      AnalyzeCanary: () => canary(analyses.shift() ?? 'scaling'),
      AbortCanary: (state) => ({ ...(state as { canary: Record<string, Json> }).canary, status: 'rolledBack' }) as Json,
    });
  }

  it('canary: each step is shifted, baked by a Wait and analysed until the last step promotes the candidate', async () => {
    // GIVEN a canary whose first step waits for its pods once, then three steps (10, 50, 100 %) each analysed twice
    const run = await runPipeline(canaryStubs(['baking', 'scaling', 'baking', 'scaling', 'baking', 'promote']));
    // THEN the bake is a Wait state (no Lambda), and the promotion is the usual switch and endpoint check
    expect(run.failure).toBeUndefined();
    const production = run.visited.slice(run.visited.indexOf('ChooseRolloutStrategy'));
    expect(production).toEqual([
      'ChooseRolloutStrategy',
      'ShiftCanaryTraffic', 'IsCanaryShifted', 'ShiftCanaryTraffic', 'IsCanaryShifted',
      'BakeCanary', 'AnalyzeCanary', 'CanaryVerdict', 'BakeCanary', 'AnalyzeCanary', 'CanaryVerdict',
      'ShiftCanaryTraffic', 'IsCanaryShifted',
      'BakeCanary', 'AnalyzeCanary', 'CanaryVerdict', 'BakeCanary', 'AnalyzeCanary', 'CanaryVerdict',
      'ShiftCanaryTraffic', 'IsCanaryShifted',
      'BakeCanary', 'AnalyzeCanary', 'CanaryVerdict', 'BakeCanary', 'AnalyzeCanary', 'CanaryVerdict',
      'SwitchProductionTraffic', 'AwaitProductionEndpoint', 'IsProductionEndpointReady',
      'RecordRelease', 'CleanupStaging', 'NotifySuccess', 'Succeeded',
    ]);
    expect(run.output).toMatchObject({ canary: { status: 'promote' } });
  });

  it('canary: a failed analysis rolls back at once, then fails the run as CanaryAnalysisFailed with the evidence as Cause', async () => {
    const run = await runPipeline(canaryStubs(['rollback']));
    expect(run.visited.slice(run.visited.indexOf('AnalyzeCanary'))).toEqual(['AnalyzeCanary', 'CanaryVerdict', 'AbortCanary', 'FailCanary', ...FAILURE_TAIL]);
    expect(run.visited).not.toContain('SwitchProductionTraffic');
    expect(run.inputs.Cleanup).toMatchObject({ canary: { status: 'rolledBack' }, error: { Error: 'CanaryAnalysisFailed', Cause: 'Canary v1 failed at 10 %: error rate 20 %' } });
  });

  it('canary: an error inside the canary goes to Cleanup like any other failure', async () => {
    const run = await runPipeline(stubs({
      DeployProduction: () => ({ status: 'pending', rollout: { strategy: 'canary', stableVersion: 'v0', reason: 'canary' } }),
      AwaitProductionRollout: keepsRollout,
      ShiftCanaryTraffic: () => { throw new NamedError('CanaryError', 'stable Deployment gone'); },
    }));
    expect(run.visited.slice(-5)).toEqual(['ShiftCanaryTraffic', ...FAILURE_TAIL]);
    expect(run.inputs.Cleanup).toMatchObject({ error: { Error: 'CanaryError' } });
  });

  it('a decision of "reject" -> RejectModel', async () => {
    const run = await runPipeline(stubs({ RequestApproval: () => ({ decision: 'reject', by: 'tester', at: 'now', from: 'cli' }) }));
    expect(run.visited.slice(-6)).toEqual(['ApprovalDecision', 'RejectModel', ...FAILURE_TAIL]);
    expect(run.inputs.Cleanup).toMatchObject({ error: { Error: 'ApprovalRejected' } });
    expect(run.visited).not.toContain('DeployProduction');
  });

  it('a rejection sent as SendTaskFailure(ApprovalRejected) is caught into Cleanup with the decision as Cause', async () => {
    const decision = JSON.stringify({ decision: 'reject', by: 'tester', at: 'now', from: '10.0.0.1' });
    const run = await runPipeline(stubs({ RequestApproval: () => { throw new NamedError('ApprovalRejected', decision); } }));
    expect(run.visited.slice(-5)).toEqual(['RequestApproval', ...FAILURE_TAIL]);
    expect(run.inputs.Cleanup).toMatchObject({ error: { Error: 'ApprovalRejected', Cause: decision } });
  });
});
