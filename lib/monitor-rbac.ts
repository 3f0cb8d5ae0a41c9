/**
 * The serving monitor's least-privilege Kubernetes access, for a stack deployed with
 * `monitorKubernetesGroup`: its EKS access entry then carries that Kubernetes group and NO access policy
 * (EKS's view policy lacks `pods/proxy`, and the edit policy it had otherwise reads Secrets, the endpoint
 * token among them). The cluster operator binds the group to this namespaced Role: list pods, get
 * pods/proxy in production, nothing else. The stack creates no Kubernetes objects (it runs against an
 * existing cluster and asks for no cluster-admin), so `mlpipe monitor-rbac` prints these for
 * `kubectl apply -f -`. Pure: the CLI and the CDK app both import it.
 * The endpoint token rotation function has the same option (`rotationKubernetesGroup`): ROTATION_RULES,
 * bound in BOTH serving namespaces (rotationRbacYaml, `mlpipe monitor-rbac --rotation`), and so do the
 * Kubernetes tasks (`tasksKubernetesGroup`): TASK_RULES, both namespaces (`mlpipe monitor-rbac --tasks`), and
 * the rollback (`rollbackKubernetesGroup`): ROLLBACK_RULES, production only (`mlpipe monitor-rbac --rollback`).
 */
import { endpointTokenSecretName } from '../functions/shared/manifests';

/** A namespaced RBAC rule; `namedSecret` narrows it to the model's token Secret (resourceNames). */
export interface RbacRule {
  /** The API group: core ("") unless given. */
  readonly apiGroup?: 'apps' | 'batch';
  readonly resources: readonly string[];
  readonly verbs: readonly string[];
  /** Narrowed to `<model>-endpoint-token` when a model is given. */
  readonly namedSecret?: true;
}

/** What the monitor does in production (functions/shared/serving-monitor-scrape.ts): list the model's pods, read each one's /metrics through the pod proxy. */
export const MONITOR_RULES: readonly RbacRule[] = [
  { resources: ['pods'], verbs: ['list'] },
  { resources: ['pods/proxy'], verbs: ['get'] },
];

/**
 * What the endpoint token rotation does in EACH serving namespace (functions/shared/endpoint-token-rotation.ts;
 * test/cdk checks its Kubernetes calls against ROTATION_KUBERNETES_NEEDS and these): read the model's token
 * Secret (testSecret), server-side apply it (setSecret, finishSecret: a PATCH, which creates the Secret when
 * it is missing, and for that the API server asks for `create` too), list the model's pods and read each
 * one's /metrics through the pod proxy (testSecret). All three Secret verbs are narrowed to the model's token
 * Secret when the model is known: RBAC cannot narrow a POST create by name (its URL has none), but the
 * create of a server-side apply is authorized WITH the name of its URL (apiserver's patch handler), and
 * the rotation creates only that way. test/local-kube/rbac.test.ts checks both against the local API server.
 */
export const ROTATION_RULES: readonly RbacRule[] = [
  { resources: ['secrets'], verbs: ['get', 'patch', 'create'], namedSecret: true },
  { resources: ['pods'], verbs: ['list'] },
  { resources: ['pods/proxy'], verbs: ['get'] },
];

/**
 * What the pipeline's Kubernetes tasks do in EACH serving namespace (the state machine's Lambdas on the
 * tasks role; the rollback, the monitor and the rotation have roles of their own): server-side apply,
 * read, watch and delete the training Job, the serving Deployments and the Services (applyObject,
 * readObject, watchUntil: list + watch, deleteObject, patchObject for retention's scale-down, and the
 * canary's `deployments/scale` patch); list and
 * watch pods and Job events for progress and failure reasons (training.ts, workloads.ts), read pod logs
 * for failure messages, read /metrics through the pod proxy (canary analysis); server-side apply the
 * model's token Secret (DeployStaging/DeployProduction, endpoint auth), narrowed to it with --model. What
 * AmazonEKSEditPolicy gives beyond this (other kinds, exec, port-forward, reading Secrets, pods' writes)
 * the tasks never use. test/cdk checks these against the handlers' Kubernetes calls.
 */
export const TASK_RULES: readonly RbacRule[] = [
  { apiGroup: 'batch', resources: ['jobs'], verbs: ['get', 'list', 'watch', 'create', 'patch', 'delete'] },
  { apiGroup: 'apps', resources: ['deployments'], verbs: ['get', 'list', 'watch', 'create', 'patch', 'delete'] },
  { apiGroup: 'apps', resources: ['deployments/scale'], verbs: ['patch'] },
  { resources: ['services'], verbs: ['get', 'list', 'watch', 'create', 'patch', 'delete'] },
  { resources: ['pods', 'events'], verbs: ['list', 'watch'] },
  { resources: ['pods/log', 'pods/proxy'], verbs: ['get'] },
  { resources: ['secrets'], verbs: ['create', 'patch'], namedSecret: true },
];

/**
 * What the rollback does in production (functions/rollback.ts, retention.ts's reactivateDeployment and
 * retireDeployment, and the workloads.ts readers they use; test/cdk reads those calls and checks them
 * against ROLLBACK_KUBERNETES_NEEDS and these): read the production Service and the target's Deployment,
 * patch the Deployments' replicas (scale the target up, the replaced version down), watch the target's
 * rollout and its pods (list + watch), list its pods and read a failed one's log for the error, and
 * server-side apply the Service's new selector. The Service always exists by then (the rollback refuses
 * without one), so its apply is an update: no `create`, no Secrets, no deletes, nothing in staging.
 */
