/**
 * Defaulting and validation of objects, as the real API server's registry strategies do them for the
 * fields the pipeline and its tests touch: name rules, required fields, pod template checks (placement:
 * tolerations, nodeSelector, priorityClassName, extended resources), a Job's podFailurePolicy, workload
 * selectors, service ports, Role rules and RoleBinding references, and immutable fields on update. Errors become 422 Invalid with causes.
 */
import { randomInt } from 'node:crypto';
import { RBAC_GROUP, type Container, type Deployment, type Job, type KubeObject, type Pod, type PodFailurePolicy, type PodSpec, type PodTemplate, type ReplicaSet, type ResourceType, type Service, type Toleration } from './resources';
import { matchesLabelSelector } from './selectors';
import { canonical } from './canonical';
import { invalidValue, required, type StatusCause } from './status';

const SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS1035 = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;

export function validateName(rule: ResourceType['nameRule'], name: string, field = 'metadata.name'): StatusCause[] {
  if (rule === 'path') {
    // apimachinery's IsValidPathSegmentName: RBAC names only need to be one URL path segment.
    if (name === '.' || name === '..') return [invalidValue(field, name, `may not be '${name}'`)];
    return ['/', '%'].filter((c) => name.includes(c)).map((c) => invalidValue(field, name, `may not contain '${c}'`));
  }
  if (rule === 'subdomain') {
    if (name.length > 253 || !SUBDOMAIN.test(name)) {
      return [invalidValue(field, name, "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')")];
    }
  } else if (rule === 'label') {
    if (name.length > 63 || !LABEL.test(name)) {
      return [invalidValue(field, name, "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')")];
    }
  } else if (name.length > 63 || !DNS1035.test(name)) {
    return [invalidValue(field, name, "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')")];
  }
  return [];
}

const NAME_PART = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;
const NAME_PART_MSG = "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
const SUBDOMAIN_MSG = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";

/** Why `key` is not a qualified name (`[prefix/]name`), in apimachinery's IsQualifiedName wording. */
export function qualifiedNameProblems(key: string): string[] {
  const parts = key.split('/');
  let name: string;
  const problems: string[] = [];
  if (parts.length === 1) name = parts[0]!;
  else if (parts.length === 2) {
    const prefix = parts[0]!;
    name = parts[1]!;
    if (!prefix) problems.push('prefix part must be non-empty');
    else {
      if (prefix.length > 253) problems.push('prefix part must be no more than 253 characters');
      if (!SUBDOMAIN.test(prefix)) problems.push(`prefix part ${SUBDOMAIN_MSG}`);
    }
  } else {
    return [`a qualified name ${NAME_PART_MSG} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')`];
  }
  if (!name) problems.push('name part must be non-empty');
  else if (name.length > 63) problems.push('name part must be no more than 63 characters');
  if (name && !NAME_PART.test(name)) problems.push(`name part ${NAME_PART_MSG}`);
  return problems;
}

function validateLabels(labels: Record<string, string> | undefined, field: string): StatusCause[] {
  const causes: StatusCause[] = [];
  for (const [k, v] of Object.entries(labels ?? {})) {
    for (const problem of qualifiedNameProblems(k)) causes.push(invalidValue(field, k, problem));
    if (typeof v !== 'string' || v.length > 63 || !LABEL_VALUE.test(v)) {
      causes.push(invalidValue(`${field}`, v, v.length > 63 ? 'must be no more than 63 characters' : "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"));
    }
  }
  return causes;
}

/** Annotation keys are qualified names checked lower-cased (transcript 05); all of them at most 256 KiB. */
function validateAnnotations(annotations: Record<string, string> | undefined, field: string): StatusCause[] {
  const causes: StatusCause[] = [];
  let size = 0;
  for (const [k, v] of Object.entries(annotations ?? {})) {
    for (const problem of qualifiedNameProblems(k.toLowerCase())) causes.push(invalidValue(field, k, problem));
    size += Buffer.byteLength(k) + Buffer.byteLength(String(v));
  }
  if (size > 262144) causes.push({ reason: 'FieldValueTooLong', message: 'Too long: may not be more than 262144 bytes', field });
  return causes;
}

// ---- Defaults ---------------------------------------------------------------------------------------

