/**
 * Issue 11: the run history outlives a restart of `npm start`. A LocalStepFunctions with a journal file runs
 * a run to its end and leaves one waiting for a task token, as a process killed mid-run would; a second
 * engine on the same file (the next `npm start`) lists both, gives the finished one's history back as it
 * was, and shows the cut one ABORTED with the error Interrupted rather than RUNNING forever — through the
 * CLI on the second engine's endpoint. The journal keeps no task token. Then a real local run's journal
 * (test/fixtures/cli/local-run.executions.jsonl, written by `npm start` on this pipeline's own state machine)
 * is reloaded, and `mlpipe status -o json` of its run validates against docs/status.schema.json.
 * Run from test/cli/run-status-validation.test.ts, which loads the same CLI modules.
 */
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { DEFINITION_FILE } from '../../lib/constructs/state-machine';
import { LocalStepFunctions, startLocalSfnEndpoint, type LocalSfnEndpoint, type TaskHandler } from '../../local/stepfunctions';
import { STATE_MACHINE_ARN } from '../../local/pipeline';
import { main } from '../../cli/main';
import { RunViewSchema } from '../../cli/run-view';
import { validateStatusJson } from './status-schema';
import { followExecutions } from '../../local/stepfunctions/follow';
import { approvalId, signLink } from '../../functions/shared/approval-link';
import { writeLocalFile } from './local-file';
import { validatedFileFor } from '../sfn-validated';

const ARN = 'arn:aws:states:us-east-1:000000000000:stateMachine:mlpipe-run-history';
const EXEC = ARN.replace(':stateMachine:', ':execution:');
const FN = (n: string) => `arn:aws:lambda:us-east-1:000000000000:function:${n}`;
const FIXTURE = resolve(__dirname, '../fixtures/cli/local-run.executions.jsonl');

const definition = {
  StartAt: 'Prepare',
  States: {
    Prepare: { Type: 'Task', Resource: FN('prepare'), ResultPath: '$.prepared', Next: 'RequestApproval' },
    RequestApproval: {
      Type: 'Task', Resource: 'arn:aws:states:::lambda:invoke.waitForTaskToken', ResultPath: '$.approval', Next: 'Done',
      Parameters: { FunctionName: FN('request-approval'), Payload: { 'taskToken.$': '$$.Task.Token', 'approve.$': '$.approve' } },
    },
    Done: { Type: 'Succeed' },
  },
};

