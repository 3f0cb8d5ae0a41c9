/**
 * `mlpipe retry <run>`: continues a failed run from the step that failed, reusing its trained model (and a
 * passed evaluation), on AWS or locally. It starts a new execution of the same state machine named
 * `<run>-retry1` whose input is the failed run's plus `retryOf`; Prepare loads the failed run's record and
 * the ResumeRun Choice skips what it finished (functions/shared/resume.ts). The same checks run here
 * first, so a run that cannot be resumed is refused with the reason and nothing starts.
 */
import { NotResumableError } from '../../functions/shared/errors';
import { describePlan } from '../../functions/shared/resume';
import { assertFailed, prepareRetry, RetryExistsError, startRetry } from '../../functions/shared/retry-start';
import type { Command } from '../command';
import { callerIdentity } from '../identity';
import { CliError } from '../io';
import { describeRun, progressOf, resolveRun, runHistory, runNameOf } from '../runs';
import { validateRunId } from '../validate';

export const retryCommand: Command = {
  name: 'retry',
  usage: 'mlpipe retry <run>',
  summary: 'Continue a failed run from the step that failed, reusing its trained model',
  help: [
    '<run> is the run name (`mlpipe list` shows them) or its execution ARN; it must have ended FAILED.',
    'The retry keeps the run\'s version and trained model (no training Job runs again): it deploys staging and',
    'evaluates again, or, if the evaluation passed, goes straight to asking for approval. It runs as',
    '<run>-retry1 (a retry of that as <run>-retry2); running the command again while it runs starts nothing new.',
    'Refused, with the reason: a run still running or that succeeded, a rejected run, a run that failed before',
    'its model was trained, a run already retried.',
  ],
  options: {},
  positionals: [1, 1],
  validate: (args) => validateRunId(args[0]),
  async run({ target, args, io }) {
    const arn = await resolveRun(target, args[0]);
    const name = runNameOf(arn);
    const described = await describeRun(target, arn);
    await notResumable(async () => assertFailed({ executionArn: arn, status: described.status }));

    // The failure path carries `$.run` from Prepare on: without it, the run failed before it started.
    const run = progressOf(await runHistory(target, arn)).data?.run;
    if (!run?.version || !run.modelName) {
      throw new CliError(`Run ${name} failed before it started (its input was refused): there is nothing to resume. \`mlpipe status ${name}\` says why; start a new run.`);
    }
    const by = await callerIdentity(target);
    const retry = await notResumable(() => prepareRetry({ executionArn: arn, status: described.status, input: described.input }, run, { by }));
    const retryName = retry.name;
    const plan = retry.plan;
    let executionArn: string | undefined;
    try {
      ({ executionArn } = await startRetry(target.sfn, { ...retry, stateMachineArn: target.stateMachineArn }));
    } catch (err) {
      if (err instanceof RetryExistsError) {
        throw new CliError(`Run ${name} was already retried as ${retryName}. \`mlpipe status ${retryName}\` shows it; if it failed too, \`mlpipe retry ${retryName}\`.`);
      }
      throw err;
    }
    io.out(`retrying  ${name} as ${retryName}: ${run.modelName} ${run.version} resumes at ${plan.from}`);
    io.out(`reuses    ${describePlan(plan)}`);
    if (executionArn) io.out(`arn       ${executionArn}`);
    const link = executionArn && target.consoleLink(executionArn);
    if (link) io.out(`console   ${link}`);
    io.out(`follow    mlpipe status ${retryName}`);
  },
};

/** The shared checks' refusal (functions/shared/retry-start.ts), as the CLI reports it. */
async function notResumable<T>(check: () => Promise<T>): Promise<T> {
  try {
    return await check();
  } catch (err) {
    if (err instanceof NotResumableError) throw new CliError(err.message);
    throw err;
  }
}
