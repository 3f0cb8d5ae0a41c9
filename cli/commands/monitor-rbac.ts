/**
 * `mlpipe monitor-rbac [--group <name>]`: the Role and RoleBinding (YAML) that give the serving monitor
 * exactly what it needs in production (list pods, get pods/proxy) through a Kubernetes group, for a stack
 * deployed with `monitorKubernetesGroup` (its access entry then has that group and no access policy).
 * mlpipe creates no Kubernetes RBAC itself (it asks for no cluster-admin), so a cluster admin applies it:
 * `mlpipe monitor-rbac --group mlpipe-monitor | kubectl apply -f -`. Prints only; contacts nothing.
 */
import { MONITOR_GROUP, monitorRbacYaml } from '../../lib/monitor-rbac';
import { DNS1123_LABEL } from '../../functions/shared/names';
import type { Command } from '../command';
import { CliError, UsageError } from '../io';

export const monitorRbacCommand: Command = {
  name: 'monitor-rbac',
  usage: 'mlpipe monitor-rbac [--group <name>] [--namespace <production namespace>]',
  summary: "Print the serving monitor's least-privilege Role and RoleBinding (for a stack with monitorKubernetesGroup), for kubectl apply -f -",
  help: [
    '--group is the stack\'s monitorKubernetesGroup (default mlpipe-monitor); --namespace the production namespace (default: the target\'s).',
    'Apply as a cluster admin BEFORE deploying the stack with monitorKubernetesGroup, or the monitor is refused until you do',
    '(docs/deploy.md, Endpoint authentication: the serving monitor\'s access).',
  ],
  options: { group: { type: 'string' }, namespace: { type: 'string' } },
  positionals: [0, 0],
  validate(_args, values) {
    if (typeof values.group === 'string' && !MONITOR_GROUP.test(values.group)) throw new UsageError(`"${values.group.slice(0, 80)}" is not a Kubernetes group name for an access entry: letters, digits, ":", ".", "_", "-", not "system:...".`);
    if (typeof values.namespace === 'string' && !DNS1123_LABEL.test(values.namespace)) throw new UsageError(`"${values.namespace.slice(0, 80)}" is not a namespace name.`);
  },
  async run({ target, values, io }) {
    const namespace = typeof values.namespace === 'string' ? values.namespace : target.namespaces?.production;
    if (!namespace) throw new CliError('Which production namespace? The stack predates its namespace outputs: pass --namespace <name>.');
    io.out(monitorRbacYaml(namespace, typeof values.group === 'string' ? values.group : 'mlpipe-monitor').trimEnd());
  },
};
