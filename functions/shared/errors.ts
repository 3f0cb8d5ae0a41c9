/**
 * Named errors, and the one rule for which failures are transient. The state machine Retries and Catches
 * on `name` (Lambda reports it as errorType), so never rename one without updating
 * statemachine/pipeline.asl.json.
 */

abstract class PipelineError extends Error {
  abstract override readonly name: string;
}

/** Execution input, an event or a request failed validation; the message names the field. */
export class InvalidInputError extends PipelineError {
  override readonly name = 'InvalidInputError';
}

/** A required setting is missing or malformed; the message names the variable. */
export class ConfigurationError extends PipelineError {
  override readonly name = 'ConfigurationError';
}

/** The Kubernetes API could not be reached or answered 5xx/429: transient, retried by the state machine. */
export class KubernetesUnavailableError extends PipelineError {
  override readonly name = 'KubernetesUnavailableError';
}

/** The Kubernetes API refused a request for a reason retrying will not fix (403, 422, ...). */
export class KubernetesRequestError extends PipelineError {
  override readonly name = 'KubernetesRequestError';
}

/** S3 could not be reached or throttled: transient. */
export class S3UnavailableError extends PipelineError {
  override readonly name = 'S3UnavailableError';
}

/** The training Job failed (BackoffLimitExceeded, ImagePullBackOff, ...); the message has the pod's log tail. */
export class TrainingFailedError extends PipelineError {
  override readonly name = 'TrainingFailedError';
}

/** A Deployment failed to roll out (ProgressDeadlineExceeded, CrashLoopBackOff, ImagePullBackOff, ...). */
export class RolloutFailedError extends PipelineError {
  override readonly name = 'RolloutFailedError';
}

/** A LoadBalancer endpoint never answered the model's health check in time. */
export class EndpointUnavailableError extends PipelineError {
  override readonly name = 'EndpointUnavailableError';
}

/** A phase ran past its overall deadline (training, rollout, endpoint). */
export class PhaseTimeoutError extends PipelineError {
  override readonly name = 'PhaseTimeoutError';
}

/** The evaluation could not be carried out at all (no data, server unreachable): not a gate failure. */
export class EvaluationError extends PipelineError {
  override readonly name = 'EvaluationError';
}

/** An approval link is forged, expired, already decided, or names an unknown request. */
export class ApprovalLinkError extends PipelineError {
  override readonly name = 'ApprovalLinkError';
  constructor(
    message: string,
    readonly reason: 'forged' | 'expired' | 'decided' | 'unknown' | 'malformed',
  ) {
    super(message);
  }
}

/** A canary cannot go on: the stable version's Deployment is gone, or the split cannot be made. */
export class CanaryError extends PipelineError {
  override readonly name = 'CanaryError';
}

/** A retry link (retry-link.ts) that is not well-formed, not signed by this pipeline, or past its expiry. */
export class RetryLinkError extends PipelineError {
  override readonly name = 'RetryLinkError';
  constructor(
    message: string,
    readonly reason: 'forged' | 'expired' | 'malformed',
  ) {
    super(message);
  }
}

/** Rollback was asked for but there is nothing to roll back to. */
export class RollbackError extends PipelineError {
  override readonly name = 'RollbackError';
}

/**
 * A failed run cannot be resumed: it never started, it was released or rejected, its model was never
 * trained (or its files are gone), or a later retry superseded it. The message says why and what to do.
 */
export class NotResumableError extends PipelineError {
  override readonly name = 'NotResumableError';
}

/**
 * A registry record (production.json) changed under every attempt of a read-modify-write: each conditional
 * put lost to another writer. Nothing was written by the failed call; running it again is safe.
 */
export class RegistryConflictError extends PipelineError {
  override readonly name = 'RegistryConflictError';
}

// ---------------------------------------------------------------------------------------------------
// Transient or not: one classifier for the Kubernetes error mapping, the AWS SDK call sites and the starter.

/**
 * Error codes of a request that never got an answer (Node's net/dns, undici's fetch) and may well get
 * one if sent again: refused or reset connections, timeouts, DNS hiccups, a socket closed mid-answer.
 */
const TRANSIENT_NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ENETUNREACH',
  'EHOSTUNREACH',
  'ENETDOWN',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'UND_ERR_CLOSED',
  'ERR_STREAM_PREMATURE_CLOSE',
]);

/**
 * AWS error names that mean "try again later" (the SDK's own throttling and transient lists, plus S3's
 * SlowDown), for errors whose HTTP status alone does not say it (e.g. a 400 ThrottlingException).
 */
const TRANSIENT_AWS_NAMES = new Set([
  'Throttling',
  'ThrottlingException',
  'ThrottledException',
  'TooManyRequestsException',
  'RequestThrottled',
  'RequestThrottledException',
  'RequestLimitExceeded',
  'ProvisionedThroughputExceededException',
  'TransactionInProgressException',
  'BandwidthLimitExceeded',
  'LimitExceededException',
  'PriorRequestNotComplete',
  'EC2ThrottledException',
  'SlowDown',
  'ServiceUnavailable',
  'ServiceUnavailableException',
  'InternalFailure',
  'InternalError',
  'InternalServerError',
  'InternalServerException',
  'RequestTimeout',
  'RequestTimeoutException',
  'TimeoutError',
]);

/** An HTTP status worth retrying: 408 (request timeout), 429 (throttled) and every 5xx. */
export function isTransientStatus(status: number): boolean {
  return status === 408 || status === 429 || (status >= 500 && status <= 599);
}

interface ErrorShape {
  name?: unknown;
  code?: unknown;
  status?: unknown;
  statusCode?: unknown;
  $metadata?: { httpStatusCode?: unknown };
  $retryable?: unknown;
  cause?: unknown;
}

/** The HTTP status an error carries, whichever client threw it (AWS SDK, client-node, our own). */
export function httpStatusOf(err: unknown): number | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const e = err as ErrorShape;
  for (const v of [e.$metadata?.httpStatusCode, e.statusCode, e.status, e.code]) {
    if (typeof v === 'number' && v >= 100 && v <= 599) return v;
  }
  return undefined;
}

/**
 * Whether sending the same request again may succeed: network failures without an answer (also when
 * wrapped as a fetch `cause`), HTTP 408/429/5xx, AWS throttling and transient error names or
 * `$retryable`, and our own *Unavailable errors. Anything else (4xx, validation, programming errors) is
 * permanent: retrying only delays the failure.
 */
export function isTransient(err: unknown): boolean {
  if (err instanceof KubernetesUnavailableError || err instanceof S3UnavailableError) return true;
  if (err instanceof PipelineError) return false;
  if (typeof err !== 'object' || err === null) return false;
  const e = err as ErrorShape;
  const status = httpStatusOf(err);
  if (status !== undefined && isTransientStatus(status)) return true;
  if (e.$retryable !== undefined && e.$retryable !== null && e.$retryable !== false) return true;
  if (typeof e.name === 'string' && TRANSIENT_AWS_NAMES.has(e.name)) return true;
  if (typeof e.code === 'string' && TRANSIENT_NETWORK_CODES.has(e.code)) return true;
  // fetch wraps the socket error: TypeError('fetch failed', { cause: { code: 'ECONNREFUSED' } }).
  if (e.cause !== undefined && e.cause !== err && status === undefined) return isTransient(e.cause);
  return false;
}
