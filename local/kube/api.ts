/**
 * REST semantics on top of the object store: create (201, AlreadyExists, namespace must exist,
 * generateName), update with resourceVersion preconditions (409 Conflict), status subresources, merge /
 * JSON patches, server-side apply (create-or-update, idempotent), deletion with ownerReference garbage
 * collection (Background / Orphan) and graceful pod deletion. The HTTP server and the controllers both
 * write through here, so controller writes are validated exactly like client writes.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { loadYaml } from '@kubernetes/client-node';
import { canonical } from './canonical';
import { jsonPatch, mergePatch, pruneDropped, type JsonValue } from './patch';
import { apiVersionOf, RESOURCE_TYPES, typeOf, type KubeObject, type Pod, type ResourceType } from './resources';
import { applyDefaults, validateObject, validateUpdate, writeWarnings } from './schema';
import { deletedStatus, errors, type StatusBody } from './status';
import type { ObjectStore } from './store';

export interface WriteOptions {
  fieldManager?: string;
  subresource?: 'status';
  /** Collects the Warning headers the write earns (only a write that stores something earns any). */
  warnings?: string[];
  /** A server-side apply that creates its object calls this first: the API server authorizes `create` then too. */
  authorizeCreate?: () => void;
}

export interface DeleteOptions {
  propagationPolicy?: 'Background' | 'Foreground' | 'Orphan';
  gracePeriodSeconds?: number;
}

