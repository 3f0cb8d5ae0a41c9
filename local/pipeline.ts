/**
 * The whole pipeline on one machine, as the synthesized stack (DESIGN decision 13): local S3, a local
 * Kubernetes API (or any kubeconfig), local SNS and Secrets Manager stand-ins, the approval endpoint and a
 * local Step Functions engine running the template's state machine definition, each Task invoking its
 * function's own bundle with exactly the template's environment (local/lambda). The local configuration
 * reaches the functions the way a deployment's does: as `mlpipe:*` context of the CDK app.
 */
import { createWriteStream, existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { startLocalS3, LOCAL_AWS_ENV } from './s3';
import { startLocalEcr, type LocalEcrImage } from './ecr';
import { startLocalSns } from './sns';
import type { LocalFile } from '../cli/target';
import { readLocalSecret, rotationFunctions, startLocalSecretsManager } from './secrets';
import { startApprovalServer, type HttpApiHandler } from './approval-server';
import { taskHandlersFor } from './task-handlers';
import { INTERRUPTED } from './stepfunctions/journal';
import { LocalStepFunctions, startLocalSfnEndpoint, type ExecutionEvent } from './stepfunctions';
import { startLocalKube, type ImageCommand, type LocalKube } from './kube';
import { ensureNamespaces } from './namespaces';
import { synthesizeLocalStack } from './lambda/synth';
import { loadLocalStack, taskFunctions, type LocalStack, type TemplateFunction } from './lambda/template';
import { LocalLambdaRuntime } from './lambda/runtime';
import { startLocalLambdaEndpoint } from './lambda/endpoint';
import { DEFAULT_PREFIX, stageFashionMnist } from '../examples/fashion-mnist/stage-data';
import { resetClients } from '../functions/shared/clients';
import { resetKube } from '../functions/shared/kube';
import { restoreProduction } from './restore-production';
import { bundleImages } from './images';
import { lockStateDir } from './lock';
import { approvalId } from '../functions/shared/approval-link';
import { describeCause } from '../functions/shared/outcome';
import type { APIGatewayProxyResultV2 } from 'aws-lambda';
import type { CanaryState, PipelineState } from '../functions/shared/types';
import { getJson } from '../functions/shared/clients';
import type { ProductionRecord } from '../functions/shared/registry';
import type { TrafficSnapshot } from './traffic';
import { canaryLines, lineReporter, watchRolloutTraffic, type RolloutReporter, type RolloutTraffic } from './rollout-traffic';
import { withEnv } from './process-env';
import { liveLog, NOTE_INDENT, TrainingFollower, type LiveLog, type Tty } from './progress-display';

export type { RolloutTraffic } from './rollout-traffic';

export const REPO_ROOT = resolve(__dirname, '..');
export const LOCAL_BUCKET = 'mlpipe-local';
export const TRAINING_IMAGE = 'mlpipe/fashion-mnist-train:local';
export const SERVING_IMAGE = 'mlpipe/fashion-mnist-serve:local';
export const STATE_MACHINE_ARN = 'arn:aws:states:us-east-1:000000000000:stateMachine:mlpipe-local';
const ACCOUNT_ID = '000000000000';

/**
 * The local configuration, as MlPipeline props (`mlpipe:*` context): what `npm start` deploys to this
 * machine. A short watch budget keeps the local waits brisk; an hour for approvals; image tags allowed
 * (local images have no digests).
 */
export const LOCAL_CONTEXT: Readonly<Record<string, unknown>> = {
  clusterName: 'mlpipe-local',
  modelName: 'fashion-mnist',
  servingImage: SERVING_IMAGE,
  dataUri: `s3://${LOCAL_BUCKET}/${DEFAULT_PREFIX}`,
  evalDataUri: `s3://${LOCAL_BUCKET}/${DEFAULT_PREFIX}`,
  stagingNamespace: 'mlpipe-staging',
  productionNamespace: 'mlpipe-production',
  trainerServiceAccount: 'mlpipe-trainer',
  serverServiceAccount: 'mlpipe-server',
  approvalTimeout: 3600,
  watchBudget: 20,
  // Local trainings last seconds: watch at once (no Wait states), as a Wait would only delay seeing the end.
  trainingCheckMaxWait: 0,
  allowImageTags: true,
  // Two production pods: the least a canary can split (the split is by pods: 50 % → 1 of 2). Each pod
  // started costs about a second of CPU; four made a repeat run start ten of them.
  servingReplicas: 2,
  // A stopped pod serves on for 1 s (not 10): the local load balancer reads endpoints per connection, so
  // a pod is out of rotation the moment it is deleted; the second covers connections already being made.
  servingDrainSeconds: 1,
  // A canary in seconds rather than minutes: one split step, 50 % (1 of 2 pods serves the candidate, so
  // both versions answer about 10 of the local generator's 20 requests/s, 20 each by the one analysis 2 s
  // into the bake: minRequests 10 is reached with room), then 100 %, each baked 2 s and analysed once.
  // (10/50/100 on 4 pods baked 4 s each made the canary 17–21 s, the largest part of a repeat run's wall.)
  // Latency is judged only when gross: on one shared machine a p95 of a few ms measures the machine's load
  // and a freshly started pod's warm-up (a good canary once measured 1.6× stable's 9.8 ms), not the model.
  rollout: { steps: [50, 100], bakeSeconds: 2, analysisIntervalSeconds: 2, minRequests: 10, maxP95Ratio: 10, maxP95LatencyMs: 5000 },
};

/** The states before the staging deployment: they neither read nor change production (see the restore). */
const TRAINING_PHASE_STATES = ['Prepare', 'SubmitTraining', 'CheckTraining', 'AwaitTraining'];

export type ApprovalMode = 'interactive' | 'auto-approve' | 'reject';

export interface LocalPipelineOptions {
  /** Where local state lives (S3 files, pod logs, kubeconfig, notifications). Default `.mlpipe`. */
  stateDir?: string;
  /** Use this cluster instead of the local Kubernetes API. */
  kubeconfig?: string;
  approval?: ApprovalMode;
  /** MlPipeline props (`mlpipe:*` context keys, without the prefix) over LOCAL_CONTEXT, e.g. `{ minAccuracy: 0.9 }`. */
  context?: Record<string, unknown>;
  /** Where synthesized stacks are cached. Default `<stateDir>/synth`. */
  synthCacheDir?: string;
  /** Extra image → command entries for the local Kubernetes API (tests use this). */
  images?: Record<string, ImageCommand>;
  /** Port for the approval links; default 8787, falling back to any free port. */
  approvalPort?: number;
  /** Port for the local S3 (default: any free port). With `kubeconfig`, the cluster's pods must reach it. */
  s3Port?: number;
  /**
   * Live traffic during a production rollout: held-out images sent to the production endpoint at this rate
   * (local/traffic.ts), while a version serves there. `false`: none. @default { ratePerSecond: 20 }
   */
  traffic?: { ratePerSecond?: number } | false;
  /**
   * Restore production (local cluster only) while a run's training phase starts, instead of before this
   * start resolves; functions that may touch production wait for it. `npm start` does; a caller that reads
   * production right after the start (tests) keeps the default. @default false
   */
  restoreInBackground?: boolean;
  log?: (line: string) => void;
  /**
   * A terminal for the live lines (training progress redrawn in place). Default: stdout when it is a TTY
   * and no `log` is given; otherwise progress comes as plain lines through `log`.
   */
  tty?: Tty;
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
  /** Why the run was cut short when the local pipeline stopped under it (Ctrl-C, SIGTERM, its parent ended). */
  interrupted?: string;
  /** The state the run was in when it ended. */
  lastStateName?: string;
  error?: string;
  cause?: string;
  wallMs: number;
  states: StateTiming[];
  /** What the traffic generator saw during the production rollout (when a version served before it). */
  traffic?: RolloutTraffic;
}

/** Where the start's time went (npm run bench -- startup). */
export interface StartupTimings {
  synthMs: number;
  synthCached: boolean;
  stagingMs: number;
  totalMs: number;
}

export interface LocalPipeline {
  bucket: string;
  kubeconfigPath: string;
  approvalUrl: string;
  /** How long staging the data set took in this start (0 when it was already staged). */
  stagingSeconds: number;
  startup: StartupTimings;
  notificationsFile: string;
  /** The local SNS: what the local serving monitor publishes its alarms to (local/serving-monitor.ts). */
  snsEndpoint: string;
  /** Each function's stdout and stderr lines. */
  handlersLog: string;
  /** The synthesized stack the run executes. */
  stack: LocalStack;
  /** The local Step Functions engine every run executes on (`npm start` follows the runs it did not start). */
  sfn: LocalStepFunctions;
  /** Invokes one of the stack's functions (logical id, name or ARN) from its bundle, as Lambda Invoke does. */
  invoke(fn: string, event: unknown): Promise<unknown>;
  /** Starts one run and resolves when it ends. */
  run(input?: Record<string, unknown>, opts?: { name?: string; approval?: ApprovalMode }): Promise<RunOutcome>;
  /**
   * Stops every server and process it started, and releases the state directory. A run still going ends
   * ABORTED with the error `Interrupted` and `reason` (default: the local pipeline was stopped).
   */
  stop(reason?: string): Promise<void>;
}

function nodeTsCommand(script: string): ImageCommand {
  // tsx's loader on Node 22 (process.execPath is Node 22 under npm scripts, npx and jest alike).
  return { command: process.execPath, args: ['--import', 'tsx', join(REPO_ROOT, script)], cwd: REPO_ROOT };
}

export const LOCAL_IMAGES: Record<string, ImageCommand> = {
  [TRAINING_IMAGE]: nodeTsCommand('examples/fashion-mnist/train.ts'),
  [SERVING_IMAGE]: nodeTsCommand('examples/fashion-mnist/serve.ts'),
};

/**
 * LOCAL_IMAGES as plain JavaScript bundles in `dir` (local/images.ts: a pod then starts without tsx's
 * loader, seconds of CPU less per pod); the same sources, run the same way.
 */
function bundledLocalImages(dir: string): Promise<Record<string, ImageCommand>> {
  const entry = (image: string) => LOCAL_IMAGES[image]!.args.at(-1)!;
  return bundleImages(
    { [TRAINING_IMAGE]: entry(TRAINING_IMAGE), [SERVING_IMAGE]: entry(SERVING_IMAGE) },
    [join(REPO_ROOT, 'examples/fashion-mnist/mlp-worker.ts')],
    dir,
    REPO_ROOT,
  );
}

/** The local images' labels, for Prepare (through the local ECR): read from their Dockerfiles, as `docker build` sets them. */
export const LOCAL_IMAGE_LABELS: Record<string, LocalEcrImage> = {
  [TRAINING_IMAGE]: { dockerfile: join(REPO_ROOT, 'examples/fashion-mnist/Dockerfile.train') },
  [SERVING_IMAGE]: { dockerfile: join(REPO_ROOT, 'examples/fashion-mnist/Dockerfile.serve') },
};

/** The error of a run the local pipeline stopped under (status ABORTED, as StopExecution leaves it on AWS). */
export const INTERRUPTED_ERROR = INTERRUPTED.error;

const LINK = /(https?:\/\/127\.0\.0\.1:\d+\/(?:approvals|retries)\/[^\s?]+\?[^\s]+)/g;

/** A template setting of one function (the local run reads the cluster layout from the functions' environments). */
function settingOf(stack: LocalStack, name: string): string {
  const fn = stack.functions.find((f) => f.environment[name] !== undefined);
  if (!fn) throw new Error(`no function of the synthesized stack has the setting ${name}`);
  return fn.environment[name]!;
}

/** The function behind the approval HTTP API (its Lambda integration). */
function approvalFunction(stack: LocalStack): TemplateFunction {
  for (const [id, r] of Object.entries(stack.template.Resources)) {
    if (r.Type !== 'AWS::ApiGatewayV2::Integration') continue;
    const uri = r.Properties?.IntegrationUri as { 'Fn::GetAtt'?: [string, string] } | undefined;
    const fn = uri?.['Fn::GetAtt'] ? stack.findFunction(uri['Fn::GetAtt'][0]) : undefined;
    if (fn) return fn;
    throw new Error(`the approval API's integration ${id} names no function of the template`);
  }
  throw new Error('the synthesized stack has no approval API integration');
}

/** Non-JSON lines (a stack trace, a stray console.log) become JSON lines naming their function. */
function logLine(fn: TemplateFunction, line: string, stream: 'stdout' | 'stderr'): string {
  if (line.startsWith('{')) return line;
  return JSON.stringify({ level: stream === 'stderr' ? 'ERROR' : 'INFO', function: fn.logicalId, message: line });
}

export async function startLocalPipeline(opts: LocalPipelineOptions = {}): Promise<LocalPipeline> {
  const startedAt = performance.now();
  const log = opts.log ?? ((line: string) => console.log(line));
  const tty = opts.tty ?? (opts.log === undefined && process.stdout.isTTY ? process.stdout : undefined);
  const stateDir = resolve(opts.stateDir ?? join(REPO_ROOT, '.mlpipe'));
  mkdirSync(stateDir, { recursive: true });
  // Before anything starts: a second pipeline on this directory refuses here, touching nothing.
  const lock = lockStateDir(stateDir);
  if (lock.tookOverFrom) log(`state     ${stateDir}: taken over from pid ${lock.tookOverFrom.pid}, which ended without stopping`);
  const stoppers: Array<() => Promise<void>> = [async () => lock.release()];
  let interruption: string | undefined;
  let closeRuns: (() => Promise<void>) | undefined;
  let stopping: Promise<void> | undefined;
  const stop = (reason?: string): Promise<void> => {
    interruption ??= reason ?? 'the local pipeline was stopped';
    stopping ??= (async () => {
      // Runs end first, while their functions still work: stopping the Lambda runtime under a running
      // Task would fail it, and its Catch would run Cleanup on a half-stopped pipeline.
      await closeRuns?.().catch(() => undefined);
      while (stoppers.length) await stoppers.pop()!().catch(() => undefined);
    })();
    return stopping;
  };

  try {
    const context = { ...LOCAL_CONTEXT, ...opts.context };
    // The stack synthesizes (or comes from the cache) while the data set is staged.
    const synthesized = synthesizeLocalStack({ context, cacheDir: opts.synthCacheDir ?? join(stateDir, 'synth') });
    synthesized.catch(() => undefined);
    // So are the local images' entry points (bundled, a second at most; esbuild works in its own process).
    const images = bundledLocalImages(join(stateDir, 'images'));
    images.catch(() => undefined);

    const s3 = await startLocalS3({ dir: join(stateDir, 's3'), buckets: [LOCAL_BUCKET], port: opts.s3Port });
    stoppers.push(() => s3.stop());
    // This process's own clients (staging, restoring production, tests); the functions get theirs from the template.
    Object.assign(process.env, LOCAL_AWS_ENV, { AWS_ENDPOINT_URL_S3: s3.endpoint });
    resetClients();

    const stagingStarted = performance.now();
    const staging = await stageFashionMnist({ bucket: LOCAL_BUCKET });
    const stagingMs = performance.now() - stagingStarted;
    log(`data      ${staging.uri} (${staging.skipped ? 'already staged' : `staged in ${staging.seconds.toFixed(1)} s`})`);

    const synth = await synthesized;
    log(`stack     ${synth.cached ? 'synthesized earlier (sources unchanged)' : `synthesized in ${(synth.ms / 1000).toFixed(1)} s`}: ${synth.dir}`);

    // DATA_CACHE_DIR: the trainer keeps the training set by ETag in the state dir, as a node-local cache
    // would on a cluster, instead of downloading 47 MB from the local S3 in every run (~1 s of a repeat run).
    const podEnv = { ...LOCAL_AWS_ENV, AWS_ENDPOINT_URL_S3: s3.endpoint, DATA_CACHE_DIR: join(stateDir, 'cache', 'data') };
    let kubeconfigPath: string;
    let localKube: LocalKube | undefined;
    if (opts.kubeconfig) {
      kubeconfigPath = resolve(opts.kubeconfig);
    } else {
      const kube = await startLocalKube({ images: { ...(await images), ...opts.images }, stateDir: join(stateDir, 'kube'), env: podEnv });
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

    // The approval server listens first: its URL is the HTTP API's ApiEndpoint in the template.
    let approvalHandler: HttpApiHandler | undefined;
    const deferred: HttpApiHandler = (event) => {
      if (!approvalHandler) throw new Error('the approval endpoint is still starting');
      return approvalHandler(event);
    };
    const approval = await startApprovalServer(deferred, { port: opts.approvalPort ?? 8787 }).catch(() => startApprovalServer(deferred, { port: 0 }));
    stoppers.push(() => approval.stop());

    const stack = loadLocalStack(synth.dir, {
      region: LOCAL_AWS_ENV.AWS_REGION,
      accountId: ACCOUNT_ID,
      artifactBucket: LOCAL_BUCKET,
      stateMachineArn: STATE_MACHINE_ARN,
      approvalUrl: approval.url,
    });

    const namespaces = { staging: settingOf(stack, 'STAGING_NAMESPACE'), production: settingOf(stack, 'PRODUCTION_NAMESPACE') };
    const pipelineNamespaces = [namespaces.staging, namespaces.production];
    await ensureNamespaces(kubeconfigPath, pipelineNamespaces, [settingOf(stack, 'TRAINER_SERVICE_ACCOUNT'), settingOf(stack, 'SERVER_SERVICE_ACCOUNT')]);
    // The functions get what the EKS access entry gives them: a token bound to the two namespaces.
    const functionsKubeconfig = localKube ? localKube.mintScopedKubeconfig(pipelineNamespaces).kubeconfigPath : kubeconfigPath;

    const endpointTokenSecrets = settingOf(stack, 'ENDPOINT_AUTH') === 'true' ? (JSON.parse(settingOf(stack, 'ENDPOINT_TOKEN_SECRETS')) as Record<string, string>) : {};
    const secretArns = Object.keys(stack.template.Resources).filter((id) => stack.template.Resources[id]!.Type === 'AWS::SecretsManager::Secret');
    const secretArnOf = (id: string) => `arn:aws:secretsmanager:${LOCAL_AWS_ENV.AWS_REGION}:${ACCOUNT_ID}:secret:${id}-local`;
    const secrets = await startLocalSecretsManager({
      secrets: secretArns.map((id) => {
        const length = (stack.template.Resources[id]!.Properties?.GenerateSecretString as { PasswordLength?: unknown } | undefined)?.PasswordLength;
        return { arn: secretArnOf(id), name: id, ...(typeof length === 'number' ? { length } : {}) };
      }),
      file: join(stateDir, 'secrets.json'),
      // RotateSecret (`mlpipe endpoint --rotate`) runs the template's rotation function from its bundle.
      rotation: rotationFunctions(stack, secretArnOf, (arn, event) => lambda().invoke(arn, event)),
    });
    stoppers.push(() => secrets.stop());

    const ecr = await startLocalEcr({ images: LOCAL_IMAGE_LABELS });
    stoppers.push(() => ecr.stop());

    let runtime: LocalLambdaRuntime | undefined;
    const lambda = (): LocalLambdaRuntime => {
      if (!runtime) throw new Error('the local Lambda runtime is not started');
      return runtime;
    };
    // Production is restored (below) while a run starts: the training phase's functions neither read nor
    // change production, so only they go ahead of the restore; every other invocation (evaluation against
    // production, the release, a rollback through the Lambda API) waits until it is over.
    let restoring: Promise<void> = Promise.resolve();
    const tasks = taskFunctions(stack);
    const beforeRestore = new Set(TRAINING_PHASE_STATES.map((state) => tasks[state]?.logicalId));
    const afterRestore = async (fn: string): Promise<void> => {
      const f = stack.findFunction(fn);
      if (!f || !beforeRestore.has(f.logicalId)) await restoring;
    };
    const sfn = new LocalStepFunctions({
      definition: stack.definition,
      stateMachineArn: STATE_MACHINE_ARN,
      // The run history outlives this process: `mlpipe list/status` after a restart still show earlier runs.
      journalFile: join(stateDir, 'executions.jsonl'),
      validatedFile: join(stateDir, 'definition.validated'),
      taskHandlers: taskHandlersFor(stack, async (arn, input) => {
        await afterRestore(arn);
        return lambda().invoke(arn, input);
      }),
    });
    // A run cut short by the stop is interrupted, not failed: no step of it went wrong.
    closeRuns = () => sfn.close({ error: INTERRUPTED_ERROR, cause: `The local run was interrupted: ${interruption}.` });
    stoppers.push(closeRuns);
    // Every run's production rollout gets live traffic, whoever started it (this process, `mlpipe run`, a
    // retry link); a run this process did not start reports it in lines prefixed with its name, as
    // `npm start` follows it (local/stepfunctions/follow.ts). Its generators stop before the cluster does.
    const rollouts = watchRolloutTraffic(sfn, {
      ratePerSecond: opts.traffic === false ? undefined : (opts.traffic?.ratePerSecond ?? 20),
      productionRecord: (model) => getJson<ProductionRecord>(LOCAL_BUCKET, `models/${model}/production.json`).catch(() => undefined),
      reporterFor: (name) => lineReporter(log, `[${name}]   `),
      // The client presents the model's endpoint token, as a caller of the deployed endpoint would.
      endpointToken: async (model) => {
        const arn = endpointTokenSecrets[model];
        return arn === undefined ? undefined : readLocalSecret(join(stateDir, 'secrets.json'), arn);
      },
    });
    stoppers.push(() => rollouts.stop());
    const sfnEndpoint = await startLocalSfnEndpoint(sfn);
    stoppers.push(() => sfnEndpoint.stop());

    const handlersLog = join(stateDir, 'handlers.log');
    const logStream = createWriteStream(handlersLog, { flags: 'a' });
    stoppers.push(() => new Promise<void>((r) => logStream.end(() => r())));
    const lambdaApi = await startLocalLambdaEndpoint({
      invokeRaw: async (fn, payload) => {
        await afterRestore(fn);
        return lambda().invokeRaw(fn, payload);
      },
    });
    stoppers.push(() => lambdaApi.stop());
    runtime = new LocalLambdaRuntime({
      stack,
      runtimeEnv: {
        // Lambda's runtime gives a function its role's credentials; locally, the static pair the stand-ins accept.
        AWS_ACCESS_KEY_ID: LOCAL_AWS_ENV.AWS_ACCESS_KEY_ID,
        AWS_SECRET_ACCESS_KEY: LOCAL_AWS_ENV.AWS_SECRET_ACCESS_KEY,
        AWS_SESSION_TOKEN: 'local',
        AWS_ENDPOINT_URL_S3: s3.endpoint,
        AWS_ENDPOINT_URL_SNS: sns.endpoint,
        AWS_ENDPOINT_URL_SFN: sfnEndpoint.endpoint,
        AWS_ENDPOINT_URL_ECR: ecr.endpoint,
        AWS_ENDPOINT_URL_SECRETS_MANAGER: secrets.endpoint,
        AWS_ENDPOINT_URL_LAMBDA: lambdaApi.endpoint,
      },
      // The EKS cluster's stand-in, for the functions that reach it (functions/shared/kube reads KUBECONFIG first).
      clusterEnv: { KUBECONFIG: functionsKubeconfig },
      onLog: (fn, line, stream) => logStream.write(`${logLine(fn, line, stream)}\n`),
      compileCacheDir: compileCacheFor(stateDir, synth.dir),
    });
    stoppers.push(() => runtime!.stop());

    const approvalFn = approvalFunction(stack);
    approvalHandler = async (event) => {
      await afterRestore(approvalFn.arn);
      return (await runtime!.invoke(approvalFn.arn, event)) as APIGatewayProxyResultV2;
    };

    const modelName = settingOf(stack, 'MODEL_NAME');

    if (!opts.kubeconfig) {
      // The local cluster starts empty but the S3 registry survives: serve what production.json names, so
      // the endpoint it records answers and `mlpipe rollback` has somewhere to go. Never fatal: a registry
      // that cannot be restored must not stop new runs. It runs in this process with the settings the
      // template gives the production functions (it builds the same Deployments as DeployProduction).
      // With restoreInBackground it goes on while a run's training phase starts (its serving pods take a
      // second or two), and whatever may touch production waits for it (afterRestore above).
      const from = stack.functions.filter((f) => ['PrepareRun', 'DeployProduction', 'SwitchProductionTraffic', 'Rollback'].some((id) => f.logicalId.includes(`Functions${id}`)));
      const env = Object.assign({}, ...from.map((f) => f.environment), { KUBECONFIG: kubeconfigPath, AWS_ENDPOINT_URL_SECRETS_MANAGER: secrets.endpoint }) as Record<string, string>;
      // During a run, its printer shows the outcome in place; a stop under it says nothing.
      const say = (line: string) => {
        if (stopping) return;
        if (activePrinter) activePrinter.note(line);
        else log(line);
      };
      restoring = withEnv(env, () => restoreProduction(modelName, say)).then(
        (restored) => {
          if (restored) say(`production ${restored.modelName} ${restored.version} restored at ${restored.endpoint}`);
        },
        (err: Error) => say(`production ${modelName} not restored: ${err.message}`),
      );
      // Stopped while restoring: the restore ends (or fails) before the cluster it writes to stops.
      stoppers.push(() => restoring);
      if (!opts.restoreInBackground) await restoring;
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
          lambdaEndpoint: lambdaApi.endpoint,
          rollbackFunctionName: stack.outputs.RollbackFunctionName,
          kubeconfig: kubeconfigPath,
          bucket: stack.outputs.ArtifactBucketName ?? LOCAL_BUCKET,
          stateMachineArn: STATE_MACHINE_ARN,
          approvalUrl: approval.url,
          modelName,
          namespaces,
          secretsEndpoint: secrets.endpoint,
          endpointTokenSecrets,
        } satisfies LocalFile,
        null,
        2,
      ),
    );
    stoppers.push(async () => rmSync(localJson, { force: true }));
    // Like provisioned concurrency: a warm container per task function, its cold start (loading a bundle
    // of a few MB) spent in the background once everything is up, rather than inside each first state.
    // In the definition's order, which is the run's: the first state's bundle loads first.
    void runtime.prewarm([...new Set(Object.values(tasks).map((f) => f.arn)), approvalFn.arn]);

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
      let lastStateName: string | undefined;
      const printer = new ProgressPrinter(liveLog(log, tty), started, mode, executionArn.split(':').pop()!);
      activePrinter = printer;
      // Its rollout's traffic is reported by this printer (the watcher gives every run its traffic).
      const rolloutTraffic = rollouts.track(executionArn, printer);
      const onEvent = (e: ExecutionEvent) => {
        if (e.executionArn !== executionArn) return;
        const now = Date.now();
        if (e.type.endsWith('StateEntered') && e.stateName) {
          states.push({ state: e.stateName, enteredAt: now });
          lastStateName = e.stateName;
          printer.entered(e.stateName);
          if (e.stateName === 'RequestApproval') void onApprovalRequested();
        } else if (e.type.endsWith('StateExited') && e.stateName) {
          const open = [...states].reverse().find((s) => s.state === e.stateName && s.exitedAt === undefined);
          if (open) open.exitedAt = now;
          const data = safeJson(e.event.stateExitedEventDetails?.output ?? '');
          if (data && typeof data === 'object' && 'run' in data) lastState = data as PipelineState;
          // The watcher, listening since the start, has shown an analysis's evidence (traffic) before this says what follows from it (promoted).
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
        const seen = await rolloutTraffic();
        const output = result.output ? (JSON.parse(result.output) as PipelineState) : undefined;
        const interrupted = result.status === 'ABORTED' && result.error === INTERRUPTED_ERROR ? interruption : undefined;
        return {
          executionArn,
          status: result.status,
          output,
          lastState: output ?? lastState,
          error: result.error,
          cause: result.cause,
          wallMs: Date.now() - started,
          states,
          ...(interrupted ? { interrupted } : {}),
          ...(lastStateName ? { lastStateName } : {}),
          ...(seen ? { traffic: seen } : {}),
        };
      } finally {
        await rolloutTraffic();
        printer.ended();
        sfn.off('event', onEvent);
        if (activePrinter === printer) activePrinter = undefined;
      }
    };

    return {
      bucket: LOCAL_BUCKET,
      kubeconfigPath,
      approvalUrl: approval.url,
      stagingSeconds: staging.skipped ? 0 : staging.seconds,
      startup: { synthMs: synth.ms, synthCached: synth.cached, stagingMs, totalMs: performance.now() - startedAt },
      notificationsFile,
      snsEndpoint: sns.endpoint,
      handlersLog,
      stack,
      sfn,
      invoke: (fn, event) => lambda().invoke(fn, event),
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
 * seeing as they appear, live training progress (local/progress-display.ts) while the Job runs, each email
 * by its subject (the text is in notifications.jsonl) and, when the run waits for a human, the links and
 * the command that decide it.
 */
class ProgressPrinter implements RolloutReporter {
  private last = '';
  private readonly training: TrainingFollower;
  constructor(
    private readonly out: LiveLog,
    private readonly started: number,
    private readonly mode: ApprovalMode,
    private readonly runName: string,
  ) {
    this.training = new TrainingFollower(out, NOTE_INDENT);
  }

  private log(line: string): void {
    this.out.line(line);
  }

  private stamp(): string {
    return `[${((Date.now() - this.started) / 1000).toFixed(1).padStart(5)} s]`;
  }

  entered(state: string): void {
    // Loop Choices, the ResumeRun Choice (Prepare's note says where a retry resumes) and re-entered Await states.
    if (/^Is[A-Z]/.test(state) || state === 'ResumeRun' || state === this.last) return;
    if (!this.training.entered(state)) return;
    this.last = state;
    this.log(`${this.stamp()} ▶ ${state}`);
  }

  /** Stops the live training line, if one runs. */
  ended(): void {
    this.training.ended();
  }

  exited(state: string, output: unknown): void {
    const s = output as Partial<PipelineState> | undefined;
    if (!s) return;
    if (state === 'Prepare' && s.run) this.note(`version ${s.run.version}, image ${s.run.image}`);
    this.training.exited(state, s);
    if (state === 'Prepare' && s.run?.retry) {
      this.note(`retry of ${s.run.retry.of.split(':').pop()}: resumes at ${s.run.retry.from}, reusing its trained model${s.evaluation ? ' and its passed evaluation' : ''}`);
    }
    if (state === 'AwaitStagingEndpoint' && s.staging?.status === 'serving') this.note(`staging endpoint ${s.staging.endpoint}`);
    if (state === 'EvaluateModel' && s.evaluation) this.note(s.evaluation.summary);
    if (state === 'DeployProduction' && s.production?.rollout) this.note(`rollout: ${s.production.rollout.strategy} (${s.production.rollout.reason})`);
    if (state === 'ShiftCanaryTraffic' && s.canary?.status === 'baking') {
      const c = s.canary;
      this.note(`canary step ${c.step + 1}: ${c.weight} % requested → ${c.canaryReplicas} of ${c.totalReplicas} pods = ${c.reachablePercent} % reachable; baking ${s.run?.rollout?.bakeSeconds ?? '?'} s`);
    }
    if (state === 'AnalyzeCanary' && s.canary?.status === 'promote') this.note(`✓ canary passed at 100 % on all ${s.canary.totalReplicas} pods: ${s.run?.version ?? 'the candidate'} is promoted`);
    if (state === 'AbortCanary' && s.canary?.status === 'rolledBack') this.note(`✗ canary rolled back: ${s.canary.stableVersion} serves 100 % again`);
    if (state === 'AwaitProductionEndpoint' && s.production?.status === 'serving') this.note(`production endpoint ${s.production.endpoint}`);
    if ((state === 'Cleanup' || state === 'CleanupStaging') && s.error) {
      // Causes are often a Lambda error as JSON (with a stack trace): show its message's first line.
      this.note(`✗ ${s.error.Error}: ${firstLine(describeCause(s.error.Cause) ?? undefined)}`);
    }
  }

  /** One canary analysis and the client's view of its step (rollout-traffic.ts canaryLines). */
  canary(c: CanaryState, step: number, version: string, stepCount: number, client: TrafficSnapshot): void {
    for (const line of canaryLines(c, step, version, stepCount, client)) this.note(line);
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
    this.log(`${NOTE_INDENT}${text}`);
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

/**
 * The bundles' V8 compile cache for this synthesized stack: one directory per synth, and those of synths no
 * longer kept (local/lambda/synth.ts prunes them) removed. V8 names its entries by the bundle's path, which
 * changes with every synth, so a single directory would grow by ~10 MB with each edit of the sources.
 */
function compileCacheFor(stateDir: string, synthDir: string): string {
  const root = join(stateDir, 'cache', 'compile');
  const synthRoot = dirname(resolve(synthDir));
  if (existsSync(root)) {
    for (const entry of readdirSync(root)) {
      if (!existsSync(join(synthRoot, entry))) rmSync(join(root, entry), { recursive: true, force: true });
    }
  }
  return join(root, basename(resolve(synthDir)));
}
