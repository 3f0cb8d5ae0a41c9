/**
 * Every invalid execution input ends with a failure email naming the problem: an array, null, a string or
 * a number (which a Catch cannot add `$.error` to), input nested too deep, and objects Prepare refuses.
 * statemachine/pipeline.asl.json on the local Step Functions engine (as `npm start` runs it), with the real
 * Prepare, Cleanup, RecordFailure and NotifyFailure handlers against local S3 and SNS. Any other Task
 * being reached fails the test: an invalid run must not get past Prepare.
 */
import { readFileSync } from 'node:fs';
import { DEFINITION_FILE } from '../../lib/constructs/state-machine';
import { LocalStepFunctions, type TaskHandler } from '../../local/stepfunctions';
import { MAX_RUN_REQUEST_DEPTH } from '../../functions/shared/execution-input';
import { startLocalAws, type LocalAws } from '../functions-s3/fixtures';
import { captureLogs, type CapturedLogs } from '../logging/capture';
import { validatedFileFor } from '../sfn-validated';

const ARN = 'arn:aws:states:us-east-1:000000000000:stateMachine:mlpipe-inputs';
const EXECUTION_PREFIX = ARN.replace(':stateMachine:', ':execution:') + ':';
const DIGEST_IMAGE = `registry.example/mlpipe/train@sha256:${'a'.repeat(64)}`;

type Handler = (event: unknown) => Promise<unknown>;

/** `{"trigger": {"source": "cli", "detail": {"d": {"d": ...}}}}` nested `depth` levels in all. */
function nestedRequest(depth: number): string {
  const inner = depth - 2; // the request object and trigger
  return `{"image":"${DIGEST_IMAGE}","trigger":{"source":"cli","detail":${'{"d":'.repeat(inner - 1)}{}${'}'.repeat(inner - 1)}}}`;
}

const CASES: Array<[label: string, input: string, problem: string]> = [
  ['an array', '[1,2]', 'Execution input is invalid: must be a JSON object like {"image": "<registry>/<repo>@sha256:<digest>"}, got an array.'],
  ['null', 'null', 'Execution input is invalid: must be a JSON object like {"image": "<registry>/<repo>@sha256:<digest>"}, got null.'],
  ['a string', '"fashion-mnist"', 'Execution input is invalid: must be a JSON object like {"image": "<registry>/<repo>@sha256:<digest>"}, got a string.'],
  ['a number', '42', 'Execution input is invalid: must be a JSON object like {"image": "<registry>/<repo>@sha256:<digest>"}, got a number.'],
  ['input nested too deep', nestedRequest(MAX_RUN_REQUEST_DEPTH + 1), `Execution input is invalid: nested ${MAX_RUN_REQUEST_DEPTH + 1} levels deep, at most ${MAX_RUN_REQUEST_DEPTH} are accepted.`],
  ['an object without an image', '{}', 'Execution input is invalid: image:'],
  ['a malformed image reference', '{"image": "NOT_A@@image"}', 'Execution input is invalid: image: must be a container image reference'],
  ['a state-shaped object', '{"image": "x@@", "run": {"modelName": "forged"}, "error": "not an error"}', 'Execution input is invalid: image:'],
];

describe('pipeline.asl.json: invalid execution input', () => {
  let aws: LocalAws;
  let sfn: LocalStepFunctions;
  let logs: CapturedLogs;
  const reached: string[] = [];

  beforeAll(async () => {
    aws = await startLocalAws();
    logs = captureLogs();
    /* eslint-disable @typescript-eslint/no-require-imports -- handlers read their settings when they load: after startLocalAws */
    const real: Record<string, Handler> = {
      Prepare: (require('../../functions/prepare-run') as { handler: Handler }).handler,
      Cleanup: (require('../../functions/cleanup') as { handler: Handler }).handler,
      RecordFailure: (require('../../functions/record-release') as { handler: Handler }).handler,
      NotifyFailure: (require('../../functions/notify') as { handler: Handler }).handler,
    };
    /* eslint-enable @typescript-eslint/no-require-imports */
    const text = readFileSync(DEFINITION_FILE, 'utf8').replace(/\$\{([A-Za-z0-9_]+)\}/g, (_m, name: string) => `arn:aws:lambda:us-east-1:000000000000:function:${name}`);
    const definition = JSON.parse(text) as { States: Record<string, { Type: string }> };
    const taskHandlers: Record<string, TaskHandler> = {};
    for (const [name, state] of Object.entries(definition.States)) {
      if (state.Type !== 'Task') continue;
      taskHandlers[name] = async (input) => {
        reached.push(name);
        const handler = real[name];
        if (!handler) throw new Error(`${name} must not run for an invalid input`);
        return handler(input);
      };
    }
    sfn = new LocalStepFunctions({ definition, validatedFile: validatedFileFor(definition), stateMachineArn: ARN, taskHandlers });
  });
  afterAll(async () => {
    await sfn?.close();
    logs?.restore();
    await aws?.stop();
  });

  it.each(CASES)('%s ends FAILED with a failure email naming the problem', async (label, input, problem) => {
    // GIVEN an execution started with the invalid input
    reached.length = 0;
    const name = `invalid-${label.replace(/[^a-z]+/g, '-')}`;
    const { executionArn } = sfn.startExecution({ name, input });

    // WHEN it ends
    const ended = await sfn.waitForExecution(executionArn);

    // THEN it failed at Prepare, on the way out cleaned up, recorded and notified, and nothing else ran
    expect(ended).toMatchObject({ status: 'FAILED', error: 'InvalidInputError' });
    expect(reached).toEqual(['Prepare', 'Cleanup', 'RecordFailure', 'NotifyFailure']);
    // ... and one email says which run, that its input was invalid, and what was wrong with it
    const emails = aws.messages().filter((m) => m.message.includes(EXECUTION_PREFIX + name));
    expect(emails).toHaveLength(1);
    expect(emails[0]!.subject).toBe('[mlpipe] a run that never started: invalid input');
    expect(emails[0]!.message).toMatch(/^The run did not reach production: invalid input\. Production is unchanged\./);
    expect(emails[0]!.message).toMatch(/Error:\s+InvalidInputError/);
    expect(emails[0]!.message).toContain(`Reason:\n${problem}`);
  });
});
