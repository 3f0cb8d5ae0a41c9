/**
 * Checks of what people type, run before the CLI contacts anything (Command.validate): a run name or ARN,
 * and a run request checked with the very schema Prepare applies (functions/shared/state.ts), so the CLI
 * refuses what the pipeline would refuse — with exit code 2 and the field named — instead of starting a run
 * that fails at its first step.
 */
import { executionNameProblem } from '../functions/shared/execution-name';
import { RunRequestSchema } from '../functions/shared/state';
import type { RunRequest } from '../functions/shared/types';
import { UsageError } from './io';

const EXECUTION_ARN = /^arn:aws[\w-]*:states:[a-z0-9-]+:\d{12}:execution:[^:\s]+:[^:\s]+$/;

/** A run is named by its execution name or its execution ARN. */
export function validateRunId(id: string | undefined): void {
  if (id === undefined) return;
  if (id.startsWith('arn:')) {
    if (!EXECUTION_ARN.test(id)) throw new UsageError(`"${shown(id)}" is not an execution ARN (arn:aws:states:<region>:<account>:execution:<state machine>:<run>).`);
    return;
  }
  const problem = executionNameProblem(id);
  if (problem) throw new UsageError(`"${shown(id)}" is not a run name: a run name ${problem}. \`mlpipe list\` shows the runs.`);
}

/** What the user typed, cut to fit one line of an error. */
export function shown(text: string): string {
  return text.length > 100 ? `${text.slice(0, 100)}…` : text;
}

/** How each request field is spelled on the command line, for error messages. */
const FLAG: Record<string, string> = {
  image: '<image>',
  modelName: '--model',
  dataUri: '--data-uri',
  evalDataUri: '--eval-data-uri',
  hyperparameters: '--hyperparameters',
};

/**
 * The request as Prepare will parse it (RunRequestSchema): every problem in one UsageError naming the
 * option, e.g. `<image> "NOT_A@@image": must be a container image reference like ...`.
 */
export function checkRunRequest(request: RunRequest): RunRequest {
  const parsed = RunRequestSchema.safeParse(request);
  if (parsed.success) return request;
  const problems = parsed.error.issues.map((issue) => {
    const [field, ...rest] = issue.path.map(String);
    const flag = FLAG[field ?? ''] ?? field ?? 'the request';
    const value = field !== undefined && rest.length === 0 ? (request as Record<string, unknown>)[field] : undefined;
    const where = rest.length ? `${flag} ${rest.join('.')}` : typeof value === 'string' ? `${flag} "${shown(value)}"` : flag;
    return `${where}: ${issue.message}`;
  });
  throw new UsageError(`${problems.join('; ')}.`);
}
