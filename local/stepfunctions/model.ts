/**
 * Shapes of the local Step Functions engine: the same fields the Step Functions API returns
 * (DescribeExecution, ListExecutions, GetExecutionHistory), so the endpoint passes them through as they are.
 */

export type ExecutionStatus = 'RUNNING' | 'SUCCEEDED' | 'FAILED' | 'ABORTED' | 'TIMED_OUT';

export interface ExecutionDescription {
  executionArn: string;
  stateMachineArn: string;
  name: string;
  status: ExecutionStatus;
  input: string;
  output?: string;
  error?: string;
  cause?: string;
  startDate: Date;
  stopDate?: Date;
}

export interface ExecutionListItem {
  executionArn: string;
  stateMachineArn: string;
  name: string;
  status: ExecutionStatus;
  startDate: Date;
  stopDate?: Date;
}

/**
 * One GetExecutionHistory event. `type` is the AWS event type (ExecutionStarted, TaskStateEntered,
 * LambdaFunctionScheduled, TaskSubmitted, TaskSucceeded, ChoiceStateExited, ExecutionFailed, ...); exactly
 * one `*EventDetails` member goes with it, named as in the API.
 */
export interface HistoryEvent {
  id: number;
  previousEventId: number;
  timestamp: Date;
  type: string;
  executionStartedEventDetails?: { input: string; inputDetails?: { truncated: boolean }; roleArn?: string };
  executionSucceededEventDetails?: { output: string; outputDetails?: { truncated: boolean } };
  executionFailedEventDetails?: { error?: string; cause?: string };
  executionAbortedEventDetails?: { error?: string; cause?: string };
  executionTimedOutEventDetails?: { error?: string; cause?: string };
  stateEnteredEventDetails?: { name: string; input: string; inputDetails?: { truncated: boolean } };
  stateExitedEventDetails?: { name: string; output: string; outputDetails?: { truncated: boolean } };
  lambdaFunctionScheduledEventDetails?: { resource: string; input: string; timeoutInSeconds?: number };
  lambdaFunctionSucceededEventDetails?: { output: string };
  lambdaFunctionFailedEventDetails?: { error?: string; cause?: string };
  lambdaFunctionTimedOutEventDetails?: { error?: string; cause?: string };
  taskScheduledEventDetails?: { resourceType: string; resource: string; region: string; parameters: string; timeoutInSeconds?: number };
  taskStartedEventDetails?: { resourceType: string; resource: string };
  taskSubmittedEventDetails?: { resourceType: string; resource: string; output?: string };
  taskSucceededEventDetails?: { resourceType: string; resource: string; output?: string };
  taskFailedEventDetails?: { resourceType: string; resource: string; error?: string; cause?: string };
  taskTimedOutEventDetails?: { resourceType: string; resource: string; error?: string; cause?: string };
}

/** Emitted as 'event' by LocalStepFunctions for every history event, as it is recorded (for progress output). */
export interface ExecutionEvent {
  executionArn: string;
  executionName: string;
  /** Same as event.type. */
  type: string;
  /** The state the event belongs to, when it belongs to one. */
  stateName?: string;
  timestamp: Date;
  event: HistoryEvent;
}

/** An error the Step Functions API would return; `name` is its error code (ExecutionAlreadyExists, ...). */
export class SfnError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = code;
  }
}
