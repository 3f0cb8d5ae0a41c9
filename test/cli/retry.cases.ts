/**
 * `mlpipe retry`: a run that failed at evaluation is resumed without a second training Job. The pipeline's
 * own statemachine/pipeline.asl.json runs on the local Step Functions engine (its endpoint serves the CLI,
 * as under `npm start`), with the real Prepare (which loads the failed run's record), RecordRelease /
 * RecordFailure (the manifests) and Notify (the failure email's retry line) against local S3 and SNS.
 * Training runs as a real Job in the local Kubernetes API (its pod a one-line trainer); the other cluster
 * steps answer as their handlers do, recording that they ran. A Task state nothing here expects fails the
 * test: the retry must go from Prepare straight to staging. The failure email's retry link is opened on the
 * approval endpoint (functions/approval-api.ts behind local/approval-server.ts, as under `npm start`),
 * which starts the retry through the same engine. Run from test/cli/cli.test.ts, which loads the
 * same CLI modules (about 9 s of module loading on this machine, paid once per test file).
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { DeleteObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { DEFINITION_FILE } from '../../lib/constructs/state-machine';
import { LocalStepFunctions, startLocalSfnEndpoint, type LocalSfnEndpoint, type TaskHandler } from '../../local/stepfunctions';
import { startLocalKube, type LocalKube } from '../../local/kube';
import { s3Client } from '../../functions/shared/clients';
import { EvaluationError, TrainingFailedError } from '../../functions/shared/errors';
import { readManifest } from '../../functions/shared/registry';
import { retryRunName } from '../../functions/shared/resume';
import { localRetry } from '../../local/retry-run';
import { startApprovalServer, type ApprovalServer, type HttpApiHandler } from '../../local/approval-server';
import { signRetryLink } from '../../functions/shared/retry-link';
import type { EvaluationResult, PipelineState, RequestApprovalInput } from '../../functions/shared/types';
import { main } from '../../cli/main';
import { BUCKET, startLocalAws, type LocalAws } from '../functions-s3/fixtures';
import { captureLogs, type CapturedLogs } from '../logging/capture';
import { taskSubmitted } from '../stepfunctions/history-events';
import { jobSucceeded } from '../kube-watch';
import { writeLocalFile } from './local-file';
import { validatedFileFor } from '../sfn-validated';

const ARN = 'arn:aws:states:us-east-1:000000000000:stateMachine:mlpipe-retry-test';
const EXEC = ARN.replace(':stateMachine:', ':execution:');
const TRAINER = 'trainer:retry';
const STAGING = 'mlpipe-staging';
const SECRET = 'retry-link-test-secret-0123456789';

type Handler = (event: unknown) => Promise<unknown>;

function passedEvaluation(): EvaluationResult {
  return {
    passed: true, summary: 'accuracy 0.8800 >= 0.85', accuracy: 0.88, latencyMsP50: 3, latencyMsP95: 7, errorRate: 0, samples: 100,
    thresholds: { minAccuracy: 0.85, maxP95LatencyMs: 250, maxErrorRate: 0.01, maxAccuracyDrop: 0.01 }, production: null,
    evaluatedAt: new Date().toISOString(), reportUri: 's3://x/evaluation.json',
  };
}

describe('mlpipe retry: resuming a failed run', () => {
  let aws: LocalAws;
  let kube: LocalKube;
  let sfn: LocalStepFunctions;
  let endpoint: LocalSfnEndpoint;
  let logs: CapturedLogs;
  let dir: string;
  let approval: ApprovalServer;
  /** Task states entered, per execution name. */
  const ran = new Map<string, string[]>();
  /** EvaluateModel fails with EvaluationError while this is set (the staging endpoint "unreachable"). */
  let evaluationBroken = true;
  /** RequestApproval's task token, per execution name. */
  const tokens = new Map<string, string>();

  async function cli(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
    const out: string[] = [];
    const err: string[] = [];
    const code = await main([...argv, '--state-dir', dir], { out: (l) => out.push(l), err: (l) => err.push(l) });
    return { code, out: out.join('\n'), err: err.join('\n') };
  }

  /** The training Jobs of one model version (tests run in any order: each looks at its own runs only). */
  async function jobsOf(version: string): Promise<string[]> {
    const kc = new k8s.KubeConfig();
    kc.loadFromFile(kube.kubeconfigPath);
    const { items } = await kc.makeApiClient(k8s.BatchV1Api).listNamespacedJob({ namespace: STAGING });
    return items.map((j) => j.metadata?.name ?? '').filter((n) => n.includes(version)).sort();
  }

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'mlpipe-retry-'));
    aws = await startLocalAws({
      DATA_URI: `s3://${BUCKET}/datasets/fashion-mnist/v1/`,
      EVAL_DATA_URI: `s3://${BUCKET}/datasets/fashion-mnist/v1/`,
      SERVING_IMAGE: 'serve:retry',
      ALLOW_IMAGE_TAGS: 'true',
      APPROVAL_SECRET: SECRET,
    });
    // The approval endpoint listens first: Notify signs its retry links with this base URL.
    let approvalHandler: HttpApiHandler | undefined;
    approval = await startApprovalServer((event) => approvalHandler!(event), { port: 0 });
    process.env.APPROVAL_BASE_URL = approval.url;
    logs = captureLogs();
    kube = await startLocalKube({
      stateDir: join(dir, 'kube'),
      namespaces: [STAGING, 'mlpipe-production'],
      images: { [TRAINER]: { command: process.execPath, args: ['-e', "console.log('epoch 1/1 accuracy=0.88')"] } },
    });
    const kc = new k8s.KubeConfig();
    kc.loadFromFile(kube.kubeconfigPath);
    const batch = kc.makeApiClient(k8s.BatchV1Api);

    /* eslint-disable @typescript-eslint/no-require-imports -- handlers read their settings when they load: after startLocalAws */
    const prepare = (require('../../functions/prepare-run') as { handler: Handler }).handler;
    const record = (require('../../functions/record-release') as { handler: Handler }).handler;
    const notify = (require('../../functions/notify') as { handler: Handler }).handler;
    /* eslint-enable @typescript-eslint/no-require-imports */
    const stage = (state: PipelineState, status: string) => ({
      stage: 'staging', namespace: STAGING, deploymentName: state.run.names.stagingDeployment, serviceName: state.run.names.stagingService,
      deployedAt: new Date().toISOString(), status, ...(status === 'serving' ? { endpoint: 'http://127.0.0.1:1' } : {}),
    });
    const expected: Record<string, Handler> = {
      Prepare: prepare,
      // As SubmitTraining does: a Job named for the run's version (the name is deterministic, so a second
      // submission of the same version would collide), then the trainer's output under the model's prefix.
      SubmitTraining: async (input) => {
        const { run } = input as PipelineState;
        await batch.createNamespacedJob({
          namespace: STAGING,
          body: {
            metadata: { name: run.names.trainingJob },
            spec: { backoffLimit: 0, template: { spec: { restartPolicy: 'Never', containers: [{ name: 'train', image: run.image }] } } },
          },
        });
        return { jobName: run.names.trainingJob, namespace: STAGING, submittedAt: new Date().toISOString(), status: 'pending' };
      },
      // As CheckTraining does with the local context (TRAINING_CHECK_MAX_WAIT_SECONDS 0): watch at once.
      CheckTraining: async (input) => ({ ...(input as PipelineState).training!, status: 'watch', waitSeconds: 20 }),
      AwaitTraining: async (input) => {
        const { run, training } = input as PipelineState;
        if (run.hyperparameters.failTraining === true) throw new TrainingFailedError('BackoffLimitExceeded: loss is NaN');
        await jobSucceeded(kc, STAGING, training!.jobName);
        const prefix = `models/${run.modelName}/${run.version}/`;
        await s3Client().send(new PutObjectCommand({ Bucket: BUCKET, Key: `${prefix}model.json`, Body: '{"weights": []}' }));
        return { ...training!, status: 'succeeded', completedAt: new Date().toISOString(), metrics: { accuracy: 0.88 } };
      },
      DeployStaging: async (input) => stage(input as PipelineState, 'pending'),
      AwaitStagingRollout: async (input) => stage(input as PipelineState, 'ready'),
      ExposeStaging: async (input) => stage(input as PipelineState, 'exposed'),
      AwaitStagingEndpoint: async (input) => stage(input as PipelineState, 'serving'),
      EvaluateModel: async () => {
        if (evaluationBroken) throw new EvaluationError('The staging endpoint http://127.0.0.1:1 did not answer: ECONNREFUSED');
        return passedEvaluation();
      },
      // The approval request: its task token is what the reviewer's decision comes back with.
      RequestApproval: async (input) => {
        const { taskToken, state } = input as RequestApprovalInput;
        tokens.set(state.run.executionName, taskToken);
        return {};
      },
      Cleanup: async () => ({ deleted: [] }),
      RecordFailure: record,
      NotifyFailure: notify,
    };

    const text = readFileSync(DEFINITION_FILE, 'utf8').replace(/\$\{([A-Za-z0-9_]+)\}/g, (_m, name: string) => `arn:aws:lambda:us-east-1:000000000000:function:${name}`);
    const definition = JSON.parse(text) as { States: Record<string, { Type: string }> };
    const taskHandlers: Record<string, TaskHandler> = {};
    for (const [name, state] of Object.entries(definition.States)) {
      if (state.Type !== 'Task') continue;
      taskHandlers[name] = async (input, ctx) => {
        const run = ctx.executionArn.split(':').pop()!;
        ran.set(run, [...(ran.get(run) ?? []), name]);
        const handler = expected[name];
        if (!handler) throw new Error(`${name} is not expected to run in this test`);
        return handler(input);
      };
    }
    sfn = new LocalStepFunctions({ definition, validatedFile: validatedFileFor(definition), stateMachineArn: ARN, taskHandlers });
    endpoint = await startLocalSfnEndpoint(sfn);
    process.env.AWS_ENDPOINT_URL_SFN = endpoint.endpoint;
    approvalHandler = (require('../../functions/approval-api') as { handler: HttpApiHandler }).handler; // eslint-disable-line @typescript-eslint/no-require-imports
    writeLocalFile(dir, { sfnEndpoint: endpoint.endpoint, s3Endpoint: aws.s3.endpoint, kubeconfig: kube.kubeconfigPath, bucket: BUCKET, stateMachineArn: ARN, approvalUrl: 'http://127.0.0.1:1', namespaces: { staging: STAGING, production: 'mlpipe-production' } });
  });

  afterAll(async () => {
    await sfn?.close();
    await endpoint?.stop();
    await approval?.stop();
    await kube?.stop();
    logs?.restore();
    await aws?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('continues a run that failed at evaluation from staging, with no second training Job', async () => {
    // GIVEN a run whose model trained and whose evaluation failed (the staging endpoint did not answer)
    evaluationBroken = true;
    sfn.startExecution({ name: 'eval-broke', input: JSON.stringify({ image: TRAINER, trigger: { source: 'cli' } }) });
    const failed = await sfn.waitForExecution(`${EXEC}:eval-broke`);
    expect([failed.status, failed.error]).toEqual(['FAILED', 'EvaluationError']);
    const firstManifest = (await readManifest('fashion-mnist', preparedVersion('eval-broke')))!;
    expect(await jobsOf(firstManifest.version)).toEqual([firstManifest.training!.jobName]);
    // ... and its failure email says how to continue it
    const email = aws.messages().find((m) => m.message.includes('eval-broke'))!;
    expect(email.message).toMatch(/Retry:\s+mlpipe retry eval-broke {3}\(reuses the trained model; staging and the evaluation run again\)/);

    // WHEN it is retried, the staging endpoint answering now
    evaluationBroken = false;
    const r = await cli('retry', 'eval-broke');
    expect([r.code, r.err]).toEqual([0, '']);
    expect(r.out).toContain(`retrying  eval-broke as eval-broke-retry1: fashion-mnist ${firstManifest.version} resumes at DeployStaging`);
    await taskSubmitted(sfn, `${EXEC}:eval-broke-retry1`, 'RequestApproval');

    // THEN it went from Prepare to staging: no training step ran, no second Job exists, same version and model
    expect(ran.get('eval-broke-retry1')).toEqual(['Prepare', 'DeployStaging', 'AwaitStagingRollout', 'ExposeStaging', 'AwaitStagingEndpoint', 'EvaluateModel', 'RequestApproval']);
    expect(await jobsOf(firstManifest.version)).toEqual([firstManifest.training!.jobName]);
    const history = sfn.getExecutionHistory(`${EXEC}:eval-broke-retry1`, { maxResults: 1000 }).events;
    const approvalInput = history.find((e) => e.type === 'TaskStateEntered' && e.stateEnteredEventDetails?.name === 'RequestApproval');
    const state = JSON.parse(approvalInput!.stateEnteredEventDetails!.input!) as PipelineState;
    expect(state.run).toMatchObject({ version: firstManifest.version, modelUri: firstManifest.modelUri, retry: { of: `${EXEC}:eval-broke`, from: 'DeployStaging' } });
    expect(state.training).toEqual(firstManifest.training);
    expect(state.evaluation?.passed).toBe(true);

    // AND running the command again while the retry runs starts nothing new
    expect((await cli('retry', 'eval-broke')).code).toBe(0);
    expect(sfn.listExecutions({}).executions.filter((e) => e.name.startsWith('eval-broke'))).toHaveLength(2);

    // WHEN the reviewer rejects it, the retry's record replaces the failed run's, naming it
    expect(sfn.describeExecution(`${EXEC}:eval-broke-retry1`).status).toBe('RUNNING');
    sendDecision('eval-broke-retry1', 'reject');
    expect((await sfn.waitForExecution(`${EXEC}:eval-broke-retry1`)).status).toBe('FAILED');
    const retried = (await readManifest('fashion-mnist', firstManifest.version))!;
    expect(retried).toMatchObject({ status: 'rejected', retryOf: { executionArn: `${EXEC}:eval-broke`, fromState: 'DeployStaging' }, training: firstManifest.training });
    expect(retried.execution.name).toBe('eval-broke-retry1');

    // THEN the original run cannot be retried a second time, nor the rejected retry
    const again = await cli('retry', 'eval-broke');
    expect(again.code).toBe(1);
    expect(again.err).toContain('is not the latest run of fashion-mnist');
    expect(again.err).toContain('eval-broke-retry1 (rejected) ran it since');
    const rejected = await cli('retry', 'eval-broke-retry1');
    expect(rejected.code).toBe(1);
    expect(rejected.err).toContain('was rejected by a reviewer');
  });

  it('the failure email\'s retry link: GET asks, POST starts the retry once; forged, expired and not-resumable links start nothing', async () => {
    // GIVEN a run that failed at evaluation, and its failure email's retry link
    evaluationBroken = true;
    sfn.startExecution({ name: 'link-broke', input: JSON.stringify({ image: TRAINER, hyperparameters: { epochs: 3 } }) });
    await sfn.waitForExecution(`${EXEC}:link-broke`);
    const version = preparedVersion('link-broke');
    const email = aws.messages().find((m) => m.message.includes('link-broke'))!;
    const link = new RegExp(`(${approval.url}/retries/link-broke\\?\\S+)`).exec(email.message)?.[1];
    expect(link).toBeDefined();
    const sig = new URL(link!).searchParams.get('sig')!;
    const executionsOf = (run: string) => sfn.listExecutions({}).executions.filter((e) => e.name.startsWith(run)).map((e) => e.name).sort();
    const post = (url: string, by = 'reviewer@example.com') =>
      fetch(url, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ by }).toString() });
    evaluationBroken = false;

    // WHEN it is opened (as a mail scanner would), THEN a page asks, naming where the retry resumes, and nothing starts
    const asked = await fetch(link!);
    const askPage = await asked.text();
    expect(asked.status).toBe(200);
    expect(askPage).toContain('Retry run <code>link-broke</code>?');
    expect(askPage).toContain('<strong>DeployStaging</strong>');
    expect(askPage).toMatch(/<form method="post" action="\?execution=/);
    expect(executionsOf('link-broke')).toEqual(['link-broke']);

    // WHEN the link was altered (another version), has expired, or lost its signature, THEN a 4xx page says so and nothing starts
    const altered = new URL(link!);
    altered.searchParams.set('version', `${version}x`);
    const forged = await post(altered.toString());
    expect([forged.status, await forged.text()]).toEqual([403, expect.stringContaining('This retry link is not valid')]);
    const target = { executionArn: `${EXEC}:link-broke`, modelName: 'fashion-mnist', version };
    const expiredLink = signRetryLink({ ...target, baseUrl: approval.url, expiresAt: Math.floor(Date.now() / 1000) - 1, secret: SECRET });
    const expired = await post(expiredLink);
    expect([expired.status, await expired.text()]).toEqual([410, expect.stringContaining('This retry link has expired')]);
    const unsigned = new URL(link!);
    unsigned.searchParams.delete('sig');
    expect((await post(unsigned.toString())).status).toBe(400);
    expect(executionsOf('link-broke')).toEqual(['link-broke']);

    // WHEN the button is pressed, THEN the retry starts from staging, with no second training Job
    const started = await post(link!);
    expect([started.status, await started.text()]).toEqual([200, expect.stringContaining('Retry started: link-broke-retry1')]);
    await taskSubmitted(sfn, `${EXEC}:link-broke-retry1`, 'RequestApproval');
    expect(ran.get('link-broke-retry1')).toEqual(['Prepare', 'DeployStaging', 'AwaitStagingRollout', 'ExposeStaging', 'AwaitStagingEndpoint', 'EvaluateModel', 'RequestApproval']);
    const manifest = (await readManifest('fashion-mnist', version))!;
    expect(await jobsOf(version)).toEqual([manifest.training!.jobName]);
    // ... with the failed run's own request and who pressed the button
    const retryInput = JSON.parse(sfn.describeExecution(`${EXEC}:link-broke-retry1`).input ?? '{}') as Record<string, unknown>;
    expect(retryInput).toMatchObject({ image: TRAINER, hyperparameters: { epochs: 3 }, retryOf: target, trigger: { source: 'retry', detail: { by: 'reviewer@example.com', via: 'retry link', run: 'link-broke' } } });

    // WHEN it is pressed again (or the link opened again), THEN the page reports the running retry and starts nothing
    const again = await post(link!, 'someone-else');
    expect([again.status, await again.text()]).toEqual([200, expect.stringContaining('link-broke was already retried as link-broke-retry1')]);
    const reopened = await (await fetch(link!)).text();
    expect(reopened).toContain('It is running.');
    expect(executionsOf('link-broke')).toEqual(['link-broke', 'link-broke-retry1']);
    sendDecision('link-broke-retry1', 'reject');
    await sfn.waitForExecution(`${EXEC}:link-broke-retry1`);
    expect(await (await post(link!)).text()).toContain('It ended FAILED.');
    expect(executionsOf('link-broke')).toEqual(['link-broke', 'link-broke-retry1']);

    // AND a genuine link for a run that cannot be resumed (it never trained) is refused with the reason
    evaluationBroken = true;
    sfn.startExecution({ name: 'link-untrained', input: JSON.stringify({ image: TRAINER, hyperparameters: { failTraining: true } }) });
    await sfn.waitForExecution(`${EXEC}:link-untrained`);
    expect(aws.messages().find((m) => m.message.includes('link-untrained'))!.message).not.toContain('/retries/');
    const untrained = signRetryLink({ executionArn: `${EXEC}:link-untrained`, modelName: 'fashion-mnist', version: preparedVersion('link-untrained'), baseUrl: approval.url, expiresAt: Math.floor(Date.now() / 1000) + 60, secret: SECRET });
    for (const res of [await fetch(untrained), await post(untrained)]) {
      expect([res.status, await res.text()]).toEqual([409, expect.stringContaining('failed before its model was trained')]);
    }
    expect(executionsOf('link-untrained')).toEqual(['link-untrained']);
    // AND no log line holds a link's signature
    expect(logs.text()).not.toContain(sig);
  });

  it('refuses, saying why, a run that never trained, a run still running, and an unknown run', async () => {
    sfn.startExecution({ name: 'train-broke', input: JSON.stringify({ image: TRAINER, hyperparameters: { failTraining: true } }) });
    expect((await sfn.waitForExecution(`${EXEC}:train-broke`)).error).toBe('TrainingFailedError');
    const email = aws.messages().find((m) => m.message.includes('train-broke'))!;
    expect(email.message).not.toContain('mlpipe retry');
    const never = await cli('retry', 'train-broke');
    expect([never.code, never.err]).toEqual([1, 'mlpipe retry: Run train-broke failed before its model was trained: there is nothing to resume. Start a new run with `mlpipe run <image>`.']);

    evaluationBroken = false;
    sfn.startExecution({ name: 'at-approval', input: JSON.stringify({ image: TRAINER }) });
    await taskSubmitted(sfn, `${EXEC}:at-approval`, 'RequestApproval');
    const running = await cli('retry', 'at-approval');
    expect([running.code, running.err]).toEqual([1, 'mlpipe retry: Run at-approval cannot be retried: it is still running. Only a failed run can be.']);
    sendDecision('at-approval', 'reject');
    await sfn.waitForExecution(`${EXEC}:at-approval`);

    // A run whose model files are gone (deleted by hand, or by a lifecycle rule) has nothing to reuse.
    evaluationBroken = true;
    sfn.startExecution({ name: 'files-gone', input: JSON.stringify({ image: TRAINER }) });
    await sfn.waitForExecution(`${EXEC}:files-gone`);
    const version = preparedVersion('files-gone');
    await s3Client().send(new DeleteObjectCommand({ Bucket: BUCKET, Key: `models/fashion-mnist/${version}/model.json` }));
    const gone = await cli('retry', 'files-gone');
    expect([gone.code, gone.err]).toEqual([1, `mlpipe retry: Run files-gone's model files are gone from s3://${BUCKET}/models/fashion-mnist/${version}/: there is no trained model to reuse. Start a new run.`]);

    const unknown = await cli('retry', 'no-such-run');
    expect(unknown.code).toBe(1);
    expect(unknown.err).toContain('There is no run "no-such-run"');
    expect(['no-such-run-retry1', 'at-approval-retry1', 'train-broke-retry1', 'files-gone-retry1'].filter((r) => ran.has(r))).toEqual([]);
  });

  it('npm start -- --retry: builds the retry from the local registry alone, and it skips training', async () => {
    // GIVEN a run that failed at evaluation, whose engine (and history) a local restart would lose
    evaluationBroken = true;
    sfn.startExecution({ name: 'local-broke', input: JSON.stringify({ image: TRAINER, hyperparameters: { epochs: 2 } }) });
    await sfn.waitForExecution(`${EXEC}:local-broke`);
    const version = preparedVersion('local-broke');
    // WHEN the retry is built from its manifest
    const retry = await localRetry('local-broke', 'fashion-mnist', BUCKET);
    // THEN it names the run and what trained its model, and it resumes at staging
    expect(retry.name).toBe('local-broke-retry1');
    expect(retry.plan).toBe(`fashion-mnist ${version} resumes at DeployStaging: reuses the trained model; staging and the evaluation run again`);
    expect(retry.input).toMatchObject({ image: TRAINER, hyperparameters: { epochs: 2 }, retryOf: { executionArn: `${EXEC}:local-broke`, modelName: 'fashion-mnist', version } });
    evaluationBroken = false;
    sfn.startExecution({ name: retry.name, input: JSON.stringify(retry.input) });
    await taskSubmitted(sfn, `${EXEC}:${retry.name}`, 'RequestApproval');
    expect(ran.get(retry.name)?.slice(0, 2)).toEqual(['Prepare', 'DeployStaging']);
    sendDecision(retry.name, 'reject');
    await sfn.waitForExecution(`${EXEC}:${retry.name}`);
    // AND once retried, the run is found by its retry's record and refused, naming the retry
    await expect(localRetry('local-broke', 'fashion-mnist', BUCKET)).rejects.toThrow('local-broke-retry1 (rejected) ran it since');
    await expect(localRetry('never-ran', 'fashion-mnist', BUCKET)).rejects.toThrow('No run never-ran of fashion-mnist is recorded in the local registry');
  });

  it('Prepare refuses a retryOf that does not match the record, before anything runs', async () => {
    // GIVEN a run that failed at evaluation (its record is what a retry must match)
    evaluationBroken = true;
    sfn.startExecution({ name: 'forged-base', input: JSON.stringify({ image: TRAINER }) });
    await sfn.waitForExecution(`${EXEC}:forged-base`);
    const retryOf = { executionArn: `${EXEC}:forged-base`, modelName: 'fashion-mnist', version: preparedVersion('forged-base') };
    const cases: Array<[string, Record<string, unknown>, string]> = [
      ['another image', { image: 'trainer:other', retryOf }, 'trained image trainer:retry, but this request names trainer:other'],
      ['another execution', { image: TRAINER, retryOf: { ...retryOf, executionArn: `${EXEC}:someone-else` } }, 'Run someone-else is not the latest run of fashion-mnist'],
      ['another model', { image: TRAINER, modelName: 'shoes', retryOf }, 'modelName: "shoes" differs from retryOf.modelName "fashion-mnist"'],
    ];
    for (const [label, input, message] of cases) {
      // WHEN an execution is started with it (by hand: the CLI builds a matching one)
      const name = `forged-${label.replace(/ /g, '-')}`;
      sfn.startExecution({ name, input: JSON.stringify(input) });
      const d = await sfn.waitForExecution(`${EXEC}:${name}`);
      // THEN Prepare refuses it naming the problem, and nothing else of the pipeline ran
      const cause = (JSON.parse(d.cause ?? '{}') as { errorMessage?: string }).errorMessage;
      expect({ label, error: d.error, cause }).toEqual({ label, error: expect.stringMatching(/^(NotResumableError|InvalidInputError)$/), cause: expect.stringContaining(message) });
      expect(ran.get(name)).toEqual(['Prepare', 'Cleanup', 'RecordFailure', 'NotifyFailure']);
    }
  });

  it.each([
    ['run-1', 'run-1-retry1'],
    ['run-1-retry1', 'run-1-retry2'],
    ['run-1-retry9', 'run-1-retry10'],
    ['a'.repeat(80), `${'a'.repeat(73)}-retry1`],
  ])('the retry of %s is named %s, within the 80 characters of an execution name', (run, retry) => {
    expect(retryRunName(run)).toBe(retry);
    expect(retryRunName(run).length).toBeLessThanOrEqual(80);
  });

  /** The version Prepare gave a run (from its Prepare output in the history). */
  function preparedVersion(run: string): string {
    const exited = sfn.getExecutionHistory(`${EXEC}:${run}`, { maxResults: 1000 }).events.find((e) => e.type === 'TaskStateExited' && e.stateExitedEventDetails?.name === 'Prepare');
    return (JSON.parse(exited!.stateExitedEventDetails!.output!) as PipelineState).run.version;
  }

  /** The reviewer's decision, as the approval page sends it (SendTaskSuccess with the run's task token). */
  function sendDecision(run: string, decision: 'approve' | 'reject'): void {
    const token = tokens.get(run);
    if (!token) throw new Error(`${run} has not asked for approval`);
    sfn.sendTaskSuccess(token, JSON.stringify({ decision, by: 'reviewer@example.com', at: new Date().toISOString(), from: '127.0.0.1' }));
  }
});
