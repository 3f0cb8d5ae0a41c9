/**
 * The serving monitor's least-privilege Kubernetes access, for a stack deployed with
 * `monitorKubernetesGroup`: its EKS access entry then carries that Kubernetes group and NO access policy
 * (EKS's view policy lacks `pods/proxy`, and the edit policy it had otherwise reads Secrets, the endpoint
 * token among them). The cluster operator binds the group to this namespaced Role: list pods, get
 * pods/proxy in production, nothing else. The stack creates no Kubernetes objects (it runs against an
 * existing cluster and asks for no cluster-admin), so `mlpipe monitor-rbac` prints these for
 * `kubectl apply -f -`. Pure: the CLI and the CDK app both import it.
 */

/** What the monitor does in production (functions/shared/serving-monitor-scrape.ts): list the model's pods, read each one's /metrics through the pod proxy. */
export const MONITOR_RULES: ReadonlyArray<{ readonly resources: readonly string[]; readonly verbs: readonly string[] }> = [
  { resources: ['pods'], verbs: ['list'] },
  { resources: ['pods/proxy'], verbs: ['get'] },
];

/** A group name EKS accepts in an access entry: not `system:…`, which is Kubernetes' own. */
export const MONITOR_GROUP = /^(?!system:)[A-Za-z0-9][A-Za-z0-9:._-]{0,62}$/;

/** The Role and RoleBinding (YAML, two documents) that give `group` exactly MONITOR_RULES in `namespace`. */
export function monitorRbacYaml(namespace: string, group: string): string {
  const rules = MONITOR_RULES.map((r) => `  - apiGroups: [""]\n    resources: [${r.resources.join(', ')}]\n    verbs: [${r.verbs.join(', ')}]`).join('\n');
  return [
    '# mlpipe serving monitor: list pods and read their /metrics through the pod proxy, in production only.',
    'apiVersion: rbac.authorization.k8s.io/v1',
    'kind: Role',
    `metadata: { name: mlpipe-monitor, namespace: ${namespace} }`,
    'rules:',
    rules,
    '---',
    'apiVersion: rbac.authorization.k8s.io/v1',
    'kind: RoleBinding',
    `metadata: { name: mlpipe-monitor, namespace: ${namespace} }`,
    'roleRef: { apiGroup: rbac.authorization.k8s.io, kind: Role, name: mlpipe-monitor }',
    `subjects: [{ apiGroup: rbac.authorization.k8s.io, kind: Group, name: "${group}" }]`,
    '',
  ].join('\n');
}