export const ROLLBACK_RULES: readonly RbacRule[] = [
  { resources: ['services'], verbs: ['get', 'patch'] },
  { apiGroup: 'apps', resources: ['deployments'], verbs: ['get', 'list', 'watch', 'patch'] },
  { resources: ['pods'], verbs: ['list', 'watch'] },
  { resources: ['pods/log'], verbs: ['get'] },
];

/** A group name EKS accepts in an access entry: not `system:…`, which is Kubernetes' own. */
export const KUBERNETES_GROUP = /^(?!system:)[A-Za-z0-9][A-Za-z0-9:._-]{0,62}$/;

/** Each principal's Role name, and its group's name unless the stack names another (the …KubernetesGroup props). */
export const RBAC_NAMES = { monitor: 'mlpipe-monitor', rotation: 'mlpipe-token-rotation', tasks: 'mlpipe-tasks', rollback: 'mlpipe-rollback' } as const;

/** The Role and RoleBinding (YAML, two documents) that give `group` exactly MONITOR_RULES in `namespace`. */
export function monitorRbacYaml(namespace: string, group: string): string {
  return roleYaml(RBAC_NAMES.monitor, namespace, group, MONITOR_RULES, [], '# mlpipe serving monitor: list pods and read their /metrics through the pod proxy, in production only.');
}

/** The Role and RoleBinding (YAML, two documents) that give `group` exactly ROLLBACK_RULES in `namespace` (production). */
export function rollbackRbacYaml(namespace: string, group: string): string {
  const head = [
    '# mlpipe rollback: read and re-apply the production Service, scale Deployments (get, patch, list and watch them),',
    "# list and watch pods and read their logs, in production only (the Service exists already: no create).",
  ].join('\n');
  return roleYaml(RBAC_NAMES.rollback, namespace, group, ROLLBACK_RULES, [], head);
}

/**
 * The Role and RoleBinding of ROTATION_RULES for `group` in each of `namespaces` (staging and production:
 * the rotation writes the token Secret of both). With `models`, get/patch/create name their token Secrets only.
 */
export function rotationRbacYaml(namespaces: readonly string[], group: string, models: readonly string[] = []): string {
  const names = models.map(endpointTokenSecretName);
  const head = [
    "# mlpipe endpoint token rotation: read and server-side apply the model's token Secret, list pods and read their /metrics",
    `# through the pod proxy. get, patch and create ${names.length ? `name ${names.join(', ')} only` : 'cover every Secret: pass --model to narrow them'} (the rotation creates the`,
    '# Secret by server-side apply, which the API server authorizes as create WITH the name; a POST create would not be).',
  ].join('\n');
  return rolesYaml(RBAC_NAMES.rotation, namespaces, group, ROTATION_RULES, names, head);
}

/**
 * The Role and RoleBinding of TASK_RULES for `group` in each of `namespaces` (staging and production).
 * With `models`, the Secret rule names their token Secrets only.
 */
export function tasksRbacYaml(namespaces: readonly string[], group: string, models: readonly string[] = []): string {
  const names = models.map(endpointTokenSecretName);
  const head = [
    "# mlpipe Kubernetes tasks: apply, read, watch and delete the training Job, the serving Deployments and Services; list and watch",
    '# pods and events; read pod logs and /metrics through the pod proxy; server-side apply the endpoint token Secret',
    `# (${names.length ? `${names.join(', ')} only` : 'every Secret: pass --model to narrow it'}; it is never read).`,
  ].join('\n');
  return rolesYaml(RBAC_NAMES.tasks, namespaces, group, TASK_RULES, names, head);
}

function rolesYaml(name: string, namespaces: readonly string[], group: string, rules: readonly RbacRule[], secretNames: readonly string[], comment: string): string {
  return namespaces.map((ns) => roleYaml(name, ns, group, rules, secretNames, comment).trimEnd()).join('\n---\n') + '\n';
}

function roleYaml(name: string, namespace: string, group: string, rules: readonly RbacRule[], secretNames: readonly string[], comment: string): string {
  const lines = rules.map((r) => {
    const named = r.namedSecret && secretNames.length ? `\n    resourceNames: [${secretNames.join(', ')}]` : '';
    return `  - apiGroups: ["${r.apiGroup ?? ''}"]\n    resources: [${r.resources.join(', ')}]\n    verbs: [${r.verbs.join(', ')}]${named}`;
  });
  return [
    comment,
    'apiVersion: rbac.authorization.k8s.io/v1',
    'kind: Role',
    `metadata: { name: ${name}, namespace: ${namespace} }`,
    'rules:',
    ...lines,
    '---',
    'apiVersion: rbac.authorization.k8s.io/v1',
    'kind: RoleBinding',
    `metadata: { name: ${name}, namespace: ${namespace} }`,
    `roleRef: { apiGroup: rbac.authorization.k8s.io, kind: Role, name: ${name} }`,
    `subjects: [{ apiGroup: rbac.authorization.k8s.io, kind: Group, name: "${group}" }]`,
    '',
  ].join('\n');
}
