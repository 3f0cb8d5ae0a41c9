/**
 * Every mlpipe command against the local endpoints: a LocalStepFunctions running a small machine whose
 * states carry the pipeline's names, its Step Functions endpoint, local S3 (approval records) and the
 * local Kubernetes API (training pod logs, rollback). main() runs in-process; one test spawns the launcher.
 * Each test starts the runs it looks at (names of its own), so the tests pass alone and in any order.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join, resolve } from 'node:path';
import { readFileSync } from 'node:fs';
import * as k8s from '@kubernetes/client-node';
import { LocalStepFunctions, startLocalSfnEndpoint, type LocalSfnEndpoint } from '../../local/stepfunctions';
import { startLocalS3, LOCAL_AWS_ENV, type LocalS3 } from '../../local/s3';
import { startLocalKube, type LocalKube } from '../../local/kube';
import { openApproval } from '../../functions/shared/approvals';
import { readProduction, recordProductionRelease } from '../../functions/shared/registry';
import { resetClients } from '../../functions/shared/clients';
import type { PipelineState, PrepareRunInput, RequestApprovalInput } from '../../functions/shared/types';
import { main } from '../../cli/main';
import { RETIRED_AT_ANNOTATION } from '../../functions/shared/retention';
import { approvalId, signLink } from '../../functions/shared/approval-link';
import { recordRollback } from '../../functions/shared/registry';
import { RunViewSchema, type RunView } from '../../cli/run-view';
import { readProductionView } from '../../cli/production-view';
import { resolveTarget } from '../../cli/target';
import { STATUS_SCHEMA_FILE, statusSchemaText } from '../../cli/status-schema';
import { validateStatusJson } from './status-schema';
import { renderText } from '../../cli/commands/graph';
import { runViewLines } from '../../cli/commands/status';
import { estimateRunCost } from '../../functions/shared/run-cost';
import { buildGraph, parseAsl } from '../../cli/graph-model';
import { taskSubmitted } from '../stepfunctions/history-events';
import { jobSucceeded } from '../kube-watch';
import './retry.cases';
import { writeLocalFile } from './local-file';
import { validatedFileFor } from '../sfn-validated';

const ARN = 'arn:aws:states:us-east-1:000000000000:stateMachine:mlpipe-cli-test';
const EXEC = ARN.replace(':stateMachine:', ':execution:');
const BUCKET = 'mlpipe-cli-test';
const TRAINER = 'trainer:test';
const SLOW_TRAINER = 'trainer:slow';
const FN = (n: string) => `arn:aws:lambda:us-east-1:000000000000:function:${n}`;
const STAGING_ENDPOINT = 'http://127.0.0.1:18502';
const PRODUCTION_ENDPOINT = 'http://127.0.0.1:18501';
const retryless = { Catch: [{ ErrorEquals: ['States.ALL'], ResultPath: '$.error', Next: 'PipelineFailed' }] };

const definition = {
  StartAt: 'Prepare',
  States: {
    Prepare: {
      Type: 'Task', Resource: FN('prepare'), ResultPath: '$', Next: 'SubmitTraining', ...retryless,
      Parameters: { 'input.$': '$', 'executionArn.$': '$$.Execution.Id', 'executionName.$': '$$.Execution.Name', 'startTime.$': '$$.Execution.StartTime' },
    },
    SubmitTraining: { Type: 'Task', Resource: FN('submit'), ResultPath: '$.training', Next: 'AwaitTraining', ...retryless },
    AwaitTraining: { Type: 'Task', Resource: FN('await'), ResultPath: '$.training', Next: 'IsTrainingComplete', ...retryless },
    IsTrainingComplete: { Type: 'Choice', Choices: [{ Variable: '$.training.status', StringEquals: 'succeeded', Next: 'DeployStaging' }], Default: 'AwaitTraining' },
    DeployStaging: { Type: 'Task', Resource: FN('deploy-staging'), ResultPath: '$.staging', Next: 'EvaluateModel', ...retryless },
    EvaluateModel: { Type: 'Task', Resource: FN('evaluate'), ResultPath: '$.evaluation', Next: 'EvaluationGate', ...retryless },
    EvaluationGate: { Type: 'Choice', Choices: [{ Variable: '$.evaluation.passed', BooleanEquals: true, Next: 'RequestApproval' }], Default: 'FailEvaluationGate' },
    FailEvaluationGate: { Type: 'Pass', Parameters: { Error: 'EvaluationGateFailed', 'Cause.$': '$.evaluation.summary' }, ResultPath: '$.error', Next: 'PipelineFailed' },
    RequestApproval: {
      Type: 'Task', Resource: 'arn:aws:states:::lambda:invoke.waitForTaskToken', ResultPath: '$.approval', Next: 'DeployProduction', ...retryless,
      Parameters: { FunctionName: FN('request-approval'), Payload: { 'taskToken.$': '$$.Task.Token', 'state.$': '$' } },
      TimeoutSecondsPath: '$.run.approvalTimeoutSeconds',
    },
    DeployProduction: { Type: 'Task', Resource: FN('deploy'), ResultPath: '$.production', Next: 'CleanupStaging', ...retryless },
    CleanupStaging: { Type: 'Task', Resource: FN('cleanup-staging'), ResultPath: '$.cleanup', Next: 'Succeeded', ...retryless },
    Succeeded: { Type: 'Succeed' },
    PipelineFailed: { Type: 'Fail', ErrorPath: '$.error.Error', CausePath: '$.error.Cause' },
  },
};

describe('mlpipe CLI (local mode)', () => {
  let dir: string;
  let s3: LocalS3;
  let kube: LocalKube;
  let sfn: LocalStepFunctions;
  let endpoint: LocalSfnEndpoint;
  const saved = { ...process.env };

  async function cli(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
    return cliWith({}, ...argv);
  }

  /** main() with an injected clock (commands that wait never sleep here) and a hook on each line printed. */
  async function cliWith(opts: { sleep?: (ms: number) => Promise<void>; onOut?: (line: string) => void }, ...argv: string[]): Promise<{ code: number; out: string; err: string }> {
    const out: string[] = [];
    const err: string[] = [];
    const clock = { now: () => new Date(), sleep: opts.sleep ?? (() => new Promise<void>((r) => setImmediate(r))) };
    const code = await main([...argv, '--state-dir', dir], { out: (l) => (out.push(l), opts.onOut?.(l)), err: (l) => err.push(l) }, clock);
    return { code, out: out.join('\n'), err: err.join('\n') };
  }

  /** `mlpipe run` of TRAINER as `name`, then the run waiting for approval (its training pod has finished). */
  async function runToApproval(name: string, ...args: string[]): Promise<void> {
    const r = await cli('run', TRAINER, '--name', name, ...args);
    expect([r.code, r.err]).toEqual([0, '']);
    await taskSubmitted(sfn, `${EXEC}:${name}`, 'RequestApproval');
  }

  /** A run approved and SUCCEEDED. */
  async function releasedRun(name: string): Promise<void> {
    await runToApproval(name);
    expect((await cli('approve', name)).code).toBe(0);
    expect((await sfn.waitForExecution(`${EXEC}:${name}`)).status).toBe('SUCCEEDED');
  }

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'mlpipe-cli-'));
    s3 = await startLocalS3({ dir: join(dir, 's3'), buckets: [BUCKET] });
    kube = await startLocalKube({
      stateDir: join(dir, 'kube'),
      namespaces: ['mlpipe-staging', 'mlpipe-production'],
      images: {
        [TRAINER]: { command: process.execPath, args: ['-e', "console.log('epoch 1/1 accuracy=0.8123'); console.log('wrote metrics.json')"] },
        // Writes one line, then the next once the test creates the file it looks for (no sleeping in the test).
        [SLOW_TRAINER]: {
          command: process.execPath,
          args: ['-e', `console.log('epoch 1/2'); const t = setInterval(() => { if (require('fs').existsSync(${JSON.stringify(join(dir, 'go-on'))})) { console.log('epoch 2/2'); clearInterval(t); } }, 20);`],
        },
      },
    });
    Object.assign(process.env, LOCAL_AWS_ENV, { AWS_ENDPOINT_URL_S3: s3.endpoint, ARTIFACT_BUCKET: BUCKET });
    resetClients();
    const kc = new k8s.KubeConfig();
    kc.loadFromFile(kube.kubeconfigPath);
    const batch = kc.makeApiClient(k8s.BatchV1Api);

    sfn = new LocalStepFunctions({
      definition,
      validatedFile: validatedFileFor(definition),
      stateMachineArn: ARN,
      taskHandlers: {
        Prepare: async (input) => {
          const p = input as PrepareRunInput & { input: { image: string; modelName?: string; hyperparameters?: Record<string, unknown> } };
          const version = `20260101-000000-${p.executionName.slice(-7)}`;
          const modelName = p.input.modelName ?? 'fashion-mnist';
          return {
            run: {
              modelName, version, image: p.input.image, imageDigest: null, servingImage: 'serve:test', dataUri: 's3://d/', evalDataUri: 's3://d/',
              hyperparameters: p.input.hyperparameters ?? {}, modelUri: `s3://${BUCKET}/models/${modelName}/${version}/`,
              executionArn: p.executionArn, executionName: p.executionName, startedAt: p.startTime, approvalTimeoutSeconds: 3600,
              trigger: { source: 'cli' }, namespaces: { staging: 'mlpipe-staging', production: 'mlpipe-production' },
              names: {
                trainingJob: `${modelName}-${p.executionName.slice(-7)}-train`, stagingDeployment: 'x', stagingService: 'x',
                productionDeployment: 'x', productionService: modelName,
              },
            },
          };
        },
        SubmitTraining: async (input) => {
          const { run } = input as PipelineState;
          await batch.createNamespacedJob({
            namespace: run.namespaces.staging,
            body: {
              metadata: { name: run.names.trainingJob },
              spec: { backoffLimit: 0, template: { spec: { restartPolicy: 'Never', containers: [{ name: 'train', image: run.image }] } } },
            },
          });
          return { jobName: run.names.trainingJob, namespace: run.namespaces.staging, submittedAt: new Date().toISOString(), status: 'pending' };
        },
        AwaitTraining: async (input) => {
          // As the real handler does, on a watch: the Job has ended, so its pod's log is complete.
          const { training } = input as PipelineState;
          if (!training) throw new Error('AwaitTraining: no training in the state');
          await jobSucceeded(kc, training.namespace, training.jobName);
          return { ...training, status: 'succeeded', metrics: { accuracy: 0.8123, loss: 0.52 } };
        },
        EvaluateModel: async (input) => {
          const { run } = input as PipelineState;
          const passed = run.hyperparameters.failGate !== true;
          return {
            passed, summary: passed ? 'ok' : 'accuracy 0.41 < 0.85', accuracy: passed ? 0.8101 : 0.41, latencyMsP50: 3, latencyMsP95: 7.5, errorRate: 0, samples: 100,
            thresholds: { minAccuracy: 0.85, maxP95LatencyMs: 250, maxErrorRate: 0.01, maxAccuracyDrop: 0.01 }, production: null,
            evaluatedAt: new Date().toISOString(), reportUri: 's3://x/evaluation.json',
          };
        },
        RequestApproval: async (payload) => {
          const { taskToken, state } = payload as RequestApprovalInput;
          await openApproval({
            executionArn: state.run.executionArn, modelName: state.run.modelName, version: state.run.version, image: state.run.image, taskToken,
            createdAt: new Date().toISOString(), expiresAt: new Date(Date.now() + 3600_000).toISOString(), evaluation: state.evaluation!, production: null,
          });
          return {};
        },
        DeployStaging: async () => ({
          stage: 'staging', namespace: 'mlpipe-staging', deploymentName: 'x', serviceName: 'x', deployedAt: new Date().toISOString(), status: 'serving', endpoint: STAGING_ENDPOINT,
        }),
        // Switches and records the release in the registry, as DeployProduction … RecordRelease do.
        DeployProduction: async (input) => {
          const { run } = input as PipelineState;
          const switchedAt = new Date().toISOString();
          const current = await readProduction(run.modelName);
          await recordProductionRelease({ modelName: run.modelName, version: run.version, previousVersion: current?.version ?? null, endpoint: PRODUCTION_ENDPOINT, switchedAt, executionArn: run.executionArn });
          return { stage: 'production', namespace: 'mlpipe-production', deploymentName: 'x', serviceName: run.modelName, deployedAt: switchedAt, switchedAt, status: 'serving', endpoint: PRODUCTION_ENDPOINT };
        },
        CleanupStaging: async () => ({ deleted: ['Deployment/mlpipe-staging/x'] }),
      },
    });
    endpoint = await startLocalSfnEndpoint(sfn);
    writeLocalFile(dir, { sfnEndpoint: endpoint.endpoint, s3Endpoint: s3.endpoint, kubeconfig: kube.kubeconfigPath, bucket: BUCKET, stateMachineArn: ARN, approvalUrl: 'http://127.0.0.1:8787' });
  });

  afterAll(async () => {
    await sfn.close();
    await endpoint.stop();
    await kube.stop();
    await s3.stop();
    process.env = saved;
    resetClients();
    rmSync(dir, { recursive: true, force: true });
  });

  it('run starts a run with the request as execution input', async () => {
    const r = await cli('run', TRAINER, '--model', 'fashion-mnist', '--hyperparameters', '{"epochs": 1}', '--name', 'run-a');
    expect(r).toMatchObject({ code: 0 });
    expect(r.out).toMatch(/started\s+run-a/);
    expect(JSON.parse(sfn.describeExecution(`${EXEC}:run-a`).input)).toEqual({
      image: TRAINER, modelName: 'fashion-mnist', hyperparameters: { epochs: 1 }, trigger: { source: 'cli', detail: { by: `local:${userInfo().username}` } },
    });
    expect((await cli('run', TRAINER, '--hyperparameters', '[1]')).code).toBe(2);
    expect((await cli('run')).code).toBe(2);
    await taskSubmitted(sfn, `${EXEC}:run-a`, 'RequestApproval');
  });

  it('status shows the current step, metrics and what to do next', async () => {
    await runToApproval('run-status');
    const r = await cli('status', 'run-status');
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/status\s+RUNNING — in RequestApproval/);
    expect(r.out).toMatch(/training\s+accuracy 0\.8123, loss 0\.5200/);
    expect(r.out).toMatch(/evaluated accuracy 0\.8101, p95 7\.5 ms/);
    expect(r.out).toContain('mlpipe approve run-status');
    expect(r.out).not.toContain('console'); // no console link in local mode
    // No run given: the latest.
    expect((await cli('status')).out).toMatch(/run\s+run-status/);
    const missing = await cli('status', 'nope');
    expect(missing.code).toBe(1);
    expect(missing.err).toBe('mlpipe status: There is no run "nope". `mlpipe list` shows the runs.');
    // Every command that takes a run says the same, not the SDK's ExecutionDoesNotExist.
    for (const cmd of ['logs', 'graph', 'approve', 'reject']) {
      const r = await cli(cmd, 'nope');
      expect([cmd, r.code, r.err]).toEqual([cmd, 1, `mlpipe ${cmd}: There is no run "nope". \`mlpipe list\` shows the runs.`]);
    }
  });

  /** A run of `model` approved and SUCCEEDED; its version. */
  async function releasedVersion(name: string, model: string): Promise<string> {
    await runToApproval(name, '--model', model);
    expect((await cli('approve', name)).code).toBe(0);
    expect((await sfn.waitForExecution(`${EXEC}:${name}`)).status).toBe('SUCCEEDED');
    return JSON.parse(sfn.describeExecution(`${EXEC}:${name}`).output!).run.version as string;
  }

  async function statusJson(name: string): Promise<RunView> {
    const r = await cli('status', name, '-o', 'json');
    expect(r.err).toBe('');
    const json = JSON.parse(r.out) as unknown;
    // The documented schema (an independent validator) and the zod schema it is generated from both accept it.
    validateStatusJson(json);
    return RunViewSchema.parse(json);
  }

  it('status -o json prints a RunView the documented schema accepts: steps, live staging, the approval links', async () => {
    await runToApproval('view-wait');
    const arn = `${EXEC}:view-wait`;
    // The local run's "email" (local/sns.ts appends each message to notifications.jsonl), with its links.
    const expiresAt = Math.floor(Date.now() / 1000) + 3600;
    const link = (action: 'approve' | 'reject') => signLink({ baseUrl: 'http://127.0.0.1:8787', id: approvalId(arn), action, expiresAt, secret: 'test-secret-0123456789' });
    writeFileSync(join(dir, 'notifications.jsonl'), `${JSON.stringify({ messageId: 'm', topicArn: 't', subject: 'Approve?', message: `Approve: ${link('approve')}\nReject: ${link('reject')}\n`, timestamp: new Date().toISOString() })}\n`);
    const view = await statusJson('view-wait');
    expect(view).toMatchObject({
      name: 'view-wait', status: 'RUNNING', currentStep: 'RequestApproval', model: 'fashion-mnist', image: TRAINER, trigger: { source: 'cli' },
      staging: { endpoint: STAGING_ENDPOINT }, production: null, error: null, cost: null, // no estimate before RecordRelease/RecordFailure
      approval: { status: 'pending', links: { approve: link('approve'), reject: link('reject') }, commands: { approve: 'mlpipe approve view-wait', reject: 'mlpipe reject view-wait' } },
      training: { status: 'succeeded', metrics: { accuracy: 0.8123, loss: 0.52 } },
      evaluation: { accuracy: 0.8101, passed: true },
    });
    expect(view.steps.map((s) => [s.name, s.status])).toEqual([
      ['Prepare', 'succeeded'], ['SubmitTraining', 'succeeded'], ['AwaitTraining', 'succeeded'], ['IsTrainingComplete', 'succeeded'], ['DeployStaging', 'succeeded'],
      ['EvaluateModel', 'succeeded'], ['EvaluationGate', 'succeeded'], ['RequestApproval', 'running'],
    ]);
    expect(view.steps.every((s) => s.seconds >= 0 && s.entries === 1)).toBe(true);
    const text = await cli('status', 'view-wait');
    expect(text.out).toContain(`approve   ${link('approve')}`);
    expect(text.out).toContain(`staging   ${STAGING_ENDPOINT}`);
    expect(text.out).toMatch(/steps +✓ Prepare +\d+\.\ds\n/);
    expect(text.out).toMatch(/ +▶ RequestApproval +\d+\.\ds/);
    expect(text.out).not.toContain('IsTrainingComplete'); // Choice states are decisions, not steps
    expect((await cli('status', 'view-wait', '-o', 'yaml')).err).toContain('--output must be json or text, got "yaml".');
  });

  it('status prints a run\'s recorded cost estimate, a line per component (none before it is recorded)', () => {
    const T0 = Date.parse('2026-01-01T12:00:00.000Z');
    const at = (s: number) => new Date(T0 + s * 1000);
    const events = [
      { type: 'TaskStateEntered', timestamp: at(0), stateEnteredEventDetails: { name: 'Prepare' } },
      { type: 'LambdaFunctionStarted', timestamp: at(0) },
      { type: 'LambdaFunctionSucceeded', timestamp: at(2) },
    ];
    const cost = estimateRunCost({ events, memory: { '*': 512 }, region: 'us-east-1', now: at(3) });
    const view = {
      name: 'r1', executionArn: `${EXEC}:r1`, status: 'SUCCEEDED', currentStep: null, lastStep: 'Succeeded', startedAt: at(0).toISOString(), stoppedAt: at(3).toISOString(),
      seconds: 3, model: null, version: null, image: null, imageDigest: null, trigger: null, steps: [], training: null, evaluation: null, staging: null, production: null,
      approval: null, error: null, consoleLink: null, monitor: null, cost,
    } satisfies RunView;
    const lines = runViewLines(view, at(10));
    const first = lines.findIndex((l) => l.startsWith('cost '));
    expect(lines.slice(first, first + 4)).toEqual([
      'cost      $0.000039 at us-east-1 list prices (estimate)',
      '            state transitions 1: $0.000025',
      '            Lambda 1 GB-s, 1 requests: $0.000014',
      '            training pod 0 CPU-s, 0 GPU-s: $0',
    ]);
    expect(runViewLines({ ...view, cost: null }, at(10)).some((l) => l.startsWith('cost'))).toBe(false);
  });

  it('status --watch prints the run, then each change, until it ends; the exit code is the run\'s', async () => {
    await runToApproval('watch-ok');
    await runToApproval('watch-no');
    // The injected clock's sleep is where the run moves on: decided on the first look, and over by the next.
    const decideThenWait = (cmd: string, name: string) => async () => {
      expect((await cli(cmd, name)).code).toBe(0);
      await sfn.waitForExecution(`${EXEC}:${name}`);
    };
    const ok = await cliWith({ sleep: decideThenWait('approve', 'watch-ok') }, 'status', 'watch-ok', '--watch');
    expect(ok.code).toBe(0);
    const lines = ok.out.split('\n');
    expect(lines[0]).toBe('run       watch-ok');
    expect(lines).toContain('status    RUNNING — in RequestApproval');
    const after = lines.slice(lines.findIndex((l) => l.startsWith('steps')));
    expect(after).toEqual(expect.arrayContaining([expect.stringMatching(/^ +✓ RequestApproval +\d/), expect.stringMatching(/^ +✓ DeployProduction/), 'status    SUCCEEDED']));
    expect(after.filter((l) => l.startsWith('status'))).toEqual(['status    SUCCEEDED']);
    expect(after).not.toContain(`staging   ${STAGING_ENDPOINT}`);
    expect(after.find((l) => l.startsWith('approval'))).toMatch(/^approval  approve by /);
    const no = await cliWith({ sleep: decideThenWait('reject', 'watch-no') }, 'status', 'watch-no', '--watch', '-o', 'json');
    expect(no.code).toBe(1);
    const views = no.out.split('\n').map((l) => JSON.parse(l) as RunView);
    expect(views[0]).toMatchObject({ status: 'RUNNING', currentStep: 'RequestApproval' });
    expect(views.at(-1)).toMatchObject({ status: 'FAILED', error: expect.stringMatching(/^ApprovalRejected/) });
    for (const v of views) validateStatusJson(v);
    expect((await cli('status', 'watch-no', '--interval', '5')).err).toContain('--interval goes with --watch.');
  });

  it('logs -f prints the pod log as it is written, until the pod ends', async () => {
    const r = await cli('run', SLOW_TRAINER, '--name', 'logs-follow');
    expect(r.code).toBe(0);
    let wrote = false;
    const followed = await cliWith(
      {
        // The first line was followed: let the trainer write its second and end.
        onOut: (line) => {
          if (line === 'epoch 1/2' && !wrote) {
            wrote = true;
            writeFileSync(join(dir, 'go-on'), '');
          }
        },
      },
      'logs', 'logs-follow', '-f',
    );
    expect([followed.code, followed.out]).toEqual([0, 'epoch 1/2\nepoch 2/2']);
    expect(followed.err).toMatch(/following until it ends/);
  });

  it('list shows the model and version of each run, as text and -o json', async () => {
    await runToApproval('models-listed', '--model', 'models-listed');
    const text = await cli('list');
    expect(text.out.split('\n')[0]).toMatch(/^RUN +STATUS +MODEL +VERSION +STARTED +DURATION$/);
    expect(text.out).toMatch(/models-listed +RUNNING +models-listed +20260101-000000--listed/);
    const json = await cli('list', '-o', 'json');
    const rows = JSON.parse(json.out) as Array<Record<string, unknown>>;
    expect(rows.find((r) => r.name === 'models-listed')).toEqual({
      name: 'models-listed', executionArn: `${EXEC}:models-listed`, status: 'RUNNING', model: 'models-listed', version: '20260101-000000--listed',
      startedAt: expect.any(String), stoppedAt: null, seconds: expect.any(Number),
    });
  });

  it('production and status follow the registry: a replaced or rolled-back version no longer claims production, a finished run shows no staging', async () => {
    // GIVEN two releases of a model
    const v1 = await releasedVersion('view-one', 'view-model');
    const v2 = await releasedVersion('view-two', 'view-model');

    // THEN the first is replaced, the second serves; neither, finished, shows its staging endpoint
    expect(await statusJson('view-one')).toMatchObject({ status: 'SUCCEEDED', staging: null, production: { serving: false, replacedBy: { version: v2, action: 'release' } }, approval: { status: 'decided', decision: 'approve' } });
    expect(await statusJson('view-two')).toMatchObject({ staging: null, production: { serving: true, endpoint: PRODUCTION_ENDPOINT } });
    const oneText = (await cli('status', 'view-one')).out;
    expect(oneText).not.toContain(STAGING_ENDPOINT);
    expect(oneText).toMatch(new RegExp(`production no longer serves: replaced by ${v2} at `));
    const text = await cli('production', 'view-model');
    expect(text.code).toBe(0);
    expect(text.out.split('\n')).toEqual([
      'model     view-model',
      expect.stringMatching(new RegExp(`^serving   ${v2} since \\S+ \\(released\\)$`)),
      `endpoint  ${PRODUCTION_ENDPOINT}`,
      `previous  ${v1}`,
      'history   (newest first)',
      expect.stringMatching(new RegExp(`^  \\S+  release  ${v2}  run view-two$`)),
      expect.stringMatching(new RegExp(`^  \\S+  release  ${v1}  run view-one$`)),
      'retained  none: no earlier version is kept for rollback',
    ]);

    // WHEN `mlpipe rollback` goes back to v1 (functions/rollback.ts switches, retires v2 and records it)
    const rolledBack = await recordRollback({ modelName: 'view-model', toVersion: v1, by: 'local:tester' });
    const kc = new k8s.KubeConfig();
    kc.loadFromFile(kube.kubeconfigPath);
    await kc.makeApiClient(k8s.AppsV1Api).createNamespacedDeployment({
      namespace: 'mlpipe-production',
      body: {
        metadata: {
          name: `view-model-${v2}`.slice(0, 63),
          labels: { 'app.kubernetes.io/name': 'view-model', 'app.kubernetes.io/managed-by': 'mlpipe', 'mlpipe.dev/stage': 'production', 'mlpipe.dev/version': v2 },
          annotations: { [RETIRED_AT_ANNOTATION]: rolledBack.switchedAt },
        },
        spec: { replicas: 0, selector: { matchLabels: { 'mlpipe.dev/version': v2 } }, template: { metadata: { labels: { 'mlpipe.dev/version': v2 } }, spec: { containers: [{ name: 'serve', image: 'serve:test' }] } } },
      },
    });

    // THEN v2's run no longer claims production, v1's does again, and the production view says how
    expect(await statusJson('view-two')).toMatchObject({ production: { serving: false, replacedBy: { version: v1, action: 'rollback', by: 'local:tester' } } });
    expect((await cli('status', 'view-two')).out).toMatch(new RegExp(`production no longer serves: rolled back to ${v1} at \\S+ by local:tester`));
    expect(await statusJson('view-one')).toMatchObject({ production: { serving: true, endpoint: PRODUCTION_ENDPOINT } });
    const view = await readProductionView(await resolveTarget({ stateDir: dir }), 'view-model');
    expect(view).toEqual({
      model: 'view-model',
      serving: { version: v1, endpoint: PRODUCTION_ENDPOINT, since: rolledBack.switchedAt, how: 'rollback', by: 'local:tester', previousVersion: v2 },
      history: [
        { version: v1, action: 'rollback', at: rolledBack.switchedAt, by: 'local:tester', run: null, canary: null },
        { version: v2, action: 'release', at: expect.any(String), by: null, run: 'view-two', canary: null },
        { version: v1, action: 'release', at: expect.any(String), by: null, run: 'view-one', canary: null },
      ],
      retained: [{ version: v2, replicas: 0, retiredAt: rolledBack.switchedAt }],
    });
    expect(JSON.parse((await cli('production', 'view-model', '-o', 'json')).out)).toEqual(JSON.parse(JSON.stringify(view)));
    expect((await cli('production', 'view-model')).out).toContain(`retained  ${v2} (0 replicas, retired ${rolledBack.switchedAt}): mlpipe rollback view-model --to ${v2}`);
    expect((await cli('production', 'nothing-here')).out).toContain('serving   nothing: no version of this model was ever released');
    expect((await cli('production', 'Bad_Name')).code).toBe(2);
  });

  it('--version prints the package\'s version', async () => {
    const version = await cli('--version');
    expect([version.code, version.out]).toEqual([0, `mlpipe ${JSON.parse(readFileSync(resolve(__dirname, '../../package.json'), 'utf8')).version}`]);
  });

  it('docs/status.schema.json is the JSON Schema generated from RunViewSchema (npx tsx cli/status-schema.ts --write)', () => {
    expect(readFileSync(STATUS_SCHEMA_FILE, 'utf8')).toBe(statusSchemaText());
  });

  it('graph draws the machine with the run\'s progress, as text and as Mermaid', async () => {
    await runToApproval('run-graph');
    const text = await cli('graph', 'run-graph');
    expect(text.code).toBe(0);
    expect(text.out).toMatch(/✓ Prepare ⚠\s+Task/);
    expect(text.out).toMatch(/▶ RequestApproval ⚠\s+Task/);
    expect(text.out).toMatch(/IsTrainingComplete\s+Choice\s+→ DeployStaging if \$\.training\.status == "succeeded"; → AwaitTraining ⟲ otherwise/);
    // Every catch leads to PipelineFailed: folded into one failure path, each catching state marked ⚠.
    expect(text.out).toMatch(/⚠ on an error, each of these \d+ states goes to PipelineFailed\./);
    expect(text.out).not.toContain('on error States.ALL');
    const mermaid = await cli('graph', 'run-graph', '--format', 'mermaid');
    expect(mermaid.out).toContain('flowchart TD');
    expect(mermaid.out).toContain('anyError -.-> PipelineFailed');
    expect(mermaid.out).not.toContain('-.->|"States.ALL"|');
    const json = await cli('graph', 'run-graph', '-o', 'json');
    expect(JSON.parse(json.out)).toMatchObject({ startAt: 'Prepare', failure: { entry: 'PipelineFailed' }, run: { name: 'run-graph', states: { Prepare: { mark: 'done' }, RequestApproval: { mark: 'current' } } } });
    expect(mermaid.out).toContain('class Prepare done');
    expect(mermaid.out).toContain('class RequestApproval current');
    expect((await cli('graph', '--format', 'svg')).code).toBe(2);
  });

  it('logs prints the training pod log through the Kubernetes API', async () => {
    await runToApproval('run-logs');
    const r = await cli('logs', 'run-logs');
    expect(r.code).toBe(0);
    expect(r.out).toContain('epoch 1/1 accuracy=0.8123');
    expect(r.out).toContain('wrote metrics.json');
    expect((await cli('logs', 'run-logs', '--tail', '1')).out).toBe('wrote metrics.json');
  });


  it('approve resumes the run with the caller recorded; a second decision is refused', async () => {
    await runToApproval('run-approve');
    const r = await cli('approve', 'run-approve', '--comment', 'looks good');
    expect(r).toMatchObject({ code: 0 });
    expect(r.out).toMatch(/approved\s+fashion-mnist/);
    const done = await sfn.waitForExecution(`${EXEC}:run-approve`);
    expect(done.status).toBe('SUCCEEDED');
    expect(JSON.parse(done.output!).approval).toMatchObject({ decision: 'approve', by: `local:${userInfo().username}`, comment: 'looks good' });
    expect((await cli('approve', 'run-c-missing')).code).toBe(1);
    const again = await cli('reject', 'run-approve');
    expect(again.code).toBe(1);
    expect(again.err).toBe(
      `mlpipe reject: Run run-approve is not waiting for approval: it has ended, SUCCEEDED (it was approved by local:${userInfo().username}). \`mlpipe status run-approve\` shows how.`,
    );
    expect((await cli('status', 'run-approve')).out).toMatch(/production http:\/\/127\.0\.0\.1:18501/);
  });

  it('reject fails the run with ApprovalRejected', async () => {
    await runToApproval('run-b');
    expect((await cli('reject', 'run-b', '--comment', 'no')).code).toBe(0);
    expect(await sfn.waitForExecution(`${EXEC}:run-b`)).toMatchObject({ status: 'FAILED', error: 'ApprovalRejected' });
    const status = await cli('status', 'run-b');
    expect(status.code).toBe(1);
    expect(status.out).toMatch(/error\s+ApprovalRejected/);
    expect((await cli('graph', 'run-b')).out).toMatch(/✗ RequestApproval/);
  });

  it('list shows runs newest first and filters by status', async () => {
    await releasedRun('list-ok');
    await runToApproval('list-no');
    expect((await cli('reject', 'list-no')).code).toBe(0);
    expect((await sfn.waitForExecution(`${EXEC}:list-no`)).status).toBe('FAILED');
    const all = await cli('list');
    expect(all.code).toBe(0);
    // Other tests' runs may be listed too (in whatever order the tests ran): only these two are compared.
    const rows = all.out.split('\n').slice(1).map((l) => l.split(/\s+/)[0]);
    expect(rows.filter((r) => r?.startsWith('list-'))).toEqual(['list-no', 'list-ok']);
    expect((await cli('list', '--status', 'succeeded')).out).toMatch(/list-ok\s+SUCCEEDED/);
    expect((await cli('list', '--status', 'succeeded')).out).not.toContain('list-no');
    expect((await cli('list', '--status', 'bogus')).code).toBe(2);
  });

  it('approve and reject say so when the run has ended instead of waiting for approval', async () => {
    await cli('run', TRAINER, '--name', 'run-gate', '--hyperparameters', '{"failGate": true}');
    expect(await sfn.waitForExecution(`${EXEC}:run-gate`)).toMatchObject({ status: 'FAILED', error: 'EvaluationGateFailed' });
    const r = await cli('approve', 'run-gate');
    expect(r).toMatchObject({ code: 1, err: 'mlpipe approve: Run run-gate is not waiting for approval: it has ended, FAILED. `mlpipe status run-gate` shows how.' });
  });

  it('rollback runs functions/rollback.ts locally and reports why it cannot roll back', async () => {
    const r = await cli('rollback', 'fashion-mnist');
    expect(r.code).toBe(1);
    expect(r.err).toBe(
      'mlpipe rollback: cannot roll back: Service mlpipe-production/fashion-mnist does not exist or selects no version: fashion-mnist has no production to roll back.',
    );
    const bad = await cli('rollback', 'Fashion_MNIST');
    expect(bad.code).toBe(2);
    expect(bad.err).toContain('"Fashion_MNIST" is not a model name: use lower-case letters, digits and "-", e.g. fashion-mnist.');
  });

  it.each([
    [['status', 'a', 'b'], 'mlpipe status: takes at most 1 argument ([run]), got 2: "a b".'],
    [['list', 'extra'], 'mlpipe list: takes no arguments, got "extra".'],
    [['logs'], 'mlpipe logs: missing <run>.'],
    [['status', '--bogus'], 'mlpipe status: unknown option --bogus.'],
    [['list', '--max'], 'mlpipe list: --max needs a value.'],
  ])('wrong usage %j names the problem, shows the usage and exits 2', async (argv, message) => {
    const r = await cli(...argv);
    expect(r.code).toBe(2);
    expect(r.err.split('\n')).toEqual([message, expect.stringMatching(new RegExp(`^Usage: mlpipe ${argv[0]} .*\\(mlpipe ${argv[0]} --help\\)$`))]);
  });

  it('suggests the command a typo meant; no command at all prints the usage on stderr with exit 2', async () => {
    const typo = await cli('aprove', 'x');
    expect(typo.code).toBe(2);
    expect(typo.err.split('\n')[0]).toBe('mlpipe: there is no command "aprove". Did you mean `mlpipe approve`?');
    const out: string[] = [];
    const err: string[] = [];
    expect(await main([], { out: (l) => out.push(l), err: (l) => err.push(l) })).toBe(2);
    expect(out).toEqual([]);
    expect(err.join('\n')).toContain('Usage: mlpipe <command> [options]');
    expect(await main(['--help'], { out: (l) => out.push(l), err: () => undefined })).toBe(0);
    expect(out.join('\n')).toContain('Usage: mlpipe <command> [options]');
  });

  it.each(['run', 'status', 'list', 'logs', 'approve', 'reject', 'retry', 'rollback', 'production', 'graph'])('%s --help explains the command', async (name) => {
    const r = await cli(name, '--help');
    expect(r.code).toBe(0);
    expect(r.out).toMatch(new RegExp(`^Usage: mlpipe ${name}`));
    expect(r.out).toContain('--local');
  });

  it('monitor-rbac --rotation prints the token rotation\'s Role and RoleBinding in the staging and the production namespace; its options without --rotation are refused', async () => {
    const r = await cli('monitor-rbac', '--rotation', '--model', 'fm', '--local');
    expect(r.code).toBe(0);
    const roles = [...r.out.matchAll(/kind: (Role|RoleBinding)\nmetadata: \{ name: mlpipe-token-rotation, namespace: ([\w-]+) \}/g)].map((m) => `${m[1]} ${m[2]}`);
    expect(roles).toEqual(['Role mlpipe-staging', 'RoleBinding mlpipe-staging', 'Role mlpipe-production', 'RoleBinding mlpipe-production']);
    expect(r.out).toContain('resourceNames: [fm-endpoint-token]');
    expect(r.out).toContain('name: "mlpipe-token-rotation" }]');
    const monitor = await cli('monitor-rbac', '--local');
    expect(monitor.code).toBe(0);
    expect(monitor.out).not.toMatch(/secrets|mlpipe-staging/);
    const stray = await cli('monitor-rbac', '--model', 'fm', '--local');
    expect(stray.code).toBe(2);
    expect(stray.err).toContain('--staging-namespace and --model go with --rotation');
    expect((await cli('monitor-rbac', '--rotation', '--model', 'Bad_Model', '--local')).err).toContain('--model: "Bad_Model" is not a model name');
    // --tasks: the Kubernetes tasks' Roles in both namespaces, group mlpipe-tasks by default; not with --rotation
    // (a target without endpoint tokens leaves the Secret rule wide, and the Role's comment says so)
    expect((await cli('monitor-rbac', '--tasks', '--local')).out).toContain('every Secret: pass --model to narrow it');
    const tasks = await cli('monitor-rbac', '--tasks', '--model', 'fm', '--local');
    expect(tasks.code).toBe(0);
    expect([...tasks.out.matchAll(/kind: Role\nmetadata: \{ name: mlpipe-tasks, namespace: ([\w-]+) \}/g)].map((m) => m[1])).toEqual(['mlpipe-staging', 'mlpipe-production']);
    expect(tasks.out).toContain('name: "mlpipe-tasks" }]');
    const both = await cli('monitor-rbac', '--tasks', '--rotation', '--local');
    expect(both.code).toBe(2);
    expect(both.err).toContain('--rotation and --tasks print different Roles: choose one.');
    // --rollback: the rollback's Role in production only, group mlpipe-rollback by default; no staging, no Secret, no other Role
    const rollback = await cli('monitor-rbac', '--rollback', '--local');
    expect(rollback.code).toBe(0);
    expect([...rollback.out.matchAll(/kind: (Role|RoleBinding)\nmetadata: \{ name: ([\w-]+), namespace: ([\w-]+) \}/g)].map((m) => `${m[1]} ${m[2]} ${m[3]}`)).toEqual(['Role mlpipe-rollback mlpipe-production', 'RoleBinding mlpipe-rollback mlpipe-production']);
    expect(rollback.out).toContain('name: "mlpipe-rollback" }]');
    expect((await cli('monitor-rbac', '--rollback', '--tasks', '--local')).err).toContain('--tasks and --rollback print different Roles: choose one.');
    const rollbackModel = await cli('monitor-rbac', '--rollback', '--model', 'fm', '--local');
    expect([rollbackModel.code, rollbackModel.err]).toEqual([2, expect.stringContaining('the rollback has no access to staging and reads no Secret')]);
  });

  it('monitor-rbac with the namespaces named prints the Roles before any stack exists: no stack is read, no pipeline needed', async () => {
    // No local pipeline in this state dir, and no AWS region: a target could not be resolved.
    const empty = mkdtempSync(join(tmpdir(), 'mlpipe-no-target-'));
    const saved = { AWS_REGION: process.env.AWS_REGION, AWS_DEFAULT_REGION: process.env.AWS_DEFAULT_REGION };
    delete process.env.AWS_REGION;
    delete process.env.AWS_DEFAULT_REGION;
    const run = async (...argv: string[]) => {
      const out: string[] = [];
      const err: string[] = [];
      const code = await main([...argv, '--state-dir', empty], { out: (l) => out.push(l), err: (l) => err.push(l) });
      return { code, out: out.join('\n'), err: err.join('\n') };
    };
    try {
      const tasks = await run('monitor-rbac', '--tasks', '--namespace', 'ml-prod', '--staging-namespace', 'ml-stage', '--model', 'fm');
      expect([tasks.code, tasks.err]).toEqual([0, '']);
      expect([...tasks.out.matchAll(/kind: Role\nmetadata: \{ name: mlpipe-tasks, namespace: ([\w-]+) \}/g)].map((m) => m[1])).toEqual(['ml-stage', 'ml-prod']);
      const monitor = await run('monitor-rbac', '--namespace', 'ml-prod');
      expect([monitor.code, monitor.err]).toEqual([0, '']);
      expect(monitor.out).toMatch(/kind: Role\nmetadata: \{ name: mlpipe-monitor, namespace: ml-prod \}/);
      const rollback = await run('monitor-rbac', '--rollback', '--namespace', 'ml-prod', '--group', 'rollers');
      expect([rollback.code, rollback.err]).toEqual([0, '']);
      expect(rollback.out).toMatch(/kind: Role\nmetadata: \{ name: mlpipe-rollback, namespace: ml-prod \}[^]*name: "rollers" \}\]$/);
      // --tasks without --model: the target's models narrow the Secret rule (its token Secrets), so a
      // target is read even with both namespaces named; without one, that is the error
      const noModel = await run('monitor-rbac', '--tasks', '--namespace', 'ml-prod', '--staging-namespace', 'ml-stage');
      expect([noModel.code === 0, noModel.out]).toEqual([false, '']);
      const withTokens = mkdtempSync(join(tmpdir(), 'mlpipe-tokens-'));
      try {
        const secret = (m: string) => `arn:aws:secretsmanager:us-east-1:000000000000:secret:mlpipe/${m}-endpoint-token-AbCdEf`;
        writeLocalFile(withTokens, { sfnEndpoint: 'http://127.0.0.1:9', stateMachineArn: ARN, endpointTokenSecrets: { other: secret('other'), fm: secret('fm') } });
        const out: string[] = [];
        expect(await main(['monitor-rbac', '--tasks', '--state-dir', withTokens], { out: (l) => out.push(l), err: () => undefined })).toBe(0);
        expect(out.join('\n').match(/resourceNames: \[.*\]/g)).toEqual(['resourceNames: [fm-endpoint-token, other-endpoint-token]', 'resourceNames: [fm-endpoint-token, other-endpoint-token]']);
      } finally {
        rmSync(withTokens, { recursive: true, force: true });
      }
      // Without the staging namespace, --rotation still needs the target's, and says why it has none.
      const rotation = await run('monitor-rbac', '--rotation', '--namespace', 'ml-prod');
      expect(rotation.code).not.toBe(0);
      expect(rotation.out).toBe('');
      expect(rotation.err).toMatch(/^mlpipe monitor-rbac: /);
    } finally {
      Object.assign(process.env, saved);
      for (const [k, v] of Object.entries(saved)) if (v === undefined) delete process.env[k];
      rmSync(empty, { recursive: true, force: true });
    }
  });

  it('says what to do when there is no local pipeline, and on unknown commands', async () => {
    const out: string[] = [];
    const code = await main(['list', '--local', '--state-dir', join(dir, 'nothing-here')], { out: (l) => out.push(l), err: (l) => out.push(l) });
    expect(code).toBe(1);
    expect(out.join('\n')).toMatch(/No local pipeline.*npm start/);
    expect(await main(['frobnicate'], { out: () => undefined, err: () => undefined })).toBe(2);
  });

  it('the mlpipe launcher runs as its own process', async () => {
    await releasedRun('run-launch');
    // Asynchronously: the endpoints it talks to live in this process.
    const child = spawn(process.execPath, [resolve(__dirname, '../../cli/mlpipe.js'), 'status', 'run-launch', '--state-dir', dir]);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const code = await new Promise<number | null>((r) => child.on('close', r));
    expect(stderr).toBe('');
    expect(code).toBe(0);
    expect(stdout).toMatch(/status\s+SUCCEEDED/);
  });

  it('graph marks the wait loops of the real pipeline definition', () => {
    const lines = renderText(buildGraph(parseAsl(readFileSync(resolve(__dirname, '../../statemachine/pipeline.asl.json'), 'utf8'))));
    expect(lines[0]).toMatch(/^Prepare\s+Task\s+→ ResumeRun/);
    expect(lines.find((l) => l.startsWith('ResumeRun'))).toMatch(/Choice\s+→ SubmitTraining if not\(\.\.\.\); → DeployStaging if/);
    // Training loops through a Wait (WaitForTraining → CheckTraining) or a watch (AwaitTraining → IsTrainingComplete).
    const loops = ['WaitForTraining', 'AwaitTraining', 'IsStagingRolledOut', 'IsStagingEndpointReady', 'IsProductionRolledOut', 'IsCanaryShifted', 'CanaryVerdict', 'IsProductionEndpointReady'];
    for (const loop of loops) expect(lines.find((l) => l.startsWith(loop))).toMatch(/⟲/);
    expect(lines.filter((l) => l.includes('⟲'))).toHaveLength(loops.length);
  });
});
