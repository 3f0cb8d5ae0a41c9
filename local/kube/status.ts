/**
 * Kubernetes `Status` bodies and the error type the local API server throws to answer with one. Messages,
 * reasons, codes and `details` follow kube-apiserver's wording so clients (and the pipeline's error
 * mapping) see the same thing they would see on a real cluster.
 */
import type { ResourceType } from './resources';

export interface StatusCause {
  reason: string;
  message: string;
  field: string;
}

export interface StatusBody {
  kind: 'Status';
  apiVersion: 'v1';
  metadata: Record<string, never>;
  status: 'Failure' | 'Success';
  message?: string;
  reason?: string;
  details?: { name?: string; group?: string; kind?: string; uid?: string; causes?: StatusCause[] };
  code: number;
}

/** Thrown anywhere in request handling; the server turns it into the Status response. */
export class KubeApiError extends Error {
  override readonly name = 'KubeApiError';
  constructor(readonly status: StatusBody) {
    super(status.message);
  }
}

function failure(code: number, reason: string, message: string, details?: StatusBody['details']): KubeApiError {
  return new KubeApiError({
    kind: 'Status',
    apiVersion: 'v1',
    metadata: {},
    status: 'Failure',
    message,
    reason,
    ...(details ? { details } : {}),
    code,
  });
}

/** `deployments.apps` for grouped resources, `pods` for the core group: how kube-apiserver names them. */
export function qualifiedName(type: ResourceType): string {
  return type.group ? `${type.plural}.${type.group}` : type.plural;
}

function detailsFor(type: ResourceType, name: string): NonNullable<StatusBody['details']> {
  return { name, ...(type.group ? { group: type.group } : {}), kind: type.plural };
}

export const errors = {
  notFound(type: ResourceType, name: string): KubeApiError {
    return failure(404, 'NotFound', `${qualifiedName(type)} "${name}" not found`, detailsFor(type, name));
  },
  alreadyExists(type: ResourceType, name: string): KubeApiError {
    return failure(409, 'AlreadyExists', `${qualifiedName(type)} "${name}" already exists`, detailsFor(type, name));
  },
  conflict(type: ResourceType, name: string): KubeApiError {
    return failure(
      409,
      'Conflict',
      `Operation cannot be fulfilled on ${qualifiedName(type)} "${name}": the object has been modified; please apply your changes to the latest version and try again`,
      detailsFor(type, name),
    );
  },
  invalid(type: ResourceType, name: string, causes: StatusCause[]): KubeApiError {
    const kind = type.group ? `${type.kind}.${type.group}` : type.kind;
    const summary = causes.map((c) => `${c.field}: ${c.message}`).join(', ');
    const list = causes.length > 1 ? `[${summary}]` : summary;
    return failure(422, 'Invalid', `${kind} "${name}" is invalid: ${list}`, {
      name,
      ...(type.group ? { group: type.group } : {}),
      kind: type.kind,
      causes,
    });
  },
  /** 422 for request options (PodLogOptions, ListOptions): the details name the options kind, no group. */
  invalidOptions(kind: string, name: string, causes: StatusCause[]): KubeApiError {
    const summary = causes.map((c) => `${c.field}: ${c.message}`).join(', ');
    return failure(422, 'Invalid', `${kind} "${name}" is invalid: ${causes.length > 1 ? `[${summary}]` : summary}`, { name, kind, causes });
  },
  forbidden(type: ResourceType, name: string, why: string): KubeApiError {
    return failure(403, 'Forbidden', `${qualifiedName(type)} "${name}" is forbidden: ${why}`, detailsFor(type, name));
  },
  badRequest(message: string): KubeApiError {
    return failure(400, 'BadRequest', message);
  },
  unauthorized(): KubeApiError {
    return failure(401, 'Unauthorized', 'Unauthorized');
  },
  methodNotAllowed(): KubeApiError {
    return failure(405, 'MethodNotAllowed', 'the server does not allow this method on the requested resource');
  },
  pathNotFound(): KubeApiError {
    return failure(404, 'NotFound', 'the server could not find the requested resource', {});
  },
  unsupportedMediaType(contentType: string): KubeApiError {
    return failure(415, 'UnsupportedMediaType', `the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml (got ${contentType})`);
  },
  serviceUnavailable(message: string): KubeApiError {
    return failure(503, 'ServiceUnavailable', message);
  },
  unprocessable(message: string): KubeApiError {
    return failure(422, 'Invalid', message);
  },
  expired(message: string): KubeApiError {
    return failure(410, 'Expired', message);
  },
};

/** Success body returned by DELETE of objects that are removed at once (everything but pods). */
export function deletedStatus(type: ResourceType, name: string, uid: string): StatusBody {
  return {
    kind: 'Status',
    apiVersion: 'v1',
    metadata: {},
    status: 'Success',
    details: { ...detailsFor(type, name), uid },
    code: 200,
  };
}

/** A cause for a field that is required but absent. */
export function required(field: string): StatusCause {
  return { reason: 'FieldValueRequired', message: 'Required value', field };
}

/** A cause for a field with a value the API refuses. */
export function invalidValue(field: string, value: unknown, why: string): StatusCause {
  return { reason: 'FieldValueInvalid', message: `Invalid value: ${JSON.stringify(value)}: ${why}`, field };
}

