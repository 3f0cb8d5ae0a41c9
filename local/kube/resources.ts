/**
 * The resource types the local API server serves (core/v1, apps/v1, batch/v1, and the namespaced RBAC
 * objects of rbac.authorization.k8s.io/v1), their REST names and discovery data, plus the minimal object
 * shapes the store and controllers work with.
 */

export interface ResourceType {
  group: '' | 'apps' | 'batch' | 'events.k8s.io' | typeof RBAC_GROUP;
  version: 'v1';
  plural: string;
  singular: string;
  kind: string;
  namespaced: boolean;
  shortNames: string[];
  /** Subresources served besides the object itself. */
  subresources: string[];
  /** Whether the main resource ignores status writes and bumps metadata.generation on spec changes. */
  hasStatus: boolean;
  /** Fields the fieldSelector accepts besides metadata.name and metadata.namespace. */
  selectableFields: string[];
  /** Name rule: RFC 1123 subdomain (most), RFC 1123 label (namespaces), RFC 1035 label (services), a path segment (RBAC). */
  nameRule: 'subdomain' | 'label' | 'dns1035' | 'path';
}

/** The field selectors kube-apiserver accepts on events (pkg/registry/core/event), plus the events.k8s.io names. */
const EVENT_FIELDS = [
  ...['kind', 'namespace', 'name', 'uid', 'apiVersion', 'resourceVersion', 'fieldPath'].flatMap((f) => [`involvedObject.${f}`, `regarding.${f}`]),
  'reason',
  'reportingComponent',
  'reportingController',
  'source',
  'type',
];

/** The API group of Roles and RoleBindings (and of a RoleBinding's roleRef and Group/User subjects). */
export const RBAC_GROUP = 'rbac.authorization.k8s.io';

/** The API groups served besides core/v1, in discovery order. */
export const API_GROUPS = ['apps', 'batch', 'events.k8s.io', RBAC_GROUP] as const;

const VERBS = ['create', 'delete', 'deletecollection', 'get', 'list', 'patch', 'update', 'watch'];

function type(
  group: ResourceType['group'],
  plural: string,
  kind: string,
  extra: Partial<ResourceType> = {},
): ResourceType {
  return {
    group,
    version: 'v1',
    plural,
    singular: kind.toLowerCase(),
    kind,
    namespaced: true,
    shortNames: [],
    subresources: [],
    hasStatus: false,
    selectableFields: [],
    nameRule: 'subdomain',
    ...extra,
  };
}

export const RESOURCE_TYPES: ResourceType[] = [
  type('', 'namespaces', 'Namespace', {
    namespaced: false,
    shortNames: ['ns'],
    subresources: ['status'],
    selectableFields: ['status.phase'],
    nameRule: 'label',
  }),
  type('', 'serviceaccounts', 'ServiceAccount', { shortNames: ['sa'] }),
  type('', 'configmaps', 'ConfigMap', { shortNames: ['cm'] }),
  type('', 'secrets', 'Secret', { selectableFields: ['type'] }),
  type('', 'pods', 'Pod', {
    shortNames: ['po'],
    subresources: ['status', 'log', 'proxy', 'eviction'],
    hasStatus: true,
    selectableFields: ['status.phase', 'spec.nodeName', 'spec.restartPolicy', 'spec.serviceAccountName', 'status.podIP'],
  }),
  type('', 'services', 'Service', {
    shortNames: ['svc'],
    subresources: ['status', 'proxy'],
    hasStatus: true,
    selectableFields: ['spec.clusterIP', 'spec.type'],
    nameRule: 'dns1035',
  }),
  type('apps', 'deployments', 'Deployment', { shortNames: ['deploy'], subresources: ['status', 'scale'], hasStatus: true }),
  type('apps', 'replicasets', 'ReplicaSet', {
    shortNames: ['rs'],
    subresources: ['status', 'scale'],
    hasStatus: true,
    selectableFields: ['status.replicas'],
  }),
  type('batch', 'jobs', 'Job', { subresources: ['status'], hasStatus: true, selectableFields: ['status.successful'] }),
  // Events are stored once, as core/v1; events.k8s.io/v1 is a read-only view of the same objects.
  type('', 'events', 'Event', { shortNames: ['ev'], selectableFields: EVENT_FIELDS }),
  type('events.k8s.io', 'events', 'Event', { shortNames: ['ev'], selectableFields: EVENT_FIELDS }),
  // Namespaced RBAC only (no ClusterRoles): what a cluster admin applies for a Kubernetes group, and what the
  // authorizer (rbac.ts) reads. Names are path segments, as kube-apiserver's RBAC validation allows.
  type(RBAC_GROUP, 'roles', 'Role', { nameRule: 'path' }),
  type(RBAC_GROUP, 'rolebindings', 'RoleBinding', { nameRule: 'path' }),
];

