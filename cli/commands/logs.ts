/** `mlpipe logs <run>`: the training pod's log, read through the Kubernetes API. */
import * as k8s from '@kubernetes/client-node';
import { getKubeConfig } from '../../functions/shared/kube';
import { CliError, UsageError } from '../io';
import type { Command } from '../main';
import { progressOf, resolveRun, runHistory } from '../runs';

export const logsCommand: Command = {
  name: 'logs',
  usage: 'mlpipe logs <run> [--tail <lines>] [--cluster <eks cluster>]',
  summary: "Print the training pod's log of a run",
  help: [
    'Reads the pods of the run\'s training Job (label job-name=<job>) through the Kubernetes API: the',
    'local pipeline\'s API in local mode, else KUBECONFIG if set, else the EKS cluster (--cluster or CLUSTER_NAME).',
    '  --tail <lines>      only the last lines',
    '  --cluster <name>    EKS cluster (AWS mode)',
  ],
  options: { tail: { type: 'string' }, cluster: { type: 'string' } },
  positionals: [1, 1],
  async run({ target, args, values, io }) {
    const tail = typeof values.tail === 'string' ? Number(values.tail) : undefined;
    if (tail !== undefined && (!Number.isInteger(tail) || tail < 1)) throw new UsageError('--tail must be a whole number >= 1.');
    if (typeof values.cluster === 'string') process.env.CLUSTER_NAME = values.cluster;
    if (target.mode === 'aws' && !process.env.KUBECONFIG && !process.env.CLUSTER_NAME) {
      throw new UsageError('Which cluster? Pass --cluster <eks cluster name> (or set CLUSTER_NAME or KUBECONFIG).');
    }
    const arn = await resolveRun(target, args[0]);
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
      throw new CliError(`No pods of Job ${namespace}/${job} (not started yet, or cleaned up after the run).`);
    }
    const log = await core.readNamespacedPodLog({ name: newest.metadata.name, namespace, ...(tail ? { tailLines: tail } : {}) });
    io.err(`── ${namespace}/${newest.metadata.name} (${newest.status?.phase ?? 'unknown'}) ──`);
    for (const line of String(log).replace(/\n$/, '').split('\n')) io.out(line);
  },
};
