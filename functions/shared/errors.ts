/**
 * Named errors. The state machine Retries and Catches on `name` (Lambda reports it as errorType), so
 * never rename one without updating statemachine/pipeline.asl.json.
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

/** Rollback was asked for but there is nothing to roll back to. */
export class RollbackError extends PipelineError {
  override readonly name = 'RollbackError';
}

/**
 * A registry record (production.json) changed under every attempt of a read-modify-write: each conditional
 * put lost to another writer. Nothing was written by the failed call; running it again is safe.
 */
export class RegistryConflictError extends PipelineError {
  override readonly name = 'RegistryConflictError';
}