/** Kubernetes timestamps are RFC 3339 with second precision. */
export function now(): string {
  return new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** The 5-character suffix alphabet of generateName (no vowels, so no words). */
export function randomSuffix(length = 5): string {
  const alphabet = 'bcdfghjklmnpqrstvwxz2456789';
  const bytes = randomBytes(length);
  return Array.from(bytes, (b) => alphabet[b % alphabet.length]).join('');
}

function comparable(obj: KubeObject): string {
  const { resourceVersion: _rv, managedFields: _mf, ...meta } = obj.metadata;
  return canonical({ ...obj, metadata: meta });
}

/** Types whose metadata.generation tracks spec changes. */
const GENERATION_TYPES = new Set(['deployments', 'replicasets', 'jobs']);

export class KubeApi {
  /** Last configuration each field manager applied, per object uid: what SSA prunes against. */
  private readonly applied = new Map<string, JsonValue>();

  constructor(readonly store: ObjectStore) {}

  get(type: ResourceType, namespace: string | undefined, name: string): KubeObject {
    if (type.namespaced) this.requireNamespaceName(namespace);
    const obj = this.store.get(type.plural, type.namespaced ? namespace : undefined, name);
    if (!obj) throw errors.notFound(type, name);
    return obj;
  }

  private requireNamespaceName(namespace: string | undefined): asserts namespace is string {
    if (!namespace) throw errors.badRequest('a namespace is required for this resource');
  }

  create(
    type: ResourceType,
    namespace: string | undefined,
    body: unknown,
    opts: WriteOptions & { operation?: 'Apply' | 'Update' } = {},
  ): KubeObject {
    const obj = this.decode(type, body);
    if (type.namespaced) {
      this.requireNamespaceName(namespace);
      if (obj.metadata.namespace && obj.metadata.namespace !== namespace) {
        throw errors.badRequest('the namespace of the provided object does not match the namespace sent on the request');
      }
      obj.metadata.namespace = namespace;
    } else {
      delete obj.metadata.namespace;
    }
    // Admission errors name the object as requested: a generated name's prefix (transcript 11).
    const requestedName = obj.metadata.name ?? obj.metadata.generateName ?? '';
    if (!obj.metadata.name && obj.metadata.generateName) obj.metadata.name = obj.metadata.generateName + randomSuffix();
    const name = obj.metadata.name ?? '';
    if (type.namespaced && !this.store.get('namespaces', undefined, namespace!)) {
      throw errors.notFound(typeOf('namespaces'), namespace!);
    }
    const meta = obj.metadata;
    meta.uid = randomUUID();
    meta.creationTimestamp = now();
    delete meta.deletionTimestamp;
    delete meta.deletionGracePeriodSeconds;
    if (GENERATION_TYPES.has(type.plural)) meta.generation = 1;
    else delete meta.generation;
    if (type.hasStatus && type.plural !== 'namespaces') delete obj.status;
    // A new Job answers with an empty status until its controller writes one (transcript 01).
    if (type.plural === 'jobs' || type.plural === 'deployments') obj.status = {};
    applyDefaults(type, obj);
    const causes = validateObject(type, obj);
    if (causes.length) throw errors.invalid(type, name, causes);
    if (this.store.get(type.plural, meta.namespace, name)) throw errors.alreadyExists(type, name);
    if (type.plural === 'pods') this.checkServiceAccount(obj as Pod, requestedName);
    meta.managedFields = [this.managedEntry(type, opts.fieldManager ?? 'unknown', opts.operation ?? 'Update')];
    opts.warnings?.push(...writeWarnings(type, obj));
    const created = this.store.insert(type.plural, obj);
    if (type.plural === 'namespaces') this.ensureDefaultServiceAccount(name);
    return created;
  }

  /** A real cluster refuses pods whose ServiceAccount does not exist (the admission plugin). */
  private checkServiceAccount(pod: Pod, requestedName: string): void {
    const sa = pod.spec.serviceAccountName ?? 'default';
    if (!this.store.get('serviceaccounts', pod.metadata.namespace, sa)) {
      throw errors.forbidden(typeOf('pods'), requestedName, `error looking up service account ${pod.metadata.namespace}/${sa}: serviceaccount "${sa}" not found`);
    }
  }

  /** What the ServiceAccount controller does for every new namespace. */
  ensureDefaultServiceAccount(namespace: string): void {
    if (this.store.get('serviceaccounts', namespace, 'default')) return;
    this.create(typeOf('serviceaccounts'), namespace, { metadata: { name: 'default' } }, { fieldManager: 'kube-controller-manager' });
  }

  private managedEntry(type: ResourceType, manager: string, operation: 'Apply' | 'Update', subresource?: string): Record<string, unknown> {
    return {
      manager,
      operation,
      apiVersion: apiVersionOf(type),
      time: now(),
      fieldsType: 'FieldsV1',
      fieldsV1: {},
      ...(subresource ? { subresource } : {}),
    };
  }

  private decode(type: ResourceType, body: unknown): KubeObject {
    if (!body || typeof body !== 'object' || Array.isArray(body)) throw errors.badRequest('the request body must be a JSON object');
    const obj = structuredClone(body) as KubeObject;
    if (obj.kind !== undefined && obj.kind !== type.kind) {
      throw errors.badRequest(`the kind of the object (${String(obj.kind)}) does not match the resource (${type.kind})`);
    }
    if (obj.apiVersion !== undefined && obj.apiVersion !== apiVersionOf(type)) {
      throw errors.badRequest(`the API version in the data (${String(obj.apiVersion)}) does not match the expected API version (${apiVersionOf(type)})`);
    }
    obj.kind = type.kind;
    obj.apiVersion = apiVersionOf(type);
    if (!obj.metadata || typeof obj.metadata !== 'object') obj.metadata = {} as KubeObject['metadata'];
    return obj;
  }

  /**
   * PUT semantics: replaces the object (or only its status for the status subresource). A non-empty
   * metadata.resourceVersion must match (else 409 Conflict); nothing is written, and resourceVersion is not
   * bumped, when the result equals what is stored.
   */
  update(type: ResourceType, namespace: string | undefined, name: string, body: unknown, opts: WriteOptions = {}): KubeObject {
    const obj = this.decode(type, body);
    if (obj.metadata.name !== undefined && obj.metadata.name !== name) {
      throw errors.badRequest(`the name of the object (${obj.metadata.name}) does not match the name on the URL (${name})`);
    }
    if (type.namespaced && obj.metadata.namespace && obj.metadata.namespace !== namespace) {
      throw errors.badRequest('the namespace of the provided object does not match the namespace sent on the request');
    }
    const old = this.get(type, namespace, name);
    const rv = obj.metadata.resourceVersion;
    if (rv && rv !== old.metadata.resourceVersion) throw errors.conflict(type, name);
    return this.write(type, old, obj, opts, 'Update');
  }

  private write(type: ResourceType, old: KubeObject, obj: KubeObject, opts: WriteOptions, operation: 'Apply' | 'Update'): KubeObject {
    const name = old.metadata.name;
    let next: KubeObject;
    if (opts.subresource === 'status') {
      // The status subresource changes status only (labels and spec stay as stored).
      next = { ...structuredClone(old), status: structuredClone(obj.status) };
      if (next.status === undefined) delete next.status;
    } else {
      next = structuredClone(obj);
      next.metadata = {
        ...obj.metadata,
        name,
        uid: old.metadata.uid,
        creationTimestamp: old.metadata.creationTimestamp,
        resourceVersion: old.metadata.resourceVersion,
        ...(type.namespaced ? { namespace: old.metadata.namespace } : {}),
        ...(old.metadata.deletionTimestamp ? { deletionTimestamp: old.metadata.deletionTimestamp } : {}),
        ...(old.metadata.deletionGracePeriodSeconds !== undefined ? { deletionGracePeriodSeconds: old.metadata.deletionGracePeriodSeconds } : {}),
      };
      if (!type.namespaced) delete next.metadata.namespace;
      delete next.metadata.generation;
      if (old.metadata.generation !== undefined) next.metadata.generation = old.metadata.generation;
      if (type.hasStatus) {
        if (old.status === undefined) delete next.status;
        else next.status = structuredClone(old.status);
      }
      applyDefaults(type, next, old);
      const causes = [...validateObject(type, next), ...validateUpdate(type, next, old)];
      if (causes.length) throw errors.invalid(type, name, causes);
      if (GENERATION_TYPES.has(type.plural) && canonical(next.spec) !== canonical(old.spec)) {
        next.metadata.generation = (old.metadata.generation ?? 0) + 1;
      }
    }
    next.metadata.managedFields = old.metadata.managedFields;
    if (comparable(next) === comparable(old)) return old;
    const manager = opts.fieldManager ?? 'unknown';
    // The deployment controller's revision annotation shows in its status entry on a real cluster
    // (transcript 11: one kube-controller-manager entry, subresource status, with f:metadata.f:annotations).
    const subresource = opts.subresource ?? (manager === 'kube-controller-manager' && type.plural === 'deployments' ? 'status' : undefined);
    // A manager's entry keeps its place in the list; only its time moves (transcript 01).
    const entry = this.managedEntry(type, manager, operation, subresource);
    const fields = [...(old.metadata.managedFields ?? [])];
    const at = fields.findIndex((m) => {
      const e = m as Record<string, unknown>;
      return e.manager === manager && e.operation === operation && e.subresource === subresource;
    });
    if (at >= 0) fields[at] = entry;
    else fields.push(entry);
    next.metadata.managedFields = fields;
    if (opts.subresource !== 'status') opts.warnings?.push(...writeWarnings(type, next));
    return this.store.replace(type.plural, next);
  }

  /**
   * PATCH by content type. Server-side apply creates the object when absent (`created` true → 201) and
   * is idempotent; merge and strategic-merge patches merge (lists replaced); JSON patch applies operations.
   */
  patch(
    type: ResourceType,
    namespace: string | undefined,
    name: string,
    contentType: string,
    rawBody: string,
    opts: WriteOptions & { force?: boolean },
  ): { object: KubeObject; created: boolean } {
    const ct = contentType.split(';')[0]?.trim() ?? '';
    if (ct === 'application/apply-patch+yaml' || ct === 'application/apply-patch+json') {
      return this.apply(type, namespace, name, this.parseBody(rawBody, true), opts);
    }
    if (opts.force) {
      throw errors.invalidOptions('PatchOptions.meta.k8s.io', '', [{ reason: 'FieldValueForbidden', message: 'Forbidden: may not be specified for non-apply patch', field: 'force' }], 'meta.k8s.io', 'PatchOptions');
    }
    const old = this.get(type, namespace, name);
    const target = old;
    let patched: JsonValue;
    if (ct === 'application/merge-patch+json' || ct === 'application/strategic-merge-patch+json') {
      patched = mergePatch(target as unknown as JsonValue, this.parseBody(rawBody, false));
    } else if (ct === 'application/json-patch+json') {
      patched = jsonPatch(target as unknown as JsonValue, this.parseBody(rawBody, false));
    } else {
      throw errors.unsupportedMediaType(ct);
    }
    const obj = patched as unknown as KubeObject;
    if (!obj || typeof obj !== 'object' || !obj.metadata) throw errors.badRequest('the patch removed metadata');
    const rv = obj.metadata.resourceVersion;
    if (rv && rv !== old.metadata.resourceVersion) throw errors.conflict(type, name);
    return { object: this.write(type, old, this.decode(type, obj), opts, 'Update'), created: false };
  }

  private parseBody(raw: string, yamlAllowed: boolean): JsonValue {
    try {
      return JSON.parse(raw) as JsonValue;
    } catch (err) {
      if (yamlAllowed) {
        try {
          return loadYaml(raw) as JsonValue;
        } catch {
          // fall through to the JSON error, which names the problem
        }
      }
      throw errors.badRequest(`error decoding patch: ${(err as Error).message}`);
    }
  }

  private apply(
    type: ResourceType,
    namespace: string | undefined,
    name: string,
    body: JsonValue,
    opts: WriteOptions & { force?: boolean },
  ): { object: KubeObject; created: boolean } {
    const manager = opts.fieldManager;
    if (!manager) {
      throw errors.invalidOptions('PatchOptions.meta.k8s.io', '', [{ reason: 'FieldValueRequired', message: 'Required value: is required for apply patch', field: 'fieldManager' }], 'meta.k8s.io', 'PatchOptions');
    }
    if (!body || typeof body !== 'object' || Array.isArray(body)) throw errors.badRequest('error decoding YAML: the apply patch must be an object');
    const config = body as Record<string, JsonValue>;
    if (!config.apiVersion || !config.kind) {
      throw errors.badRequest(`invalid object type: ${config.apiVersion ? '' : 'apiVersion not set'}${!config.apiVersion && !config.kind ? ', ' : ''}${config.kind ? '' : 'kind not set'}`);
    }
    const meta = (config.metadata ?? {}) as Record<string, JsonValue>;
    if (meta.name !== undefined && meta.name !== name) {
      throw errors.badRequest(`the name of the object (${String(meta.name)}) does not match the name on the URL (${name})`);
    }
    const existing = type.namespaced ? this.store.get(type.plural, namespace, name) : this.store.get(type.plural, undefined, name);
    if (!existing) {
      if (opts.subresource === 'status') throw errors.notFound(type, name);
      opts.authorizeCreate?.();
      const stored = this.create(type, namespace, { ...config, metadata: { ...meta, name } }, { fieldManager: manager, operation: 'Apply', warnings: opts.warnings });
      this.applied.set(`${stored.metadata.uid}/${manager}/`, config);
      return { object: stored, created: true };
    }
    const key = `${existing.metadata.uid}/${manager}/${opts.subresource ?? ''}`;
    const previous = this.applied.get(key) ?? {};
    if (!opts.force) this.checkApplyConflicts(type, existing, config, previous, manager);
    const { status: _s, ...prevWithoutStatus } = previous as Record<string, JsonValue>;
    const base = opts.subresource === 'status' ? previous : prevWithoutStatus;
    const pruned = pruneDropped(existing as unknown as JsonValue, base, config);
    const merged = mergePatch(pruned, stripNulls(config)) as unknown as KubeObject;
    merged.metadata.resourceVersion = existing.metadata.resourceVersion;
    const object = this.write(type, existing, this.decode(type, merged), opts, 'Apply');
    this.applied.set(key, config);
    return { object, created: false };
  }

  /**
   * Without force, applying a value that another manager set differently is a conflict (409), as in SSA.
   * Ownership is approximated: a field is this manager's if its previous apply set it.
   */
  private checkApplyConflicts(type: ResourceType, existing: KubeObject, config: JsonValue, previous: JsonValue, manager: string): void {
    const others = (existing.metadata.managedFields ?? [])
      .map((m) => (m as Record<string, unknown>).manager)
      .filter((m): m is string => typeof m === 'string' && m !== manager && m !== 'kube-controller-manager' && m !== 'mlpipe-local-kube');
    if (others.length === 0) return;
    const conflicts: string[] = [];
    const walk = (cfg: JsonValue, cur: unknown, prev: unknown, path: string) => {
      if (cfg && typeof cfg === 'object' && !Array.isArray(cfg)) {
        for (const [k, v] of Object.entries(cfg)) {
          if (path === '' && (k === 'apiVersion' || k === 'kind' || k === 'status')) continue;
          const c = cur && typeof cur === 'object' ? (cur as Record<string, unknown>)[k] : undefined;
          const p = prev && typeof prev === 'object' ? (prev as Record<string, unknown>)[k] : undefined;
          walk(v, c, p, `${path}.${k}`);
        }
        return;
      }
      if (cur !== undefined && prev === undefined && JSON.stringify(cur) !== JSON.stringify(cfg)) conflicts.push(path);
    };
    walk(config, existing, previous, '');
    if (conflicts.length) {
      const err = errors.conflict(type, existing.metadata.name);
      err.status.message = `Apply failed with ${conflicts.length} conflict${conflicts.length > 1 ? 's' : ''}: ${conflicts
        .map((p) => `conflict with "${others[0]}": ${p}`)
        .join(', ')}`;
      throw err;
    }
  }

  /**
   * DELETE. Pods that still run are deleted gracefully (deletionTimestamp set; the kubelet removes them
   * once the process is gone) and the pod is returned, as the real API does; other objects go at once
   * and a Success Status is returned. Dependents (ownerReferences) are deleted, or orphaned for Orphan —
   * the default for Jobs, as in batch/v1.
   */
  delete(type: ResourceType, namespace: string | undefined, name: string, opts: DeleteOptions = {}): KubeObject | StatusBody {
    const obj = this.get(type, namespace, name);
    const policy = opts.propagationPolicy ?? (type.plural === 'jobs' ? 'Orphan' : 'Background');
    if (type.plural === 'pods') {
      const pod = obj as Pod;
      const finished = pod.status?.phase === 'Succeeded' || pod.status?.phase === 'Failed' || !pod.spec.nodeName;
      if (opts.gracePeriodSeconds === 0 || finished) {
        return this.store.remove('pods', namespace, name) ?? obj;
      }
      if (pod.metadata.deletionTimestamp) return pod;
      pod.metadata.deletionTimestamp = now();
      pod.metadata.deletionGracePeriodSeconds = opts.gracePeriodSeconds ?? pod.spec.terminationGracePeriodSeconds ?? 30;
      return this.store.replace('pods', pod);
    }
    if (type.plural === 'namespaces') {
      // Every namespaced kind the server stores (events.k8s.io's events are the core ones, stored once).
      for (const t of [...new Set(RESOURCE_TYPES.filter((r) => r.namespaced && r.plural !== 'namespaces').map((r) => r.plural))]) {
        for (const child of this.store.list(t, name)) this.store.remove(t, name, child.metadata.name);
      }
    }
    this.store.remove(type.plural, type.namespaced ? namespace : undefined, name);
    this.collectDependents(obj, policy);
    return deletedStatus(type, name, obj.metadata.uid);
  }

  /** The garbage collector's part: dependents of a deleted owner are deleted or orphaned. */
  private collectDependents(owner: KubeObject, policy: NonNullable<DeleteOptions['propagationPolicy']>): void {
    const ns = owner.metadata.namespace;
    if (!ns) return;
    for (const plural of ['replicasets', 'pods']) {
      for (const dep of this.store.list(plural, ns)) {
        const refs = dep.metadata.ownerReferences ?? [];
        if (!refs.some((r) => r.uid === owner.metadata.uid)) continue;
        if (policy === 'Orphan') {
          dep.metadata.ownerReferences = refs.filter((r) => r.uid !== owner.metadata.uid);
          if (!dep.metadata.ownerReferences.length) delete dep.metadata.ownerReferences;
          this.store.replace(plural, dep);
        } else {
          try {
            this.delete(typeOf(plural), ns, dep.metadata.name, { propagationPolicy: 'Background' });
          } catch {
            // already gone
          }
        }
      }
    }
  }
}

function stripNulls(v: JsonValue): JsonValue {
  // In an apply configuration a null means "not set by me", not "delete" as in a merge patch.
  if (Array.isArray(v)) return v.map(stripNulls);
  if (v && typeof v === 'object') {
    return Object.fromEntries(Object.entries(v).filter(([, x]) => x !== null).map(([k, x]) => [k, stripNulls(x)]));
  }
  return v;
}
