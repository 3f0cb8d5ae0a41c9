/**
 * The starter against a real local Step Functions endpoint (real @aws-sdk/client-sfn over HTTP) and the
 * local SQS as dead-letter queue: duplicates, bursts, out-of-order delivery, malformed messages, throttling.
 */
import { SFNClient, paginateListExecutions } from '@aws-sdk/client-sfn';
import { SQSClient } from '@aws-sdk/client-sqs';
import { ECRClient } from '@aws-sdk/client-ecr';
import { LocalStepFunctions, startLocalSfnEndpoint, type LocalSfnEndpoint } from '../../local/stepfunctions';
import { startLocalSqs, type LocalSqs } from '../../local/sqs';
import { LOCAL_AWS_ENV } from '../../local/s3';
import { createStarter, loadStarterSettings, type StarterSettings } from '../../functions/shared/starter';
import { pushExecutionName } from '../../functions/shared/execution-name';
import { captureLogs, type CapturedLogs } from '../logging/capture';
import { ACCOUNT, PASS_MACHINE, REGION, STATE_MACHINE_ARN, batches, digestOf, ecrPush, record, s3Created, shuffle, startEcrStandIn } from './fixtures';
import { validatedFileFor } from '../sfn-validated';

const PIPELINES = {
  'fashion-mnist-trainer': { modelName: 'fashion-mnist', dataUri: 's3://mlpipe-data/datasets/fashion-mnist/', hyperparameters: { epochs: 2 } },
  'team/other.trainer': { modelName: 'other' },
};

