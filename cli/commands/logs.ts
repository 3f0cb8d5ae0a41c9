/** `mlpipe logs <run>`: the training pod's log, read through the Kubernetes API. */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { getKubeConfig } from '../../functions/shared/kube';
import { CliError, UsageError, type Io } from '../io';
import type { Clock, Command } from '../command';
import { describeRun, progressOf, resolveRun, runHistory } from '../runs';
import type { Target } from '../target';
import { validateRunId } from '../validate';
import { reloadSettings } from '../../functions/shared/settings';
import { followPodLogOnce } from '../pod-log-stream';

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

const POLL_MS = 1000;

/** Waits until the Job has a pod whose container started (or ended); undefined when the run ended without one. */
async function startedPod(newest: () => Promise<k8s.V1Pod | undefined>, ended: () => Promise<boolean>, clock: Clock): Promise<k8s.V1Pod | undefined> {
  for (;;) {
    const pod = await newest();
    if (pod && pod.status?.phase !== 'Pending') return pod;
    if (!pod && (await ended())) return undefined;
    await clock.sleep(POLL_MS);
  }
}

async function runEnded(target: Target, arn: string): Promise<boolean> {
  return (await describeRun(target, arn)).status !== 'RUNNING';
}

/**
 * Streams the pod's log (follow=true) until the container ends. The API server may end a follow early (a
 * proxy's idle timeout) or just before the last lines reach the log (the container's exit seen first): while
 * the pod still runs it follows again (after a dropped connection too), and once it has ended one plain read prints what is left. Both skip
 * the bytes already printed, so nothing shows twice (not with --tail, whose lines cannot be lined up).
 */
async function followPod(core: k8s.CoreV1Api, namespace: string, pod: k8s.V1Pod, tail: number | undefined, io: Io, clock: Clock): Promise<void> {
  const name = pod.metadata!.name!;
  const container = pod.spec?.containers[0]?.name ?? '';
  io.err(`── ${namespace}/${name} (following until it ends) ──`);
  let printed = 0; // bytes of the log printed so far
  let partial = '';
  /** Prints `text`, which starts at byte `from` of the log, skipping what was printed already. */
  const print = (from: number, text: Buffer) => {
    const fresh = text.subarray(Math.max(0, printed - from));
    if (fresh.length === 0) return;
    printed += fresh.length;
    const lines = (partial + fresh.toString('utf8')).split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) io.out(line);
  };
  for (;;) {
    let at = 0;
    const how = await followPodLogOnce({ namespace, pod: name, container, ...(tail ? { tailLines: tail } : {}) }, (chunk) => {
      if (tail) {
        print(printed, chunk);
      } else {
        print(at, chunk);
        at += chunk.length;
      }
    });
    if (tail) {
      if (how === 'dropped') io.err('── the connection to the API server dropped; run again to see the rest ──');
      break;
    }
    const phase = (await core.readNamespacedPod({ name, namespace })).status?.phase;
    if (phase !== 'Running' && phase !== 'Pending') break;
    await clock.sleep(POLL_MS);
  }
  if (!tail) print(0, Buffer.from(String(await core.readNamespacedPodLog({ name, namespace, container }))));
  if (partial) io.out(partial);
}

/** The run's training Job and its namespace, from the run's state. */
async function trainingJobOf(target: Target, arn: string): Promise<{ job: string; namespace: string }> {
  const p = progressOf(await runHistory(target, arn));
  const run = p.data?.run;
  if (!run?.names?.trainingJob) throw new CliError(`Run ${arn.split(':').pop()} has not got as far as naming its training Job (Prepare did not finish).`);
  return { job: run.names.trainingJob, namespace: p.data?.training?.namespace ?? run.namespaces.staging };
}

async function newestPod(core: k8s.CoreV1Api, namespace: string, job: string): Promise<k8s.V1Pod | undefined> {
  return [...(await core.listNamespacedPod({ namespace, labelSelector: `job-name=${job}` })).items].sort(
    (a, b) => new Date(b.metadata?.creationTimestamp ?? 0).getTime() - new Date(a.metadata?.creationTimestamp ?? 0).getTime(),
  )[0];
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
  const { job, namespace } = await trainingJobOf(target, arn);
  const core = (await getKubeConfig()).makeApiClient(k8s.CoreV1Api);
  const newest = await newestPod(core, namespace, job);
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
  usage: 'mlpipe logs <run> [-f] [--tail <lines>] [--cluster <eks cluster>]',
  summary: "Print the training pod's log of a run",
  help: [
    '<run> is the run name (`mlpipe list` shows them) or its execution ARN.',
    'Reads the pods of the run\'s training Job (label job-name=<job>) through the Kubernetes API: the',
    'local pipeline\'s API in local mode, else KUBECONFIG if set, else the EKS cluster (--cluster or CLUSTER_NAME).',
    '  -f, --follow        keep printing as the pod writes, until it ends (waits for the pod if it has not started)',
    '  --tail <lines>      only the last lines',
    '  --cluster <name>    EKS cluster (AWS mode)',
  ],
  options: { tail: { type: 'string' }, cluster: { type: 'string' }, follow: { type: 'boolean', short: 'f' } },
  positionals: [1, 1],
  validate: (args) => validateRunId(args[0]),
  async run({ target, args, values, io, clock }) {
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
    if (values.follow) {
      const { job, namespace } = await trainingJobOf(target, arn);
      const kc = await getKubeConfig();
      const core = kc.makeApiClient(k8s.CoreV1Api);
      const pod = await startedPod(() => newestPod(core, namespace, job), () => runEnded(target, arn), clock);
      if (pod?.metadata?.name) return followPod(core, namespace, pod, tail, io, clock);
    }
    const log = await readTrainingLog(target, arn, tail);
    io.err(`── ${log.source} ──`);
    for (const line of log.lines) io.out(line);
  },
};
