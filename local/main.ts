/**
 * `npm start`: one full pipeline run on this machine — stage data, train, serve, evaluate, approve,
 * promote — then keep the production model serving until Ctrl-C. No AWS account, no Docker.
 */
import { writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { parseFault } from '../functions/shared/fault';
import { NotResumableError } from '../functions/shared/errors';
import { executionNameProblem } from '../functions/shared/execution-name';
import { outcomeOf } from '../functions/shared/outcome';
import { describePlan, resumePlan } from '../functions/shared/resume';
import { localRetry, type LocalRetry } from './retry-run';
import { spawnConsole } from '../console/process';
import { startLocalPipeline, TRAINING_IMAGE, type ApprovalMode, type LocalPipeline, type RunOutcome } from './pipeline';
import { StateDirLockedError } from './lock';
import { watchLaunchers } from './parent-watch';
import { followExecutions, localRunName } from './stepfunctions/follow';
import { startLocalMonitor } from './serving-monitor';

const USAGE = `Usage: npm start -- [options]

Runs the whole mlpipe pipeline locally as the synthesized stack: local S3, a local Kubernetes API, the
template's state machine, each task running its own Lambda bundle with the environment the template gives
it, and a real Fashion-MNIST model.

Options:
  --auto-approve          approve the model as soon as it passes evaluation (through its approval link)
  --reject                reject the model at the approval step (the run then ends rejected, on purpose)
  --exit                  stop everything when the run ends instead of keeping production serving
  --kubeconfig <path>     use this cluster (kind, minikube, EKS) instead of the local Kubernetes API; a
                          token limited to the two namespaces is enough if they exist
  --s3-port <port>        serve the local S3 on this port (with --kubeconfig: the port the pods reach)
  --hyperparameters <json> e.g. '{"epochs":3}' (merged over the example's defaults)
  --candidate-fault <spec> a drill: the production candidate's pods fail/slow down on purpose, e.g.
                          error-rate=0.2 or error-rate=0.2,latency-ms=50 (rollout.candidateFault), so the
                          canary's automatic rollback can be watched (needs a version serving already)
  --retry <run>           continue that failed run instead of starting a new one: its trained model (and a
                          passed evaluation) are reused from the local registry, no training runs again
  -c, --context <key=value> an MlPipeline prop as CDK context (mlpipe:<key>), over the local configuration;
                          repeatable, e.g. -c minAccuracy=0.9 -c approvalTimeout=120
  --state-dir <path>      where local state lives (default .mlpipe); one npm start per directory at a time
  --synth-cache <path>    where synthesized stacks are cached (default <state-dir>/synth)
  -h, --help              show this help

Without --auto-approve or --reject the run waits at the approval step: open a printed link, or run
\`npm run mlpipe -- approve <run>\` in another terminal. After a successful run, production keeps serving
until Ctrl-C (unless --exit).

The functions get their settings from the synthesized template, as on AWS: set them as props, e.g.
  npm start -- -c minAccuracy=0.9             a stricter evaluation gate
  npm start -- -c approvalTimeout=300         approval links expire after 5 minutes (local default 1 hour)
The stack is synthesized again only when functions/, lib/, bin/, statemachine/ or the props change.`;

interface Args {
  approval: ApprovalMode;
  exit: boolean;
  kubeconfig?: string;
  s3Port?: number;
  stateDir?: string;
  synthCache?: string;
  context: Record<string, unknown>;
  hyperparameters?: Record<string, unknown>;
  candidateFault?: string;
  retry?: string;
}

/**
 * Numbers and booleans as JSON values, the rest as strings: the props read both, and `-c minAccuracy=0.6`
 * then synthesizes (and caches) the same stack as `{ minAccuracy: 0.6 }` from code.
 */
function contextValue(raw: string): unknown {
  if (/^-?\d+(\.\d+)?$/.test(raw)) return Number(raw);
  if (raw === 'true' || raw === 'false') return raw === 'true';
  // A JSON object (rollout, serviceAnnotations...) as an object, as in code: then `-c rollout='{…}'` shapes the
  // same stack (and synth cache entry) as the prop. Not JSON: kept as text, for the prop's check to name it.
  if (raw.startsWith('{')) {
    try {
      return JSON.parse(raw) as unknown;
    } catch {
      return raw;
    }
  }
  return raw;
}

function parse(): Args {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        'auto-approve': { type: 'boolean' },
        reject: { type: 'boolean' },
        exit: { type: 'boolean' },
        kubeconfig: { type: 'string' },
        's3-port': { type: 'string' },
        hyperparameters: { type: 'string' },
        'candidate-fault': { type: 'string' },
        retry: { type: 'string' },
        'state-dir': { type: 'string' },
        'synth-cache': { type: 'string' },
        context: { type: 'string', short: 'c', multiple: true },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
    }));
  } catch (err) {
    console.error(`${(err as Error).message}\n\n${USAGE}`);
    process.exit(2);
  }
  if (values.help) {
    console.log(USAGE);
    process.exit(0);
  }
  if (values['auto-approve'] && values.reject) {
    console.error('--auto-approve and --reject cannot be used together.');
    process.exit(2);
  }
  const context: Record<string, unknown> = {};
  for (const entry of values.context ?? []) {
    const eq = entry.indexOf('=');
    if (eq <= 0) {
      console.error(`--context takes key=value (an MlPipeline prop, e.g. minAccuracy=0.9), got "${entry}".`);
      process.exit(2);
    }
    context[entry.slice(0, eq).replace(/^mlpipe:/, '')] = contextValue(entry.slice(eq + 1));
  }
  let hyperparameters: Record<string, unknown> | undefined;
  if (values.hyperparameters !== undefined) {
    try {
      hyperparameters = JSON.parse(values.hyperparameters) as Record<string, unknown>;
      if (typeof hyperparameters !== 'object' || hyperparameters === null || Array.isArray(hyperparameters)) throw new Error('not an object');
    } catch (err) {
      console.error(`--hyperparameters must be a JSON object, e.g. '{"epochs":3}' (${(err as Error).message}).`);
      process.exit(2);
    }
  }
  const candidateFault = values['candidate-fault'];
  if (candidateFault !== undefined) {
    try {
      parseFault(candidateFault);
    } catch (err) {
      console.error(`--candidate-fault: ${(err as Error).message}.`);
      process.exit(2);
    }
  }
  const retryProblem = values.retry === undefined ? undefined : executionNameProblem(values.retry);
  if (retryProblem) {
    console.error(`--retry takes a run name, and a run name ${retryProblem}.`);
    process.exit(2);
  }
  if (values.retry !== undefined && values.hyperparameters !== undefined) {
    console.error('--retry reuses the run\'s trained model, so its hyperparameters: --hyperparameters cannot go with it.');
    process.exit(2);
  }
  const s3Port = values['s3-port'] === undefined ? undefined : Number(values['s3-port']);
  if (s3Port !== undefined && !(Number.isInteger(s3Port) && s3Port > 0 && s3Port < 65536)) {
    console.error(`--s3-port must be a port number (1-65535), got "${values['s3-port']}".`);
    process.exit(2);
  }
  return {
    approval: values['auto-approve'] ? 'auto-approve' : values.reject ? 'reject' : 'interactive',
    exit: Boolean(values.exit),
    kubeconfig: values.kubeconfig,
    s3Port,
    stateDir: values['state-dir'],
    synthCache: values['synth-cache'],
    context,
    hyperparameters,
    candidateFault,
    retry: values.retry,
  };
}

