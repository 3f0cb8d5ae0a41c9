/**
 * Issue 8, item 5: `mlpipe status` of a failed run shows one readable error line (the message, not the
 * Lambda error's JSON and stack trace), and `mlpipe run` refuses a request Prepare would refuse — a bad image
 * reference above all — with exit code 2 before anything is started or even contacted. Against a local Step
 * Functions engine and its endpoint, main() in-process.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalStepFunctions, startLocalSfnEndpoint, type LocalSfnEndpoint } from '../../local/stepfunctions';
import { resetClients } from '../../functions/shared/clients';
import { main } from '../../cli/main';
import './status-progress.cases';
import './run-history.cases';
import { writeLocalFile } from './local-file';
import { validatedFileFor } from '../sfn-validated';

const ARN = 'arn:aws:states:us-east-1:000000000000:stateMachine:mlpipe-cli-validation';
const EXEC = ARN.replace(':stateMachine:', ':execution:');
const FN = (n: string) => `arn:aws:lambda:us-east-1:000000000000:function:${n}`;
const DIGEST = `sha256:${'ab'.repeat(32)}`;

class TrainingFailedError extends Error {
  override readonly name = 'TrainingFailedError';
}

/** The pipeline's failure path in small: a Task fails, its Catch keeps the error, the Fail state reports it. */
const definition = {
  StartAt: 'AwaitTraining',
  States: {
    AwaitTraining: {
      Type: 'Task', Resource: FN('await'), ResultPath: '$.training', Next: 'Done',
      Catch: [{ ErrorEquals: ['States.ALL'], ResultPath: '$.error', Next: 'PipelineFailed' }],
    },
    Done: { Type: 'Succeed' },
    PipelineFailed: { Type: 'Fail', ErrorPath: '$.error.Error', CausePath: '$.error.Cause' },
  },
};

