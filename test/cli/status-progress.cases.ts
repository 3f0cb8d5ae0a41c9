/**
 * Issue 10, item 4: `mlpipe status` of a run that is training shows the trainer's progress (progress.json
 * in the artifact bucket as it is now, else the report the last check put in `$.training.progress`), a run
 * that failed while training shows how far it got, and a finished training how long it took. Against a
 * local Step Functions engine and its endpoint and local S3, main() in-process. Run from
 * test/cli/run-status-validation.test.ts, which loads the same CLI modules (their loading is paid once per
 * test file).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalStepFunctions, startLocalSfnEndpoint, type LocalSfnEndpoint } from '../../local/stepfunctions';
import { startLocalS3, LOCAL_AWS_ENV, type LocalS3 } from '../../local/s3';
import { DeleteObjectCommand } from '@aws-sdk/client-s3';
import { putJson, resetClients, s3Client } from '../../functions/shared/clients';
import { reloadSettings } from '../../functions/shared/settings';
import { progressBar } from '../../local/progress-display';
import type { PipelineState, TrainingResult } from '../../functions/shared/types';
import { main } from '../../cli/main';
import { writeLocalFile } from './local-file';
import { validatedFileFor } from '../sfn-validated';

const ARN = 'arn:aws:states:us-east-1:000000000000:stateMachine:mlpipe-status-progress';
const EXEC = ARN.replace(':stateMachine:', ':execution:');
const BUCKET = 'mlpipe-status-test';
const FN = (n: string) => `arn:aws:lambda:us-east-1:000000000000:function:${n}`;
const catchAll = { Catch: [{ ErrorEquals: ['States.ALL'], ResultPath: '$.error', Next: 'PipelineFailed' }] };

class TrainingFailedError extends Error {
  override readonly name = 'TrainingFailedError';
}

/** The training part of the pipeline: submit, then check until the check says succeeded. */
const definition = {
  StartAt: 'Prepare',
  States: {
    Prepare: { Type: 'Task', Resource: FN('prepare'), Parameters: { 'executionName.$': '$$.Execution.Name' }, ResultPath: '$', Next: 'SubmitTraining' },
    SubmitTraining: { Type: 'Task', Resource: FN('submit'), ResultPath: '$.training', Next: 'CheckTraining', ...catchAll },
    CheckTraining: { Type: 'Task', Resource: FN('check'), ResultPath: '$.training', Next: 'IsTrainingComplete', ...catchAll },
    IsTrainingComplete: { Type: 'Choice', Choices: [{ Variable: '$.training.status', StringEquals: 'succeeded', Next: 'Done' }], Default: 'CheckTraining' },
    Done: { Type: 'Succeed' },
    PipelineFailed: { Type: 'Fail', ErrorPath: '$.error.Error', CausePath: '$.error.Cause' },
  },
};

const modelUri = (name: string) => `s3://${BUCKET}/models/fashion-mnist/${name}/`;
const progressKey = (name: string) => `models/fashion-mnist/${name}/progress.json`;
/** The report the first check puts in the state: epoch 1 of 5. */
const checked = { fraction: 0.2, epoch: 1, epochs: 5, metrics: { loss: 0.52, accuracy: 0.81 }, etaSeconds: 600, updatedAt: new Date().toISOString() };