describe('start-pipeline (starter)', () => {
  let sfn: LocalStepFunctions;
  let endpoint: LocalSfnEndpoint;
  let sqs: LocalSqs;
  let ecr: { endpoint: string; stop(): Promise<void> };
  let client: SFNClient;
  let settings: StarterSettings;
  let starter: ReturnType<typeof createStarter>;
  const saved = { ...process.env };
  const latestDigest = digestOf('latest-image');
  let logs: CapturedLogs;

  beforeAll(async () => {
    sfn = new LocalStepFunctions({ definition: PASS_MACHINE, validatedFile: validatedFileFor(PASS_MACHINE), stateMachineArn: STATE_MACHINE_ARN, taskHandlers: {} });
    endpoint = await startLocalSfnEndpoint(sfn);
    sqs = await startLocalSqs({ queues: ['mlpipe-dlq'] });
    ecr = await startEcrStandIn({
      'fashion-mnist-trainer': [
        { digest: digestOf('old-image'), pushedAt: new Date('2026-01-01T00:00:00Z') },
        { digest: latestDigest, pushedAt: new Date('2026-02-01T00:00:00Z') },
      ],
    });
    Object.assign(process.env, LOCAL_AWS_ENV, { AWS_ENDPOINT_URL_SFN: endpoint.endpoint, AWS_ENDPOINT_URL_SQS: sqs.endpoint, AWS_ENDPOINT_URL_ECR: ecr.endpoint });
    settings = loadStarterSettings({
      STATE_MACHINE_ARN,
      PIPELINES: JSON.stringify(PIPELINES),
      DEAD_LETTER_QUEUE_URL: sqs.queueUrl('mlpipe-dlq'),
      STARTER_RETRY_BASE_MS: '5',
    });
    client = new SFNClient({ region: REGION });
    starter = createStarter(settings, { sfn: new SFNClient({ maxAttempts: 1 }), sqs: new SQSClient({}), ecr: new ECRClient({}) });
    logs = captureLogs();
  });
  afterAll(async () => {
    logs.restore();
    await sfn.close();
    await endpoint.stop();
    await sqs.stop();
    await ecr.stop();
    process.env = saved;
  });

  async function executionNames(): Promise<string[]> {
    const names: string[] = [];
    for await (const page of paginateListExecutions({ client }, { stateMachineArn: STATE_MACHINE_ARN, maxResults: 100 })) {
      names.push(...(page.executions ?? []).map((e) => e.name!));
    }
    return names;
  }

  it('starts exactly N runs for N distinct pushes delivered with duplicates, out of order, in batches', async () => {
    const before = (await executionNames()).length;
    const digests = Array.from({ length: 40 }, (_, i) => digestOf(`burst-${i}`));
    const events = digests.flatMap((d, i) => {
      const e = ecrPush('fashion-mnist-trainer', d, `v${i}`);
      // Every fourth push is delivered three times (EventBridge at-least-once + SQS redelivery).
      return i % 4 === 0 ? [e, e, e] : [e];
    });
    const results = await Promise.all(batches(shuffle(events).map((e) => record(e))).map((b) => starter(b)));
    expect(results.flatMap((r) => r.batchItemFailures)).toEqual([]);

    const names = await executionNames();
    expect(names.length - before).toBe(40);
    expect(new Set(names).size).toBe(names.length);
    for (const d of digests) expect(names).toContain(pushExecutionName('fashion-mnist-trainer', d));

    const one = sfn.describeExecution(`${STATE_MACHINE_ARN.replace(':stateMachine:', ':execution:')}:${pushExecutionName('fashion-mnist-trainer', digests[3]!)}`);
    expect(JSON.parse(one.input)).toEqual({
      image: `${ACCOUNT}.dkr.ecr.${REGION}.amazonaws.com/fashion-mnist-trainer@${digests[3]}`,
      modelName: 'fashion-mnist',
      dataUri: 's3://mlpipe-data/datasets/fashion-mnist/',
      hyperparameters: { epochs: 2 },
      trigger: { source: 'ecr-push', detail: { repositoryName: 'fashion-mnist-trainer', imageDigest: digests[3], imageTag: 'v3' } },
    });
  });

  it('keeps a redelivery after the run finished as one run (ExecutionAlreadyExists = done)', async () => {
    const e = ecrPush('fashion-mnist-trainer', digestOf('redelivered'));
    expect((await starter({ Records: [record(e)] })).batchItemFailures).toEqual([]);
    const name = pushExecutionName('fashion-mnist-trainer', digestOf('redelivered'));
    await sfn.waitForExecution(`${STATE_MACHINE_ARN.replace(':stateMachine:', ':execution:')}:${name}`);
    expect((await starter({ Records: [record(e)] })).batchItemFailures).toEqual([]);
    expect((await executionNames()).filter((n) => n === name)).toHaveLength(1);
    // Each delivery is one line naming its run and model.
    expect(logs.lines.filter((l) => l.executionName === name).map((l) => [l.level, l.message, l.model, l.outcome])).toEqual([
      ['INFO', 'run started', 'fashion-mnist', 'started'],
      ['INFO', 'run already started (duplicate trigger)', 'fashion-mnist', 'duplicate'],
    ]);
  });

  it('sends malformed, unknown and unmapped messages to the DLQ with a reason, and does not retry them', async () => {
    const good = record(ecrPush('team/other.trainer', digestOf('other-1')));
    const bad = [
      record('{"source": "aws.ecr", oops', 'm-json'),
      record({ source: 'aws.ec2', 'detail-type': 'EC2 Instance State-change Notification' }, 'm-unknown'),
      record({ ...ecrPush('fashion-mnist-trainer', 'sha256:short'), id: 'x' }, 'm-digest'),
      record(ecrPush('nobody-maps-this', digestOf('x')), 'm-unmapped'),
      record(s3Created('elsewhere', 'datasets/other/file', '"abc"'), 'm-unmapped-data'),
    ];
    const result = await starter({ Records: [good, ...bad] });
    expect(result.batchItemFailures).toEqual([]);

    const dlq = sqs.messages('mlpipe-dlq');
    const bySource = Object.fromEntries(dlq.map((m) => [m.attributes.sourceMessageId, m]));
    expect(bySource['m-json']?.attributes.reason).toBe('malformed-json');
    expect(bySource['m-json']?.body).toBe('{"source": "aws.ecr", oops');
    expect(bySource['m-unknown']?.attributes.reason).toBe('unknown-event');
    expect(bySource['m-digest']?.attributes).toMatchObject({ reason: 'unknown-event' });
    expect(bySource['m-digest']?.attributes.detail).toMatch(/detail\.image-digest/);
    expect(bySource['m-unmapped']?.attributes.reason).toBe('unmapped-repository');
    expect(bySource['m-unmapped-data']?.attributes.reason).toBe('unmapped-data');
    expect(bySource[good.messageId]).toBeUndefined();
    expect(await executionNames()).toContain(pushExecutionName('team/other.trainer', digestOf('other-1')));
  });

  it('reports a message as a batch item failure when even the DLQ refuses it', async () => {
    const broken = createStarter({ ...settings, deadLetterQueueUrl: sqs.queueUrl('no-such-queue'), maxAttempts: 2 }, {
      sfn: new SFNClient({ maxAttempts: 1 }),
      sqs: new SQSClient({}),
      ecr: new ECRClient({}),
    });
    const result = await broken({ Records: [record('not json', 'm-lost')] });
    expect(result.batchItemFailures).toEqual([{ itemIdentifier: 'm-lost' }]);
  });

  it('retries throttling with backoff and starts the run once', async () => {
    endpoint.faults.operations = ['StartExecution'];
    endpoint.faults.throttleNext = 3;
    endpoint.faults.failNext = 1;
    const callsBefore = endpoint.calls.StartExecution ?? 0;
    const e = ecrPush('fashion-mnist-trainer', digestOf('throttled'));
    const result = await starter({ Records: [record(e, 'm-throttled')] });
    expect(result.batchItemFailures).toEqual([]);
    expect((endpoint.calls.StartExecution ?? 0) - callsBefore).toBe(5);
    expect((await executionNames()).filter((n) => n === pushExecutionName('fashion-mnist-trainer', digestOf('throttled')))).toHaveLength(1);
  });

  it('hands a message back to SQS when throttling outlasts the retries', async () => {
    endpoint.faults.throttleNext = 1000;
    try {
      const result = await starter({ Records: [record(ecrPush('fashion-mnist-trainer', digestOf('starved')), 'm-starved')] });
      expect(result.batchItemFailures).toEqual([{ itemIdentifier: 'm-starved' }]);
    } finally {
      endpoint.faults.throttleNext = 0;
    }
    expect(await executionNames()).not.toContain(pushExecutionName('fashion-mnist-trainer', digestOf('starved')));
    // SQS redelivers it later: now it starts.
    expect((await starter({ Records: [record(ecrPush('fashion-mnist-trainer', digestOf('starved')), 'm-starved')] })).batchItemFailures).toEqual([]);
    expect(await executionNames()).toContain(pushExecutionName('fashion-mnist-trainer', digestOf('starved')));
  });

  it('re-runs the latest image for new data under a pipeline dataUri, once per object version', async () => {
    const data = s3Created('mlpipe-data', 'datasets/fashion-mnist/v2/train-images-idx3-ubyte', '"etag-1"');
    await starter({ Records: [record(data), record(data)] });
    await starter({ Records: [record(s3Created('mlpipe-data', 'datasets/fashion-mnist/v2/train-images-idx3-ubyte', '"etag-2"'))] });
    const runs = sfn.listExecutions({ maxResults: 1000 }).executions.filter((e) => e.name.includes('-data-'));
    expect(runs).toHaveLength(2);
    const input = JSON.parse(sfn.describeExecution(runs[0]!.executionArn).input) as { image: string; trigger: { source: string } };
    expect(input.image).toBe(`${ACCOUNT}.dkr.ecr.${REGION}.amazonaws.com/fashion-mnist-trainer@${latestDigest}`);
    expect(input.trigger.source).toBe('s3-data');
  });

  it('starts one run per scheduled time', async () => {
    const tick = { mlpipe: 'schedule', repositoryName: 'fashion-mnist-trainer', scheduledTime: '2026-03-01T06:00:00Z' };
    await starter({ Records: [record(tick), record(tick), record({ ...tick, scheduledTime: '2026-03-02T06:00:00Z' })] });
    const runs = sfn.listExecutions({ maxResults: 1000 }).executions.filter((e) => e.name.includes('-sched-'));
    expect(runs.map((r) => r.name).sort()).toEqual(['fashion-mnist-trainer-sched-20260301T060000Z', 'fashion-mnist-trainer-sched-20260302T060000Z']);
  });

  it('refuses bad settings at load, naming the variable', () => {
    expect(() => loadStarterSettings({ PIPELINES: '{}', DEAD_LETTER_QUEUE_URL: 'x' })).toThrow(/STATE_MACHINE_ARN/);
    expect(() => loadStarterSettings({ STATE_MACHINE_ARN, PIPELINES: '{"repo": {"modelName": "Bad_Name"}}', DEAD_LETTER_QUEUE_URL: 'x' })).toThrow(
      /PIPELINES is invalid: repo\.modelName/,
    );
    expect(() => loadStarterSettings({ STATE_MACHINE_ARN, PIPELINES: 'nope', DEAD_LETTER_QUEUE_URL: 'x' })).toThrow(/PIPELINES is invalid: must be JSON/);
  });
});
