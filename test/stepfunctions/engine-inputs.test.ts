/**
 * Execution input limits of the local Step Functions engine, as AWS applies them at StartExecution (256 KiB
 * of UTF-8, JSON), plus the nesting the engine can run; and a crash inside the engine fails the execution
 * with its reason instead of leaving it RUNNING. Through the real @aws-sdk/client-sfn where the API shows.
 */
import { InvalidExecutionInput, SFNClient, StartExecutionCommand } from '@aws-sdk/client-sfn';
import { LocalStepFunctions, startLocalSfnEndpoint, type LocalSfnEndpoint } from '../../local/stepfunctions';
import { LOCAL_AWS_ENV } from '../../local/s3';
import { MAX_ENGINE_INPUT_DEPTH, MAX_EXECUTION_INPUT_BYTES, nestingDepth } from '../../functions/shared/execution-input';
import { validatedFileFor } from '../sfn-validated';

const ARN = 'arn:aws:states:us-east-1:000000000000:stateMachine:engine-inputs';
/** A Task that passes its input on: the library queries and copies the whole input, as the pipeline's first state does. */
const definition = {
  StartAt: 'Echo',
  States: {
    Echo: { Type: 'Task', Resource: 'arn:aws:lambda:us-east-1:000000000000:function:echo', Parameters: { 'input.$': '$' }, ResultPath: '$.echo', End: true },
  },
};
const taskHandlers = { Echo: async (input: unknown) => ({ received: typeof input }) };

/** `{"pad": "<filler>"}` of exactly `bytes` bytes of UTF-8, padded with a 3-byte character so bytes ≠ characters. */
function inputOfBytes(bytes: number): string {
  const frame = Buffer.byteLength('{"pad":""}');
  const wide = '€'; // 3 bytes in UTF-8
  const count = Math.floor((bytes - frame) / 3);
  const text = `{"pad":"${wide.repeat(count)}${'x'.repeat(bytes - frame - count * 3)}"}`;
  expect(Buffer.byteLength(text, 'utf8')).toBe(bytes);
  return text;
}

/** Arrays nested `depth` levels: 2 bytes a level, so very deep input stays under the size limit. */
const nestedArrays = (depth: number): string => '['.repeat(depth) + ']'.repeat(depth);

describe('local Step Functions: execution input limits', () => {
  let sfn: LocalStepFunctions;
  let endpoint: LocalSfnEndpoint;
  let client: SFNClient;

  beforeAll(async () => {
    sfn = new LocalStepFunctions({ definition, validatedFile: validatedFileFor(definition), stateMachineArn: ARN, taskHandlers });
    endpoint = await startLocalSfnEndpoint(sfn);
    client = new SFNClient({
      region: 'us-east-1',
      endpoint: endpoint.endpoint,
      credentials: { accessKeyId: LOCAL_AWS_ENV.AWS_ACCESS_KEY_ID, secretAccessKey: LOCAL_AWS_ENV.AWS_SECRET_ACCESS_KEY },
      maxAttempts: 1,
    });
  });
  afterAll(async () => {
    await sfn.close();
    await endpoint.stop();
  });

  it('accepts an input of exactly 256 KiB of UTF-8 and runs it', async () => {
    const { executionArn } = await client.send(new StartExecutionCommand({ stateMachineArn: ARN, name: 'at-limit', input: inputOfBytes(MAX_EXECUTION_INPUT_BYTES) }));
    expect((await sfn.waitForExecution(executionArn!)).status).toBe('SUCCEEDED');
  });

  it.each([
    ['one byte over', MAX_EXECUTION_INPUT_BYTES + 1],
    ['44 KiB over', 300 * 1024],
  ])('refuses an input %s 256 KiB with ValidationException, and starts nothing', async (label, bytes) => {
    const name = `over-${bytes}`;
    const sent = client.send(new StartExecutionCommand({ stateMachineArn: ARN, name, input: inputOfBytes(bytes) }));
    await expect(sent).rejects.toMatchObject({
      name: 'ValidationException',
      message: expect.stringContaining(`Member must have length less than or equal to ${MAX_EXECUTION_INPUT_BYTES}`),
    });
    expect(() => sfn.describeExecution(ARN.replace(':stateMachine:', ':execution:') + ':' + name)).toThrow(/Execution Does Not Exist/);
  });

  it(`runs input nested ${MAX_ENGINE_INPUT_DEPTH} levels deep`, async () => {
    const { executionArn } = sfn.startExecution({ name: 'deep-at-limit', input: `{"deep":${nestedArrays(MAX_ENGINE_INPUT_DEPTH - 1)}}` });
    expect((await sfn.waitForExecution(executionArn)).status).toBe('SUCCEEDED');
  });

  it.each([MAX_ENGINE_INPUT_DEPTH + 1, 5_000, 100_000])('refuses input nested %i levels deep with InvalidExecutionInput naming the depth', async (depth) => {
    const sent = client.send(new StartExecutionCommand({ stateMachineArn: ARN, name: `deep-${depth}`, input: nestedArrays(depth) }));
    await expect(sent).rejects.toBeInstanceOf(InvalidExecutionInput);
    await expect(sent).rejects.toMatchObject({ message: `Invalid State Machine Execution Input: nested ${depth} levels deep, at most ${MAX_ENGINE_INPUT_DEPTH} are accepted` });
  });

  it('measures nesting without recursing', () => {
    expect([nestingDepth(1), nestingDepth(null), nestingDepth({}), nestingDepth([1, [2, { a: [] }]]), nestingDepth(JSON.parse(nestedArrays(200_000)))]).toEqual([0, 0, 1, 4, 200_000]);
  });
});

describe('local Step Functions: a crash inside the engine', () => {
  it('fails the execution with the reason (States.Runtime) instead of leaving it RUNNING', async () => {
    // GIVEN an engine told to accept any depth, and input deeper than the library can copy (its stack overflows)
    const sfn = new LocalStepFunctions({ definition, validatedFile: validatedFileFor(definition), stateMachineArn: ARN, taskHandlers, maxInputDepth: Number.POSITIVE_INFINITY });
    const types: string[] = [];
    sfn.on('event', (e: { type: string }) => types.push(e.type));
    try {
      // WHEN it runs
      const { executionArn } = sfn.startExecution({ name: 'crash', input: nestedArrays(100_000) });
      const ended = await sfn.waitForExecution(executionArn);

      // THEN the execution failed, saying why, and its history ends with that failure
      expect(ended).toMatchObject({ status: 'FAILED', error: 'States.Runtime', cause: expect.stringMatching(/^The local Step Functions engine failed: RangeError: Maximum call stack size exceeded/) });
      expect(types.at(-1)).toBe('ExecutionFailed');
      expect(sfn.getExecutionHistory(executionArn).events.at(-1)).toMatchObject({
        type: 'ExecutionFailed',
        executionFailedEventDetails: { error: 'States.Runtime', cause: ended.cause },
      });
      expect(sfn.listExecutions({ statusFilter: 'RUNNING' }).executions).toEqual([]);
    } finally {
      await sfn.close();
    }
  });
});