function defaultContainer(c: Container & Record<string, unknown>): void {
  if (c.imagePullPolicy === undefined && typeof c.image === 'string') {
    const tag = /:([^/:@]+)$/.exec(c.image.split('@')[0] ?? '')?.[1];
    c.imagePullPolicy = c.image.includes('@') || (tag && tag !== 'latest') ? 'IfNotPresent' : 'Always';
  }
  c.terminationMessagePath ??= '/dev/termination-log';
  c.terminationMessagePolicy ??= 'File';
  c.resources ??= {};
  for (const p of c.ports ?? []) p.protocol ??= 'TCP';
  for (const probe of [c.readinessProbe, c.livenessProbe]) {
    if (!probe) continue;
    probe.periodSeconds ??= 10;
    probe.timeoutSeconds ??= 1;
    probe.successThreshold ??= 1;
    probe.failureThreshold ??= 3;
    if (probe.httpGet) probe.httpGet.scheme ??= 'HTTP';
  }
}

function defaultPodSpec(spec: PodSpec & Record<string, unknown>): void {
  if (!spec || typeof spec !== 'object') return;
  spec.restartPolicy ??= 'Always';
  spec.terminationGracePeriodSeconds ??= 30;
  spec.dnsPolicy ??= 'ClusterFirst';
  spec.schedulerName ??= 'default-scheduler';
  spec.securityContext ??= {};
  // A template keeps what it was given; the ServiceAccount admission plugin defaults it on pods only.
  if (spec.serviceAccountName !== undefined) spec.serviceAccount = spec.serviceAccountName;
  for (const c of Array.isArray(spec.containers) ? spec.containers : []) defaultContainer(c as Container & Record<string, unknown>);
}

function defaultTemplate(t: PodTemplate | undefined): void {
  if (t && typeof t === 'object') {
    t.metadata ??= {};
    (t.metadata as Record<string, unknown>).creationTimestamp ??= null;
    if (t.spec) defaultPodSpec(t.spec as PodSpec & Record<string, unknown>);
  }
}

let nextClusterIp = 1;
let nextNodePort = 30000 + randomInt(0, 2000);