export function apiVersionOf(type: ResourceType): string {
  return type.group ? `${type.group}/${type.version}` : type.version;
}

export function findType(group: string, version: string, plural: string): ResourceType | undefined {
  return RESOURCE_TYPES.find((t) => t.group === group && t.version === version && t.plural === plural);
}

export function typeOf(plural: string): ResourceType {
  const found = RESOURCE_TYPES.find((t) => t.plural === plural);
  if (!found) throw new Error(`unknown resource type ${plural}`);
  return found;
}

/** `/api/v1` or `/apis/<group>/v1` APIResourceList, which KubernetesObjectApi reads to build paths. */
export function apiResourceList(group: string): Record<string, unknown> {
  const resources = RESOURCE_TYPES.filter((t) => t.group === group).flatMap((t) => [
    {
      name: t.plural,
      singularName: t.singular,
      namespaced: t.namespaced,
      kind: t.kind,
      verbs: VERBS,
      ...(t.shortNames.length ? { shortNames: t.shortNames } : {}),
    },
    ...t.subresources.map((sub) =>
      sub === 'eviction'
        ? { name: `${t.plural}/${sub}`, singularName: '', namespaced: t.namespaced, group: 'policy', version: 'v1', kind: 'Eviction', verbs: ['create'] }
        : {
            name: `${t.plural}/${sub}`,
            singularName: '',
            namespaced: t.namespaced,
            kind: sub === 'scale' ? 'Scale' : t.kind,
            verbs: sub === 'log' || sub === 'proxy' ? ['get'] : ['get', 'patch', 'update'],
          },
    ),
  ]);
  return { kind: 'APIResourceList', apiVersion: 'v1', groupVersion: group ? `${group}/v1` : 'v1', resources };
}

export function apiGroup(group: string): Record<string, unknown> {
  const version = { groupVersion: `${group}/v1`, version: 'v1' };
  return { kind: 'APIGroup', apiVersion: 'v1', name: group, versions: [version], preferredVersion: version };
}

export function apiGroupList(): Record<string, unknown> {
  return {
    kind: 'APIGroupList',
    apiVersion: 'v1',
    groups: API_GROUPS.map((g) => {
      const { kind: _k, apiVersion: _a, ...rest } = apiGroup(g);
      return rest;
    }),
  };
}

// ---- Object shapes --------------------------------------------------------------------------------

export interface OwnerReference {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
  controller?: boolean;
  blockOwnerDeletion?: boolean;
}

export interface ObjectMeta {
  name: string;
  generateName?: string;
  namespace?: string;
  uid: string;
  resourceVersion: string;
  generation?: number;
  creationTimestamp: string;
  deletionTimestamp?: string;
  deletionGracePeriodSeconds?: number;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  ownerReferences?: OwnerReference[];
  finalizers?: string[];
  managedFields?: unknown[];
}

/** Any stored object. Specific shapes below narrow spec/status for the controllers. */
export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: ObjectMeta;
  spec?: unknown;
  status?: unknown;
  [field: string]: unknown;
}

export interface Condition {
  type: string;
  status: 'True' | 'False' | 'Unknown';
  reason?: string;
  message?: string;
  lastTransitionTime?: string;
  lastUpdateTime?: string;
  lastProbeTime?: string | null;
}

export interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: unknown;
}

export interface ContainerPort {
  containerPort: number;
  name?: string;
  protocol?: string;
}

export interface Probe {
  httpGet?: { path?: string; port: number | string; scheme?: string };
  tcpSocket?: { port: number | string };
  initialDelaySeconds?: number;
  periodSeconds?: number;
  failureThreshold?: number;
  successThreshold?: number;
  timeoutSeconds?: number;
}

export interface Container {
  name: string;
  image: string;
  command?: string[];
  args?: string[];
  env?: EnvVar[];
  ports?: ContainerPort[];
  readinessProbe?: Probe;
  livenessProbe?: Probe;
  workingDir?: string;
  volumeMounts?: Array<{ name: string; mountPath: string; readOnly?: boolean; subPath?: string }>;
}

