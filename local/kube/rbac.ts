/**
 * Authentication and authorization of the local API, as kube-apiserver with `--authorization-mode=RBAC`
 * and anonymous auth answers them (transcripts 13, 20): an unknown bearer token is 401 everywhere (even
 * /version); no token, HTTP Basic or a bare "Bearer" is `system:anonymous`, which may read only /version
 * and the health paths; the admin token may do anything (a system:masters user); a namespace-bound token
 * has what the `edit` ClusterRole gives through RoleBindings in its namespaces only — what mlpipe's EKS
 * access entry gives the pipeline's Lambdas. So a cluster-scoped call (list or create namespaces) or a
 * call in another namespace answers 403 with the real Status body, locally as on EKS.
 */
import { timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { ResourceType } from './resources';
import { KubeApiError, type StatusBody } from './status';

export interface User {
  name: string;
  /** Namespaces the user may work in (edit-like); undefined = everything (cluster admin). */
  namespaces?: ReadonlySet<string>;
}

export const ANONYMOUS: User = { name: 'system:anonymous', namespaces: new Set() };

/** Paths anyone may GET (system:public-info-viewer). */
export const PUBLIC_PATHS = new Set(['/version', '/healthz', '/livez', '/readyz']);

export class Authenticator {
  private readonly tokens: Array<{ token: Buffer; user: User }> = [];

  add(token: string, user: User): void {
    this.tokens.push({ token: Buffer.from(token), user });
  }

  /** The request's user; 401 for a bearer token nobody issued (checked before anything else, as the real one does). */
  authenticate(req: IncomingMessage): User {
    const m = /^bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '');
    if (!m) return ANONYMOUS;
    const given = Buffer.from(m[1]!);
    const found = this.tokens.find((t) => t.token.length === given.length && timingSafeEqual(t.token, given));
    if (!found) throw new KubeApiError({ kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: 'Unauthorized', reason: 'Unauthorized', code: 401 });
    return found.user;
  }
}

export interface Access {
  verb: string;
  type: ResourceType;
  /** The request's namespace; for a named Namespace object, its own name (as kube-apiserver attributes it). */
  namespace?: string;
  name?: string;
  subresource?: string;
}

/** Verbs of `edit` on read-only resources (events are recorded by controllers, not by edit users). */
const READ_VERBS = new Set(['get', 'list', 'watch']);

/** Subresources `edit` may use: logs, proxies and scale, but no status writes. */
const EDIT_SUBRESOURCES = new Set(['log', 'proxy', 'scale']);

function allowed(user: User, a: Access): boolean {
  if (!user.namespaces) return true;
  if (!a.namespace || !user.namespaces.has(a.namespace)) return false;
  if (a.type.plural === 'namespaces' || a.type.plural === 'events') return READ_VERBS.has(a.verb) && !a.subresource;
  // `edit` may evict pods (pods/eviction create), as a drain does.
  if (a.subresource === 'eviction') return a.type.plural === 'pods' && a.verb === 'create';
  if (a.subresource) return EDIT_SUBRESOURCES.has(a.subresource);
  return true;
}

/** Throws the 403 Status kube-apiserver answers when RBAC does not allow `a`. */
export function authorize(user: User, a: Access): void {
  if (allowed(user, a)) return;
  const group = a.type.group;
  const qualified = group ? `${a.type.plural}.${group}` : a.type.plural;
  const resource = a.subresource ? `${a.type.plural}/${a.subresource}` : a.type.plural;
  const where = a.namespace ? `in the namespace "${a.namespace}"` : 'at the cluster scope';
  const status: StatusBody = {
    kind: 'Status',
    apiVersion: 'v1',
    metadata: {},
    status: 'Failure',
    message: `${qualified}${a.name ? ` "${a.name}"` : ''} is forbidden: User "${user.name}" cannot ${a.verb} resource "${resource}" in API group "${group}" ${where}`,
    reason: 'Forbidden',
    details: { ...(a.name ? { name: a.name } : {}), ...(group ? { group } : {}), kind: a.type.plural },
    code: 403,
  };
  throw new KubeApiError(status);
}

/** 403 for a non-resource path (discovery) that the user may not GET. */
export function authorizePath(user: User, path: string): void {
  if (user !== ANONYMOUS) return;
  throw new KubeApiError({ kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: `forbidden: User "system:anonymous" cannot get path "${path}"`, reason: 'Forbidden', details: {}, code: 403 });
}