async function main(): Promise<number> {
  const args = parse();
  const started = Date.now();
  let pipeline: LocalPipeline | undefined;
  let interrupted = false;
  /**
   * Ctrl-C, SIGTERM, or the process that started this one ended (a kill -9 of npm): stop everything,
   * then exit. The exit waits for the stop: exiting halfway used to leave the serving pods running.
   */
  const interrupt = (reason: string, code: number) => {
    if (interrupted) return;
    interrupted = true;
    console.log(`\ninterrupted (${reason}): stopping every local process this run started…`);
    // Still starting: exiting releases the state directory ('exit' listener), the reaper ends any pod.
    if (!pipeline) process.exit(code);
    void pipeline.stop(reason).finally(() => process.exit(code));
  };
  process.on('SIGINT', () => interrupt('Ctrl-C', 130));
  process.on('SIGTERM', () => interrupt('SIGTERM', 143));
  process.on('SIGHUP', () => interrupt('SIGHUP: the terminal closed', 129));
  watchLaunchers((gone) => interrupt(`${gone.command.split(' ')[0] || 'the process'} that started this run, pid ${gone.pid}, ended`, 129));
  // With the terminal or npm gone, writing progress can fail: that must not end the stop halfway.
  for (const stream of [process.stdout, process.stderr]) stream.on('error', () => undefined);

  const stateDir = resolve(args.stateDir ?? join(__dirname, '..', '.mlpipe'));
  console.log('mlpipe local run: the whole pipeline on this machine, no AWS account, no Docker. Ctrl-C stops it.\n');
  pipeline = await startLocalPipeline({
    approval: args.approval,
    kubeconfig: args.kubeconfig,
    s3Port: args.s3Port,
    stateDir: args.stateDir,
    synthCacheDir: args.synthCache,
    context: args.context,
    // The run starts at once; its steps after training wait for production to be back (a second or two).
    restoreInBackground: true,
  });
  console.log(`approvals ${pipeline.approvalUrl}`);
  // The serving monitor, as its schedule would invoke it (a timer, off the run's path); alarms go to the outbox.
  startLocalMonitor({ stack: pipeline.stack, invoke: pipeline.invoke, snsEndpoint: pipeline.snsEndpoint });
  // The web console (`mlpipe console`, read-only) in a child process: at once when a person decides the
  // run; otherwise when someone opens it, or once the run is over and production keeps serving (its start
  // is CPU an --auto-approve run on 2 cores would wait for).
  const web = await spawnConsole(stateDir, { lazy: args.approval !== 'interactive' });
  process.on('exit', web.stop);
  web.ready.catch((err: Error) => console.error(`console   did not start: ${err.message}`));
  console.log(`console   ${web.url}`);
  console.log(`logs      in ${stateDir}/: kube/pods/ (training and serving pods), handlers.log (task handlers), notifications.jsonl (emails)\n`);
  let retry: LocalRetry | undefined;
  if (args.retry) {
    const modelName = pipeline.stack.functions.map((f) => f.environment.MODEL_NAME).find((v) => v !== undefined) ?? 'fashion-mnist';
    try {
      retry = await localRetry(args.retry, modelName, pipeline.bucket);
    } catch (err) {
      if (!(err instanceof NotResumableError)) throw err;
      console.error(`--retry ${args.retry}: ${err.message}`);
      await pipeline.stop();
      return 1;
    }
    console.log(`retrying  ${args.retry} as ${retry.name}: ${retry.plan}\n`);
  }
  const fresh = {
    ...(args.hyperparameters ? { hyperparameters: args.hyperparameters } : {}),
    ...(args.candidateFault ? { rollout: { candidateFault: args.candidateFault } } : {}),
  };
  // Every other run of the state machine (`mlpipe run`, a retry link) is printed too, compactly.
  const name = retry?.name ?? localRunName();
  followExecutions(pipeline.sfn, { log: (l) => console.log(l), skip: (run) => run === name, notificationsFile: pipeline.notificationsFile });
  const outcome = await pipeline.run(retry ? retry.input : fresh, { name });
  const wall = ((Date.now() - started) / 1000).toFixed(1);
  if (process.env.MLPIPE_TIMINGS_FILE) {
    // npm run bench reads this: where the wall time went.
    const { states, wallMs, status } = outcome;
    writeFileSync(process.env.MLPIPE_TIMINGS_FILE, JSON.stringify({ status, processMs: Date.now() - started, executionMs: wallMs, stagingSeconds: pipeline.stagingSeconds, startup: pipeline.startup, states, accuracy: outcome.output?.evaluation?.accuracy }));
  }

  console.log('');
  const batchSize = pipeline.stack.functions.map((f) => f.environment.EVAL_BATCH_SIZE).find((v) => v !== undefined);
  for (const line of summary(outcome, args.approval, wall, stateDir, batchSize)) console.log(line);
  // The stop that interrupted the run goes on, and exits when it is done.
  if (interrupted) return new Promise<number>(() => undefined);
  const asExpected = outcome.status === 'SUCCEEDED' || (args.approval === 'reject' && outcome.error === 'ApprovalRejected');
  const code = asExpected ? 0 : 1;
  if (args.exit || outcome.status !== 'SUCCEEDED') {
    await pipeline.stop();
    return code;
  }
  web.start();
  const s = outcome.output!;
  const endpoint = `${s.production?.endpoint}/v1/models/${s.run.modelName}`;
  console.log('\nProduction keeps serving until you press Ctrl-C (that stops every process this run started). Meanwhile:');
  console.log(`  curl ${endpoint}`);
  console.log('  npm run mlpipe -- status                     this run, step by step');
  console.log(`  npm run mlpipe -- run ${TRAINING_IMAGE}   another run, compared with this release`);
  if (s.production?.previousVersion) console.log(`  npm run mlpipe -- rollback ${s.run.modelName}          back to ${s.production.previousVersion}`);
  return new Promise<number>(() => undefined); // until a signal
}