/** A pod volume; the local kubelet materializes `secret` volumes (others are left to the process). */
export interface Volume {
  name: string;
  secret?: { secretName?: string; optional?: boolean; items?: Array<{ key: string; path: string }> };
  emptyDir?: unknown;
}

export interface Toleration {
  key?: string;
  operator?: string;
  value?: string;
  effect?: string;
  tolerationSeconds?: number;
}

export interface PodSpec {
  containers: Container[];
  restartPolicy?: 'Always' | 'OnFailure' | 'Never';
  serviceAccountName?: string;
  serviceAccount?: string;
  nodeName?: string;
  nodeSelector?: Record<string, string>;
  tolerations?: Toleration[];
  priorityClassName?: string;
  terminationGracePeriodSeconds?: number;
  volumes?: Volume[];
}

/** batch/v1 PodFailurePolicy. */
export interface PodFailurePolicy {
  rules: Array<{
    action: string;
    onExitCodes?: { containerName?: string; operator: string; values: number[] };
    onPodConditions?: Array<{ type: string; status?: string }>;
  }>;
}

export interface ContainerState {
  waiting?: { reason: string; message?: string };
  running?: { startedAt: string };
  terminated?: { exitCode: number; signal?: number; reason: string; startedAt?: string; finishedAt: string; message?: string };
}

export interface ContainerStatus {
  name: string;
  image: string;
  imageID: string;
  ready: boolean;
  started: boolean;
  restartCount: number;
  state: ContainerState;
  lastState: ContainerState;
  containerID?: string;
}

export interface PodStatus {
  phase?: 'Pending' | 'Running' | 'Succeeded' | 'Failed' | 'Unknown';
  conditions?: Condition[];
  containerStatuses?: ContainerStatus[];
  hostIP?: string;
  podIP?: string;
  podIPs?: { ip: string }[];
  startTime?: string;
  reason?: string;
  message?: string;
}

export interface Pod extends KubeObject {
  spec: PodSpec;
  status?: PodStatus;
}

export interface PodTemplate {
  metadata?: { labels?: Record<string, string>; annotations?: Record<string, string> };
  spec: PodSpec;
}

export interface LabelSelector {
  matchLabels?: Record<string, string>;
  matchExpressions?: { key: string; operator: string; values?: string[] }[];
}

export interface Job extends KubeObject {
  spec: {
    template: PodTemplate;
    backoffLimit?: number;
    completions?: number;
    parallelism?: number;
    activeDeadlineSeconds?: number;
    ttlSecondsAfterFinished?: number;
    podFailurePolicy?: PodFailurePolicy;
    selector?: LabelSelector;
    manualSelector?: boolean;
    suspend?: boolean;
  };
  status?: {
    active?: number;
    succeeded?: number;
    failed?: number;
    ready?: number;
    terminating?: number;
    startTime?: string;
    completionTime?: string;
    conditions?: Condition[];
  };
}

export interface ReplicaSet extends KubeObject {
  spec: { replicas?: number; selector: LabelSelector; template: PodTemplate; minReadySeconds?: number };
  status?: {
    replicas: number;
    readyReplicas?: number;
    availableReplicas?: number;
    fullyLabeledReplicas?: number;
    observedGeneration?: number;
    conditions?: Condition[];
  };
}

export interface Deployment extends KubeObject {
  spec: {
    replicas?: number;
    selector: LabelSelector;
    template: PodTemplate;
    strategy?: { type?: string; rollingUpdate?: { maxSurge?: number | string; maxUnavailable?: number | string } };
    progressDeadlineSeconds?: number;
    revisionHistoryLimit?: number;
    minReadySeconds?: number;
    paused?: boolean;
  };
  status?: {
    observedGeneration?: number;
    replicas?: number;
    updatedReplicas?: number;
    readyReplicas?: number;
    availableReplicas?: number;
    unavailableReplicas?: number;
    conditions?: Condition[];
  };
}

export interface ServicePort {
  name?: string;
  port: number;
  targetPort?: number | string;
  protocol?: string;
  nodePort?: number;
}

export interface Service extends KubeObject {
  spec: {
    type?: 'ClusterIP' | 'NodePort' | 'LoadBalancer' | 'ExternalName';
    selector?: Record<string, string>;
    ports?: ServicePort[];
    clusterIP?: string;
    clusterIPs?: string[];
  };
  status?: { loadBalancer?: { ingress?: { ip?: string; hostname?: string; ports?: { port: number; protocol: string }[] }[] } };
}
