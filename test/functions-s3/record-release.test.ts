/** RecordRelease / RecordFailure against local S3: a manifest for every way a run ends, and production.json history. */
import { approvalId } from '../../functions/shared/approval-link';
import { getApproval } from '../../functions/shared/approvals';
import { listVersions, readManifest, readProduction, recordRollback, type ProductionRecord, type ReleaseManifest } from '../../functions/shared/registry';
import type { ApprovalDecision, PipelineState, StageResult } from '../../functions/shared/types';
import { BUCKET, passedEvaluation, putObject, runContext, startLocalAws, type LocalAws } from './fixtures';
import { createServer, type Server } from 'node:http';
import { reloadSettings } from '../../functions/shared/settings';
import { resetClients } from '../../functions/shared/clients';
import { captureLogs } from '../logging/capture';

type Handler = (e: unknown) => Promise<{ status: string; manifestUri: string; recordedAt: string }>;

const approval: ApprovalDecision = { decision: 'approve', by: 'alice', at: '2026-01-01T13:00:00.000Z', from: '198.51.100.7' };
const training = { jobName: 'j', namespace: 'mlpipe-staging', submittedAt: '2026-01-01T12:00:05Z', status: 'succeeded' as const, completedAt: '2026-01-01T12:10:00Z', metrics: { accuracy: 0.89, loss: 0.3 } };

function production(version: string, previousVersion: string | null): StageResult {
  return {
    stage: 'production',
    namespace: 'mlpipe-production',
    deploymentName: `fashion-${version}`,
    serviceName: 'fashion',
    deployedAt: '2026-01-01T13:01:00Z',
    status: 'serving',
    endpoint: 'http://127.0.0.1:30080',
    previousVersion,
    switchedAt: `2026-01-0${version.endsWith('2') ? 2 : 1}T13:05:00.000Z`,
  };
}

