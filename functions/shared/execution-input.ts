/**
 * The limits on an execution's input, in one place: the size Step Functions accepts (StartExecution's
 * `input`, 262,144 bytes of UTF-8), the nesting the local engine can run, and the nesting Prepare accepts
 * for a run request. The local Step Functions engine refuses what AWS would refuse at StartExecution;
 * Prepare refuses the rest with an InvalidInputError, so the run ends with a failure email naming it.
 */

/** StartExecution's `input`: "Length constraints apply to the payload size, and are expressed as bytes in UTF-8 encoding." */
export const MAX_EXECUTION_INPUT_BYTES = 262_144;

/**
 * Nesting the local engine runs: aws-local-stepfunctions copies and queries the input recursively, and a
 * stack overflow there would end the execution with no email. (AWS documents no nesting limit; its JSON
 * parser's default, Jackson's, is 1,000 levels.)
 */
export const MAX_ENGINE_INPUT_DEPTH = 1_000;

/**
 * Nesting Prepare accepts. A run request is at most 4 levels deep (`trigger.detail.<key>`); 32 leaves room
 * for a trigger's detail while refusing input no later state should have to carry.
 */
export const MAX_RUN_REQUEST_DEPTH = 32;

/**
 * How deeply `value` nests: 0 for a scalar, 1 for `{}` or `[1]`, 2 for `{"a": {}}`. Iterative, so it
 * answers for input too deep to walk recursively.
 */
export function nestingDepth(value: unknown): number {
  let deepest = 0;
  const pending: Array<{ value: unknown; depth: number }> = [{ value, depth: 0 }];
  for (let next = pending.pop(); next; next = pending.pop()) {
    if (typeof next.value !== 'object' || next.value === null) continue;
    const depth = next.depth + 1;
    if (depth > deepest) deepest = depth;
    for (const child of Object.values(next.value)) {
      if (typeof child === 'object' && child !== null) pending.push({ value: child, depth });
    }
  }
  return deepest;
}

/** What JSON value this is, in a user's words ("an array", "null", "a string"). */
export function jsonKind(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'object') return 'an object';
  return `a ${typeof value}`;
}
