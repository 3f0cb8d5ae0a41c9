/**
 * The local run's Task states, from the synthesized template: each Task of the state machine's
 * definition (DefinitionString with its DefinitionSubstitutions) invokes the function its resolved ARN
 * names, and that function runs from its own bundle in the local Lambda runtime (local/lambda). Nothing
 * here knows the handlers: a state whose ARN names no function of the template fails at start.
 */
import type { TaskHandler } from './stepfunctions';
import { taskFunctions, type LocalStack } from './lambda/template';

/** Task state name → a handler that invokes the state's function (by its local ARN) through `invoke`. */
export function taskHandlersFor(stack: LocalStack, invoke: (functionArn: string, input: unknown) => Promise<unknown>): Record<string, TaskHandler> {
  return Object.fromEntries(Object.entries(taskFunctions(stack)).map(([state, fn]) => [state, (input: unknown) => invoke(fn.arn, input)]));
}