describe('RecordRelease / RecordFailure', () => {
  let aws: LocalAws;
  let handler: Handler;

  beforeAll(async () => {
    // Nothing answers on port 9: the run's history is unreadable, and the record is written without its cost.
    aws = await startLocalAws({ AWS_ENDPOINT_URL_SFN: 'http://127.0.0.1:9' });
    handler = (require('../../functions/record-release') as { handler: Handler }).handler;
    await putObject('datasets/fashion-mnist/v1/dataset.json', JSON.stringify({ files: { 'train-images-idx3-ubyte': { sha256: 'ab'.repeat(32) } } }));
    captureLogs(); // handler log lines stay out of the test output
  });
  afterAll(async () => {
    jest.restoreAllMocks();
    await aws.stop();
  });

  it('records a release with full lineage, then a second release appends to production.json history', async () => {
    const run1 = runContext({ version: 'v1' });
    const state1: PipelineState = { run: run1, training, evaluation: passedEvaluation(), approval, production: production('v1', null) };
    const out1 = await handler(state1);
    expect(out1).toEqual({ status: 'released', manifestUri: `s3://${BUCKET}/models/fashion/v1/manifest.json`, recordedAt: expect.any(String) });

    const manifest = await readManifest('fashion', 'v1');
    expect(manifest).toMatchObject<Partial<ReleaseManifest>>({
      schemaVersion: 1,
      status: 'released',
      image: { uri: run1.image, digest: run1.imageDigest },
      data: { uri: run1.dataUri, evalUri: run1.evalDataUri, dataset: { files: { 'train-images-idx3-ubyte': { sha256: 'ab'.repeat(32) } } } },
      hyperparameters: { epochs: 2, learningRate: 0.001 },
      execution: { arn: run1.executionArn, name: 'v1', startedAt: run1.startedAt, trigger: { source: 'cli' } },
      training,
      evaluation: passedEvaluation(),
      approval,
      production: { endpoint: 'http://127.0.0.1:30080', previousVersion: null, switchedAt: '2026-01-01T13:05:00.000Z', deploymentName: 'fashion-v1' },
      error: null,
      cost: null, // the history was unreadable: the manifest still gets written (approval-local-sfn.test.ts has one with its cost)
    });

    // A retried RecordRelease does not append twice.
    await handler(state1);
    const run2 = runContext({ version: 'v2' });
    await handler({ run: run2, training, evaluation: passedEvaluation(), approval: { ...approval, by: 'bob' }, production: production('v2', 'v1') });

    expect(await readProduction('fashion')).toEqual<ProductionRecord>({
      modelName: 'fashion',
      version: 'v2',
      previousVersion: 'v1',
      endpoint: 'http://127.0.0.1:30080',
      switchedAt: '2026-01-02T13:05:00.000Z',
      history: [
        { version: 'v1', at: '2026-01-01T13:05:00.000Z', action: 'release', by: 'alice', executionArn: run1.executionArn },
        { version: 'v2', at: '2026-01-02T13:05:00.000Z', action: 'release', by: 'bob', executionArn: run2.executionArn },
      ],
    });

    // Rollback is recorded as history too.
    const rolled = await recordRollback({ modelName: 'fashion', toVersion: 'v1', by: 'arn:aws:iam::000000000000:user/ops', at: '2026-01-03T00:00:00.000Z' });
    expect(rolled).toMatchObject({ version: 'v1', previousVersion: 'v2' });
    expect(rolled.history.at(-1)).toEqual({ version: 'v1', at: '2026-01-03T00:00:00.000Z', action: 'rollback', by: 'arn:aws:iam::000000000000:user/ops' });
    await expect(recordRollback({ modelName: 'other', toVersion: 'v1', by: 'x' })).rejects.toMatchObject({ name: 'RollbackError', message: expect.stringMatching(/no production\.json/) });
  });

  const rejection: ApprovalDecision = { decision: 'reject', by: 'carol', at: '2026-01-01T13:00:00.000Z', from: '203.0.113.5', comment: 'too slow' };

  it.each<[string, Partial<PipelineState>, string, Partial<ReleaseManifest>]>([
    [
      'a gate failure',
      { evaluation: passedEvaluation({ passed: false, summary: 'Failed on 1000 samples: accuracy 0.8 < 0.85.' }), error: { Error: 'EvaluationGateFailed', Cause: 'Failed on 1000 samples: accuracy 0.8 < 0.85.' } },
      'gate-failed',
      { approval: null },
    ],
    ['a rejection (decision in the cause)', { evaluation: passedEvaluation(), error: { Error: 'ApprovalRejected', Cause: JSON.stringify(rejection) } }, 'rejected', { approval: rejection }],
    [
      'an approval timeout',
      { evaluation: passedEvaluation(), error: { Error: 'ApprovalTimedOut', Cause: 'Nobody approved or rejected the model before the approval timeout; it was rejected.' } },
      'approval-timeout',
      { approval: null },
    ],
    [
      'a training failure',
      { error: { Error: 'TrainingFailedError', Cause: JSON.stringify({ errorType: 'TrainingFailedError', errorMessage: 'Job failed: BackoffLimitExceeded\nlog tail...', trace: [] }) } },
      'failed',
      { training: null, evaluation: null, production: null },
    ],
    [
      'a failure after the switch, with where Cleanup put traffic',
      {
        evaluation: passedEvaluation(),
        production: { stage: 'production', namespace: 'p', deploymentName: 'fashion-v-failed', serviceName: 'fashion', deployedAt: '', status: 'exposed', previousVersion: 'v1', switchedAt: '2026-01-01T14:00:00.000Z' },
        cleanup: { deleted: ['Deployment/p/fashion-v-failed'], switchedBack: { from: 'v-failed', to: 'v1' } },
        error: { Error: 'EndpointUnavailableError', Cause: 'never answered' },
      },
      'failed',
      { cleanup: { deleted: ['Deployment/p/fashion-v-failed'], switchedBack: { from: 'v-failed', to: 'v1' } }, production: expect.objectContaining({ previousVersion: 'v1' }) },
    ],
  ])('records %s', async (_what, extra, status, expected) => {
    // A model of its own: these records never meet the release history the first test asserts whole.
    const version = `v-${status}`;
    const run = runContext({ modelName: 'fashion-ends', version });
    const out = await handler({ run, ...extra });
    expect(out).toMatchObject({ status, manifestUri: `s3://${BUCKET}/models/fashion-ends/${version}/manifest.json` });
    const manifest = await readManifest('fashion-ends', version);
    expect(manifest).toMatchObject({ status, error: extra.error, ...expected });
  });

  it('marks a still-pending approval request expired when the approval timed out', async () => {
    const run = runContext({ version: 'v-expire' });
    const id = approvalId(run.executionArn);
    await putObject(`approvals/${id}.json`, JSON.stringify({ id, status: 'pending', taskToken: 't', modelName: 'fashion', version: 'v-expire', expiresAt: '2026-01-01T00:00:00Z' }));
    await handler({ run, error: { Error: 'ApprovalTimedOut', Cause: 'timeout' } });
    expect(await getApproval(id)).toMatchObject({ status: 'expired', expiredAt: expect.any(String) });
  });

  it('records nothing when Prepare failed (no run) and says so', async () => {
    const before = await listVersions('fashion');
    const out = await handler({ error: { Error: 'InvalidInputError', Cause: 'image is required' } });
    expect(out).toEqual({ status: 'failed', manifestUri: '', recordedAt: expect.any(String) });
    expect(await listVersions('fashion')).toEqual(before);
  });

  it('lists versions under the model prefix, oldest first', async () => {
    // Its own model and versions, written out of order: the list does not depend on what other tests wrote.
    const versions = ['20260102-090000-bbbbbbb', '20260101-120000-aaaaaaa', '20260103-000000-ccccccc'];
    for (const version of versions) await handler({ run: runContext({ modelName: 'listed', version }), error: { Error: 'TrainingFailedError', Cause: 'x' } });
    // A prefix of the name is another model.
    await handler({ run: runContext({ modelName: 'listed-too', version: '20260101-000000-ddddddd' }), error: { Error: 'TrainingFailedError', Cause: 'x' } });
    expect(await listVersions('listed')).toEqual([...versions].sort());
    expect(await listVersions('nothing-here')).toEqual([]);
  });

  it('refuses a run it cannot record under, naming the field', async () => {
    const { executionArn: _, ...noArn } = runContext({ version: 'v-noarn' });
    await expect(handler({ run: noArn })).rejects.toMatchObject({ name: 'InvalidInputError', message: expect.stringMatching(/^RecordRelease input is invalid: run\.executionArn: /) });
  });

  it('refuses a release without a production endpoint', async () => {
    await expect(handler({ run: runContext({ version: 'v-bad' }) })).rejects.toMatchObject({ name: 'InvalidInputError', message: expect.stringMatching(/production\.endpoint/) });
  });
  it('publishes the cost metrics once the record is stored, and none from an attempt that failed', async () => {
    // A readable history this time: a loopback GetExecutionHistory answering a short run.
    const history = { events: [
      { id: 1, type: 'ExecutionStarted', timestamp: Date.parse('2026-01-01T12:00:00Z') / 1000 },
      { id: 2, type: 'TaskStateEntered', timestamp: Date.parse('2026-01-01T12:00:01Z') / 1000, stateEnteredEventDetails: { name: 'Prepare' } },
    ] };
    const sfn: Server = createServer((req, res) => {
      req.resume();
      req.on('end', () => res.writeHead(200, { 'content-type': 'application/x-amz-json-1.0' }).end(JSON.stringify(history)));
    });
    await new Promise<void>((resolve) => sfn.listen(0, '127.0.0.1', resolve));
    const saved = process.env.AWS_ENDPOINT_URL_SFN;
    process.env.AWS_ENDPOINT_URL_SFN = `http://127.0.0.1:${(sfn.address() as { port: number }).port}`;
    reloadSettings();
    resetClients();
    // captureLogs spies on stdout (and passes the EMF lines through): its calls from here on are what was written.
    const written = process.stdout.write as unknown as jest.Mock;
    const from = written.mock.calls.length;
    const costLines = () => written.mock.calls.slice(from).map(([chunk]) => String(chunk)).filter((line) => line.includes('"RunCostUSD"'));
    try {
      // production.json is unreadable: the release's second write fails, after the manifest was written.
      await putObject('models/fashion-emf/production.json', 'not json');
      const run = runContext({ modelName: 'fashion-emf', version: 'v1' });
      const state: PipelineState = { run, training, evaluation: passedEvaluation(), approval, production: production('v1', null) };
      await expect(handler(state)).rejects.toThrow();
      expect(costLines()).toEqual([]);

      await putObject('models/fashion-emf/production.json', JSON.stringify({ modelName: 'fashion-emf', version: 'v0', history: [] }));
      const out = (await handler(state)) as { cost?: { usd: number } };
      expect(out.cost?.usd).toEqual(expect.any(Number));
      expect(costLines()).toHaveLength(1);
    } finally {
      process.env.AWS_ENDPOINT_URL_SFN = saved;
      reloadSettings();
      resetClients();
      await new Promise((resolve) => sfn.close(resolve));
    }
  });
});
