/**
 * `npm start`: one full pipeline run on this machine — stage data, train, serve, evaluate, approve,
 * promote — then keep the production model serving until Ctrl-C. No AWS account, no Docker.
 */
import { appendFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { startLocalPipeline, type ApprovalMode, type LocalPipeline } from './pipeline';

const USAGE = `Usage: npm start -- [options]

Runs the whole mlpipe pipeline locally: local S3, a local Kubernetes API, the same state machine and
Lambda handler code as on AWS, and a real Fashion-MNIST model.

Options:
  --auto-approve          approve the model as soon as it passes evaluation (through its approval link)
  --reject                reject the model at the approval step (the run then ends rejected, on purpose)
  --exit                  stop everything when the run ends instead of keeping production serving
  --kubeconfig <path>     use this cluster (kind, minikube, EKS) instead of the local Kubernetes API
  --hyperparameters <json> e.g. '{"epochs":3}' (merged over the example's defaults)
  --state-dir <path>      where local state lives (default .mlpipe)
  -h, --help              show this help

Without --auto-approve or --reject the run waits at the approval step: open the printed link, or
run \`npm run mlpipe -- approve <run>\` in another terminal.`;

function parse(): { approval: ApprovalMode; exit: boolean; kubeconfig?: string; stateDir?: string; hyperparameters?: Record<string, unknown> } {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        'auto-approve': { type: 'boolean' },
        reject: { type: 'boolean' },
        exit: { type: 'boolean' },
        kubeconfig: { type: 'string' },
        hyperparameters: { type: 'string' },
        'state-dir': { type: 'string' },
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
  return {
    approval: values['auto-approve'] ? 'auto-approve' : values.reject ? 'reject' : 'interactive',
    exit: Boolean(values.exit),
    kubeconfig: values.kubeconfig,
    stateDir: values['state-dir'],
    hyperparameters,
  };
}

/**
 * The Lambda handlers log one JSON line per fact, as CloudWatch wants; on a terminal that drowns the
 * progress lines, so locally they go to a file (warnings and errors still show).
 */
function routeHandlerLogs(file: string): void {
  mkdirSync(resolve(file, '..'), { recursive: true });
  for (const level of ['log', 'info'] as const) {
    const original = console[level].bind(console);
    console[level] = (...args: unknown[]) => {
      if (typeof args[0] === 'string' && args[0].startsWith('{"msg"')) appendFileSync(file, `${args[0]}\n`);
      else original(...args);
    };
  }
}

async function main(): Promise<number> {
  const args = parse();
  const started = Date.now();
  let pipeline: LocalPipeline | undefined;
  let stopping = false;
  const shutdown = async (code: number) => {
    if (stopping) return;
    stopping = true;
    console.log('\nstopping every local process…');
    await pipeline?.stop();
    process.exit(code);
  };
  process.on('SIGINT', () => void shutdown(130));
  process.on('SIGTERM', () => void shutdown(143));

  console.log('mlpipe local run — no AWS account, no Docker\n');
  routeHandlerLogs(resolve(args.stateDir ?? join(__dirname, '..', '.mlpipe'), 'handlers.log'));
  pipeline = await startLocalPipeline({ approval: args.approval, kubeconfig: args.kubeconfig, stateDir: args.stateDir });
  console.log(`approvals ${pipeline.approvalUrl}   step functions ${pipeline.sfnEndpoint}`);
  console.log(`logs      ${resolve(args.stateDir ?? join(__dirname, '..', '.mlpipe'))}/{handlers.log,kube/,notifications.jsonl}\n`);
  const outcome = await pipeline.run(args.hyperparameters ? { hyperparameters: args.hyperparameters } : {});
  const wall = ((Date.now() - started) / 1000).toFixed(1);
  if (process.env.MLPIPE_TIMINGS_FILE) {
    // npm run bench reads this: where the wall time went.
    const { states, wallMs, status } = outcome;
    writeFileSync(process.env.MLPIPE_TIMINGS_FILE, JSON.stringify({ status, processMs: Date.now() - started, executionMs: wallMs, stagingSeconds: pipeline.stagingSeconds, states, accuracy: outcome.output?.evaluation?.accuracy }));
  }
  const s = outcome.output;

  console.log('');
  if (outcome.status === 'SUCCEEDED' && s) {
    console.log('run succeeded');
    console.log(`  version          ${s.run.version}`);
    console.log(`  accuracy         ${s.evaluation?.accuracy.toFixed(4)} (held-out set, ${s.evaluation?.samples} images, over HTTP)`);
    console.log(`  p95 latency      ${s.evaluation?.latencyMsP95.toFixed(1)} ms per ${process.env.EVAL_BATCH_SIZE ?? 100}-image request`);
    console.log(`  approved by      ${s.approval?.by ?? '?'}`);
    console.log(`  production       ${s.production?.endpoint}/v1/models/${s.run.modelName}`);
    console.log(`  wall time        ${wall} s`);
  } else {
    console.log(`run ${outcome.status.toLowerCase()}: ${outcome.error ?? ''}${outcome.cause ? ` — ${outcome.cause.split('\n')[0]}` : ''}`);
    console.log(`  wall time        ${wall} s`);
  }
  const asExpected = outcome.status === 'SUCCEEDED' || (args.approval === 'reject' && outcome.error === 'ApprovalRejected');
  const code = asExpected ? 0 : 1;
  if (args.exit || outcome.status !== 'SUCCEEDED') {
    await shutdown(code);
    return code;
  }
  console.log('\nThe production model keeps serving; try:');
  console.log(`  curl ${s?.production?.endpoint}/v1/models/${s?.run.modelName}`);
  console.log('  npm run mlpipe -- status      npm run mlpipe -- list      npm run mlpipe -- rollback fashion-mnist');
  console.log('Ctrl-C stops every process this run started.');
  return new Promise<number>(() => undefined); // until a signal
}

main().then(
  (code) => process.exit(code),
  (err: Error) => {
    console.error(`mlpipe local run failed: ${err.message}`);
    process.exit(1);
  },
);
