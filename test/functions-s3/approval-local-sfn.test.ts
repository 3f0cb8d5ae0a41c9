/**
 * The approval path end to end on the local Step Functions engine (local/stepfunctions/) with its real
 * task tokens: a waitForTaskToken RequestApproval state, the emailed link POSTed to the approval page, and
 * the execution resuming — approved, or rejected into RecordFailure with the decision in the manifest.
 */
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { approvalId } from '../../functions/shared/approval-link';
import { getApproval } from '../../functions/shared/approvals';
import { readManifest } from '../../functions/shared/registry';
import { startApprovalServer, type ApprovalServer } from '../../local/approval-server';
import { LocalStepFunctions, startLocalSfnEndpoint, type LocalSfnEndpoint } from '../../local/stepfunctions';
import { passedEvaluation, runContext, startLocalAws, type LocalAws } from './fixtures';
import { captureLogs } from '../logging/capture';
import { taskSubmitted } from '../stepfunctions/history-events';
import { validatedFileFor } from '../sfn-validated';

type Fn = (e: unknown) => Promise<unknown>;

const definition = {
  StartAt: 'RequestApproval',
  States: {
    RequestApproval: {
      Type: 'Task',
      Resource: 'arn:aws:states:::lambda:invoke.waitForTaskToken',
      Parameters: { FunctionName: 'arn:aws:lambda:us-east-1:000000000000:function:request-approval', Payload: { 'taskToken.$': '$$.Task.Token', 'state.$': '$' } },
      TimeoutSecondsPath: '$.run.approvalTimeoutSeconds',
      ResultPath: '$.approval',
      Catch: [{ ErrorEquals: ['States.ALL'], ResultPath: '$.error', Next: 'RecordFailure' }],
      Next: 'Approved',
    },
    Approved: { Type: 'Succeed' },
    RecordFailure: { Type: 'Task', Resource: 'arn:aws:lambda:us-east-1:000000000000:function:record-release', ResultPath: '$.release', Next: 'Failed' },
    Failed: { Type: 'Fail', ErrorPath: '$.error.Error', CausePath: '$.error.Cause' },
  },
};

describe('approval on the local Step Functions engine', () => {
  let aws: LocalAws;
  let sfn: LocalStepFunctions;
  let endpoint: LocalSfnEndpoint;
  let server: ApprovalServer;

  beforeAll(async () => {
    aws = await startLocalAws({ APPROVAL_SECRET: 'local-sfn-test-secret-0123456789' });
    captureLogs(); // handler log lines stay out of the test output
    const api = (require('../../functions/approval-api') as { handler: (e: APIGatewayProxyEventV2) => Promise<APIGatewayProxyStructuredResultV2> }).handler;
    server = await startApprovalServer(api as never);
    process.env.APPROVAL_BASE_URL = server.url;
    const requestApproval = (require('../../functions/request-approval') as { handler: Fn }).handler;
    const recordRelease = (require('../../functions/record-release') as { handler: Fn }).handler;
    sfn = new LocalStepFunctions({
      definition,
      validatedFile: validatedFileFor(definition),
      stateMachineArn: 'arn:aws:states:us-east-1:000000000000:stateMachine:approval-test',
      taskHandlers: { RequestApproval: (input) => requestApproval(input), RecordFailure: (input) => recordRelease(input) },
    });
    endpoint = await startLocalSfnEndpoint(sfn);
    process.env.AWS_ENDPOINT_URL_SFN = endpoint.endpoint;
  });
  afterAll(async () => {
    jest.restoreAllMocks();
    await server.stop();
    await endpoint.stop();
    await sfn.close();
    await aws.stop();
  });

  /** Starts an execution and waits for RequestApproval's email; returns its links. */
  async function startAndAwaitEmail(name: string) {
    const before = aws.messages().length;
    // The execution ARN PrepareRun would have put in $.run: the approval id derives from it.
    const run = runContext({ version: name, executionArn: `arn:aws:states:us-east-1:000000000000:execution:approval-test:${name}` });
    const { executionArn } = sfn.startExecution({ name, input: JSON.stringify({ run, evaluation: passedEvaluation() }) });
    expect(executionArn).toBe(run.executionArn);
    // Submitted: RequestApproval's handler has returned, so its email is published.
    await taskSubmitted(sfn, executionArn, 'RequestApproval');
    const email = aws.messages()[before];
    if (!email) throw new Error('no approval email was published');
    const link = (action: string) => new RegExp(`(http://127\\.0\\.0\\.1:\\d+/approvals/[0-9a-f]{32}\\?action=${action}&[^\\s]+)`).exec(email.message)![1]!;
    return { executionArn, id: approvalId(executionArn), approve: link('approve'), reject: link('reject') };
  }

  const post = (url: string, fields: Record<string, string>) =>
    fetch(url, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(fields).toString() });

  it('resumes the execution with the decision as $.approval when approved', async () => {
    const e = await startAndAwaitEmail('run-approve');
    expect((await post(e.approve, { approver: 'alice' })).status).toBe(200);
    const done = await sfn.waitForExecution(e.executionArn);
    expect(done.status).toBe('SUCCEEDED');
    expect(JSON.parse(done.output!).approval).toMatchObject({ decision: 'approve', by: 'alice' });
  });

  it('fails the task with ApprovalRejected when rejected, and RecordFailure records who rejected', async () => {
    const e = await startAndAwaitEmail('run-reject');
    expect((await post(e.reject, { approver: 'carol', comment: 'not now' })).status).toBe(200);
    const done = await sfn.waitForExecution(e.executionArn);
    expect(done.status).toBe('FAILED');
    expect([done.error, done.cause]).toEqual(['ApprovalRejected', expect.any(String)]);
    const manifest = await readManifest('fashion', 'run-reject');
    expect(manifest).toMatchObject({
      status: 'rejected',
      approval: { decision: 'reject', by: 'carol', comment: 'not now' },
    });
    // The cost estimate RecordFailure made from this execution's history: RequestApproval and itself entered,
    // two Lambda requests (RequestApproval's invocation, not its wait; RecordFailure, 256 MB, up to then).
    const history = sfn.getExecutionHistory(e.executionArn, { maxResults: 1000 }).events;
    const entered = history.filter((h) => h.type.endsWith('StateEntered')).map((h) => h.stateEnteredEventDetails?.name);
    expect(entered).toEqual(['RequestApproval', 'RecordFailure', 'Failed']); // Failed came after the estimate
    expect(manifest!.cost).toMatchObject({ prices: 'us-east-1', transitions: { count: 2, usd: 0.00005 }, lambda: { requests: 2 }, training: { cpuSeconds: 0, gpuSeconds: 0, usd: 0 } });
    const time = (type: string, last = false) => new Date((last ? history.findLast((h) => h.type === type) : history.find((h) => h.type === type))!.timestamp).getTime();
    // Not the approval wait: RequestApproval's invocation (started to submitted), then RecordFailure up to the estimate.
    const ms = time('TaskSubmitted') - time('TaskStarted') + (Date.parse(manifest!.cost!.asOf) - time('LambdaFunctionStarted', true));
    expect(manifest!.cost!.lambda.gbSeconds).toBe(Math.round((ms / 1000) * 0.25 * 1000) / 1000);
  });

  it('answers 410 and marks the request expired once the execution stopped waiting', async () => {
    const e = await startAndAwaitEmail('run-stopped');
    sfn.stopExecution(e.executionArn, 'Stopped', 'operator stopped it');
    const res = await post(e.approve, { approver: 'late' });
    expect(res.status).toBe(410);
    expect((await getApproval(e.id))!.status).toBe('expired');
  });
});
