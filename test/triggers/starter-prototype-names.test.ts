/**
 * The starter's repository lookup sees the repositories PIPELINES names and nothing else: names that are
 * also Object.prototype members (`constructor`, `__proto__`, `hasOwnProperty`, `toString`) are unmapped
 * unless PIPELINES maps them, and then they map to their own entry. Real local Step Functions endpoint,
 * local SQS as dead-letter queue, real SDK clients over loopback.
 */
import { SFNClient } from '@aws-sdk/client-sfn';
import { SQSClient } from '@aws-sdk/client-sqs';
import { ECRClient } from '@aws-sdk/client-ecr';
import { LocalStepFunctions, startLocalSfnEndpoint, type LocalSfnEndpoint } from '../../local/stepfunctions';
import { startLocalSqs, type LocalSqs } from '../../local/sqs';
import { LOCAL_AWS_ENV } from '../../local/s3';
import { createStarter, loadStarterSettings } from '../../functions/shared/starter';
import { pushExecutionName, scheduleExecutionName } from '../../functions/shared/execution-name';
import { captureLogs, type CapturedLogs } from '../logging/capture';
import { ACCOUNT, PASS_MACHINE, REGION, STATE_MACHINE_ARN, digestOf, ecrPush, record, startEcrStandIn } from './fixtures';
import { validatedFileFor } from '../sfn-validated';

const PROTOTYPE_NAMES = ['constructor', '__proto__', 'hasOwnProperty', 'toString'] as const;
const EXECUTION_PREFIX = STATE_MACHINE_ARN.replace(':stateMachine:', ':execution:') + ':';

describe('starter: repository names that are Object.prototype members', () => {
  let sfn: LocalStepFunctions;
  let endpoint: LocalSfnEndpoint;
  let sqs: LocalSqs;
  let ecr: { endpoint: string; stop(): Promise<void> };
  let logs: CapturedLogs;
  const saved = { ...process.env };

  beforeAll(async () => {
    sfn = new LocalStepFunctions({ definition: PASS_MACHINE, validatedFile: validatedFileFor(PASS_MACHINE), stateMachineArn: STATE_MACHINE_ARN, taskHandlers: {} });
    endpoint = await startLocalSfnEndpoint(sfn);
    sqs = await startLocalSqs({ queues: ['dlq-unmapped', 'dlq-mapped'] });
    // No repository has images: a starter that wrongly maps a name asks ECR and is told it does not exist.
    ecr = await startEcrStandIn({});
    Object.assign(process.env, LOCAL_AWS_ENV, { AWS_ENDPOINT_URL_SFN: endpoint.endpoint, AWS_ENDPOINT_URL_SQS: sqs.endpoint, AWS_ENDPOINT_URL_ECR: ecr.endpoint });
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

  const starterWith = (pipelinesJson: string, queue: string) =>
    createStarter(
      loadStarterSettings({ STATE_MACHINE_ARN, PIPELINES: pipelinesJson, DEAD_LETTER_QUEUE_URL: sqs.queueUrl(queue), STARTER_MAX_ATTEMPTS: '1' }),
      { sfn: new SFNClient({ maxAttempts: 1 }), sqs: new SQSClient({}), ecr: new ECRClient({ maxAttempts: 1 }) },
    );

  const executionExists = (name: string): boolean => {
    try {
      sfn.describeExecution(EXECUTION_PREFIX + name);
      return true;
    } catch {
      return false;
    }
  };

  it.each(PROTOTYPE_NAMES)('dead-letters a push and a schedule for unmapped %s, and starts nothing', async (name) => {
    // GIVEN a starter whose PIPELINES maps one ordinary repository
    const starter = starterWith(JSON.stringify({ 'fashion-mnist-trainer': { modelName: 'fashion-mnist' } }), 'dlq-unmapped');
    const digest = digestOf(`unmapped-${name}`);
    const scheduledTime = '2026-03-01T00:00:00Z';
    const push = record(ecrPush(name, digest), `push-${name}`);
    const schedule = record({ mlpipe: 'schedule', repositoryName: name, scheduledTime }, `schedule-${name}`);

    // WHEN a push to, and a schedule of, the prototype-named repository arrive
    const result = await starter({ Records: [push, schedule] });

    // THEN both go to the dead-letter queue as unmapped, nothing is retried and no run exists
    expect(result.batchItemFailures).toEqual([]);
    const dead = Object.fromEntries(sqs.messages('dlq-unmapped').map((m) => [m.attributes.sourceMessageId, m.attributes]));
    expect(dead[`push-${name}`]).toMatchObject({ reason: 'unmapped-repository', detail: `repository ${name} has no pipeline in PIPELINES` });
    expect(dead[`schedule-${name}`]).toMatchObject({ reason: 'unmapped-repository' });
    expect(executionExists(pushExecutionName(name, digest))).toBe(false);
    expect(executionExists(scheduleExecutionName(name, scheduledTime))).toBe(false);
  });

  it.each(PROTOTYPE_NAMES)('maps %s to its own entry when PIPELINES names it', async (name) => {
    // GIVEN PIPELINES (JSON, as the Lambda gets it) mapping the prototype-named repository to its own model
    const modelName = `model-${name.replace(/[^a-z]/gi, '').toLowerCase()}`;
    const starter = starterWith(`{${JSON.stringify(name)}: {"modelName": "${modelName}"}, "other-trainer": {"modelName": "other"}}`, 'dlq-mapped');
    const digest = digestOf(`mapped-${name}`);

    // WHEN a push to that repository arrives
    const result = await starter({ Records: [record(ecrPush(name, digest))] });

    // THEN one run starts, for that model, and nothing is dead-lettered
    expect(result.batchItemFailures).toEqual([]);
    expect(sqs.messages('dlq-mapped')).toEqual([]);
    const input = JSON.parse(sfn.describeExecution(EXECUTION_PREFIX + pushExecutionName(name, digest)).input) as Record<string, unknown>;
    expect(input).toMatchObject({ image: `${ACCOUNT}.dkr.ecr.${REGION}.amazonaws.com/${name}@${digest}`, modelName });
  });

  it('refuses PIPELINES that is not an object, naming the setting', () => {
    for (const pipelines of ['[]', 'null', '"repo"']) {
      expect(() => loadStarterSettings({ STATE_MACHINE_ARN, PIPELINES: pipelines, DEAD_LETTER_QUEUE_URL: 'http://127.0.0.1:1/q' })).toThrow(
        /PIPELINES is invalid: must be an object of repository name to pipeline/,
      );
    }
  });
});