describe('the local run history outlives a restart', () => {
  let dir: string;
  const engines: Array<{ sfn: LocalStepFunctions; endpoint: LocalSfnEndpoint }> = [];
  const saved = { ...process.env };
  const tokens: string[] = [];

  /** The handlers of one engine (`self`, once it exists). */
  const handlersOf = (self: () => LocalStepFunctions): Record<string, TaskHandler> => ({
    Prepare: async () => ({ ok: true }),
    RequestApproval: async (payload, ctx) => {
      tokens.push(ctx.taskToken!);
      const p = payload as { approve?: boolean };
      // Approved at once, or left waiting for a decision that never comes (the process "dies" meanwhile).
      if (p.approve) setImmediate(() => self().sendTaskSuccess(ctx.taskToken!, JSON.stringify({ decision: 'approve' })));
      return {};
    },
  });

  /** An engine on `journalFile`, its endpoint, and local.json pointing the CLI at it. */
  async function engine(journalFile: string, opts: { definition?: object; stateMachineArn?: string; taskHandlers?: Record<string, TaskHandler> } = {}) {
    const sfn: LocalStepFunctions = new LocalStepFunctions({
      definition: opts.definition ?? definition, validatedFile: validatedFileFor(opts.definition ?? definition), stateMachineArn: opts.stateMachineArn ?? ARN, taskHandlers: opts.taskHandlers ?? handlersOf(() => sfn), journalFile,
    });
    const endpoint = await startLocalSfnEndpoint(sfn);
    engines.push({ sfn, endpoint });
    writeLocalFile(dir, { sfnEndpoint: endpoint.endpoint, bucket: 'mlpipe-run-history', stateMachineArn: opts.stateMachineArn ?? ARN });
    return sfn;
  }

  async function cli(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
    const out: string[] = [];
    const err: string[] = [];
    const code = await main([...argv, '--state-dir', dir], { out: (l) => out.push(l), err: (l) => err.push(l) });
    return { code, out: out.join('\n'), err: err.join('\n') };
  }

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'mlpipe-run-history-'));
  });

  afterAll(async () => {
    for (const { sfn, endpoint } of engines) {
      await sfn.close();
      await endpoint.stop();
    }
    process.env = saved;
    rmSync(dir, { recursive: true, force: true });
  });

  it('a restarted engine lists the earlier runs; one cut off mid-run reads ABORTED (Interrupted); no task token is kept', async () => {
    // GIVEN an engine that ran one run to its end and left one waiting for approval
    const journal = join(dir, 'executions.jsonl');
    const first = await engine(journal);
    first.startExecution({ name: 'finished', input: JSON.stringify({ approve: true }) });
    expect((await first.waitForExecution(`${EXEC}:finished`)).status).toBe('SUCCEEDED');
    first.startExecution({ name: 'cut-off', input: JSON.stringify({ approve: false }) });
    while (!first.getExecutionHistory(`${EXEC}:cut-off`).events.some((e) => e.type === 'TaskSubmitted')) await new Promise((r) => setImmediate(r));
    const history = first.getExecutionHistory(`${EXEC}:finished`, { maxResults: 1000 }).events;

    // WHEN the next engine starts on the same journal (the first is never closed: its process "died")
    const second = await engine(journal);

    // THEN
    // The same history, but for the task token it does not keep.
    const unkept = tokens.reduce((text, token) => text.split(token).join('(not kept)'), JSON.stringify(history));
    expect(JSON.stringify(second.getExecutionHistory(`${EXEC}:finished`, { maxResults: 1000 }).events)).toBe(unkept);
    expect(unkept).not.toBe(JSON.stringify(history));
    expect(second.describeExecution(`${EXEC}:cut-off`)).toMatchObject({ status: 'ABORTED', error: 'Interrupted' });
    const list = await cli('list');
    expect(list.out).toMatch(/cut-off\s+ABORTED/);
    expect(list.out).toMatch(/finished\s+SUCCEEDED/);
    const status = await cli('status', 'cut-off');
    expect(status.code).toBe(1);
    expect(status.out).toMatch(/status\s+ABORTED/);
    expect(status.out).toMatch(/error\s+Interrupted: The local pipeline ended while this run was running/);
    expect(status.out).toMatch(/■ RequestApproval/);
    expect(tokens.length).toBeGreaterThanOrEqual(2);
    const kept = readFileSync(journal, 'utf8');
    for (const token of tokens) expect(kept).not.toContain(token);
    // A name is still taken after the restart (as on AWS); a new run is kept too, for the engine after.
    expect(() => second.startExecution({ name: 'finished' })).toThrow(/Execution Already Exists/);
    second.startExecution({ name: 'after-restart', input: JSON.stringify({ approve: false }) });
    while (!second.getExecutionHistory(`${EXEC}:after-restart`).events.some((e) => e.type === 'TaskSubmitted')) await new Promise((r) => setImmediate(r));
    const third = await engine(journal);
    expect(third.listExecutions().executions.map((e) => [e.name, e.status])).toEqual([
      ['after-restart', 'ABORTED'],
      ['cut-off', 'ABORTED'],
      ['finished', 'SUCCEEDED'],
    ]);
  });

  it('npm start follows every run it did not start: each step once, the approval links, how it ended', async () => {
    const sfn = await engine(join(dir, 'follow.executions.jsonl'));
    const notificationsFile = join(dir, 'follow-notifications.jsonl');
    // The approval "email" of the run that will wait (local/sns.ts writes one JSON line per message).
    const link = (action: 'approve' | 'reject') => signLink({ baseUrl: 'http://127.0.0.1:8787', id: approvalId(`${EXEC}:waits`), action, expiresAt: 1_900_000_000, secret: 'test-secret-0123456789' });
    writeFileSync(notificationsFile, `${JSON.stringify({ messageId: 'm', topicArn: 't', message: `approve: ${link('approve')}\nreject: ${link('reject')}` })}\n`);
    const lines: string[] = [];
    const stop = followExecutions(sfn, { log: (l) => lines.push(l), skip: (name) => name === 'own-run', notificationsFile });
    sfn.startExecution({ name: 'own-run', input: JSON.stringify({ approve: true }) });
    sfn.startExecution({ name: 'approved', input: JSON.stringify({ approve: true, image: 'trainer:1', trigger: { source: 'cli', detail: { by: 'local:tester' } } }) });
    sfn.startExecution({ name: 'waits', input: JSON.stringify({ approve: false }) });
    await sfn.waitForExecution(`${EXEC}:approved`);
    await sfn.waitForExecution(`${EXEC}:own-run`);
    while (!lines.some((l) => l.includes('reject  '))) await new Promise((r) => setImmediate(r));
    sfn.stopExecution(`${EXEC}:waits`, 'Interrupted', 'stopped by the test');
    stop();
    expect(lines.filter((l) => l.startsWith('[approved]'))).toEqual([
      '[approved] started: trainer:1 (cli by local:tester)',
      '[approved] ▶ Prepare',
      '[approved] ▶ RequestApproval',
      '[approved]   waits for approval: npm run mlpipe -- approve approved   (or: reject approved)',
      '[approved] ▶ Done',
      expect.stringMatching(/^\[approved\] ✓ SUCCEEDED in \d+\.\d s$/),
    ]);
    expect(lines.filter((l) => l.startsWith('[waits]'))).toEqual(expect.arrayContaining([`[waits]   approve  ${link('approve')}`, `[waits]   reject   ${link('reject')}`]));
    expect(lines.filter((l) => l.startsWith('[waits]')).at(-1)).toMatch(/^\[waits\] ✗ ABORTED after \d+\.\d s — Interrupted: stopped by the test$/);
    expect(lines.some((l) => l.includes('own-run'))).toBe(false);
  });

  it('status -o json of a real local run (its journal reloaded) validates against docs/status.schema.json', async () => {
    // The pipeline's own definition; no task runs (the run ended before it was journalled).
    const text = readFileSync(DEFINITION_FILE, 'utf8').replace(/\$\{([A-Za-z0-9_]+)\}/g, (_m, name: string) => FN(name));
    const asl = JSON.parse(text) as { States: Record<string, { Type: string }> };
    const never: TaskHandler = async () => {
      throw new Error('a reloaded run executes nothing');
    };
    const taskHandlers = Object.fromEntries(Object.entries(asl.States).filter(([, s]) => s.Type === 'Task').map(([name]) => [name, never]));
    const journal = join(dir, 'real.executions.jsonl');
    copyFileSync(FIXTURE, journal);
    const sfn = await engine(journal, { definition: asl, stateMachineArn: STATE_MACHINE_ARN, taskHandlers });
    const [run] = sfn.listExecutions().executions;
    const r = await cli('status', run!.name, '-o', 'json');
    expect(r.err).toBe('');
    const json = JSON.parse(r.out) as unknown;
    validateStatusJson(json);
    const view = RunViewSchema.parse(json);
    expect(view).toMatchObject({ name: run!.name, status: run!.status, staging: null, model: 'fashion-mnist' });
    expect(view.steps.map((s) => s.name)).toEqual(expect.arrayContaining(['Prepare', 'AwaitTraining', 'EvaluateModel']));
    expect(view.training).toMatchObject({ status: 'succeeded', metrics: expect.objectContaining({ accuracy: expect.any(Number) }) });
  });
});
