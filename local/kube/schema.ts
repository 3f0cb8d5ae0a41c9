/**
 * Defaulting and validation of objects, as the real API server's registry strategies do them for the
 * fields the pipeline and its tests touch: name rules, required fields, pod template checks, workload
 * selectors, service ports, and immutable fields on update. Errors become 422 Invalid with causes.
 */
import { randomInt } from 'node:crypto';
import type { Container, Deployment, Job, KubeObject, Pod, PodSpec, PodTemplate, ReplicaSet, ResourceType, Service } from './resources';
import { matchesLabelSelector } from './selectors';
import { canonical } from './canonical';
import { invalidValue, required, type StatusCause } from './status';

const SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS1035 = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;
const QUALIFIED_NAME = /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;

export function validateName(rule: ResourceType['nameRule'], name: string, field = 'metadata.name'): StatusCause[] {
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

function validateLabels(labels: Record<string, string> | undefined, field: string): StatusCause[] {
  const causes: StatusCause[] = [];
  for (const [k, v] of Object.entries(labels ?? {})) {
    if (!QUALIFIED_NAME.test(k) || k.split('/').pop()!.length > 63) {
      causes.push(invalidValue(field, k, "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character"));
    }
    if (typeof v !== 'string' || v.length > 63 || !LABEL_VALUE.test(v)) {
      causes.push(invalidValue(`${field}`, v, "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character"));
    }
  }
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
    case 'pods': {
      const pod = obj as Pod;
      if (pod.spec && typeof pod.spec === 'object' && pod.spec.serviceAccountName === undefined) pod.spec.serviceAccountName = pod.spec.serviceAccount ?? 'default';
      defaultPodSpec(pod.spec as PodSpec & Record<string, unknown>);
      if (!existing) pod.status = { phase: 'Pending' };
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
        (job.spec as Record<string, unknown>).podReplacementPolicy ??= 'TerminatingOrFailed';
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

function validatePodSpec(spec: unknown, field: string): StatusCause[] {
  if (!spec || typeof spec !== 'object') return [required(field)];
  const s = spec as PodSpec;
  const causes = validateContainers(s.containers, `${field}.containers`);
  if (s.restartPolicy && !['Always', 'OnFailure', 'Never'].includes(s.restartPolicy)) {
    causes.push({ reason: 'FieldValueNotSupported', message: `Unsupported value: "${s.restartPolicy}": supported values: "Always", "OnFailure", "Never"`, field: `${field}.restartPolicy` });
  }
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
        }
      }
      if (typeof s.backoffLimit === 'number' && s.backoffLimit < 0) causes.push(invalidValue('spec.backoffLimit', s.backoffLimit, 'must be greater than or equal to 0'));
      if (s.activeDeadlineSeconds !== undefined && !(s.activeDeadlineSeconds > 0)) causes.push(invalidValue('spec.activeDeadlineSeconds', s.activeDeadlineSeconds, 'must be greater than 0'));
      break;
    }
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
    case 'jobs':
      immutable('spec.selector', spec?.selector, oldSpec?.selector);
      immutable('spec.template', spec?.template, oldSpec?.template);
      immutable('spec.completions', spec?.completions, oldSpec?.completions);
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
