/**
 * A run the local pipeline stops under it (Ctrl-C, SIGTERM, its launcher gone) was interrupted, not
 * failed: the engine's close path records it ABORTED with the reason given, in DescribeExecution and in
 * the history, as StopExecution does on AWS — never `failed (LocalStepFunctions.Closed)` (issue 8).
 */
import { LocalStepFunctions, type ExecutionEvent } from '../../local/stepfunctions';
import { validatedFileFor } from '../sfn-validated';

const ARN = 'arn:aws:states:us-east-1:000000000000:stateMachine:lifecycle-test';

/** A Task that runs until the engine closes (a training that is still going). */
const definition = {
  StartAt: 'AwaitTraining',
  States: {
    AwaitTraining: {
      Type: 'Task',
      Resource: 'arn:aws:lambda:us-east-1:000000000000:function:await',
      Catch: [{ ErrorEquals: ['States.ALL'], ResultPath: '$.error', Next: 'Failed' }],
      End: true,
    },
    Failed: { Type: 'Fail', ErrorPath: '$.error.Error', CausePath: '$.error.Cause' },
  },
};

describe('closing the local engine under a running execution', () => {
  it('records the execution ABORTED with the interruption as its error and cause', async () => {
    // GIVEN an execution inside a Task that does not end by itself
    let entered!: () => void;
    const inTask = new Promise<void>((r) => (entered = r));
    let finishTask!: (v: unknown) => void;
    const task = new Promise((r) => (finishTask = r));
    const sfn = new LocalStepFunctions({
      definition,
      validatedFile: validatedFileFor(definition),
      stateMachineArn: ARN,
      taskHandlers: { AwaitTraining: () => (entered(), task) },
    });
    const events: ExecutionEvent[] = [];
    sfn.on('event', (e: ExecutionEvent) => events.push(e));
    const { executionArn } = sfn.startExecution({ name: 'interrupted-run', input: '{}' });
    await inTask;

    // WHEN the local run stops (as pipeline.stop does on Ctrl-C)
    const cause = 'The local run was interrupted: interrupted (Ctrl-C).';
    await sfn.close({ error: 'Interrupted', cause });
    finishTask({}); // the handler returns late, as a Lambda would: the library then clears its Task timeout

    // THEN it is ABORTED with that reason, and no Catch ran (it did not fail)
    const described = await sfn.waitForExecution(executionArn);
    expect(described).toMatchObject({ status: 'ABORTED', error: 'Interrupted', cause });
    expect(events.map((e) => e.type)).toContain('ExecutionAborted');
    expect(events.map((e) => e.type)).not.toContain('ExecutionFailed');
    expect(events.some((e) => e.stateName === 'Failed')).toBe(false);
    const aborted = sfn.getExecutionHistory(executionArn).events.find((e) => e.type === 'ExecutionAborted') as unknown as { executionAbortedEventDetails: unknown };
    expect(aborted.executionAbortedEventDetails).toEqual({ error: 'Interrupted', cause });
  });
});
