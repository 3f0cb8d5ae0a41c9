/**
 * How Kubernetes API failures become the pipeline's named errors: a transient failure (unreachable API
 * server, 5xx, 429) becomes KubernetesUnavailableError, which the state machine retries; anything else
 * (403, 404, 422, ...) becomes KubernetesRequestError with the API's own reason and message in one line.
 */
import { ApiException } from '@kubernetes/client-node';
import { KubernetesRequestError, KubernetesUnavailableError } from '../errors';

/** The fields of a metav1.Status body the messages use. */
export interface StatusBody {
  message?: string;
  reason?: string;
  code?: number;
}

/** A Status from an error body (JSON text or already parsed); plain text becomes its message. */
export function parseStatus(body: unknown): StatusBody {
  if (typeof body === 'string') {
    try {
      return JSON.parse(body) as StatusBody;
    } catch {
      return { message: body.slice(0, 300) };
    }
  }
  return (body ?? {}) as StatusBody;
}

/** Maps whatever the client threw to the named errors; `what` says which request, for the message. */
export function toKubeError(err: unknown, what: string): Error {
  if (err instanceof KubernetesUnavailableError || err instanceof KubernetesRequestError) return err;
  const code =
    err instanceof ApiException ? err.code : ((err as { statusCode?: number } | undefined)?.statusCode ?? undefined);
  if (typeof code === 'number') {
    const status = err instanceof ApiException ? parseStatus(err.body) : {};
    const detail = status.message ?? (err as Error).message.split('\n')[0];
    const text = `Kubernetes ${what} failed: HTTP ${code}${status.reason ? ` ${status.reason}` : ''}: ${detail}`;
    return code >= 500 || code === 429 ? new KubernetesUnavailableError(text) : new KubernetesRequestError(text);
  }
  const cause = (err as { cause?: { code?: string; message?: string } }).cause;
  const reason = cause?.code ?? cause?.message ?? (err as Error)?.message ?? String(err);
  return new KubernetesUnavailableError(`Kubernetes ${what} failed: cannot reach the API server (${reason}).`);
}

export function isNotFound(err: unknown): boolean {
  return err instanceof ApiException && err.code === 404;
}

/** Runs one API request and maps its failure with toKubeError. */
export async function call<T>(what: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw toKubeError(err, what);
  }
}
