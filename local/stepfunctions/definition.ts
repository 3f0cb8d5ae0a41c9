/**
 * Adapts an ASL definition to aws-local-stepfunctions 3.0.0 where the library differs from AWS:
 * - a Task without TimeoutSeconds times out after 60 s there, after 99999999 s on AWS (capped here at
 *   what a Node timer can hold);
 * - TimeoutSecondsPath is read from the effective input (after Parameters) there, from the state input
 *   on AWS. We carry the value through Parameters in a reserved field the engine strips again;
 * - `"ResultPath": "$"` (the result replaces the input, as when ResultPath is absent) sets a key named "$"
 *   there. We drop it, in states and in Catch clauses, which means the same on AWS.
 */
export const WAIT_FOR_TOKEN = 'arn:aws:states:::lambda:invoke.waitForTaskToken';
export const LAMBDA_INVOKE = 'arn:aws:states:::lambda:invoke';
export const TIMEOUT_FIELD = '__mlpipeTimeoutSeconds';
const MAX_TIMER_SECONDS = 2_147_483;

type State = Record<string, unknown> & { Type: string };
type Machine = { States: Record<string, State> } & Record<string, unknown>;

export function prepareDefinition<T>(definition: T): T {
  // A JSON round trip, not structuredClone: the library only expands objects whose prototype is this
  // realm's Object.prototype (structuredClone builds them in the main realm, which differs under jest).
  const copy = JSON.parse(JSON.stringify(definition)) as Machine;
  adaptStates(copy);
  return copy as unknown as T;
}

function adaptStates(machine: Machine): void {
  for (const state of Object.values(machine.States ?? {})) {
    if (state.ResultPath === '$') delete state.ResultPath;
    for (const catcher of (state.Catch ?? []) as Array<Record<string, unknown>>) {
      if (catcher.ResultPath === '$') delete catcher.ResultPath;
    }
    if (state.Type === 'Task') {
      const path = state.TimeoutSecondsPath;
      const params = state.Parameters;
      if (typeof path === 'string' && params && typeof params === 'object' && !Array.isArray(params)) {
        state.Parameters = { ...(params as object), [`${TIMEOUT_FIELD}.$`]: path };
        state.TimeoutSecondsPath = `$.${TIMEOUT_FIELD}`;
      } else if (state.TimeoutSeconds === undefined && path === undefined) {
        state.TimeoutSeconds = MAX_TIMER_SECONDS;
      } else if (typeof state.TimeoutSeconds === 'number' && state.TimeoutSeconds > MAX_TIMER_SECONDS) {
        state.TimeoutSeconds = MAX_TIMER_SECONDS;
      }
    }
    if (state.Type === 'Parallel' && Array.isArray(state.Branches)) {
      for (const branch of state.Branches as Machine[]) adaptStates(branch);
    }
    if (state.Type === 'Map') {
      const inner = (state.ItemProcessor ?? state.Iterator) as Machine | undefined;
      if (inner) adaptStates(inner);
    }
  }
}