/** Fills in what the real API server's defaulting fills in. `existing` carries over allocated fields. */
export function applyDefaults(type: ResourceType, obj: KubeObject, existing?: KubeObject): void {
  switch (type.plural) {
    case 'namespaces': {
      obj.metadata.labels = { ...obj.metadata.labels, 'kubernetes.io/metadata.name': obj.metadata.name };
      obj.spec = { finalizers: ['kubernetes'], ...(obj.spec as object) };
      obj.status = { phase: 'Active' };
      break;
    }
    case 'secrets':
      obj.type ??= 'Opaque';
      break;
    case 'rolebindings': {
      // rbac/v1's SetDefaults_RoleBinding and SetDefaults_Subject: an omitted apiGroup is RBAC's for the
      // roleRef and for User and Group subjects (kubectl users often leave it out; the real server accepts that).
      const ref = obj.roleRef as { apiGroup?: string } | undefined;
      if (ref && typeof ref === 'object' && !ref.apiGroup) ref.apiGroup = RBAC_GROUP;
      for (const subject of Array.isArray(obj.subjects) ? (obj.subjects as Array<{ kind?: string; apiGroup?: string }>) : []) {
        if (subject && typeof subject === 'object' && !subject.apiGroup && (subject.kind === 'User' || subject.kind === 'Group')) subject.apiGroup = RBAC_GROUP;
      }
      break;
    }
    case 'pods': {
      const pod = obj as Pod;
      if (pod.spec && typeof pod.spec === 'object' && pod.spec.serviceAccountName === undefined) pod.spec.serviceAccountName = pod.spec.serviceAccount ?? 'default';
      defaultPodSpec(pod.spec as PodSpec & Record<string, unknown>);
      if (!existing) {
        admitPod(pod);
        pod.status = { phase: 'Pending', qosClass: qosClass(pod.spec) } as Pod['status'];
      }
      break;
    }
    case 'replicasets': {
      const rs = obj as ReplicaSet;
      if (rs.spec && typeof rs.spec === 'object') {
        rs.spec.replicas ??= 1;
        defaultTemplate(rs.spec.template);
      }
      break;
    }
    case 'deployments': {
      const d = obj as Deployment;
      if (d.spec && typeof d.spec === 'object') {
        d.spec.replicas ??= 1;
        d.spec.strategy ??= { type: 'RollingUpdate' };
        if ((d.spec.strategy.type ?? 'RollingUpdate') === 'RollingUpdate') {
          d.spec.strategy.type = 'RollingUpdate';
          d.spec.strategy.rollingUpdate = { maxSurge: '25%', maxUnavailable: '25%', ...d.spec.strategy.rollingUpdate };
        }
        d.spec.revisionHistoryLimit ??= 10;
        d.spec.progressDeadlineSeconds ??= 600;
        defaultTemplate(d.spec.template);
      }
      break;
    }
    case 'jobs': {
      const job = obj as Job;
      if (job.spec && typeof job.spec === 'object') {
        job.spec.backoffLimit ??= 6;
        job.spec.completions ??= 1;
        job.spec.parallelism ??= 1;
        job.spec.suspend ??= false;
        job.spec.manualSelector ??= false;
        (job.spec as Record<string, unknown>).completionMode ??= 'NonIndexed';
        // With a pod failure policy a pod is replaced only once it has failed (its exit code and conditions known).
        const failurePolicy = job.spec.podFailurePolicy;
        (job.spec as Record<string, unknown>).podReplacementPolicy ??= failurePolicy ? 'Failed' : 'TerminatingOrFailed';
        for (const rule of Array.isArray(failurePolicy?.rules) ? failurePolicy.rules : []) {
          for (const pattern of Array.isArray(rule?.onPodConditions) ? rule.onPodConditions : []) if (pattern && typeof pattern === 'object') pattern.status ??= 'True';
        }
        // Only the pod template's own fields are defaulted: a Job has no default restartPolicy that passes.
        if (job.spec.template?.spec) {
          const hadPolicy = job.spec.template.spec.restartPolicy;
          defaultTemplate(job.spec.template);
          if (hadPolicy === undefined) delete job.spec.template.spec.restartPolicy;
        }
        const uid = obj.metadata.uid;
        if (!job.spec.manualSelector && job.spec.template) {
          job.spec.selector = { matchLabels: { 'batch.kubernetes.io/controller-uid': uid } };
          job.spec.template.metadata = {
            ...job.spec.template.metadata,
            labels: {
              ...job.spec.template.metadata?.labels,
              'batch.kubernetes.io/controller-uid': uid,
              'batch.kubernetes.io/job-name': obj.metadata.name,
              'controller-uid': uid,
              'job-name': obj.metadata.name,
            },
          };
        }
      }
      break;
    }
    case 'services': {
      const svc = obj as Service;
      if (!svc.spec || typeof svc.spec !== 'object') break;
      const old = existing as Service | undefined;
      svc.spec.type ??= 'ClusterIP';
      (svc.spec as Record<string, unknown>).sessionAffinity ??= 'None';
      if (svc.spec.type !== 'ExternalName') {
        svc.spec.clusterIP ??= old?.spec.clusterIP ?? `10.96.${Math.floor(nextClusterIp / 250)}.${(nextClusterIp++ % 250) + 2}`;
        svc.spec.clusterIPs = [svc.spec.clusterIP];
        (svc.spec as Record<string, unknown>).ipFamilies ??= ['IPv4'];
        (svc.spec as Record<string, unknown>).ipFamilyPolicy ??= 'SingleStack';
        (svc.spec as Record<string, unknown>).internalTrafficPolicy ??= 'Cluster';
      }
      const needsNodePort = svc.spec.type === 'LoadBalancer' || svc.spec.type === 'NodePort';
      if (needsNodePort) (svc.spec as Record<string, unknown>).externalTrafficPolicy ??= 'Cluster';
      if (svc.spec.type === 'LoadBalancer') (svc.spec as Record<string, unknown>).allocateLoadBalancerNodePorts ??= true;
      for (const p of Array.isArray(svc.spec.ports) ? svc.spec.ports : []) {
        p.protocol ??= 'TCP';
        p.targetPort ??= p.port;
        if (needsNodePort && p.nodePort === undefined) {
          p.nodePort = old?.spec.ports?.find((o) => o.port === p.port)?.nodePort ?? nextNodePort++;
        }
        if (!needsNodePort) delete p.nodePort;
      }
      if (!existing) svc.status = { loadBalancer: {} };
      break;
    }
  }
}

/**
 * A pod's QoS class as the API server computes it: Guaranteed when every container has cpu and memory
 * limits equal to its requests, BestEffort when none has any, Burstable otherwise.
 */
export function qosClass(spec: PodSpec): 'Guaranteed' | 'Burstable' | 'BestEffort' {
  const resources = (spec.containers ?? []).map((c) => (c as Container & { resources?: { requests?: Record<string, string>; limits?: Record<string, string> } }).resources ?? {});
  if (resources.every((r) => !Object.keys(r.requests ?? {}).length && !Object.keys(r.limits ?? {}).length)) return 'BestEffort';
  const guaranteed = resources.every((r) => ['cpu', 'memory'].every((k) => r.limits?.[k] !== undefined && (r.requests?.[k] ?? r.limits[k]) === r.limits[k]));
  return guaranteed ? 'Guaranteed' : 'Burstable';
}