interface Deferred<T> {
  promise: Promise<T>;
  resolve(value: T): void;
}
function deferred<T>(): Deferred<T> {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

describe('mlpipe status while a run trains', () => {
  let dir: string;
  let s3: LocalS3;
  let sfn: LocalStepFunctions;
  let endpoint: LocalSfnEndpoint;
  const saved = { ...process.env };
  /** Per run: the second check has started (the run is training), and what that check returns. */
  const training = new Map<string, { second: Deferred<void>; finish: Deferred<TrainingResult> }>();
  const trainingOf = (name: string) => {
    if (!training.has(name)) training.set(name, { second: deferred<void>(), finish: deferred<TrainingResult>() });
    return training.get(name)!;
  };

  async function status(name: string): Promise<{ code: number; out: string[] }> {
    const out: string[] = [];
    const code = await main(['status', name, '--state-dir', dir], { out: (l) => out.push(l), err: (l) => out.push(l) });
    return { code, out };
  }
  const trainingLineOf = (out: string[]) => out.filter((l) => l.startsWith('training'));

  /** Starts a run and returns once its training is under way (the second check is running). */
  async function startTraining(name: string): Promise<void> {
    sfn.startExecution({ name, input: '{}' });
    await trainingOf(name).second.promise;
  }

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'mlpipe-status-progress-'));
    s3 = await startLocalS3({ dir: join(dir, 's3'), buckets: [BUCKET] });
    sfn = new LocalStepFunctions({
      definition,
      validatedFile: validatedFileFor(definition),
      stateMachineArn: ARN,
      taskHandlers: {
        Prepare: async (input) => {
          const name = (input as { executionName: string }).executionName;
          return { run: { modelName: 'fashion-mnist', version: name, image: 'trainer:test', modelUri: modelUri(name), executionName: name } };
        },
        // Submitted 2 min 5 s ago: the elapsed time status shows counts from here.
        SubmitTraining: async () => ({ jobName: 'j', namespace: 'mlpipe-staging', submittedAt: new Date(Date.now() - 125_000).toISOString(), status: 'pending' }),
        CheckTraining: async (input) => {
          const { run, training: t } = input as PipelineState;
          const state = trainingOf(run.executionName);
          if (!t?.progress) return { ...t!, status: 'pending', progress: checked };
          state.second.resolve();
          if (run.executionName.endsWith('-fails')) {
            throw new TrainingFailedError('Job j failed: BackoffLimitExceeded (container train exited 137, OOMKilled).');
          }
          return state.finish.promise;
        },
      },
    });
    endpoint = await startLocalSfnEndpoint(sfn);
    writeLocalFile(dir, { sfnEndpoint: endpoint.endpoint, s3Endpoint: s3.endpoint, bucket: BUCKET, stateMachineArn: ARN });
    // This process writes progress.json as the trainer would.
    Object.assign(process.env, LOCAL_AWS_ENV, { AWS_ENDPOINT_URL_S3: s3.endpoint });
    reloadSettings();
    resetClients();
  });

  afterAll(async () => {
    for (const t of training.values()) t.finish.resolve({ jobName: 'j', namespace: 'n', submittedAt: '', status: 'succeeded' });
    await sfn.close();
    await endpoint.stop();
    await s3.stop();
    process.env = saved;
    reloadSettings();
    resetClients();
    rmSync(dir, { recursive: true, force: true });
  });

  it('shows progress.json as the trainer last wrote it, with the ETA and the time since submission', async () => {
    // GIVEN a run in training, whose trainer has written epoch 3 of 5
    await startTraining('run-live');
    await putJson(BUCKET, progressKey('run-live'), { fraction: 0.6, epoch: 3, epochs: 5, metrics: { loss: 0.41, accuracy: 0.85 }, etaSeconds: 300, updatedAt: new Date().toISOString() });

    // WHEN
    const r = await status('run-live');

    // THEN
    expect(r.code).toBe(0);
    expect(r.out).toContain('status    RUNNING — in CheckTraining');
    expect(trainingLineOf(r.out)).toEqual([
      expect.stringMatching(new RegExp(`^training  \\${progressBar(0.6)} epoch 3/5 · 60 % · loss 0\\.410 · accuracy 0\\.850 · ETA (5 min|4 min 5\\d s) \\(2 min [5-9] s since the Job was submitted\\)$`)),
    ]);
  });

  it('falls back to the last check\'s report in the state when there is no progress.json to read', async () => {
    await startTraining('run-state');
    const r = await status('run-state');
    expect(trainingLineOf(r.out)).toEqual([expect.stringMatching(new RegExp(`^training  \\${progressBar(0.2)} epoch 1/5 · 20 % · loss 0\\.520 · accuracy 0\\.810 · ETA \\d+ min( \\d+ s)? \\(2 min`))]);

    // Once training completed: how long it took, and what it measured
    trainingOf('run-state').finish.resolve({
      jobName: 'j', namespace: 'mlpipe-staging', submittedAt: '2026-11-29T16:00:00.000Z', completedAt: '2026-11-29T16:04:10.000Z', status: 'succeeded', metrics: { accuracy: 0.8812, loss: 0.33 },
    });
    expect((await sfn.waitForExecution(`${EXEC}:run-state`)).status).toBe('SUCCEEDED');
    expect(trainingLineOf((await status('run-state')).out)).toEqual(['training  accuracy 0.8812, loss 0.3300 (trained in 4 min 10 s)']);
  });

  it('a run that failed while training shows how far it got, without an ETA', async () => {
    // GIVEN a run whose training failed after the trainer wrote epoch 4 (the last check saw epoch 1)
    await putJson(BUCKET, progressKey('run-fails'), { fraction: 0.8, epoch: 4, epochs: 5, updatedAt: new Date().toISOString() });
    await startTraining('run-fails');
    expect((await sfn.waitForExecution(`${EXEC}:run-fails`)).status).toBe('FAILED');

    const r = await status('run-fails');
    expect(r.code).toBe(1);
    expect(trainingLineOf(r.out)).toEqual([`training  ${progressBar(0.8)} epoch 4/5 · 80 % (its last report)`]);
    // Without the file (deleted, or no S3 access): what the last check recorded
    await s3Client().send(new DeleteObjectCommand({ Bucket: BUCKET, Key: progressKey('run-fails') }));
    expect(trainingLineOf((await status('run-fails')).out)).toEqual([`training  ${progressBar(0.2)} epoch 1/5 · 20 % · loss 0.520 · accuracy 0.810 (its last report)`]);
  });
});
