/**
 * `mlpipe retry <run>`: continues a failed run from the step that failed, reusing its trained model (and a
 * passed evaluation), on AWS or locally. It starts a new execution of the same state machine named
 * `<run>-retry1` whose input is the failed run's plus `retryOf`; Prepare loads the failed run's record and
 * the ResumeRun Choice skips what it finished (functions/shared/resume.ts). The same checks run here
 * first, so a run that cannot be resumed is refused with the reason and nothing starts.
 */
import { StartExecutionCommand } from '@aws-sdk/client-sfn';
import { NotResumableError } from '../../functions/shared/errors';
import { describePlan, loadResume, retryRunName } from '../../functions/shared/resume';
import type { Command } from '../command';
import { callerIdentity } from '../identity';
import { CliError } from '../io';
import { describeRun, progressOf, resolveRun, runHistory, runNameOf } from '../runs';
import { validateRunId } from '../validate';

/** Why a run that did not end FAILED cannot be retried. */
const NOT_FAILED: Record<string, string> = {
  RUNNING: 'it is still running',
  PENDING_REDRIVE: 'it is being redriven',
  SUCCEEDED: 'it succeeded',
  ABORTED: 'it was stopped (ABORTED) before it recorded how far it got; start a new run',
  TIMED_OUT: 'it timed out before it recorded how far it got; start a new run',
};

function parseInput(text: string | undefined, name: string): Record<string, unknown> {
  try {
    const v = JSON.parse(text ?? '{}') as unknown;
    if (v && typeof v === 'object' && !Array.isArray(v)) return v as Record<string, unknown>;
  } catch {
    // reported below
  }
  throw new CliError(`Run ${name} was started with an input that is not a run request: there is nothing to resume.`);
}

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
    const status = described.status ?? 'UNKNOWN';
    if (status !== 'FAILED') throw new CliError(`Run ${name} cannot be retried: ${NOT_FAILED[status] ?? `it is ${status}`}. Only a failed run can be.`);

    // The failure path carries `$.run` from Prepare on: without it, the run failed before it started.
    const run = progressOf(await runHistory(target, arn)).data?.run;
    if (!run?.version || !run.modelName) {
      throw new CliError(`Run ${name} failed before it started (its input was refused): there is nothing to resume. \`mlpipe status ${name}\` says why; start a new run.`);
    }
    const input = parseInput(described.input, name);
    const retryOf = { executionArn: arn, modelName: run.modelName, version: run.version };
    let plan;
    try {
      plan = (await loadResume(retryOf, typeof input.image === 'string' ? input.image : run.image)).plan;
    } catch (err) {
      if (err instanceof NotResumableError) throw new CliError(err.message);
      throw err;
    }

    // The failed run's own request (Prepare checked it then and checks it again), naming what it continues.
    const request = { ...input, retryOf, trigger: { source: 'retry', detail: { by: await callerIdentity(target), run: name } } };
    const retryName = retryRunName(name);
    let executionArn: string | undefined;
    try {
      ({ executionArn } = await target.sfn.send(
        new StartExecutionCommand({ stateMachineArn: target.stateMachineArn, name: retryName, input: JSON.stringify(request) }),
      ));
    } catch (err) {
      if ((err as Error).name === 'ExecutionAlreadyExists') {
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
