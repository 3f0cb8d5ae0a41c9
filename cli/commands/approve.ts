/** `mlpipe approve|reject <run>`: decides a run waiting for approval, recorded with the caller's identity. */
import { decideApproval, approvalId } from '../../functions/shared/approvals';
import { ApprovalLinkError } from '../../functions/shared/errors';
import { CliError } from '../io';
import type { Command } from '../command';
import { callerIdentity } from '../identity';
import { describeRun, progressOf, resolveRun, runHistory, runNameOf } from '../runs';
import { validateRunId } from '../validate';

export const approveCommand: Command = {
  name: 'approve',
  usage: 'mlpipe approve <run> [--comment <text>]',
  summary: 'Approve a model waiting for approval (it then goes to production)',
  help: [
    '<run> is the run name (`mlpipe list` shows them) or its execution ARN.',
    'The decision is recorded with your identity (IAM on AWS, local:<user> locally), like a click on the email link.',
    '  --comment <text>    recorded with the decision and sent in the outcome email',
  ],
  options: { comment: { type: 'string' } },
  positionals: [1, 1],
  validate: (args) => validateRunId(args[0]),
  async run({ target, args, values, io }) {
    // The same command object serves `reject`; main() dispatches by name.
    const decision = this.name === 'reject' ? 'reject' : 'approve';
    const arn = await resolveRun(target, args[0]);
    const name = runNameOf(arn);
    // Say plainly when the run is not at the approval step, rather than that no approval record exists.
    const d = await describeRun(target, arn);
    if (d.status !== 'RUNNING') {
      const p = progressOf(await runHistory(target, arn));
      const decided = p.data?.approval ? ` (it was ${p.data.approval.decision === 'approve' ? 'approved' : 'rejected'} by ${p.data.approval.by})` : '';
      throw new CliError(`Run ${name} is not waiting for approval: it has ended, ${d.status}${decided}. \`mlpipe status ${name}\` shows how.`);
    }
    const who = await callerIdentity(target);
    try {
      const record = await decideApproval({
        id: approvalId(arn),
        decision,
        by: who,
        from: target.mode === 'aws' ? `iam:${who}` : who,
        ...(typeof values.comment === 'string' ? { comment: values.comment } : {}),
      });
      const next = decision === 'approve' ? 'the run now deploys it to production' : 'the run now ends; production is unchanged';
      io.out(`${decision === 'approve' ? 'approved' : 'rejected'}  ${record.modelName} ${record.version} as ${who}: ${next}.`);
      io.out(`follow    mlpipe status ${name}`);
    } catch (err) {
      if (err instanceof ApprovalLinkError) {
        if (err.reason === 'unknown') {
          const p = progressOf(await runHistory(target, arn));
          const where = p.current ? `it is at ${p.current}` : 'it has not asked for approval';
          throw new CliError(`Run ${name} is not waiting for approval yet: ${where}. \`mlpipe status ${name}\` says when it is.`);
        }
        throw new CliError(err.message);
      }
      throw err;
    }
  },
};
