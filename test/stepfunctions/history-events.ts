/**
 * Waiting for a local execution to reach a point, by its history events (LocalStepFunctions emits each one
 * as it is recorded), instead of polling on a timer: the wait ends the moment the event is recorded, and
 * fails at once, with the execution's error, if the execution ends without it.
 */
import type { LocalStepFunctions } from '../../local/stepfunctions';
import type { ExecutionEvent, HistoryEvent } from '../../local/stepfunctions/model';

const ENDED = new Set(['ExecutionSucceeded', 'ExecutionFailed', 'ExecutionAborted', 'ExecutionTimedOut']);

export class HistoryEventNotReachedError extends Error {
  override name = 'HistoryEventNotReachedError';
}

/**
 * Resolves with the first history event of `executionArn` that `match` accepts, recorded already or later.
 * `stateName` is the state the event belongs to (when it belongs to one).
 */
export function historyEvent(
  sfn: LocalStepFunctions,
  executionArn: string,
  match: (event: HistoryEvent, stateName: string | undefined) => boolean,
  what: string,
): Promise<HistoryEvent> {
  return new Promise((resolve, reject) => {
    const ended = (): void => {
      const d = sfn.describeExecution(executionArn);
      reject(new HistoryEventNotReachedError(`${executionArn} ended ${d.status} before ${what}: ${d.error ?? ''} ${d.cause ?? ''}`.trim()));
    };
    /** True when the wait is over (matched, or the execution ended without a match). */
    const settles = (event: HistoryEvent, stateName: string | undefined): boolean => {
      if (match(event, stateName)) resolve(event);
      else if (ENDED.has(event.type)) ended();
      else return false;
      return true;
    };
    // The history so far, each event with the state whose *StateEntered it follows. Reading it and
    // subscribing below happen in one synchronous stretch: the engine records nothing in between.
    let state: string | undefined;
    let nextToken: string | undefined;
    do {
      const page = sfn.getExecutionHistory(executionArn, { maxResults: 1000, ...(nextToken ? { nextToken } : {}) });
      for (const event of page.events) {
        state = event.stateEnteredEventDetails?.name ?? state;
        if (settles(event, state)) return;
      }
      nextToken = page.nextToken;
    } while (nextToken);
    const listener = (e: ExecutionEvent): void => {
      if (e.executionArn === executionArn && settles(e.event, e.stateName)) sfn.off('event', listener);
    };
    sfn.on('event', listener);
  });
}

/** The execution has submitted the task of `stateName` (a waitForTaskToken task now waits for its token). */
export function taskSubmitted(sfn: LocalStepFunctions, executionArn: string, stateName: string): Promise<HistoryEvent> {
  return historyEvent(sfn, executionArn, (e, s) => e.type === 'TaskSubmitted' && s === stateName, `${stateName} was submitted`);
}
