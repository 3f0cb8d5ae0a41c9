/** `mlpipe approve|reject <run>`: decides a run waiting for approval, recorded with the caller's identity. */
import { decideApproval, approvalId } from '../../functions/shared/approvals';
import { ApprovalLinkError } from '../../functions/shared/errors';
import { CliError } from '../io';
import type { Command } from '../main';
import { callerIdentity } from '../identity';
import { resolveRun } from '../runs';

export const approveCommand: Command = {
  name: 'approve',
  usage: 'mlpipe approve <run> [--comment <text>]',
  summary: 'Approve a model waiting for approval (it then goes to production)',
  help: ['<run> is the execution name or ARN.', '  --comment <text>    recorded with the decision'],
  options: { comment: { type: 'string' } },
  positionals: [1, 1],
  async run({ target, args, values, io }) {
    // The same command object serves `reject`; main() dispatches by name.
    const decision = this.name === 'reject' ? 'reject' : 'approve';
    const arn = await resolveRun(target, args[0]);
    const who = await callerIdentity(target);
    try {
      const record = await decideApproval({
        id: approvalId(arn),
        decision,
        by: who,
        from: target.mode === 'aws' ? `iam:${who}` : who,
        ...(typeof values.comment === 'string' ? { comment: values.comment } : {}),
      });
      io.out(`${decision === 'approve' ? 'approved' : 'rejected'}  ${record.modelName} ${record.version} (run ${arn.split(':').pop()}) as ${who}`);
    } catch (err) {
      if (err instanceof ApprovalLinkError) {
        const hint = err.reason === 'unknown' ? ' Is the run waiting for approval? See `mlpipe status`.' : '';
        throw new CliError(`${err.message}${hint}`);
      }
      throw err;
    }
  },
};
