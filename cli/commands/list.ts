/** `mlpipe list`: recent runs, newest first. */
import { ListExecutionsCommand, type ExecutionStatus } from '@aws-sdk/client-sfn';
import { UsageError } from '../io';
import type { Command } from '../command';
import { duration } from '../runs';

const STATUSES = ['RUNNING', 'SUCCEEDED', 'FAILED', 'TIMED_OUT', 'ABORTED'];

export const listCommand: Command = {
  name: 'list',
  usage: 'mlpipe list [--status RUNNING|SUCCEEDED|FAILED|TIMED_OUT|ABORTED] [--max <n>]',
  summary: 'List runs, newest first',
  help: ['  --status <status>   only runs in this status', '  --max <n>           at most n runs (default 20)'],
  options: { status: { type: 'string' }, max: { type: 'string' } },
  positionals: [0, 0],
  async run({ target, values, io }) {
    const status = typeof values.status === 'string' ? values.status.toUpperCase() : undefined;
    if (status && !STATUSES.includes(status)) throw new UsageError(`--status must be one of ${STATUSES.join(', ')}.`);
    const max = typeof values.max === 'string' ? Number(values.max) : 20;
    if (!Number.isInteger(max) || max < 1 || max > 1000) throw new UsageError('--max must be a whole number from 1 to 1000.');
    const { executions = [] } = await target.sfn.send(
      new ListExecutionsCommand({ stateMachineArn: target.stateMachineArn, maxResults: max, ...(status ? { statusFilter: status as ExecutionStatus } : {}) }),
    );
    if (executions.length === 0) {
      io.out(status ? `No ${status} runs.` : 'No runs yet. Start one with `mlpipe run <image>`.');
      return;
    }
    const width = Math.max(4, ...executions.map((e) => (e.name ?? '').length));
    io.out(`${'RUN'.padEnd(width)}  ${'STATUS'.padEnd(9)}  ${'STARTED'.padEnd(24)}  DURATION`);
    for (const e of executions) {
      const started = e.startDate ?? new Date();
      const took = duration((e.stopDate ?? new Date()).getTime() - started.getTime());
      io.out(`${(e.name ?? '').padEnd(width)}  ${(e.status ?? '').padEnd(9)}  ${started.toISOString().padEnd(24)}  ${took}`);
    }
  },
};
