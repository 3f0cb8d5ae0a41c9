/**
 * The HTTP front of the local Kubernetes API: bearer-token auth, discovery (/version, /api, /apis),
 * REST paths for core/v1, apps/v1, batch/v1 and namespaced rbac.authorization.k8s.io/v1 (get, list,
 * create, update, patch, delete, status), authorized by rbac.ts,
 * list/watch with label and field selectors, pods/log, pods/eviction, and the services/pods proxy subresources.
 */
import { closeSync, existsSync, openSync, readFileSync, readSync, statSync } from 'node:fs';
import { createServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { listenOnLoopback, readBody as readCappedBody, type LoopbackListener } from '../http';
import type { KubeApi } from './api';
import { authorize, authorizeCreateOnPatch, authorizePath, type Authenticator } from './rbac';
import type { ControllerManager } from './controllers';
import { LOCAL_PORTS_ANNOTATION, NODE_NAME } from './controllers/kubelet';
import { serviceEndpoints } from './controllers/service';
import { toEventsV1 } from './controllers/events';
import { setCondition } from './controllers/conditions';
import { API_GROUPS, apiGroup, apiGroupList, apiResourceList, apiVersionOf, findType, typeOf, type KubeObject, type Pod, type ResourceType, type Service } from './resources';
import { matchesFields, matchesRequirements, parseFieldSelector, parseLabelSelector } from './selectors';
import { validateName } from './schema';
import { errors, invalidValue, KubeApiError, type StatusBody, type StatusCause } from './status';
import type { StoreEvent } from './store';

interface Route {
  type: ResourceType;
  namespace?: string;
  name?: string;
  subresource?: string;
  /** For proxy: the path after /proxy. */
  rest?: string;
  /** A read-only view of another resource's objects (events.k8s.io/v1 of core/v1 Events): what the client asked for. */
  as?: ResourceType;
  view?: (obj: KubeObject) => KubeObject;
}

const MAX_BODY = 16 * 1024 * 1024;
/** kube-apiserver's bookmark cadence (bookmarkFrequency) and its early bookmark before a watch's timeout. */
const BOOKMARK_EVERY_MS = 60_000;
const BOOKMARK_BEFORE_TIMEOUT_MS = 2_000;

/** Warning headers earned while handling a request, sent with its answer (also an error answer). */
const requestWarnings = new WeakMap<ServerResponse, string[]>();

/** `299 - "text"` as kube-apiserver writes each Warning; several are one comma-separated header. */
function warningHeader(res: ServerResponse): Record<string, string> {
  const list = requestWarnings.get(res) ?? [];
  return list.length ? { Warning: list.map((w) => `299 - ${JSON.stringify(w)}`).join(', ') } : {};
}

function send(res: ServerResponse, code: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(code, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text), ...warningHeader(res) });
  res.end(text);
}

function sendStatus(res: ServerResponse, status: StatusBody): void {
  send(res, status.code, status);
}

async function readBody(req: IncomingMessage): Promise<string> {
  const body = await readCappedBody(req, MAX_BODY);
  if (body === undefined) throw errors.badRequest('request body too large');
  return body.toString('utf8');
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    throw errors.badRequest(`the request body is not valid JSON: ${(err as Error).message}`);
  }
}

/** Parses `/api/v1/...` and `/apis/<group>/v1/...` into a resource route. */
function route(segments: string[]): Route | undefined {
  let group = '';
  let rest: string[];
  if (segments[0] === 'api' && segments[1] === 'v1') rest = segments.slice(2);
  else if (segments[0] === 'apis' && segments.length >= 3) {
    group = segments[1] ?? '';
    if (segments[2] !== 'v1') return undefined;
    rest = segments.slice(3);
  } else return undefined;
  const ns = findType('', 'v1', 'namespaces')!;
  if (rest[0] === 'namespaces' && rest.length >= 3 && !(group === '' && rest.length === 3 && ['status', 'finalize'].includes(rest[2] ?? ''))) {
    const type = findType(group, 'v1', rest[2] ?? '');
    if (!type || !type.namespaced) return undefined;
    return { type, namespace: rest[1], name: rest[3], subresource: rest[4], rest: rest.length > 5 ? '/' + rest.slice(5).join('/') : undefined };
  }
  const type = findType(group, 'v1', rest[0] ?? '');
  if (!type) return undefined;
  if (type === ns || !type.namespaced) return { type, name: rest[1], subresource: rest[2] };
  if (rest.length === 1) return { type }; // cluster-wide list of a namespaced resource
  return undefined;
}

