/**
 * The whole pipeline on one machine: local S3, a local Kubernetes API (or any kubeconfig), a local SNS
 * stand-in, the approval endpoint and a local Step Functions engine running statemachine/pipeline.asl.json
 * with every Task mapped to the same handler module as in AWS (DESIGN decision 12).
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import { join, resolve } from 'node:path';
import { startLocalS3, LOCAL_AWS_ENV } from './s3';
import { startLocalSns } from './sns';
import { startApprovalServer, type HttpApiHandler } from './approval-server';
import { reloadSettings } from '../functions/shared/settings';
import { loadHandler, loadLocalDefinition } from './task-handlers';
import { LocalStepFunctions, startLocalSfnEndpoint, type ExecutionEvent } from './stepfunctions';
import { startLocalKube, type ImageCommand, type LocalKube } from './kube';
import { ensureNamespaces } from './namespaces';
import { stageFashionMnist } from '../examples/fashion-mnist/stage-data';
import { resetClients } from '../functions/shared/clients';
import { resetKube } from '../functions/shared/kube';
import { restoreProduction } from './restore-production';
import { approvalId } from '../functions/shared/approval-link';
import { describeCause } from '../functions/shared/outcome';
import type { PipelineState } from '../functions/shared/types';

export const REPO_ROOT = resolve(__dirname, '..');
export const LOCAL_BUCKET = 'mlpipe-local';
export const TRAINING_IMAGE = 'mlpipe/fashion-mnist-train:local';
export const SERVING_IMAGE = 'mlpipe/fashion-mnist-serve:local';
export const STATE_MACHINE_ARN = 'arn:aws:states:us-east-1:000000000000:stateMachine:mlpipe-local';
const TOPIC_ARN = 'arn:aws:sns:us-east-1:000000000000:mlpipe-local-notifications';

export type ApprovalMode = 'interactive' | 'auto-approve' | 'reject';

export interface LocalPipelineOptions {
  /** Where local state lives (S3 files, pod logs, kubeconfig, notifications). Default `.mlpipe`. */
  stateDir?: string;
  /** Use this cluster instead of the local Kubernetes API. */
  kubeconfig?: string;
  approval?: ApprovalMode;
  /** Settings to override (the Lambda environment variables of docs/architecture.md). */
  settings?: Record<string, string>;
  /** Extra image → command entries for the local Kubernetes API (tests use this). */
  images?: Record<string, ImageCommand>;
  /** Port for the approval links; default 8787, falling back to any free port. */
  approvalPort?: number;
  log?: (line: string) => void;
}

export interface StateTiming {
  state: string;
  enteredAt: number;
  exitedAt?: number;
}

export interface RunOutcome {
  executionArn: string;
  status: string;
  output?: PipelineState;
  /** The last state data seen (for a failed run, what it knew when it failed). */
  lastState?: PipelineState;
  error?: string;
  cause?: string;
  wallMs: number;
  states: StateTiming[];
}

export interface LocalPipeline {
  bucket: string;
  kubeconfigPath: string;
  approvalUrl: string;
  /** How long staging the data set took in this start (0 when it was already staged). */
  stagingSeconds: number;
  notificationsFile: string;
  /** Starts one run and resolves when it ends. */
  run(input?: Record<string, unknown>, opts?: { name?: string; approval?: ApprovalMode }): Promise<RunOutcome>;
  stop(): Promise<void>;
}

function nodeTsCommand(script: string): ImageCommand {
  // tsx's loader on Node 22 (process.execPath is Node 22 under npm scripts, npx and jest alike).
  return { command: process.execPath, args: ['--import', 'tsx', join(REPO_ROOT, script)], cwd: REPO_ROOT };
}

export const LOCAL_IMAGES: Record<string, ImageCommand> = {
  [TRAINING_IMAGE]: nodeTsCommand('examples/fashion-mnist/train.ts'),
  [SERVING_IMAGE]: nodeTsCommand('examples/fashion-mnist/serve.ts'),
};

const LINK = /(https?:\/\/127\.0\.0\.1:\d+\/approvals\/[^\s?]+\?[^\s]+)/g;

