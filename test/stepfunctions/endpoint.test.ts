/** The local Step Functions endpoint with the real @aws-sdk/client-sfn: named exceptions, dates, paging, task tokens. */
import {
  DescribeExecutionCommand,
  DescribeStateMachineCommand,
  ExecutionAlreadyExists,
  ExecutionDoesNotExist,
  GetExecutionHistoryCommand,
  InvalidToken,
  ListExecutionsCommand,
  SFNClient,
  SendTaskSuccessCommand,
  StartExecutionCommand,
  StopExecutionCommand,
  TaskTimedOut,
  paginateListExecutions,
} from '@aws-sdk/client-sfn';
import { LocalStepFunctions, startLocalSfnEndpoint, type LocalSfnEndpoint } from '../../local/stepfunctions';
import { LOCAL_AWS_ENV } from '../../local/s3';
import { taskSubmitted } from './history-events';
import { validatedFileFor } from '../sfn-validated';

const ARN = 'arn:aws:states:us-east-1:000000000000:stateMachine:endpoint-test';
const definition = {
  StartAt: 'Wait',
  States: {
    Wait: {
      Type: 'Task',
      Resource: 'arn:aws:states:::lambda:invoke.waitForTaskToken',
      Parameters: { FunctionName: 'f', Payload: { 'token.$': '$$.Task.Token' } },
      TimeoutSeconds: 60,
      End: true,
    },
  },
};

describe('local Step Functions endpoint', () => {
  let sfn: LocalStepFunctions;
  let endpoint: LocalSfnEndpoint;
  let client: SFNClient;
  const tokens = new Map<string, string>();

  beforeAll(async () => {
    sfn = new LocalStepFunctions({
      definition,
      validatedFile: validatedFileFor(definition),
      stateMachineArn: ARN,
      taskHandlers: {
        Wait: async (payload, ctx) => {
          tokens.set(ctx.executionArn, (payload as { token: string }).token);
          return {};
        },
      },
    });
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

  it('starts, describes and resumes an execution over HTTP', async () => {
    const started = await client.send(new StartExecutionCommand({ stateMachineArn: ARN, name: 'one', input: '{"a":1}' }));
    expect(started.startDate).toBeInstanceOf(Date);
    // Same name and input while running: the same answer.
    const again = await client.send(new StartExecutionCommand({ stateMachineArn: ARN, name: 'one', input: '{"a":1}' }));
    expect(again.executionArn).toBe(started.executionArn);
    await expect(client.send(new StartExecutionCommand({ stateMachineArn: ARN, name: 'one', input: '{"a":2}' }))).rejects.toBeInstanceOf(ExecutionAlreadyExists);

    await taskSubmitted(sfn, started.executionArn!, 'Wait');
    const token = tokens.get(started.executionArn!)!;
    expect(token).toEqual(expect.any(String));
    await expect(client.send(new SendTaskSuccessCommand({ taskToken: 'x', output: '{}' }))).rejects.toBeInstanceOf(InvalidToken);
    await client.send(new SendTaskSuccessCommand({ taskToken: token, output: '{"ok":true}' }));
    await expect(client.send(new SendTaskSuccessCommand({ taskToken: token, output: '{}' }))).rejects.toBeInstanceOf(TaskTimedOut);
    await sfn.waitForExecution(started.executionArn!);

    const d = await client.send(new DescribeExecutionCommand({ executionArn: started.executionArn }));
    expect(d).toMatchObject({ status: 'SUCCEEDED', output: '{"ok":true}', input: '{"a":1}', name: 'one' });
    expect(d.stopDate!.getTime()).toBeGreaterThanOrEqual(d.startDate!.getTime());
    await expect(client.send(new DescribeExecutionCommand({ executionArn: `${started.executionArn}-nope` }))).rejects.toBeInstanceOf(ExecutionDoesNotExist);
  });

  it('pages history and executions like the API', async () => {
    const before = (await client.send(new StartExecutionCommand({ stateMachineArn: ARN, name: 'page-1' }))).executionArn!;
    await client.send(new StopExecutionCommand({ executionArn: before }));
    const arn = (await client.send(new StartExecutionCommand({ stateMachineArn: ARN, name: 'page-2' }))).executionArn!;
    await client.send(new StopExecutionCommand({ executionArn: arn, error: 'Stopped', cause: 'test' }));
    const first = await client.send(new GetExecutionHistoryCommand({ executionArn: arn, maxResults: 2 }));
    expect(first.events!.map((e) => e.type)).toEqual(['ExecutionStarted', 'TaskStateEntered']);
    expect(first.events![0]!.timestamp).toBeInstanceOf(Date);
    const rest = await client.send(new GetExecutionHistoryCommand({ executionArn: arn, maxResults: 100, nextToken: first.nextToken }));
    expect(rest.events!.at(-1)).toMatchObject({ type: 'ExecutionAborted', executionAbortedEventDetails: { error: 'Stopped', cause: 'test' } });

    const names: string[] = [];
    for await (const page of paginateListExecutions({ client, pageSize: 1 }, { stateMachineArn: ARN })) names.push(...page.executions!.map((e) => e.name!));
    // Other tests' executions may be listed too: every one once, and these two newest first.
    expect(new Set(names).size).toBe(names.length);
    expect(names.filter((n) => n.startsWith('page-'))).toEqual(['page-2', 'page-1']);
  });

  it('returns the definition for mlpipe graph', async () => {
    const d = await client.send(new DescribeStateMachineCommand({ stateMachineArn: ARN }));
    expect(JSON.parse(d.definition!)).toEqual(definition);
    expect(d.creationDate).toBeInstanceOf(Date);
  });

  it('listens on loopback only, and answers an oversized body with 413 instead of buffering it', async () => {
    expect(endpoint.endpoint).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const res = await fetch(endpoint.endpoint, {
      method: 'POST',
      headers: { 'x-amz-target': 'AWSStepFunctions.StartExecution', 'content-type': 'application/x-amz-json-1.0' },
      body: JSON.stringify({ stateMachineArn: ARN, input: 'x'.repeat(1024 * 1024 + 1) }),
    });
    expect(res.status).toBe(413);
    expect(await res.json()).toMatchObject({ __type: expect.stringContaining('RequestEntityTooLarge') });
    expect((await client.send(new ListExecutionsCommand({ stateMachineArn: ARN }))).executions).toEqual(expect.any(Array)); // still serving
  });
});