/** What admission adds to every pod (not to templates): DefaultTolerationSeconds, Priority, pod defaults. */
function admitPod(pod: Pod): void {
  const spec = pod.spec as PodSpec & Record<string, unknown>;
  if (!spec || typeof spec !== 'object') return;
  const tolerations = (spec.tolerations as Array<Record<string, unknown>> | undefined) ?? [];
  for (const key of ['node.kubernetes.io/not-ready', 'node.kubernetes.io/unreachable']) {
    if (!tolerations.some((t) => t.key === key)) tolerations.push({ key, operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 300 });
  }
  spec.tolerations = tolerations;
  // A limit without a request: the request defaults to the limit (extended resources such as GPUs included).
  for (const c of Array.isArray(spec.containers) ? spec.containers : []) {
    const r = (c as Container & { resources?: { requests?: Record<string, string>; limits?: Record<string, string> } }).resources;
    if (r?.limits && Object.keys(r.limits).length) r.requests = { ...r.limits, ...r.requests };
  }
  spec.priority ??= 0;
  spec.enableServiceLinks ??= true;
  spec.preemptionPolicy ??= 'PreemptLowerPriority';
}

/** Warning headers kube-apiserver adds to a write that stores `obj` (transcripts 04, 06). */
export function writeWarnings(type: ResourceType, obj: KubeObject): string[] {
  const warnings: string[] = [];
  const podSpecs: Array<[string, PodSpec | undefined]> =
    type.plural === 'pods' ? [['spec', obj.spec as PodSpec]] : ['deployments', 'replicasets', 'jobs'].includes(type.plural) ? [['spec.template.spec', (obj.spec as { template?: PodTemplate } | undefined)?.template?.spec]] : [];
  for (const [prefix, spec] of podSpecs) {
    (spec?.containers ?? []).forEach((c, i) => {
      const memory = (c as Container & { resources?: { requests?: Record<string, string> } }).resources?.requests?.memory;
      if (typeof memory === 'string' && /^[0-9.]+m$/.test(memory)) {
        warnings.push(`${prefix}.containers[${i}].resources.requests[memory]: fractional byte value "${memory}" is invalid, must be an integer`);
      }
    });
  }
  if (['deployments', 'replicasets'].includes(type.plural) && obj.metadata.name?.includes('.')) {
    warnings.push('metadata.name: this is used in Pod names and hostnames, which can result in surprising behavior; a DNS label is recommended: [must not contain dots]');
  }
  return warnings;
}

// ---- Validation -------------------------------------------------------------------------------------

function validateContainers(containers: unknown, field: string): StatusCause[] {
  if (!Array.isArray(containers) || containers.length === 0) return [required(field)];
  const causes: StatusCause[] = [];
  const names = new Set<string>();
  containers.forEach((raw: unknown, i) => {
    const c = (raw ?? {}) as Partial<Container>;
    const f = `${field}[${i}]`;
    if (!c.name) causes.push(required(`${f}.name`));
    else {
      causes.push(...validateName('label', c.name, `${f}.name`));
      if (names.has(c.name)) causes.push({ reason: 'FieldValueDuplicate', message: `Duplicate value: "${c.name}"`, field: `${f}.name` });
      names.add(c.name);
    }
    if (!c.image || typeof c.image !== 'string' || c.image.trim() === '') causes.push(required(`${f}.image`));
    (c.ports ?? []).forEach((p, j) => {
      if (!Number.isInteger(p.containerPort) || p.containerPort < 1 || p.containerPort > 65535) {
        causes.push(invalidValue(`${f}.ports[${j}].containerPort`, p.containerPort, 'must be between 1 and 65535, inclusive'));
      }
    });
    (c.env ?? []).forEach((e, j) => {
      if (!e.name) causes.push(required(`${f}.env[${j}].name`));
    });
  });
  return causes;
}

// In validateTaintEffect's order (field.NotSupported lists them as given, unsorted).
const TAINT_EFFECTS = ['NoSchedule', 'PreferNoSchedule', 'NoExecute'];

