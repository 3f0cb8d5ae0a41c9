/**
 * How Kubernetes API failures become the pipeline's named errors, in one line each: a transient failure
 * (see isTransient: unreachable API server, 408/429/5xx) becomes KubernetesUnavailableError, which the
 * state machine retries; anything else (401, 403, 404, 409, 422, a rejected certificate) becomes
 * KubernetesRequestError with the API's own reason. A 422 names each invalid field and why, instead of the
 * API's message, which for an immutable field embeds a multi-kilobyte Go dump of the old object.
 */
import { isTransient, isTransientStatus, KubernetesRequestError, KubernetesUnavailableError } from '../errors';

/** The fields of a metav1.Status body the messages use. */
export interface StatusBody {
  kind?: string;
  message?: string;
  reason?: string;
  code?: number;
  details?: { name?: string; kind?: string; group?: string; causes?: StatusCause[] };
}

export interface StatusCause {
  reason?: string;
  message?: string;
  field?: string;
}

/** A Status from an error body (JSON text or already parsed); plain text becomes its message. */
export function parseStatus(body: unknown): StatusBody {
  if (typeof body === 'string') {
    if (body === '') return {};
    try {
      const parsed = JSON.parse(body) as unknown;
      return typeof parsed === 'object' && parsed !== null ? (parsed as StatusBody) : { message: body.slice(0, 300) };
    } catch {
      return { message: body.slice(0, 300) };
    }
  }
  return (body ?? {}) as StatusBody;
}

/** An answer with a status code: our transport's KubeHttpError, or client-node's ApiException (CLI). */
function httpAnswer(err: unknown): { code: number; status: StatusBody } | undefined {
  if (!(err instanceof Error)) return undefined;
  const e = err as Error & { code?: unknown; body?: unknown; status?: unknown };
  if (typeof e.code !== 'number') return undefined;
  if (typeof e.status === 'object' && e.status !== null) return { code: e.code, status: e.status as StatusBody };
  return { code: e.code, status: parseStatus(e.body) };
}

/**
 * Maps whatever a request threw to the named errors. `what` says which request (`apply Job ns/x`);
 * `subject` names the object (`Job ns/x`) and leads a 422's message.
 */
export function toKubeError(err: unknown, what: string, subject?: string): Error {
  if (err instanceof KubernetesUnavailableError || err instanceof KubernetesRequestError) return err;
  const answer = httpAnswer(err);
  if (answer) {
    const { code, status } = answer;
    if (code === 422 && status.details) {
      return new KubernetesRequestError(describeInvalid(status, subject));
    }
    const detail = oneLine(status.message ?? (err as Error).message);
    const text = `Kubernetes ${what} failed: HTTP ${code}${status.reason ? ` ${status.reason}` : ''}: ${detail}`;
    return isTransientStatus(code) ? new KubernetesUnavailableError(text) : new KubernetesRequestError(text);
  }
  const e = err as { code?: unknown; cause?: { code?: unknown; message?: unknown }; message?: unknown } | undefined;
  const code = typeof e?.code === 'string' ? e.code : typeof e?.cause?.code === 'string' ? e.cause.code : undefined;
  if (isTransient(err)) {
    const reason = code ?? (typeof e?.cause?.message === 'string' ? e.cause.message : undefined) ?? String(e?.message ?? err);
    return new KubernetesUnavailableError(`Kubernetes ${what} failed: cannot reach the API server (${reason}).`);
  }
  // A rejected certificate, a failing exec credential plugin, a bad kubeconfig: retrying will not help.
  const message = oneLine(String(e?.message ?? err));
  return new KubernetesRequestError(`Kubernetes ${what} failed: ${code && !message.includes(code) ? `${code}: ` : ''}${message}`);
}

/** Why a field cannot change, and what to do instead, by `Kind field`. */
const IMMUTABLE_WHY: Record<string, string> = {
  'Job spec.template': "a Job's pod template cannot change after creation; delete the Job or use a new version",
  'Job spec.selector': "a Job's selector cannot change after creation; delete the Job or use a new version",
  'Job spec.completions': "a Job's completions cannot change after creation; delete the Job or use a new version",
  'Job spec.completionMode': "a Job's completion mode cannot change after creation; delete the Job or use a new version",
  'Deployment spec.selector': "a Deployment's selector cannot change after creation; delete the Deployment or use a new name",
  'Service spec.clusterIP': "a Service keeps its cluster IP for life; delete the Service to get a new one",
  'Service spec.clusterIPs': "a Service keeps its cluster IPs for life; delete the Service to get new ones",
  'Service spec.ipFamilies': "a Service's IP families cannot change after creation; delete the Service to change them",
};

/** Values longer than this are elided: for a pod template it is a 5 KB Go struct dump. */
const MAX_VALUE_CHARS = 80;

/** `Job ns/x: spec.template is immutable (why; what to do)` — one line, one clause per invalid field. */
export function describeInvalid(status: StatusBody, subject?: string): string {
  const kind = status.details?.kind;
  const who = subject ?? [status.details?.kind, status.details?.name].filter(Boolean).join(' ');
  const causes = status.details?.causes ?? [];
  const clauses = causes.length > 0 ? causes.map((c) => describeCause(kind, c)) : [shorten(status.message ?? 'invalid')];
  return `${who || 'object'}: ${[...new Set(clauses)].join('; ')}`;
}

function describeCause(kind: string | undefined, cause: StatusCause): string {
  const field = cause.field ?? '(object)';
  const message = oneLine(cause.message ?? cause.reason ?? 'invalid');
  if (/: field is immutable$|^field is immutable$/.test(message)) {
    const why = IMMUTABLE_WHY[`${kind} ${field}`] ?? 'it cannot change after creation; delete the object and apply it again';
    return `${field} is immutable (${why})`;
  }
  return `${field}: ${shorten(message)}`;
}

/** `Invalid value: <huge dump>: detail` → `Invalid value (elided): detail`; other messages cut at 300. */
function shorten(message: string): string {
  const m = /^Invalid value: (.*): ([^:]+)$/s.exec(message);
  if (m && m[1]!.length > MAX_VALUE_CHARS) return `invalid value (${m[1]!.length} characters, elided): ${m[2]}`;
  return message.length > 300 ? `${message.slice(0, 300)}…` : message;
}

function oneLine(text: string): string {
  return text.replace(/\s*\n\s*/g, ' ').trim();
}

/** A 404 answer (either client). */
export function isNotFound(err: unknown): boolean {
  return httpAnswer(err)?.code === 404;
}

/** Runs one API request and maps its failure with toKubeError. */
export async function call<T>(what: string, fn: () => Promise<T>, subject?: string): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw toKubeError(err, what, subject);
  }
}
