/**
 * Authentication and authorization of the local API, as kube-apiserver with `--authorization-mode=RBAC`
 * and anonymous auth answers them (transcripts 13, 20): an unknown bearer token is 401 everywhere (even
 * /version); no token, HTTP Basic or a bare "Bearer" is `system:anonymous`, which may read only /version
 * and the health paths; the admin token may do anything (a system:masters user). Other tokens get:
 * - edit-like access in their `namespaces`: what the `edit` ClusterRole gives through RoleBindings there
 *   (what mlpipe's EKS access entry with an access policy gives the pipeline's Lambdas), and
 * - what the Roles and RoleBindings stored in the API give the user, its `groups` (an EKS access entry's
 *   kubernetesGroups) and system:authenticated: a RoleBinding in the request's namespace whose subject is
 *   one of them grants its Role's rules (apiGroups, resources with `resource/subresource` and `*`, verbs,
 *   resourceNames), as pkg/registry/rbac/validation's rule matching does. ClusterRoles are not served: a
 *   RoleBinding to one is kept but grants nothing here (edit is the namespaced token above).
 * Anything else answers 403 with the real Status body, locally as on EKS.
 */
import { timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { RBAC_GROUP, type KubeObject, type ResourceType } from './resources';
import { KubeApiError, type StatusBody } from './status';

export interface User {
  name: string;
  /** Namespaces the user may work in (edit-like); undefined = everything (cluster admin). */
  namespaces?: ReadonlySet<string>;
  /** Kubernetes groups the user is in, which RoleBindings may name as subjects (kind Group). */
  groups?: readonly string[];
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

/** What `edit` allows in one of the user's namespaces (no RBAC objects: edit does not include them). */
function editAllows(namespaces: ReadonlySet<string>, a: Access): boolean {
  if (!a.namespace || !namespaces.has(a.namespace)) return false;
  if (a.type.group === RBAC_GROUP) return false;
  if (a.type.plural === 'namespaces' || a.type.plural === 'events') return READ_VERBS.has(a.verb) && !a.subresource;
  // `edit` may evict pods (pods/eviction create), as a drain does.
  if (a.subresource === 'eviction') return a.type.plural === 'pods' && a.verb === 'create';
  if (a.subresource) return EDIT_SUBRESOURCES.has(a.subresource);
  return true;
}

/** The stored objects the authorizer reads (the API's object store). */
export interface RbacObjects {
  get(resource: string, namespace: string | undefined, name: string): KubeObject | undefined;
  list(resource: string, namespace?: string): KubeObject[];
}

interface Subject {
  kind?: string;
  name?: string;
  namespace?: string;
}

export interface PolicyRule {
  apiGroups?: string[];
  resources?: string[];
  verbs?: string[];
  resourceNames?: string[];
}

/** Whether a RoleBinding's subject is the user, as rbac's appliesToUser decides it. */
function isSubject(user: User, s: Subject, bindingNamespace: string): boolean {
  switch (s.kind) {
    case 'User':
      return s.name === user.name;
    case 'Group':
      return (user.groups ?? []).includes(s.name ?? '') || s.name === (user === ANONYMOUS ? 'system:unauthenticated' : 'system:authenticated');
    case 'ServiceAccount':
      // A ServiceAccount subject without a namespace is the binding's own namespace's.
      return user.name === `system:serviceaccount:${s.namespace || bindingNamespace}:${s.name}`;
    default:
      return false;
  }
}

/** One rule against one request, as rbac's RuleAllows: `*` matches any verb, group or resource; `*\/sub` any resource's sub. */
export function ruleAllows(rule: PolicyRule, a: Access): boolean {
  const has = (list: string[] | undefined, v: string) => (list ?? []).includes('*') || (list ?? []).includes(v);
  if (!has(rule.verbs, a.verb) || !has(rule.apiGroups, a.type.group)) return false;
  const resources = rule.resources ?? [];
  const resource = a.subresource ? `${a.type.plural}/${a.subresource}` : a.type.plural;
  if (!resources.includes('*') && !resources.includes(resource) && !(a.subresource && resources.includes(`*/${a.subresource}`))) return false;
  // resourceNames narrow to named requests only: a list, or a POST create (no name yet), never matches them.
  const names = rule.resourceNames ?? [];
  return names.length === 0 || (a.name !== undefined && names.includes(a.name));
}

/**
 * Whether the RoleBindings of the request's namespace give the user `a`; `problems` collects what rbac
 * reports beside a denial (a binding to a Role that does not exist), which the 403 message carries.
 */
function rbacAllows(user: User, a: Access, objects: RbacObjects, problems: string[]): boolean {
  if (!a.namespace) return false; // only namespaced Roles are served: nothing at the cluster scope
  for (const binding of objects.list('rolebindings', a.namespace)) {
    const subjects = (binding.subjects ?? []) as Subject[];
    if (!subjects.some((s) => isSubject(user, s, a.namespace!))) continue;
    const ref = binding.roleRef as { kind?: string; name?: string };
    if (ref.kind !== 'Role') continue; // ClusterRoles are not served (see the file comment)
    const role = objects.get('roles', a.namespace, ref.name ?? '');
    if (!role) {
      problems.push(`role.${RBAC_GROUP} "${ref.name}" not found`);
      continue;
    }
    if (((role.rules ?? []) as PolicyRule[]).some((rule) => ruleAllows(rule, a))) return true;
  }
  return false;
}

/** undefined when `a` is allowed; else the authorizer's reason: RBAC gives one only for evaluation errors. */
function denial(user: User, a: Access, objects: RbacObjects): string | undefined {
  if (!user.namespaces || editAllows(user.namespaces, a)) return undefined;
  const problems: string[] = [];
  if (rbacAllows(user, a, objects, problems)) return undefined;
  return problems.length ? `RBAC: ${problems.length === 1 ? problems[0] : `[${problems.join(', ')}]`}` : '';
}

const qualifiedResource = (type: ResourceType) => (type.group ? `${type.plural}.${type.group}` : type.plural);

/** Throws the 403 Status kube-apiserver answers when RBAC does not allow `a`. */
export function authorize(user: User, a: Access, objects: RbacObjects): void {
  const reason = denial(user, a, objects);
  if (reason === undefined) return;
  const group = a.type.group;
  const resource = a.subresource ? `${a.type.plural}/${a.subresource}` : a.type.plural;
  const where = a.namespace ? `in the namespace "${a.namespace}"` : 'at the cluster scope';
  const status: StatusBody = {
    kind: 'Status',
    apiVersion: 'v1',
    metadata: {},
    status: 'Failure',
    // responsewriters.Forbidden: the attributes, then the authorizer's reason when it gave one.
    message: `${qualifiedResource(a.type)}${a.name ? ` "${a.name}"` : ''} is forbidden: User "${user.name}" cannot ${a.verb} resource "${resource}" in API group "${group}" ${where}${reason ? `: ${reason}` : ''}`,
    reason: 'Forbidden',
    details: { ...(a.name ? { name: a.name } : {}), ...(group ? { group } : {}), kind: a.type.plural },
    code: 403,
  };
  throw new KubeApiError(status);
}

/**
 * A server-side apply (PATCH) that creates its object is authorized for `create` too, WITH the object's
 * name (apiserver's withAuthorization around the create validation). Denied, it is the plain
 * NewForbidden of that resource and name with RBAC's reason (empty unless it had evaluation errors).
 */
export function authorizeCreateOnPatch(user: User, a: Access & { name: string }, objects: RbacObjects): void {
  const reason = denial(user, { ...a, verb: 'create' }, objects);
  if (reason === undefined) return;
  const group = a.type.group;
  throw new KubeApiError({
    kind: 'Status',
    apiVersion: 'v1',
    metadata: {},
    status: 'Failure',
    message: `${qualifiedResource(a.type)} "${a.name}" is forbidden: ${reason}`,
    reason: 'Forbidden',
    details: { name: a.name, ...(group ? { group } : {}), kind: a.type.plural },
    code: 403,
  });
}

/** 403 for a non-resource path (discovery) that the user may not GET. */
export function authorizePath(user: User, path: string): void {
  if (user !== ANONYMOUS) return;
  throw new KubeApiError({ kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: `forbidden: User "system:anonymous" cannot get path "${path}"`, reason: 'Forbidden', details: {}, code: 403 });
}