/** pod.spec.tolerations as ValidateTolerations (v1.32) checks them. */
function validateTolerations(tolerations: unknown, field: string): StatusCause[] {
  if (tolerations === undefined) return [];
  if (!Array.isArray(tolerations)) return [invalidValue(field, tolerations, 'must be a list')];
  const causes: StatusCause[] = [];
  tolerations.forEach((raw: unknown, i) => {
    const t = (raw ?? {}) as Toleration;
    const f = `${field}[${i}]`;
    const key = t.key ?? '';
    const operator = t.operator ?? '';
    const value = t.value ?? '';
    if (key !== '') for (const p of qualifiedNameProblems(key)) causes.push(invalidValue(`${f}.key`, key, p));
    if (key === '' && operator !== 'Exists') causes.push(invalidValue(`${f}.operator`, operator, 'operator must be Exists when `key` is empty, which means "match all values and all keys"'));
    if (t.tolerationSeconds !== undefined && t.effect !== 'NoExecute') causes.push(invalidValue(`${f}.effect`, t.effect ?? '', "effect must be 'NoExecute' when `tolerationSeconds` is set"));
    if (operator === '' || operator === 'Equal') {
      const problem = labelValueProblem(value);
      if (problem) causes.push(invalidValue(`${f}.operator`, value, problem));
    } else if (operator === 'Exists') {
      if (value !== '') causes.push(invalidValue(`${f}.operator`, t, "value must be empty when `operator` is 'Exists'"));
    } else {
      causes.push(notSupported(`${f}.operator`, operator, ['Equal', 'Exists']));
    }
    if ((t.effect ?? '') !== '' && !TAINT_EFFECTS.includes(t.effect!)) causes.push(notSupported(`${f}.effect`, t.effect!, TAINT_EFFECTS));
  });
  return causes;
}

function labelValueProblem(v: string): string | undefined {
  if (v.length > 63) return 'must be no more than 63 characters';
  return LABEL_VALUE.test(v) ? undefined : "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";
}

function notSupported(field: string, value: string, supported: string[]): StatusCause {
  return { reason: 'FieldValueNotSupported', message: `Unsupported value: "${value}": supported values: ${supported.map((v) => `"${v}"`).join(', ')}`, field };
}

/**
 * Extended resources (a domain-prefixed name outside kubernetes.io, such as nvidia.com/gpu) are whole
 * numbers and cannot be overcommitted: a request needs an equal limit (ValidateResourceRequirements).
 */
function validateExtendedResources(c: Container & { resources?: { requests?: Record<string, string>; limits?: Record<string, string> } }, field: string): StatusCause[] {
  const causes: StatusCause[] = [];
  const { requests = {}, limits = {} } = c.resources ?? {};
  for (const name of new Set([...Object.keys(requests), ...Object.keys(limits)])) {
    if (!name.includes('/') || name.split('/')[0]!.endsWith('kubernetes.io')) continue;
    for (const [kind, value] of [['requests', requests[name]], ['limits', limits[name]]] as const) {
      if (value !== undefined && !/^[0-9]+$/.test(String(value))) causes.push(invalidValue(`${field}.resources.${kind}[${name}]`, value, 'must be an integer'));
    }
    if (requests[name] !== undefined && limits[name] === undefined) causes.push({ reason: 'FieldValueRequired', message: 'Required value: Limit must be set for non overcommitable resources', field: `${field}.resources.limits` });
    else if (requests[name] !== undefined && String(requests[name]) !== String(limits[name])) {
      causes.push(invalidValue(`${field}.resources.requests`, requests[name], `must be equal to ${name} limit of ${limits[name]}`));
    }
  }
  return causes;
}

function validatePodSpec(spec: unknown, field: string): StatusCause[] {
  if (!spec || typeof spec !== 'object') return [required(field)];
  const s = spec as PodSpec;
  const causes = validateContainers(s.containers, `${field}.containers`);
  (Array.isArray(s.containers) ? s.containers : []).forEach((c, i) => causes.push(...validateExtendedResources(c ?? {}, `${field}.containers[${i}]`)));
  causes.push(...validateLabels(s.nodeSelector, `${field}.nodeSelector`));
  causes.push(...validateTolerations(s.tolerations, `${field}.tolerations`));
  if (s.priorityClassName !== undefined && s.priorityClassName !== '') causes.push(...validateName('subdomain', s.priorityClassName, `${field}.priorityClassName`));
  if (s.restartPolicy && !['Always', 'OnFailure', 'Never'].includes(s.restartPolicy)) {
    causes.push({ reason: 'FieldValueNotSupported', message: `Unsupported value: "${s.restartPolicy}": supported values: "Always", "OnFailure", "Never"`, field: `${field}.restartPolicy` });
  }
  return causes;
}

const FAILURE_ACTIONS = ['Count', 'FailIndex', 'FailJob', 'Ignore'];