describe('mlpipe run / status: bad input and failed runs', () => {
  let dir: string;
  let empty: string;
  let sfn: LocalStepFunctions;
  let endpoint: LocalSfnEndpoint;
  const saved = { ...process.env };

  async function cli(stateDir: string, ...argv: string[]): Promise<{ code: number; out: string[]; err: string[] }> {
    const out: string[] = [];
    const err: string[] = [];
    const code = await main([...argv, '--state-dir', stateDir], { out: (l) => out.push(l), err: (l) => err.push(l) });
    return { code, out, err };
  }
  const executions = () => sfn.listExecutions({ maxResults: 1000 }).executions.length;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'mlpipe-cli-validation-'));
    empty = mkdtempSync(join(tmpdir(), 'mlpipe-cli-nothing-'));
    sfn = new LocalStepFunctions({
      definition,
      validatedFile: validatedFileFor(definition),
      stateMachineArn: ARN,
      taskHandlers: {
        AwaitTraining: async (input) => {
          if ((input as { image?: string }).image?.endsWith(':fails')) {
            throw new TrainingFailedError(
              'Job fashion-mnist-v1-train failed: BackoffLimitExceeded (container train exited 137, OOMKilled).\nPod log tail:\nepoch 1/5\nKilled',
            );
          }
          return { status: 'succeeded' };
        },
      },
    });
    endpoint = await startLocalSfnEndpoint(sfn);
    // What `npm start` writes; only the Step Functions endpoint is used by these commands.
    writeLocalFile(dir, { sfnEndpoint: endpoint.endpoint, stateMachineArn: ARN });
  });

  afterAll(async () => {
    await endpoint.stop();
    await sfn.close();
    process.env = saved;
    resetClients();
    rmSync(dir, { recursive: true, force: true });
    rmSync(empty, { recursive: true, force: true });
  });

  it('status of a failed run prints the error as one readable line, no JSON, no stack trace, and exits 1', async () => {
    // GIVEN a run whose training step failed with a Lambda-shaped error (errorType, errorMessage, trace)
    expect(await cli(dir, 'run', 'mlpipe/fashion-mnist-train:fails', '--name', 'run-fails')).toMatchObject({ code: 0 });
    const done = await sfn.waitForExecution(`${EXEC}:run-fails`);
    expect(done).toMatchObject({ status: 'FAILED', error: 'TrainingFailedError' });
    expect(JSON.parse(done.cause!)).toMatchObject({ errorType: 'TrainingFailedError', trace: expect.any(Array) });

    // WHEN
    const r = await cli(dir, 'status', 'run-fails');

    // THEN
    expect(r.code).toBe(1);
    const errors = r.out.filter((l) => l.startsWith('error'));
    expect(errors).toEqual([
      'error     TrainingFailedError: Job fashion-mnist-v1-train failed: BackoffLimitExceeded (container train exited 137, OOMKilled). (+3 more lines: `mlpipe logs run-fails` has the pod log)',
    ]);
    const text = r.out.join('\n');
    expect(text).not.toMatch(/errorType|errorMessage|"trace"|\{"|\n\s+at /);
  });

  it.each([
    ['a malformed image reference', ['NOT_A@@image'], '<image> "NOT_A@@image": must be a container image reference like <registry>/<repo>@sha256:<digest>.'],
    ['an upper-case repository', ['registry.example/Fashion:v1'], '<image> "registry.example/Fashion:v1": must be a container image reference'],
    ['a digest that is not sha256 hex', ['registry.example/fashion@sha256:xyz'], '<image> "registry.example/fashion@sha256:xyz": must be a container image reference'],
    ['a bare tag that is no tag', ['v1!'], '<tag> "v1!": a tag must be 1 to 128 of letters, digits'],
    ['a model name that cannot name a Service', [`registry.example/fashion@${DIGEST}`, '--model', '3d-model'], '--model "3d-model": '],
    ['a data URI that is not S3', [`registry.example/fashion@${DIGEST}`, '--data-uri', 'http://example.com/data'], '--data-uri "http://example.com/data": must be an S3 URI like s3://bucket/prefix/.'],
    ['a nested hyperparameter', [`registry.example/fashion@${DIGEST}`, '--hyperparameters', '{"layers":{"a":1}}'], '--hyperparameters layers: '],
    ['a run name Step Functions refuses', [`registry.example/fashion@${DIGEST}`, '--name', 'my run'], '--name "my run": a run name must not contain " "'],
  ])('run refuses %s with exit code 2 and starts nothing', async (_what, argv, message) => {
    const before = executions();
    const r = await cli(dir, 'run', ...argv);
    expect(r.code).toBe(2);
    expect(r.out).toEqual([]);
    expect(r.err[0]).toContain(`mlpipe run: ${message}`);
    expect(r.err[1]).toMatch(/^Usage: mlpipe run /);
    expect(executions()).toBe(before);
  });

  it('run checks the image before it looks for a pipeline: the same refusal with nothing to talk to', async () => {
    const r = await cli(empty, 'run', 'NOT_A@@image', '--local');
    expect(r.code).toBe(2);
    expect(r.err[0]).toBe('mlpipe run: <image> "NOT_A@@image": must be a container image reference like <registry>/<repo>@sha256:<digest>.');
  });

  it('run still starts a good request: a tag locally, a digest-pinned reference, a bare tag', async () => {
    for (const [ref, image] of [
      ['mlpipe/fashion-mnist-train:local', 'mlpipe/fashion-mnist-train:local'],
      [`123456789012.dkr.ecr.us-east-1.amazonaws.com/team/fashion@${DIGEST}`, `123456789012.dkr.ecr.us-east-1.amazonaws.com/team/fashion@${DIGEST}`],
      ['v2', 'mlpipe/fashion-mnist-train:v2'],
    ] as const) {
      const r = await cli(dir, 'run', ref, '--model', 'shoes', '--hyperparameters', '{"epochs":2}');
      expect([ref, r.code, r.err]).toEqual([ref, 0, []]);
      const name = /^started\s+(\S+)$/.exec(r.out[0]!)![1]!;
      expect(JSON.parse(sfn.describeExecution(`${EXEC}:${name}`).input)).toMatchObject({ image, modelName: 'shoes', hyperparameters: { epochs: 2 } });
    }
  });

  it.each([
    ['a name with a space', 'run a', '"run a" is not a run name: a run name must not contain " "'],
    ['a name too long', 'x'.repeat(81), 'is not a run name: a run name must be 1 to 80 characters, got 81'],
    ['an ARN of something else', 'arn:aws:lambda:us-east-1:000000000000:function:x', 'is not an execution ARN'],
  ])('status refuses %s with exit code 2', async (_what, id, message) => {
    const r = await cli(dir, 'status', id);
    expect(r.code).toBe(2);
    expect(r.out).toEqual([]);
    expect(r.err[0]).toContain(message);
  });
});