/** How to continue a failed run that trained its model (functions/shared/resume.ts decides, as Prepare will). */
function retryHint(outcome: RunOutcome, error: string): string[] {
  const last = outcome.lastState;
  if (!last?.run) return [];
  try {
    const status = outcomeOf({ error: { Error: error, Cause: outcome.cause ?? '' } }).status;
    const plan = resumePlan({ status, training: last.training ?? null, evaluation: last.evaluation ?? null }, last.run.executionName);
    return [`  Retry without training again: npm start -- --retry ${last.run.executionName}   (${describePlan(plan)})`];
  } catch (err) {
    if (err instanceof NotResumableError) return [];
    throw err;
  }
}

/** How the run ended, in words: what serves now, or why nothing changed and where to look. */
function summary(outcome: RunOutcome, mode: ApprovalMode, wall: string, stateDir: string, batchSize = '?'): string[] {
  const s = outcome.output;
  if (outcome.interrupted) {
    const what = outcome.lastState?.run ? `${outcome.lastState.run.modelName} ${outcome.lastState.run.version}` : 'the run';
    const releasing = outcome.states.some((t) => t.state === 'DeployProduction');
    return [
      `■ run interrupted after ${wall} s${outcome.lastStateName ? ` in ${outcome.lastStateName}` : ''}: ${what} was stopped, not failed (${outcome.interrupted}).`,
      releasing
        ? '  It was stopped during its release: the next start serves production as the registry records it.'
        : '  Nothing of it was released; production is unchanged.',
    ];
  }
  if (outcome.status === 'SUCCEEDED' && s) {
    const e = s.evaluation;
    return [
      `✓ run succeeded in ${wall} s: ${s.run.modelName} ${s.run.version} serves production`,
      ...(e
        ? [
            `  accuracy     ${e.accuracy.toFixed(4)} on ${e.samples.toLocaleString('en-US')} held-out images, over HTTP`,
            `  p95 latency  ${e.latencyMsP95.toFixed(1)} ms per ${batchSize}-image request`,
          ]
        : []),
      `  approved by  ${s.approval?.by ?? 'unknown'}`,
      `  replaced     ${s.production?.previousVersion ?? 'nothing (first release)'}`,
      `  endpoint     ${s.production?.endpoint}/v1/models/${s.run.modelName}`,
    ];
  }
  const last = outcome.lastState;
  const what = last?.run ? `${last.run.modelName} ${last.run.version}` : 'the model';
  const error = outcome.error ?? 'unknown error';
  const { reason, rejection } = outcomeOf({ error: { Error: error, Cause: outcome.cause ?? '' } });
  const unchanged = 'Production is unchanged; staging was cleaned up.';
  if (error === 'ApprovalRejected') {
    const by = rejection ? ` by ${rejection.by}${rejection.comment && mode !== 'reject' ? ` ("${rejection.comment}")` : ''}` : '';
    return [`${mode === 'reject' ? '✓ run ended as asked (--reject)' : '✗ run ended'} after ${wall} s: ${what} was rejected${by}.`, `  ${unchanged}`];
  }
  const headline =
    error === 'EvaluationGateFailed' ? `${what} did not pass the evaluation gate`
    : error === 'ApprovalTimedOut' ? `nobody approved or rejected ${what} before the approval timeout`
    : `${what} failed (${error})`;
  return [
    `✗ run ended after ${wall} s: ${headline}.`,
    // The timeout's cause only repeats the headline.
    ...(reason && error !== 'ApprovalTimedOut' ? reason.trim().split('\n').map((l) => `  ${l}`) : []),
    `  ${unchanged}`,
    `  Logs: ${stateDir}/kube/pods/ (pods) and ${stateDir}/handlers.log (task handlers).`,
    ...retryHint(outcome, error),
  ];
}

main().then(
  (code) => process.exit(code),
  (err: Error) => {
    // Another run holds the state directory: say who, and nothing else (it is not a failure of this code).
    console.error(err instanceof StateDirLockedError ? err.message : `mlpipe local run failed: ${err.message}`);
    process.exit(err instanceof StateDirLockedError ? 3 : 1);
  },
);