/** spec.podFailurePolicy as kube-apiserver v1.32 validates it (pkg/apis/batch/validation). */
function validatePodFailurePolicy(policy: PodFailurePolicy, template: PodSpec | undefined): StatusCause[] {
  const causes: StatusCause[] = [];
  const rules = Array.isArray(policy.rules) ? policy.rules : [];
  const field = 'spec.podFailurePolicy.rules';
  if (rules.length > 20) causes.push({ reason: 'FieldValueTooMany', message: `Too many: ${rules.length}: must have at most 20 items`, field });
  const containers = new Set((template?.containers ?? []).map((c) => c.name));
  rules.forEach((rule, i) => {
    const f = `${field}[${i}]`;
    if (!rule.action) causes.push({ reason: 'FieldValueRequired', message: `Required value: valid values: [${FAILURE_ACTIONS.map((a) => `"${a}"`).join(' ')}]`, field: `${f}.action` });
    else if (rule.action === 'FailIndex') causes.push(invalidValue(`${f}.action`, rule.action, 'requires the backoffLimitPerIndex to be set'));
    else if (!FAILURE_ACTIONS.includes(rule.action)) causes.push(notSupported(`${f}.action`, rule.action, FAILURE_ACTIONS));
    const onExit = rule.onExitCodes;
    const onConditions = rule.onPodConditions ?? [];
    if (onExit) {
      const ef = `${f}.onExitCodes`;
      if (!onExit.operator) causes.push({ reason: 'FieldValueRequired', message: 'Required value: valid values: ["In" "NotIn"]', field: `${ef}.operator` });
      else if (!['In', 'NotIn'].includes(onExit.operator)) causes.push(notSupported(`${ef}.operator`, onExit.operator, ['In', 'NotIn']));
      if (onExit.containerName !== undefined && !containers.has(onExit.containerName)) {
        causes.push(invalidValue(`${ef}.containerName`, onExit.containerName, 'must be one of the container or initContainer names in the pod template'));
      }
      const values = Array.isArray(onExit.values) ? onExit.values : [];
      if (values.length === 0) causes.push(invalidValue(`${ef}.values`, values, 'at least one value is required'));
      else if (values.length > 255) causes.push({ reason: 'FieldValueTooMany', message: `Too many: ${values.length}: must have at most 255 items`, field: `${ef}.values` });
      const seen = new Set<number>();
      values.forEach((v, j) => {
        if (onExit.operator === 'In' && v === 0) causes.push(invalidValue(`${ef}.values[${j}]`, v, 'must not be 0 for the In operator'));
        if (seen.has(v)) causes.push({ reason: 'FieldValueDuplicate', message: `Duplicate value: ${v}`, field: `${ef}.values[${j}]` });
        seen.add(v);
      });
      if (values.some((v, j) => j > 0 && values[j - 1]! > v)) causes.push(invalidValue(`${ef}.values`, values, 'must be ordered'));
    }
    onConditions.forEach((pattern, j) => {
      const pf = `${f}.onPodConditions[${j}]`;
      for (const p of qualifiedNameProblems(pattern.type ?? '')) causes.push(invalidValue(`${pf}.type`, pattern.type ?? '', p));
      if (!['True', 'False', 'Unknown'].includes(pattern.status ?? '')) causes.push(notSupported(`${pf}.status`, pattern.status ?? '', ['False', 'True', 'Unknown']));
    });
    if (onExit && onConditions.length) causes.push({ reason: 'FieldValueInvalid', message: 'Invalid value: "null": specifying both OnExitCodes and OnPodConditions is not supported', field: f });
    if (!onExit && !onConditions.length) causes.push({ reason: 'FieldValueInvalid', message: 'Invalid value: "null": specifying one of OnExitCodes and OnPodConditions is required', field: f });
  });
  return causes;
}

function validateWorkloadSelector(spec: Deployment['spec'] | ReplicaSet['spec']): StatusCause[] {
  const causes: StatusCause[] = [];
  const selector = spec.selector;
  if (!selector || (!Object.keys(selector.matchLabels ?? {}).length && !(selector.matchExpressions ?? []).length)) {
    causes.push(required('spec.selector'));
    return causes;
  }
  const labels = spec.template?.metadata?.labels;
  if (!matchesLabelSelector(labels, selector)) {
    causes.push(invalidValue('spec.template.metadata.labels', labels ?? {}, '`selector` does not match template `labels`'));
  }
  return causes;
}

