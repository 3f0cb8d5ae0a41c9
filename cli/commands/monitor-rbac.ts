/**
 * `mlpipe monitor-rbac [--group <name>] [--rotation | --tasks | --rollback]`: the Role and RoleBinding (YAML) that give the serving
 * monitor exactly what it needs in production (list pods, get pods/proxy) through a Kubernetes group, for a
 * stack deployed with `monitorKubernetesGroup` (its access entry then has that group and no access policy);
 * with `--rotation`, those of the endpoint token rotation function in staging AND production (its token
 * Secret, list pods, get pods/proxy), for a stack deployed with `rotationKubernetesGroup`; with `--tasks`,
 * those of the pipeline's Kubernetes tasks in both namespaces (TASK_RULES), for `tasksKubernetesGroup`; with
 * `--rollback`, the rollback function's in production (ROLLBACK_RULES), for `rollbackKubernetesGroup`.
 * mlpipe creates no Kubernetes RBAC itself (it asks for no cluster-admin), so a cluster admin applies it:
 * `mlpipe monitor-rbac --group mlpipe-monitor | kubectl apply -f -`. Prints only; contacts nothing.
 */
import { KUBERNETES_GROUP, RBAC_NAMES, monitorRbacYaml, rollbackRbacYaml, rotationRbacYaml, tasksRbacYaml } from '../../lib/monitor-rbac';
import { DNS1123_LABEL } from '../../functions/shared/names';
import type { Command } from '../command';
import { CliError, UsageError } from '../io';

const modelsOf = (value: string | boolean | undefined): string[] => (typeof value === 'string' ? value.split(',').map((m) => m.trim()) : []);

export const monitorRbacCommand: Command = {
  name: 'monitor-rbac',
  usage: 'mlpipe monitor-rbac [--group <name>] [--namespace <production namespace>] [--rollback | --rotation | --tasks [--staging-namespace <name>] [--model <name>[,<name>...]]]',
  summary: "Print the serving monitor's (with --rotation the token rotation's, with --tasks the Kubernetes tasks', with --rollback the rollback's) least-privilege Role and RoleBinding, for kubectl apply -f -",
  help: [
    '--group is the stack\'s monitorKubernetesGroup (default mlpipe-monitor), with --rotation its rotationKubernetesGroup (default mlpipe-token-rotation),',
    'with --tasks its tasksKubernetesGroup (default mlpipe-tasks), with --rollback its rollbackKubernetesGroup (default mlpipe-rollback);',
    '--namespace the production namespace, --staging-namespace the staging one (default: the target\'s; with both given (and --model',
    'for --rotation and --tasks), no stack is read, so the Roles can be printed before the stack is deployed).',
    '--rotation: a Role and RoleBinding in staging AND production for the endpoint token rotation function: get/patch/create the token Secret,',
    'list pods, get pods/proxy. --model narrows get/patch/create to those models\' <model>-endpoint-token Secrets (the rotation creates by server-side apply);',
    'without it, the target\'s models (the stack\'s token Secrets) narrow them, and a --model is needed when both namespaces are given.',
    '--tasks: a Role and RoleBinding in staging AND production for the pipeline\'s Kubernetes tasks: apply/get/list/watch/delete Jobs,',
    'Deployments and Services; list/watch pods and events; get pods/log and pods/proxy; create/patch the token Secret (--model narrows it).',
    '--rollback: a Role and RoleBinding in production only for the rollback function (mlpipe rollback): get/patch the Service,',
    'get/list/watch/patch Deployments, list/watch pods, get pods/log.',
    'Apply as a cluster admin BEFORE deploying the stack with the group, or the monitor (the rotation, the runs, the rollback) is refused until you do',
    '(docs/deploy.md, Endpoint authentication).',
  ],
  options: { group: { type: 'string' }, namespace: { type: 'string' }, rotation: { type: 'boolean' }, tasks: { type: 'boolean' }, rollback: { type: 'boolean' }, 'staging-namespace': { type: 'string' }, model: { type: 'string' } },
  positionals: [0, 0],
  validate(_args, values) {
    if (typeof values.group === 'string' && !KUBERNETES_GROUP.test(values.group)) throw new UsageError(`"${values.group.slice(0, 80)}" is not a Kubernetes group name for an access entry: letters, digits, ":", ".", "_", "-", not "system:...".`);
    for (const option of ['namespace', 'staging-namespace'] as const) {
      const value = values[option];
      if (typeof value === 'string' && !DNS1123_LABEL.test(value)) throw new UsageError(`--${option}: "${value.slice(0, 80)}" is not a namespace name.`);
    }
    const chosen = (['rotation', 'tasks', 'rollback'] as const).filter((o) => values[o]);
    if (chosen.length > 1) throw new UsageError(`${chosen.map((o) => `--${o}`).join(' and ')} print different Roles: choose one.`);
    if (!values.rotation && !values.tasks && (values['staging-namespace'] !== undefined || values.model !== undefined)) {
      throw new UsageError(`--staging-namespace and --model go with --rotation or --tasks: the ${values.rollback ? 'rollback' : 'serving monitor'} has no access to staging and reads no Secret.`);
    }
    for (const model of modelsOf(values.model)) if (!DNS1123_LABEL.test(model)) throw new UsageError(`--model: "${model.slice(0, 80)}" is not a model name (lowercase letters, digits and "-").`);
  },
  // Everything named on the command line (the namespaces, before the stack is deployed as the help says):
  // nothing to read from a stack or a local pipeline.
  // With --rotation or --tasks and no --model, the target's models (its token Secrets) narrow the Secret rule.
  needsTarget: (_args, values) =>
    typeof values.namespace !== 'string' || ((values.rotation === true || values.tasks === true) && (typeof values['staging-namespace'] !== 'string' || typeof values.model !== 'string')),
  async run({ target, values, io }) {
    const production = typeof values.namespace === 'string' ? values.namespace : target.namespaces?.production;
    if (!production) throw new CliError('Which production namespace? The stack predates its namespace outputs: pass --namespace <name>.');
    if (!values.rotation && !values.tasks) {
      const [print, group] = values.rollback ? [rollbackRbacYaml, RBAC_NAMES.rollback] : [monitorRbacYaml, RBAC_NAMES.monitor];
      return void io.out(print(production, typeof values.group === 'string' ? values.group : group).trimEnd());
    }
    const staging = typeof values['staging-namespace'] === 'string' ? values['staging-namespace'] : target.namespaces?.staging;
    if (!staging) throw new CliError('Which staging namespace? The stack predates its namespace outputs: pass --staging-namespace <name>.');
    const [print, group] = values.tasks ? [tasksRbacYaml, RBAC_NAMES.tasks] : [rotationRbacYaml, RBAC_NAMES.rotation];
    // The Secret rule names the models' token Secrets: --model's, else the target's (the stack's token
    // Secrets output). Only a target without endpoint tokens leaves it wide, which the printed comment says.
    const models = typeof values.model === 'string' ? modelsOf(values.model) : Object.keys(target.endpointTokenSecrets ?? {}).sort();
    io.out(print([staging, production], typeof values.group === 'string' ? values.group : group, models).trimEnd());
  },
};
