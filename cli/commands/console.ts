/**
 * `mlpipe console`: the web console (console/server.ts) on 127.0.0.1: the runs, live; a run's graph,
 * training, evaluation, lineage, decisions and log tail; a model's production and history; pending
 * approvals. It reads the target (the local pipeline, or a deployed stack with the caller's credentials:
 * Step Functions and S3 reads, Kubernetes reads for the log) and never writes. Runs until Ctrl-C.
 */
import { reloadSettings } from '../../functions/shared/settings';
import { isAlive } from '../../local/process-alive';
import { startConsole } from '../../console/server';
import { CONSOLE_PORT } from '../../console/process';
import { UsageError } from '../io';
import type { Command, Values } from '../command';

function port(values: Values): number | undefined {
  if (values.port === undefined) return undefined;
  const p = Number(values.port);
  if (!Number.isInteger(p) || p < 0 || p > 65535) throw new UsageError(`--port must be a port number (0-65535; 0: any free port), got "${String(values.port).slice(0, 20)}".`);
  return p;
}

function exitWith(values: Values): number | undefined {
  if (values['exit-with'] === undefined) return undefined;
  const pid = Number(values['exit-with']);
  if (!Number.isInteger(pid) || pid < 1) throw new UsageError(`--exit-with must be a process id, got "${String(values['exit-with']).slice(0, 20)}".`);
  return pid;
}

export const consoleCommand: Command = {
  name: 'console',
  usage: 'mlpipe console [--port <port>] [--cluster <eks cluster>]',
  summary: 'Serve the web console on 127.0.0.1 (runs, graphs, evaluations, models; read-only)',
  help: [
    'Opens nothing by itself: it prints the address to open. It reads Step Functions executions and the',
    'S3 registry (and the training pod log through the Kubernetes API) and never writes: approving',
    'happens through the approval links or `mlpipe approve`.',
    `  --port <port>       (default ${CONSOLE_PORT}, or any free port when that one is taken; 0: any free port)`,
    '  --cluster <name>    EKS cluster for the pod logs (AWS mode; else KUBECONFIG or CLUSTER_NAME)',
    '  --exit-with <pid>   stop when that process ends (`npm start` runs the console this way)',
  ],
  options: { port: { type: 'string' }, cluster: { type: 'string' }, 'exit-with': { type: 'string' } },
  positionals: [0, 0],
  validate: (_args, values) => {
    port(values);
    exitWith(values);
  },
  async run({ target, values, io }) {
    if (typeof values.cluster === 'string') {
      process.env.CLUSTER_NAME = values.cluster;
      reloadSettings(); // Kubernetes access reads the loaded settings
    }
    const asked = port(values);
    const server = await startConsole(target, { port: asked ?? CONSOLE_PORT, guardS3: true }).catch((err: NodeJS.ErrnoException) => {
      if (asked === undefined && err.code === 'EADDRINUSE') return startConsole(target, { port: 0, guardS3: true });
      if (err.code === 'EADDRINUSE') throw new UsageError(`port ${asked} is taken; pass another --port (0: any free port).`);
      throw err;
    });
    io.out(`console   ${server.url}   (read-only; Ctrl-C stops it)`);
    const parent = exitWith(values);
    await new Promise<void>((resolve) => {
      const stop = () => resolve();
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
      if (parent !== undefined) {
        const timer = setInterval(() => {
          if (!isAlive(parent)) stop();
        }, 1000);
        timer.unref();
      }
    });
    await server.close();
  },
};