/** Field-level validation of a complete (defaulted) object. */
export function validateObject(type: ResourceType, obj: KubeObject): StatusCause[] {
  const causes: StatusCause[] = [];
  if (!obj.metadata.name) causes.push(required('metadata.name'));
  else causes.push(...validateName(type.nameRule, obj.metadata.name));
  causes.push(...validateLabels(obj.metadata.labels, 'metadata.labels'));
  causes.push(...validateAnnotations(obj.metadata.annotations, 'metadata.annotations'));
  const spec = obj.spec as Record<string, unknown> | undefined;
  switch (type.plural) {
    case 'pods':
      causes.push(...validatePodSpec(spec, 'spec'));
      break;
    case 'deployments':
    case 'replicasets': {
      if (!spec) return [...causes, required('spec')];
      const s = spec as Deployment['spec'];
      causes.push(...validateWorkloadSelector(s));
      if (!s.template) causes.push(required('spec.template'));
      else {
        causes.push(...validateLabels(s.template.metadata?.labels, 'spec.template.metadata.labels'));
        causes.push(...validatePodSpec(s.template.spec, 'spec.template.spec'));
        if (s.template.spec?.restartPolicy && s.template.spec.restartPolicy !== 'Always') {
          causes.push({ reason: 'FieldValueNotSupported', message: `Unsupported value: "${s.template.spec.restartPolicy}": supported values: "Always"`, field: 'spec.template.spec.restartPolicy' });
        }
      }
      if (typeof s.replicas === 'number' && s.replicas < 0) causes.push(invalidValue('spec.replicas', s.replicas, 'must be greater than or equal to 0'));
      break;
    }
    case 'jobs': {
      if (!spec) return [...causes, required('spec')];
      const s = spec as Job['spec'];
      if (!s.template) causes.push(required('spec.template'));
      else {
        causes.push(...validatePodSpec(s.template.spec, 'spec.template.spec'));
        const policy = s.template.spec?.restartPolicy;
        if (!policy) causes.push({ reason: 'FieldValueRequired', message: 'Required value: valid values: "OnFailure", "Never"', field: 'spec.template.spec.restartPolicy' });
        else if (policy !== 'Never' && policy !== 'OnFailure') {
          causes.push({ reason: 'FieldValueNotSupported', message: `Unsupported value: "${policy}": supported values: "OnFailure", "Never"`, field: 'spec.template.spec.restartPolicy' });
        } else if (s.podFailurePolicy && policy !== 'Never') {
          causes.push(invalidValue('spec.template.spec.restartPolicy', policy, 'only "Never" is supported when podFailurePolicy is specified'));
        }
        if (s.podFailurePolicy) causes.push(...validatePodFailurePolicy(s.podFailurePolicy, s.template.spec));
      }
      const replacement = (s as Record<string, unknown>).podReplacementPolicy;
      if (s.podFailurePolicy && replacement !== undefined && replacement !== 'Failed') causes.push(notSupported('spec.podReplacementPolicy', String(replacement), ['Failed']));
      if (typeof s.backoffLimit === 'number' && s.backoffLimit < 0) causes.push(invalidValue('spec.backoffLimit', s.backoffLimit, 'must be greater than or equal to 0'));
      if (s.activeDeadlineSeconds !== undefined && !(s.activeDeadlineSeconds > 0)) causes.push(invalidValue('spec.activeDeadlineSeconds', s.activeDeadlineSeconds, 'must be greater than 0'));
      break;
    }
    case 'roles':
      causes.push(...validateRules(obj.rules));
      break;
    case 'rolebindings':
      causes.push(...validateRoleBinding(obj));
      break;
    case 'services': {
      if (!spec) return [...causes, required('spec')];
      const s = spec as Service['spec'];
      if (s.type && !['ClusterIP', 'NodePort', 'LoadBalancer', 'ExternalName'].includes(s.type)) {
        causes.push({ reason: 'FieldValueNotSupported', message: `Unsupported value: "${s.type}": supported values: "ClusterIP", "ExternalName", "LoadBalancer", "NodePort"`, field: 'spec.type' });
      }
      const ports = s.ports ?? [];
      if (s.type !== 'ExternalName' && s.clusterIP !== 'None' && ports.length === 0) causes.push(required('spec.ports'));
      ports.forEach((p, i) => {
        if (!Number.isInteger(p.port) || p.port < 1 || p.port > 65535) causes.push(invalidValue(`spec.ports[${i}].port`, p.port, 'must be between 1 and 65535, inclusive'));
        if (ports.length > 1 && !p.name) causes.push(required(`spec.ports[${i}].name`));
      });
      break;
    }
  }
  return causes;
}

/** A Role's rules as pkg/apis/rbac/validation checks them (resource rules only: a Role has no nonResourceURLs). */
function validateRules(rules: unknown): StatusCause[] {
  if (rules === undefined || rules === null) return [];
  if (!Array.isArray(rules)) return [invalidValue('rules', rules, 'must be a list of PolicyRules')];
  return rules.flatMap((rule: { verbs?: unknown; apiGroups?: unknown; resources?: unknown; nonResourceURLs?: unknown }, i) => {
    const field = `rules[${i}]`;
    const empty = (v: unknown) => !Array.isArray(v) || v.length === 0;
    const out: StatusCause[] = [];
    if (empty(rule.verbs)) out.push({ reason: 'FieldValueRequired', message: 'Required value: verbs must contain at least one value', field: `${field}.verbs` });
    // As ValidatePolicyRule: a rule with nonResourceURLs is refused for that alone in a namespaced Role.
    if (!empty(rule.nonResourceURLs)) return [...out, invalidValue(`${field}.nonResourceURLs`, rule.nonResourceURLs, 'namespaced rules cannot apply to non-resource URLs')];
    if (empty(rule.apiGroups)) out.push({ reason: 'FieldValueRequired', message: 'Required value: resource rules must supply at least one api group', field: `${field}.apiGroups` });
    if (empty(rule.resources)) out.push({ reason: 'FieldValueRequired', message: 'Required value: resource rules must supply at least one resource', field: `${field}.resources` });
    return out;
  });
}