/** PodLogOptions validation (transcript 10): what kube-apiserver refuses with 422 before asking a kubelet. */
function podLogOptionCauses(q: URLSearchParams): StatusCause[] {
  const causes: StatusCause[] = [];
  const since = q.get('sinceSeconds');
  if (since !== null && !(Number(since) > 0)) causes.push(invalidValue('sinceSeconds', Number(since), 'must be greater than 0'));
  if (since !== null && q.get('sinceTime') !== null) {
    causes.push({ reason: 'FieldValueForbidden', message: 'Forbidden: at most one of `sinceTime` or `sinceSeconds` may be specified', field: '[]' });
  }
  for (const field of ['tailLines', 'limitBytes']) {
    const v = q.get(field);
    if (v !== null && Number(v) < (field === 'tailLines' ? 0 : 1)) {
      causes.push(invalidValue(field, Number(v), field === 'tailLines' ? 'must be greater than or equal to 0' : 'must be greater than 0'));
    }
  }
  return causes;
}

/**
 * The name a list or watch is authorized with, as kube-apiserver's requestinfo.go sets it: a field selector
 * that requires `metadata.name` to equal a valid path segment (`metadata.name=x`, alone or AND-ed with
 * other terms; the first such term) makes a collection request a named one for RBAC (so a rule with
 * resourceNames allows it). A selector that does not parse names nothing (the list then answers its 400).
 */
function selectedName(verb: string, q: URLSearchParams, type: ResourceType): string | undefined {
  if (verb !== 'list' && verb !== 'watch') return undefined;
  try {
    const term = parseFieldSelector(q.get('fieldSelector'), type.selectableFields).find((r) => r.field === 'metadata.name' && !r.negate);
    return term?.value && validateName('path', term.value).length === 0 ? term.value : undefined;
  } catch {
    return undefined;
  }
}

/** The RBAC verb of a request, as kube-apiserver's RequestInfo derives it. */
function verbOf(method: string, r: Route, q: URLSearchParams): string {
  const watch = q.get('watch') === 'true' || q.get('watch') === '1';
  switch (method) {
    case 'GET':
      return r.name ? (watch ? 'watch' : 'get') : watch ? 'watch' : 'list';
    case 'POST':
      return 'create';
    case 'PUT':
      return 'update';
    case 'PATCH':
      return 'patch';
    case 'DELETE':
      return r.name ? 'delete' : 'deletecollection';
    default:
      return method.toLowerCase();
  }
}

function listKind(type: ResourceType): string {
  return `${type.kind}List`;
}

function stripForList(obj: KubeObject): Omit<KubeObject, 'kind' | 'apiVersion'> {
  const { kind: _k, apiVersion: _a, ...rest } = obj;
  return rest;
}

export interface ApiServerDeps {
  api: KubeApi;
  controllers: ControllerManager;
  auth: Authenticator;
  version: { major: string; minor: string; gitVersion: string };
}

export class ApiServer {
  readonly server: Server;
  private readonly watches = new Set<ServerResponse>();
  private readonly cleanups = new Set<() => void>();
  private url = '';
  private listener: LoopbackListener | undefined;

  constructor(private readonly deps: ApiServerDeps) {
    this.server = createServer((req, res) => {
      this.handle(req, res).catch((err: unknown) => {
        if (res.headersSent) {
          res.destroy();
          return;
        }
        if (err instanceof KubeApiError) sendStatus(res, err.status);
        else {
          console.error('[local-kube] internal error:', err);
          sendStatus(res, { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: String((err as Error)?.message ?? err), reason: 'InternalError', code: 500 });
        }
      });
    });
    this.server.keepAliveTimeout = 5000;
  }

