/** `mlpipe logs <run>`: the training pod's log, read through the Kubernetes API. */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { getKubeConfig } from '../../functions/shared/kube';
import { CliError, UsageError } from '../io';
import type { Command } from '../command';
import { progressOf, resolveRun, runHistory } from '../runs';
import { validateRunId } from '../validate';
import type { Target } from '../target';
import { reloadSettings } from '../../functions/shared/settings';

/** <stateDir>/kube/pods/<namespace>_<pod>_<uid>/<container>.<restart>.log of the Job's newest pod, last restart. */
function keptPodLog(stateDir: string, namespace: string, job: string): string | undefined {
  const root = join(stateDir, 'kube', 'pods');
  if (!existsSync(root)) return undefined;
  const dirs = readdirSync(root)
    .filter((d) => d.startsWith(`${namespace}_${job}-`))
    .map((d) => join(root, d))
    .sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs);
  for (const dir of dirs) {
    const logs = readdirSync(dir)
      .filter((f) => f.endsWith('.log'))
      .sort((a, b) => Number(b.split('.').at(-2)) - Number(a.split('.').at(-2)));
    if (logs[0]) return join(dir, logs[0]);
  }
  return undefined;
}

/** A run's training log: where it was read (for a header line) and its lines, the last `tail` when given. */
export interface TrainingLog {
  source: string;
  lines: string[];
}

/**
 * The training pod's log of a run through the Kubernetes API (the newest pod of its Job); after the pod is
 * gone, the log the local runner kept. Reads only. `mlpipe logs` prints it; the console's run page shows its tail.
 */
export async function readTrainingLog(target: Target, arn: string, tail?: number): Promise<TrainingLog> {
  const p = progressOf(await runHistory(target, arn));
  const run = p.data?.run;
  if (!run?.names?.trainingJob) throw new CliError(`Run ${arn.split(':').pop()} has not got as far as naming its training Job (Prepare did not finish).`);
  const job = run.names.trainingJob;
  const namespace = p.data?.training?.namespace ?? run.namespaces.staging;

  const core = (await getKubeConfig()).makeApiClient(k8s.CoreV1Api);
  const pods = await core.listNamespacedPod({ namespace, labelSelector: `job-name=${job}` });
  const newest = [...pods.items].sort(
    (a, b) => new Date(b.metadata?.creationTimestamp ?? 0).getTime() - new Date(a.metadata?.creationTimestamp ?? 0).getTime(),
  )[0];
  if (!newest?.metadata?.name) {
    // The local runner keeps every pod's log after the pod is gone; a real cluster does not.
    const kept = target.stateDir ? keptPodLog(target.stateDir, namespace, job) : undefined;
    if (kept) {
      const lines = readFileSync(kept, 'utf8').replace(/\n$/, '').split('\n');
      return { source: `${kept} (the pod was cleaned up after the run; the local runner kept its log)`, lines: tail ? lines.slice(-tail) : lines };
    }
    throw new CliError(
      `No pods of Job ${namespace}/${job}: training has not started yet, or its pods were cleaned up after the run (the failure email keeps the end of a failed pod's log).`,
    );
  }
  const log = await core.readNamespacedPodLog({ name: newest.metadata.name, namespace, ...(tail ? { tailLines: tail } : {}) });
  return { source: `${namespace}/${newest.metadata.name} (${newest.status?.phase ?? 'unknown'})`, lines: String(log).replace(/\n$/, '').split('\n') };
}

export const logsCommand: Command = {
  name: 'logs',
  usage: 'mlpipe logs <run> [--tail <lines>] [--cluster <eks cluster>]',
  summary: "Print the training pod's log of a run",
  help: [
    '<run> is the run name (`mlpipe list` shows them) or its execution ARN.',
    'Reads the pods of the run\'s training Job (label job-name=<job>) through the Kubernetes API: the',
    'local pipeline\'s API in local mode, else KUBECONFIG if set, else the EKS cluster (--cluster or CLUSTER_NAME).',
    '  --tail <lines>      only the last lines',
    '  --cluster <name>    EKS cluster (AWS mode)',
  ],
  options: { tail: { type: 'string' }, cluster: { type: 'string' } },
  positionals: [1, 1],
  validate: (args) => validateRunId(args[0]),
  async run({ target, args, values, io }) {
    const tail = typeof values.tail === 'string' ? Number(values.tail) : undefined;
    if (tail !== undefined && (!Number.isInteger(tail) || tail < 1)) throw new UsageError('--tail must be a whole number >= 1.');
    if (typeof values.cluster === 'string') {
      process.env.CLUSTER_NAME = values.cluster;
      reloadSettings(); // Kubernetes access reads the loaded settings
    }
    if (target.mode === 'aws' && !process.env.KUBECONFIG && !process.env.CLUSTER_NAME) {
      throw new UsageError('Which cluster? Pass --cluster <eks cluster name> (or set CLUSTER_NAME or KUBECONFIG).');
    }
    const arn = await resolveRun(target, args[0]);
    const log = await readTrainingLog(target, arn, tail);
    io.err(`── ${log.source} ──`);
    for (const line of log.lines) io.out(line);
  },
};
