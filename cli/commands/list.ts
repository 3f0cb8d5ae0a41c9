/** `mlpipe list`: recent runs, newest first, with the model and version each trains. */
import { ListExecutionsCommand, type ExecutionListItem, type ExecutionStatus } from '@aws-sdk/client-sfn';
import { UsageError } from '../io';
import type { Command } from '../command';
import { duration, runModelOf } from '../runs';
import { OUTPUT_HELP, OUTPUT_OPTION, outputFormat, printJson } from '../output';
import type { Target } from '../target';

const STATUSES = ['RUNNING', 'SUCCEEDED', 'FAILED', 'TIMED_OUT', 'ABORTED'];

/** Model and version of each run, a few at a time (one short history read each). */
async function withModels(target: Target, executions: ExecutionListItem[]): Promise<Array<{ e: ExecutionListItem; model: string | null; version: string | null }>> {
  const rows: Array<{ e: ExecutionListItem; model: string | null; version: string | null }> = [];
  for (let i = 0; i < executions.length; i += 5) {
    rows.push(...(await Promise.all(executions.slice(i, i + 5).map(async (e) => ({ e, ...(await runModelOf(target, e.executionArn!)) })))));
  }
  return rows;
}

export const listCommand: Command = {
  name: 'list',
  usage: 'mlpipe list [--status RUNNING|SUCCEEDED|FAILED|TIMED_OUT|ABORTED] [--max <n>] [-o json|text]',
  summary: 'List runs, newest first',
  help: ['  --status <status>   only runs in this status', '  --max <n>           at most n runs (default 20)', OUTPUT_HELP],
  options: { status: { type: 'string' }, max: { type: 'string' }, ...OUTPUT_OPTION },
  positionals: [0, 0],
  validate(_args, values) {
    outputFormat(values);
  },
  async run({ target, values, io }) {
    const status = typeof values.status === 'string' ? values.status.toUpperCase() : undefined;
    if (status && !STATUSES.includes(status)) throw new UsageError(`--status must be one of ${STATUSES.join(', ')}.`);
    const max = typeof values.max === 'string' ? Number(values.max) : 20;
    if (!Number.isInteger(max) || max < 1 || max > 1000) throw new UsageError('--max must be a whole number from 1 to 1000.');
    const { executions = [] } = await target.sfn.send(
      new ListExecutionsCommand({ stateMachineArn: target.stateMachineArn, maxResults: max, ...(status ? { statusFilter: status as ExecutionStatus } : {}) }),
    );
    const now = Date.now();
    const rows = (await withModels(target, executions)).map(({ e, model, version }) => {
      const started = e.startDate ?? new Date(now);
      return {
        name: e.name ?? '',
        executionArn: e.executionArn ?? '',
        status: e.status ?? '',
        model,
        version,
        startedAt: started.toISOString(),
        stoppedAt: e.stopDate?.toISOString() ?? null,
        seconds: ((e.stopDate?.getTime() ?? now) - started.getTime()) / 1000,
      };
    });
    if (outputFormat(values) === 'json') return printJson(io, rows);
    if (rows.length === 0) {
      io.out(status ? `No ${status} runs.` : 'No runs yet. Start one with `mlpipe run <image>`.');
      return;
    }
    const width = Math.max(4, ...rows.map((r) => r.name.length));
    const modelWidth = Math.max(5, ...rows.map((r) => (r.model ?? '-').length));
    const versionWidth = Math.max(7, ...rows.map((r) => (r.version ?? '-').length));
    io.out(`${'RUN'.padEnd(width)}  ${'STATUS'.padEnd(9)}  ${'MODEL'.padEnd(modelWidth)}  ${'VERSION'.padEnd(versionWidth)}  ${'STARTED'.padEnd(24)}  DURATION`);
    for (const r of rows) {
      io.out(`${r.name.padEnd(width)}  ${r.status.padEnd(9)}  ${(r.model ?? '-').padEnd(modelWidth)}  ${(r.version ?? '-').padEnd(versionWidth)}  ${r.startedAt.padEnd(24)}  ${duration(r.seconds * 1000)}`);
    }
  },
};