  async listen(port: number): Promise<string> {
    this.listener = await listenOnLoopback(this.server, port);
    this.url = this.listener.endpoint;
    return this.url;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const path = url.pathname.replace(/\/+$/, '') || '/';
    const method = req.method ?? 'GET';
    // An unknown token is 401 even on public paths; no token is system:anonymous (transcript 20).
    const user = this.deps.auth.authenticate(req);
    // Like a real cluster's system:public-info-viewer: health and version need no credentials.
    if (['/healthz', '/livez', '/readyz'].includes(path)) {
      res.writeHead(200, { 'Content-Type': 'text/plain' });
      res.end('ok');
      return;
    }
    if (path === '/version') {
      send(res, 200, { ...this.deps.version, gitCommit: 'local', gitTreeState: 'clean', buildDate: '2024-01-01T00:00:00Z', goVersion: 'n/a', compiler: 'gc', platform: `${process.platform}/${process.arch}` });
      return;
    }
    if (['/api', '/apis', '/api/v1'].includes(path) || /^\/apis\/[^/]+(\/v1)?$/.test(path)) authorizePath(user, path);
    if (path === '/api') {
      send(res, 200, { kind: 'APIVersions', versions: ['v1'], serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress: this.url.replace('http://', '') }] });
      return;
    }
    if (path === '/apis') return send(res, 200, apiGroupList());
    if (path === '/api/v1') return send(res, 200, apiResourceList(''));
    const g = /^\/apis\/([^/]+)(\/v1)?$/.exec(path);
    if (g && (API_GROUPS as readonly string[]).includes(g[1]!)) return send(res, 200, g[2] ? apiResourceList(g[1]!) : apiGroup(g[1]!));

    const segments = path.split('/').filter(Boolean).map(decodeURIComponent);
    const r = route(segments);
    if (!r) throw errors.pathNotFound();
    if (r.type.group === 'events.k8s.io') {
      // The pipeline only reads events; the controllers write them as core/v1.
      if (method !== 'GET' || r.subresource) throw errors.methodNotAllowed();
      r.as = r.type;
      r.view = toEventsV1;
      r.type = typeOf('events');
    }
    const { type } = r;
    const q = url.searchParams;
    const warnings: string[] = [];
    requestWarnings.set(res, warnings);
    const verb = verbOf(method, r, q);
    const access = {
      verb,
      type: r.as ?? type,
      namespace: type.plural === 'namespaces' ? r.name : r.namespace,
      name: r.name ?? selectedName(verb, q, type),
      subresource: r.subresource,
    };
    const rbacObjects = this.deps.api.store;
    authorize(user, access, rbacObjects);
    const fieldManager = q.get('fieldManager') ?? (req.headers['user-agent'] ?? 'unknown').split('/')[0];
    const dryRun = q.get('dryRun') === 'All';
    if (dryRun) throw errors.badRequest('dryRun is not supported by the local API server');

    if (r.subresource === 'log') {
      if (method !== 'GET' || type.plural !== 'pods') throw errors.methodNotAllowed();
      return this.podLog(r, q, res);
    }
    if (r.subresource === 'proxy' || (r.name?.includes(':') && r.subresource === 'proxy')) {
      return this.proxy(r, req, res, url);
    }
    if (r.subresource === 'eviction' && type.plural === 'pods' && r.name) {
      if (method !== 'POST') throw errors.methodNotAllowed();
      return this.evict(r, req, res);
    }
    if (r.subresource && !(r.subresource === 'status' && type.subresources.includes('status'))) {
      if (r.subresource === 'scale' && type.subresources.includes('scale')) return this.scale(r, req, res, method);
      throw errors.pathNotFound();
    }
    const sub = r.subresource === 'status' ? ('status' as const) : undefined;

    if (!r.name) {
      // Collection
      if (method === 'GET') {
        const watch = q.get('watch');
        if (watch === 'true' || watch === '1') return this.watch(r, q, req, res);
        return this.list(r, q, res);
      }
      if (method === 'POST') {
        const created = this.deps.api.create(type, r.namespace, parseJson(await readBody(req)), { fieldManager, warnings });
        return send(res, 201, created);
      }
      if (method === 'DELETE') {
        const items = this.select(r, q);
        for (const item of items) this.deps.api.delete(type, item.metadata.namespace, item.metadata.name, this.deleteOptions(q, undefined));
        return send(res, 200, { kind: listKind(type), apiVersion: apiVersionOf(type), metadata: { resourceVersion: this.deps.api.store.currentResourceVersion() }, items: items.map(stripForList) });
      }
      throw errors.methodNotAllowed();
    }
    switch (method) {
      case 'GET': {
        const obj = this.deps.api.get(type, r.namespace, r.name);
        return send(res, 200, r.view ? r.view(obj) : obj);
      }
      case 'PUT':
        return send(res, 200, this.deps.api.update(type, r.namespace, r.name, parseJson(await readBody(req)), { fieldManager, subresource: sub, warnings }));
      case 'PATCH': {
        const body = await readBody(req);
        const force = q.get('force') === 'true';
        const { object, created } = this.deps.api.patch(type, r.namespace, r.name, req.headers['content-type'] ?? '', body, {
          fieldManager: q.get('fieldManager') ?? undefined,
          force,
          subresource: sub,
          warnings,
          authorizeCreate: () => authorizeCreateOnPatch(user, { ...access, name: r.name! }, rbacObjects),
        });
        return send(res, created ? 201 : 200, object);
      }
      case 'DELETE': {
        if (sub) throw errors.methodNotAllowed();
        const raw = await readBody(req);
        if (type.plural === 'jobs' && !q.get('propagationPolicy') && !/propagationPolicy/.test(raw)) {
          // Sent even when the Job does not exist (transcript 07).
          warnings.push('child pods are preserved by default when jobs are deleted; set propagationPolicy=Background to remove them or set propagationPolicy=Orphan to suppress this warning');
        }
        const body = raw ? (parseJson(raw) as { propagationPolicy?: string; gracePeriodSeconds?: number; preconditions?: { resourceVersion?: string; uid?: string } }) : undefined;
        if (body?.preconditions) {
          const current = this.deps.api.get(type, r.namespace, r.name);
          if ((body.preconditions.resourceVersion && body.preconditions.resourceVersion !== current.metadata.resourceVersion) || (body.preconditions.uid && body.preconditions.uid !== current.metadata.uid)) {
            throw errors.conflict(type, r.name);
          }
        }
        return send(res, 200, this.deps.api.delete(type, r.namespace, r.name, this.deleteOptions(q, body)));
      }
      default:
        throw errors.methodNotAllowed();
    }
  }

  private deleteOptions(q: URLSearchParams, body: { propagationPolicy?: string; gracePeriodSeconds?: number } | undefined) {
    const policy = q.get('propagationPolicy') ?? body?.propagationPolicy;
    if (policy && !['Background', 'Foreground', 'Orphan'].includes(policy)) {
      throw errors.badRequest(`propagationPolicy: Unsupported value: "${policy}": supported values: "Foreground", "Background", "Orphan"`);
    }
    const grace = q.get('gracePeriodSeconds') ?? body?.gracePeriodSeconds;
    return {
      ...(policy ? { propagationPolicy: policy as 'Background' | 'Foreground' | 'Orphan' } : {}),
      ...(grace !== undefined && grace !== null ? { gracePeriodSeconds: Number(grace) } : {}),
    };
  }

  private matcher(r: Route, q: URLSearchParams): (obj: KubeObject) => boolean {
    const labels = parseLabelSelector(q.get('labelSelector'));
    const fields = parseFieldSelector(q.get('fieldSelector'), r.type.selectableFields);
    return (obj) => matchesRequirements(obj.metadata.labels, labels) && matchesFields(obj, fields);
  }

  private select(r: Route, q: URLSearchParams): KubeObject[] {
    const match = this.matcher(r, q);
    return this.deps.api.store.list(r.type.plural, r.type.namespaced ? r.namespace : undefined).filter(match);
  }

  private list(r: Route, q: URLSearchParams, res: ServerResponse): void {
    const rv = this.deps.api.store.currentResourceVersion();
    const asked = q.get('resourceVersion');
    if (asked && /^\d+$/.test(asked) && Number(asked) > Number(rv)) {
      // kube-apiserver waits briefly for its cache to catch up, then gives up (transcript 09).
      return send(res, 504, { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: `Timeout: Too large resource version: ${asked}, current: ${rv}`, reason: 'Timeout', details: { causes: [{ reason: 'ResourceVersionTooLarge', message: 'Too large resource version' }], retryAfterSeconds: 1 }, code: 504 });
    }
    const items = this.select(r, q);
    const limit = Number(q.get('limit') ?? 0);
    const start = Number(q.get('continue') ? Buffer.from(q.get('continue')!, 'base64').toString() : 0) || 0;
    const page = limit > 0 ? items.slice(start, start + limit) : items.slice(start);
    const more = limit > 0 && start + limit < items.length;
    send(res, 200, {
      kind: listKind(r.as ?? r.type),
      apiVersion: apiVersionOf(r.as ?? r.type),
      metadata: { resourceVersion: rv, ...(more ? { continue: Buffer.from(String(start + limit)).toString('base64'), remainingItemCount: items.length - start - limit } : {}) },
      items: page.map((o) => stripForList(r.view ? r.view(o) : o)),
    });
  }

  /**
   * Watch: newline-delimited JSON events, as kube-apiserver's watch cache serves them (transcripts 09, 21).
   * Without a resourceVersion (or "0") the current objects come first as ADDED; with one, the type's
   * window after it is replayed, and one older than the window gets HTTP 200 then a single ERROR event
   * (410 Expired, "too old resource version: A (B)") and the end of the stream. A MODIFIED object that
   * enters or leaves the selector is sent as ADDED or DELETED, as the real one does. Bookmarks follow the
   * real schedule: only when the resource type changed somewhere since the last line sent, every 60 s, and
   * once 2 s before timeoutSeconds ends the watch — never within client-node's 30 s idle limit unless the
   * client asked for a short timeout.
   */
  private watch(r: Route, q: URLSearchParams, req: IncomingMessage, res: ServerResponse): void {
    const match = this.matcher(r, q);
    const namespace = r.type.namespaced ? r.namespace : undefined;
    const inScope = (obj: KubeObject) => namespace === undefined || obj.metadata.namespace === namespace;
    const rvParam = q.get('resourceVersion');
    const timeoutSeconds = Number(q.get('timeoutSeconds') ?? 1800);
    const bookmarks = q.get('allowWatchBookmarks') === 'true' || q.get('allowWatchBookmarks') === '1';
    const sendInitialEvents = q.get('sendInitialEvents') === 'true';
    const store = this.deps.api.store;
    const plural = r.type.plural;
    if (rvParam && !/^\d+$/.test(rvParam)) {
      // kube-apiserver parses it as a uint64 and answers 500 without a reason (transcript 09).
      return send(res, 500, { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: `resourceVersion: Invalid value: "${rvParam}": strconv.ParseUint: parsing "${rvParam}": invalid syntax`, code: 500 });
    }
    if (sendInitialEvents && q.get('resourceVersionMatch') !== 'NotOlderThan') {
      const message = 'Forbidden: sendInitialEvents requires setting resourceVersionMatch to NotOlderThan';
      return send(res, 422, { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: `ListOptions.meta.k8s.io "" is invalid: resourceVersionMatch: ${message}`, reason: 'Invalid', details: { group: 'meta.k8s.io', kind: 'ListOptions', causes: [{ reason: 'FieldValueForbidden', message, field: 'resourceVersionMatch' }] }, code: 422 });
    }

    res.writeHead(200, { 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked', 'Cache-Control': 'no-cache, private' });
    res.flushHeaders();
    this.watches.add(res);
    /** The newest resourceVersion of this type the client has been told about: bookmarks only move it on. */
    let told = 0;
    const shown = r.as ?? r.type;
    const write = (type: string, object: unknown) => {
      const out = r.view && type !== 'ERROR' && type !== 'BOOKMARK' ? r.view(object as KubeObject) : object;
      if (!res.writableEnded) res.write(JSON.stringify({ type, object: out }) + '\n');
    };
    const bookmark = (rv: number, annotations?: Record<string, string>) => {
      told = Math.max(told, rv);
      write('BOOKMARK', { kind: shown.kind, apiVersion: apiVersionOf(shown), metadata: { resourceVersion: String(rv), creationTimestamp: null, ...(annotations ? { annotations } : {}) } });
    };
    const sendEvent = (e: StoreEvent) => {
      if (e.resource !== plural || !inScope(e.object)) return;
      const now = match(e.object);
      if (e.type === 'MODIFIED') {
        const before = e.previous ? match(e.previous) : now;
        if (now && before) write('MODIFIED', e.object);
        else if (now) write('ADDED', e.object);
        else if (before) write('DELETED', e.object);
      } else if (now) write(e.type, e.object);
      told = Math.max(told, e.rv);
    };

    let lastRv = Number(store.currentResourceVersion());
    if (!rvParam || rvParam === '0') {
      for (const obj of store.list(plural, namespace)) if (match(obj)) write('ADDED', obj);
      told = store.latestResourceVersion(plural);
      // A watch without resourceVersion that allows bookmarks ends its replay with this one (transcript 21).
      if ((bookmarks && !rvParam) || sendInitialEvents) {
        const blueprint = Buffer.from(JSON.stringify({ kind: listKind(shown), apiVersion: apiVersionOf(shown), metadata: {}, items: null }) + '\n').toString('base64');
        bookmark(told, { 'k8s.io/initial-events-end': 'true', 'kubernetes.io/initial-events-list-blueprint': blueprint });
      }
    } else {
      const since = Number(rvParam);
      const events = store.eventsSince(plural, since);
      if (!Array.isArray(events)) {
        write('ERROR', errors.expired(`too old resource version: ${rvParam} (${events.oldest})`).status);
        res.end();
        this.watches.delete(res);
        return;
      }
      for (const e of events) sendEvent(e);
      // A resourceVersion from the future: silence until the store gets there (transcript 09).
      lastRv = Math.max(Number(store.currentResourceVersion()), since);
      told = Math.max(told, since, ...events.map((e) => e.rv));
    }
    const unsubscribe = store.subscribe((e) => {
      if (e.rv <= lastRv) return;
      lastRv = e.rv;
      sendEvent(e);
    });
    const timers = new Set<NodeJS.Timeout>();
    const finish = () => {
      unsubscribe();
      for (const t of timers) clearTimeout(t);
      this.watches.delete(res);
      this.cleanups.delete(finish);
      if (!res.writableEnded) res.end();
    };
    this.cleanups.add(finish);
    const startedAt = Date.now();
    const deadline = startedAt + Math.max(0, timeoutSeconds) * 1000;
    timers.add(setTimeout(finish, deadline - startedAt));
    if (bookmarks) {
      const scheduleBookmark = () => {
        const now = Date.now();
        const heartbeat = now + BOOKMARK_EVERY_MS;
        const beforeEnd = deadline - BOOKMARK_BEFORE_TIMEOUT_MS;
        const at = beforeEnd > now && beforeEnd < heartbeat ? beforeEnd : heartbeat;
        if (at >= deadline) return;
        const t = setTimeout(() => {
          timers.delete(t);
          const latest = store.latestResourceVersion(plural);
          if (latest > told) bookmark(latest);
          scheduleBookmark();
        }, at - now);
        timers.add(t);
      };
      scheduleBookmark();
    }
    req.on('close', finish);
    res.on('close', finish);
  }

  private podLog(r: Route, q: URLSearchParams, res: ServerResponse): void {
    const pod = this.deps.api.get(r.type, r.namespace, r.name!) as Pod;
    const names = pod.spec.containers.map((c) => c.name);
    const container = q.get('container') ?? (names.length === 1 ? names[0] : undefined);
    if (!container) {
      throw errors.badRequest(`a container name must be specified for pod ${pod.metadata.name}, choose one of: [${names.join(' ')}]`);
    }
    if (!names.includes(container)) throw errors.badRequest(`container ${container} is not valid for pod ${pod.metadata.name}`);
    const causes = podLogOptionCauses(q);
    if (causes.length) throw errors.invalidOptions('PodLogOptions', pod.metadata.name, causes);
    // No node, no kubelet to ask: kube-apiserver answers 204 with no body and no Content-Type (transcript 10).
    if (!pod.spec.nodeName) {
      res.writeHead(204);
      res.end();
      return;
    }
    if (pod.spec.nodeName !== NODE_NAME) throw errors.notFound(r.type, pod.spec.nodeName);
    const previous = q.get('previous') === 'true';
    const found = this.deps.controllers.kubelet.logFor(pod.metadata.uid, container, previous);
    if (found.waiting) {
      throw errors.badRequest(`container "${container}" in pod "${pod.metadata.name}" is waiting to start: ${found.waiting === 'ContainerCreating' ? 'ContainerCreating' : 'trying and failing to pull image'}`);
    }
    if (!found.file || !existsSync(found.file)) {
      if (previous) throw errors.badRequest(`previous terminated container "${container}" in pod "${pod.metadata.name}" not found`);
      res.writeHead(200, { 'Content-Type': 'text/plain' });
      res.end();
      return;
    }
    // The bytes sent (before tailLines/limitBytes) are where a follow goes on from: a size read later would
    // skip whatever the container wrote in between (a log line written then was never streamed).
    const initial = readFileSync(found.file);
    let text = initial.toString('utf8');
    const tail = q.get('tailLines');
    if (tail !== null) {
      const n = Number(tail);
      const lines = text.split('\n');
      const hadNewline = text.endsWith('\n');
      if (hadNewline) lines.pop();
      text = n <= 0 ? '' : lines.slice(-n).join('\n') + (hadNewline && lines.length ? '\n' : '');
    }
    const limitBytes = Number(q.get('limitBytes') ?? 0);
    if (limitBytes > 0) text = Buffer.from(text).subarray(0, limitBytes).toString('utf8');
    res.writeHead(200, { 'Content-Type': 'text/plain', 'Transfer-Encoding': 'chunked' });
    res.write(text);
    if (q.get('follow') !== 'true' || !found.running) {
      res.end();
      return;
    }
    // follow: stream what is appended until the container stops or the client goes away.
    let offset = initial.length;
    const file = found.file;
    const uid = pod.metadata.uid;
    const timer = setInterval(() => {
      const size = existsSync(file) ? statSync(file).size : offset;
      if (size > offset) {
        // Read here and now, in order: a stream per tick could deliver two ticks' bytes out of order.
        const fd = openSync(file, 'r');
        try {
          const appended = Buffer.alloc(size - offset);
          const n = readSync(fd, appended, 0, appended.length, offset);
          res.write(appended.subarray(0, n));
          offset += n;
        } finally {
          closeSync(fd);
        }
      } else if (!this.deps.controllers.kubelet.logFor(uid, container, false).running) {
        done();
      }
    }, 100);
    const done = () => {
      clearInterval(timer);
      this.cleanups.delete(done);
      if (!res.writableEnded) res.end();
    };
    this.cleanups.add(done);
    res.on('close', done);
  }

  /** services/{name[:port]}/proxy/... and pods/{name[:port]}/proxy/...: forwards HTTP to a ready endpoint. */
  private async proxy(r: Route, req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    const [scheme, rawName, rawPort] = (() => {
      const parts = (r.name ?? '').split(':');
      if (parts.length === 3) return [parts[0], parts[1], parts[2]];
      return ['http', parts[0], parts[1]];
    })();
    if (scheme !== 'http' && scheme !== '') throw errors.badRequest(`only http is proxied locally, not ${scheme}`);
    const name = rawName ?? '';
    let target: { host: string; port: number } | undefined;
    /** The address as the real API server would dial it (the pod's IP and container port), for messages. */
    let dialed = '';
    if (r.type.plural === 'services') {
      const svc = this.deps.api.get(r.type, r.namespace, name) as Service;
      const port = rawPort
        ? svc.spec.ports?.find((p) => p.name === rawPort || String(p.port) === rawPort)
        : svc.spec.ports?.[0];
      if (!port) throw errors.notFound(r.type, name);
      const eps = serviceEndpoints(this.deps.api, r.namespace!, name, port);
      target = eps[Math.floor(Math.random() * eps.length)];
      if (!target) throw errors.serviceUnavailable(`no endpoints available for service "${name}"`);
    } else if (r.type.plural === 'pods') {
      // As kube-apiserver's pod ResourceLocation: the port given, else the first declared containerPort;
      // a pod without an IP (not started) is 400 "address not allowed". A real API server also refuses
      // loopback IPs that way (transcript 13); this one allows them: its pods are loopback processes.
      const pod = this.deps.api.get(r.type, r.namespace, name) as Pod;
      if (!pod.status?.podIP) throw errors.badRequest('address not allowed');
      let ports: Record<string, number> = {};
      try {
        ports = JSON.parse(pod.metadata.annotations?.[LOCAL_PORTS_ANNOTATION] ?? '{}') as Record<string, number>;
      } catch {
        // none recorded
      }
      const declared = pod.spec.containers.flatMap((c) => c.ports ?? []);
      const asked = rawPort ?? declared[0]?.containerPort ?? 80;
      const containerPort = /^\d+$/.test(String(asked)) ? Number(asked) : declared.find((p) => p.name === asked)?.containerPort;
      const local = containerPort === undefined ? undefined : ports[String(containerPort)];
      // Nothing listens on a port the pod does not run: what the real one says when the dial is refused.
      if (!local) throw errors.serviceUnavailable(`error trying to reach service: dial tcp ${pod.status.podIP}:${containerPort ?? asked}: connect: connection refused`);
      target = { host: '127.0.0.1', port: local };
      dialed = `${pod.status.podIP}:${containerPort}`;
    } else {
      throw errors.pathNotFound();
    }
    const headers = { ...req.headers };
    delete headers.authorization;
    delete headers.host;
    await new Promise<void>((resolve) => {
      const upstream = httpRequest(
        { host: target.host, port: target.port, method: req.method, path: (r.rest ?? '/') + url.search, headers },
        (up) => {
          res.writeHead(up.statusCode ?? 502, up.headers);
          up.pipe(res);
          up.on('end', resolve);
          up.on('error', () => resolve());
        },
      );
      upstream.on('error', (err) => {
        const code = (err as NodeJS.ErrnoException).code;
        const why = code === 'ECONNREFUSED' ? `dial tcp ${dialed || `${target.host}:${target.port}`}: connect: connection refused` : err.message;
        if (!res.headersSent) sendStatus(res, errors.serviceUnavailable(`error trying to reach service: ${why}`).status);
        else res.destroy();
        resolve();
      });
      req.pipe(upstream);
    });
  }

  /**
   * POST pods/{name}/eviction (policy/v1 Eviction), as kube-apiserver answers it with no
   * PodDisruptionBudget in the way: a pod that has not finished gets the DisruptionTarget condition
   * (reason EvictionByEvictionAPI) and is deleted gracefully (the Eviction's deleteOptions apply); the
   * answer is 201 with a Success Status. A Job's pod failure policy can then tell a disruption from a crash.
   */
  private async evict(r: Route, req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = parseJson(await readBody(req)) as { metadata?: { name?: string; namespace?: string }; deleteOptions?: { gracePeriodSeconds?: number } };
    const pod = this.deps.api.get(r.type, r.namespace, r.name!) as Pod;
    if (body.metadata?.name !== undefined && body.metadata.name !== r.name) throw errors.badRequest('name in URL does not match name in Eviction object');
    if (body.metadata?.namespace !== undefined && body.metadata.namespace !== r.namespace) throw errors.badRequest('namespace in URL does not match namespace in Eviction object');
    const finished = pod.status?.phase === 'Succeeded' || pod.status?.phase === 'Failed';
    if (!finished && !pod.metadata.deletionTimestamp) {
      const conditions = setCondition(pod.status?.conditions, 'DisruptionTarget', 'True', 'EvictionByEvictionAPI', 'Eviction API: evicting', { probeTime: true });
      this.deps.api.update(r.type, r.namespace, r.name!, { ...pod, status: { ...pod.status, conditions } }, { subresource: 'status', fieldManager: 'kube-apiserver' });
    }
    const grace = body.deleteOptions?.gracePeriodSeconds;
    this.deps.api.delete(r.type, r.namespace, r.name!, grace !== undefined ? { gracePeriodSeconds: grace } : {});
    send(res, 201, { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Success', code: 201 });
  }

  /** deployments/{name}/scale and replicasets/{name}/scale (autoscaling/v1 Scale). */
  private async scale(r: Route, req: IncomingMessage, res: ServerResponse, method: string): Promise<void> {
    const obj = this.deps.api.get(r.type, r.namespace, r.name!) as KubeObject & { spec: { replicas?: number; selector?: { matchLabels?: Record<string, string> } }; status?: { replicas?: number } };
    const toScale = (o: typeof obj) => ({
      kind: 'Scale',
      apiVersion: 'autoscaling/v1',
      metadata: { name: o.metadata.name, namespace: o.metadata.namespace, uid: o.metadata.uid, resourceVersion: o.metadata.resourceVersion, creationTimestamp: o.metadata.creationTimestamp },
      spec: { replicas: o.spec.replicas ?? 1 },
      status: { replicas: o.status?.replicas ?? 0, selector: Object.entries(o.spec.selector?.matchLabels ?? {}).map(([k, v]) => `${k}=${v}`).join(',') },
    });
    if (method === 'GET') return send(res, 200, toScale(obj));
    if (method !== 'PUT' && method !== 'PATCH') throw errors.methodNotAllowed();
    const body = parseJson(await readBody(req)) as { spec?: { replicas?: number } };
    const replicas = body.spec?.replicas;
    if (typeof replicas !== 'number') throw errors.badRequest('spec.replicas is required');
    const updated = this.deps.api.update(r.type, r.namespace, r.name!, { ...obj, spec: { ...obj.spec, replicas } }, { fieldManager: 'unknown' });
    send(res, 200, toScale(updated as typeof obj));
  }

  async close(): Promise<void> {
    for (const c of [...this.cleanups]) c();
    for (const w of this.watches) w.end();
    await this.listener?.stop();
  }
}