export async function startLocalPipeline(opts: LocalPipelineOptions = {}): Promise<LocalPipeline> {
  const log = opts.log ?? ((line: string) => console.log(line));
  const stateDir = resolve(opts.stateDir ?? join(REPO_ROOT, '.mlpipe'));
  mkdirSync(stateDir, { recursive: true });
  const stoppers: Array<() => Promise<void>> = [];
  const stop = async () => {
    while (stoppers.length) await stoppers.pop()!().catch(() => undefined);
  };

  try {
    const s3 = await startLocalS3({ dir: join(stateDir, 's3'), buckets: [LOCAL_BUCKET] });
    stoppers.push(() => s3.stop());
    Object.assign(process.env, LOCAL_AWS_ENV, { AWS_ENDPOINT_URL_S3: s3.endpoint });
    resetClients();

    const staging = await stageFashionMnist({ bucket: LOCAL_BUCKET });
    log(`data      ${staging.uri} (${staging.skipped ? 'already staged' : `staged in ${staging.seconds.toFixed(1)} s`})`);

    const podEnv = { ...LOCAL_AWS_ENV, AWS_ENDPOINT_URL_S3: s3.endpoint };
    let kubeconfigPath: string;
    let localKube: LocalKube | undefined;
    if (opts.kubeconfig) {
      kubeconfigPath = resolve(opts.kubeconfig);
    } else {
      const kube = await startLocalKube({ images: { ...LOCAL_IMAGES, ...opts.images }, stateDir: join(stateDir, 'kube'), env: podEnv });
      stoppers.push(() => kube.stop());
      kubeconfigPath = kube.kubeconfigPath;
      localKube = kube;
    }
    // A restarted local cluster keeps its kubeconfig path but has a new port and token.
    resetKube();

    const notificationsFile = join(stateDir, 'notifications.jsonl');
    const approvalLinks = new Map<string, string[]>(); // approval id → links from the "email"
    let activePrinter: ProgressPrinter | undefined;
    const sns = await startLocalSns({
      file: notificationsFile,
      onMessage: (m) => {
        const links = m.message.match(LINK) ?? [];
        const id = /\/approvals\/([^?\s]+)/.exec(links[0] ?? '')?.[1];
        if (id) approvalLinks.set(id, links);
        // During a run its printer shows the email in context; the full text is in notificationsFile.
        if (activePrinter) activePrinter.email(m.subject ?? '(no subject)', links);
        else log(`email     ${m.subject ?? '(no subject)'}`);
      },
    });
    stoppers.push(() => sns.stop());

    const settings: Record<string, string> = {
      ARTIFACT_BUCKET: LOCAL_BUCKET,
      MODEL_NAME: 'fashion-mnist',
      DATA_URI: staging.uri,
      EVAL_DATA_URI: staging.evalUri,
      SERVING_IMAGE,
      STAGING_NAMESPACE: 'mlpipe-staging',
      PRODUCTION_NAMESPACE: 'mlpipe-production',
      TRAINER_SERVICE_ACCOUNT: 'mlpipe-trainer',
      SERVER_SERVICE_ACCOUNT: 'mlpipe-server',
      APPROVAL_TIMEOUT_SECONDS: '3600',
      WATCH_BUDGET_SECONDS: '20',
      NOTIFICATION_TOPIC_ARN: TOPIC_ARN,
      APPROVAL_SECRET: randomBytes(32).toString('hex'),
      KUBECONFIG: kubeconfigPath,
      // Local images are tags (mlpipe/fashion-mnist-train:local).
      ALLOW_IMAGE_TAGS: 'true',
      AWS_ENDPOINT_URL_SNS: sns.endpoint,
      ...opts.settings,
    };
    const pipelineNamespaces = [settings.STAGING_NAMESPACE!, settings.PRODUCTION_NAMESPACE!];
    await ensureNamespaces(kubeconfigPath, pipelineNamespaces, [settings.TRAINER_SERVICE_ACCOUNT!, settings.SERVER_SERVICE_ACCOUNT!]);
    // The handlers get what the EKS access entry gives them: a token bound to the two namespaces.
    if (localKube) settings.KUBECONFIG = localKube.mintScopedKubeconfig(pipelineNamespaces).kubeconfigPath;

    const { definition, stateModules } = loadLocalDefinition();
    const taskHandlers: Record<string, (input: unknown) => Promise<unknown>> = {};
    for (const [state, mod] of Object.entries(stateModules)) {
      taskHandlers[state] = async (input: unknown) => (await loadHandler(mod))(input);
    }
    const sfn = new LocalStepFunctions({ definition, stateMachineArn: STATE_MACHINE_ARN, taskHandlers });
    stoppers.push(() => sfn.close());
    const sfnEndpoint = await startLocalSfnEndpoint(sfn);
    stoppers.push(() => sfnEndpoint.stop());

    // The approval handler reads its settings at load: the environment must be complete first.
    Object.assign(process.env, settings, { AWS_ENDPOINT_URL_SFN: sfnEndpoint.endpoint });
    resetClients();
    const approvalHandler: HttpApiHandler = async (event) => ((await loadHandler('approval-api')) as unknown as HttpApiHandler)(event);
    const approval = await startApprovalServer(approvalHandler, { port: opts.approvalPort ?? 8787 }).catch(() =>
      startApprovalServer(approvalHandler, { port: 0 }),
    );
    stoppers.push(() => approval.stop());
    process.env.APPROVAL_BASE_URL = approval.url;
    // Handler modules loaded by an earlier run in this process read their settings then: re-read them.
    reloadSettings();

    if (!opts.kubeconfig) {
      // The local cluster starts empty but the S3 registry survives: serve what production.json names, so
      // the endpoint it records answers and `mlpipe rollback` has somewhere to go. Never fatal: a registry
      // that cannot be restored must not stop new runs.
      const model = settings.MODEL_NAME!;
      try {
        const restored = await restoreProduction(model, log);
        if (restored) log(`production ${restored.modelName} ${restored.version} restored at ${restored.endpoint}`);
      } catch (err) {
        log(`production ${model} not restored: ${(err as Error).message}`);
      }
    }

    const localJson = join(stateDir, 'local.json');
    writeFileSync(
      localJson,
      JSON.stringify(
        {
          pid: process.pid,
          region: LOCAL_AWS_ENV.AWS_REGION,
          sfnEndpoint: sfnEndpoint.endpoint,
          s3Endpoint: s3.endpoint,
          snsEndpoint: sns.endpoint,
          kubeconfig: kubeconfigPath,
          bucket: LOCAL_BUCKET,
          stateMachineArn: STATE_MACHINE_ARN,
          approvalUrl: approval.url,
          modelName: settings.MODEL_NAME,
          namespaces: { staging: settings.STAGING_NAMESPACE, production: settings.PRODUCTION_NAMESPACE },
        },
        null,
        2,
      ),
    );
    stoppers.push(async () => rmSync(localJson, { force: true }));

    const decide = async (links: string[], mode: ApprovalMode) => {
      const action = mode === 'reject' ? 'reject' : 'approve';
      const link = links.find((l) => new URL(l).searchParams.get('action') === action);
      if (!link) throw new Error(`the approval message has no ${action} link`);
      const res = await fetch(link, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ approver: `local:${userInfo().username}`, comment: `--${mode}` }).toString(),
      });
      if (!res.ok) throw new Error(`POST ${action} link answered ${res.status}: ${(await res.text()).slice(0, 300)}`);
    };

    const run: LocalPipeline['run'] = async (input = {}, runOpts = {}) => {
      const mode = runOpts.approval ?? opts.approval ?? 'interactive';
      const started = Date.now();
      const { executionArn } = sfn.startExecution({
        name: runOpts.name,
        input: JSON.stringify({ image: TRAINING_IMAGE, trigger: { source: 'local' }, ...input }),
      });
      const states: StateTiming[] = [];
      let lastState: PipelineState | undefined;
      const printer = new ProgressPrinter(log, started, mode, executionArn.split(':').pop()!);
      activePrinter = printer;
      const onEvent = (e: ExecutionEvent) => {
        if (e.executionArn !== executionArn) return;
        const now = Date.now();
        if (e.type.endsWith('StateEntered') && e.stateName) {
          states.push({ state: e.stateName, enteredAt: now });
          printer.entered(e.stateName);
          if (e.stateName === 'RequestApproval') void onApprovalRequested();
        } else if (e.type.endsWith('StateExited') && e.stateName) {
          const open = [...states].reverse().find((s) => s.state === e.stateName && s.exitedAt === undefined);
          if (open) open.exitedAt = now;
          const data = safeJson(e.event.stateExitedEventDetails?.output ?? '');
          if (data && typeof data === 'object' && 'run' in data) lastState = data as PipelineState;
          printer.exited(e.stateName, data);
        }
      };
      const onApprovalRequested = async () => {
        // Interactive: the printer shows the links and how to decide when the approval email arrives.
        if (mode === 'interactive') return;
        // The links arrive by "email" (the SNS stand-in) once RequestApproval's handler has published.
        const id = approvalId(executionArn);
        for (let i = 0; i < 600; i++) {
          const links = approvalLinks.get(id);
          if (links) {
            approvalLinks.delete(id);
            printer.note(`${mode === 'reject' ? 'rejecting' : 'approving'} through the email's ${mode === 'reject' ? 'reject' : 'approve'} link (--${mode})`);
            await decide(links, mode).catch((err: Error) => printer.note(`approval failed: ${err.message}`));
            return;
          }
          await new Promise((r) => setTimeout(r, 100));
        }
        printer.note('no approval email arrived within 60 s');
      };
      sfn.on('event', onEvent);
      try {
        const result = await sfn.waitForExecution(executionArn);
        const output = result.output ? (JSON.parse(result.output) as PipelineState) : undefined;
        return { executionArn, status: result.status, output, lastState: output ?? lastState, error: result.error, cause: result.cause, wallMs: Date.now() - started, states };
      } finally {
        sfn.off('event', onEvent);
        if (activePrinter === printer) activePrinter = undefined;
      }
    };

    return {
      bucket: LOCAL_BUCKET,
      kubeconfigPath,
      approvalUrl: approval.url,
      stagingSeconds: staging.skipped ? 0 : staging.seconds,
      notificationsFile,
      run,
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

/**
 * The run as it happens, for a person at the terminal: one line per state (loops collapsed), the facts worth
 * seeing as they appear, each email by its subject (the text is in notifications.jsonl) and, when the run
 * waits for a human, the links and the command that decide it.
 */
class ProgressPrinter {
  private last = '';
  constructor(
    private readonly log: (line: string) => void,
    private readonly started: number,
    private readonly mode: ApprovalMode,
    private readonly runName: string,
  ) {}

  private stamp(): string {
    return `[${((Date.now() - this.started) / 1000).toFixed(1).padStart(5)} s]`;
  }

  entered(state: string): void {
    if (/^Is[A-Z]/.test(state) || state === this.last) return; // loop Choices and re-entered Await states
    this.last = state;
    this.log(`${this.stamp()} ▶ ${state}`);
  }

  exited(state: string, output: unknown): void {
    const s = output as Partial<PipelineState> | undefined;
    if (!s) return;
    if (state === 'Prepare' && s.run) this.note(`version ${s.run.version}, image ${s.run.image}`);
    if (state === 'AwaitTraining' && s.training?.status === 'succeeded') {
      const acc = s.training.metrics?.accuracy;
      this.note(`training complete${acc !== undefined ? `, validation accuracy ${acc.toFixed(4)}` : ''}`);
    }
    if (state === 'AwaitStagingEndpoint' && s.staging?.status === 'serving') this.note(`staging endpoint ${s.staging.endpoint}`);
    if (state === 'EvaluateModel' && s.evaluation) this.note(s.evaluation.summary);
    if (state === 'AwaitProductionEndpoint' && s.production?.status === 'serving') this.note(`production endpoint ${s.production.endpoint}`);
    if ((state === 'Cleanup' || state === 'CleanupStaging') && s.error) {
      // Causes are often a Lambda error as JSON (with a stack trace): show its message's first line.
      this.note(`✗ ${s.error.Error}: ${firstLine(describeCause(s.error.Cause) ?? undefined)}`);
    }
  }

  /** An email went out. The approval request in interactive mode is the moment a person must act. */
  email(subject: string, links: string[]): void {
    this.note(`✉ ${subject}`);
    if (this.mode !== 'interactive' || links.length === 0) return;
    const link = (action: string) => links.find((l) => l.includes(`action=${action}&`));
    this.log('');
    this.note('The run now waits for your decision. Open a link (it shows the details and a button):');
    this.note(`  approve  ${link('approve') ?? '(missing)'}`);
    this.note(`  reject   ${link('reject') ?? '(missing)'}`);
    this.note(`or, in another terminal: npm run mlpipe -- approve ${this.runName}   (or: reject ${this.runName})`);
    this.log('');
  }

  note(text: string): void {
    this.log(`${' '.repeat(10)}  ${text}`);
  }
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function firstLine(text: string | undefined): string {
  return (text ?? '').split('\n')[0]!.slice(0, 200);
}