/** A RoleBinding's roleRef and subjects, as pkg/apis/rbac/validation checks them. */
function validateRoleBinding(obj: KubeObject): StatusCause[] {
  const out: StatusCause[] = [];
  const ref = (obj.roleRef ?? {}) as { apiGroup?: string; kind?: string; name?: string };
  if (ref.apiGroup !== RBAC_GROUP) out.push(notSupported('roleRef.apiGroup', ref.apiGroup ?? '', [RBAC_GROUP]));
  if (ref.kind !== 'Role' && ref.kind !== 'ClusterRole') out.push(notSupported('roleRef.kind', ref.kind ?? '', ['Role', 'ClusterRole']));
  if (!ref.name) out.push(required('roleRef.name'));
  else out.push(...validateName('path', ref.name, 'roleRef.name'));
  const subjects = Array.isArray(obj.subjects) ? (obj.subjects as Array<{ kind?: string; name?: string; apiGroup?: string; namespace?: string }>) : [];
  subjects.forEach((subject, i) => {
    const field = `subjects[${i}]`;
    if (!subject.name) out.push(required(`${field}.name`));
    if (subject.kind === 'ServiceAccount') {
      if (subject.apiGroup) out.push(notSupported(`${field}.apiGroup`, subject.apiGroup, ['']));
    } else if (subject.kind === 'User' || subject.kind === 'Group') {
      if (subject.apiGroup !== RBAC_GROUP) out.push(notSupported(`${field}.apiGroup`, subject.apiGroup ?? '', [RBAC_GROUP]));
    } else out.push(notSupported(`${field}.kind`, subject.kind ?? '', ['ServiceAccount', 'User', 'Group']));
  });
  return out;
}

function same(a: unknown, b: unknown): boolean {
  return canonical(a) === canonical(b);
}

const POD_MUTABLE_IMAGE_ONLY = 'pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)';

/** Fields the real API refuses to change after creation. */
export function validateUpdate(type: ResourceType, obj: KubeObject, old: KubeObject): StatusCause[] {
  const causes: StatusCause[] = [];
  const spec = obj.spec as Record<string, unknown> | undefined;
  const oldSpec = old.spec as Record<string, unknown> | undefined;
  const immutable = (field: string, a: unknown, b: unknown) => {
    if (!same(a, b)) causes.push(invalidValue(field, a ?? null, 'field is immutable'));
  };
  switch (type.plural) {
    case 'pods': {
      const strip = (s: unknown) => {
        const copy = structuredClone((s ?? {}) as PodSpec);
        for (const c of copy.containers ?? []) (c as Partial<Container>).image = '';
        delete copy.nodeName;
        return copy;
      };
      if (!same(strip(spec), strip(oldSpec))) causes.push({ reason: 'FieldValueForbidden', message: `Forbidden: ${POD_MUTABLE_IMAGE_ONLY}`, field: 'spec' });
      break;
    }
    case 'deployments':
    case 'replicasets':
      immutable('spec.selector', spec?.selector, oldSpec?.selector);
      break;
    case 'rolebindings':
      // A binding's role is fixed: to bind another, delete and recreate it (kubectl auth reconcile does).
      if (!same(obj.roleRef, old.roleRef)) causes.push(invalidValue('roleRef', obj.roleRef ?? null, 'cannot change roleRef'));
      break;
    case 'jobs':
      immutable('spec.selector', spec?.selector, oldSpec?.selector);
      immutable('spec.template', spec?.template, oldSpec?.template);
      immutable('spec.completions', spec?.completions, oldSpec?.completions);
      immutable('spec.podFailurePolicy', spec?.podFailurePolicy, oldSpec?.podFailurePolicy);
      break;
    case 'services': {
      const s = spec as Service['spec'] | undefined;
      const o = oldSpec as Service['spec'] | undefined;
      if (s?.clusterIP && o?.clusterIP && s.clusterIP !== o.clusterIP) immutable('spec.clusterIP', s.clusterIP, o.clusterIP);
      break;
    }
  }
  return causes;
}
