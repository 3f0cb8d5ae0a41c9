/**
 * `mlpipe graph [run]`: the state machine (cli/graph-model.ts: catch edges folded into one failure path)
 * as text (each state with its transitions; ⟲ marks a transition back to an earlier state, i.e. a loop),
 * as a Mermaid flowchart, or as the graph model in JSON (`-o json`, with the layout the console draws),
 * with a run's progress when given one: ✓ done, ▶ current, ✗ failed.
 */
import { DescribeStateMachineCommand } from '@aws-sdk/client-sfn';
import { UsageError } from '../io';
import type { Command } from '../command';
import { buildGraph, parseAsl, renderMermaid, type GraphModel, type NodeProgress } from '../graph-model';
import { OUTPUT_HELP, OUTPUT_OPTION, outputFormat, printJson } from '../output';
import { describeRun, progressOf, resolveRun, runHistory, type StateProgress } from '../runs';
import { validateRunId } from '../validate';

/** The marks of `progressOf` as the graph model's per-state progress. */
export function marksOf(progress: StateProgress, running: boolean): Record<string, NodeProgress> {
  const marks: Record<string, NodeProgress> = {};
  for (const name of progress.done) marks[name] = { mark: 'done' };
  if (running && progress.current) marks[progress.current] = { mark: 'current' };
  for (const name of progress.failed) marks[name] = { mark: 'failed' };
  return marks;
}

const SYMBOL = { done: '✓ ', current: '▶ ', failed: '✗ ' } as const;

export function renderText(g: GraphModel, progress?: Record<string, NodeProgress>): string[] {
  const nodes = [...g.nodes].sort((a, b) => a.layer - b.layer || a.column - b.column);
  const width = Math.max(...nodes.map((n) => n.name.length + (n.catchesToFailure ? 2 : 0)));
  const lines: string[] = [];
  for (const n of nodes) {
    const out = g.edges.filter((e) => e.from === n.name);
    const main = out.filter((e) => e.kind !== 'catch');
    const back = (to: string): string => (g.edges.some((e) => e.from === n.name && e.to === to && e.back) ? ' ⟲' : '');
    const transitions = main.length
      ? main.map((e) => (e.label ? `→ ${e.to}${back(e.to)} if ${e.label}` : `→ ${e.to}${back(e.to)}`)).join('; ').replace(' if otherwise', ' otherwise')
      : n.type === 'Succeed' || n.type === 'Fail' ? '(end)' : '';
    const mark = progress ? (SYMBOL[progress[n.name]?.mark as keyof typeof SYMBOL] ?? '  ') : '';
    const name = `${n.name}${n.catchesToFailure ? ' ⚠' : ''}`;
    lines.push(`${mark}${name.padEnd(width)}  ${n.type.padEnd(7)} ${transitions}`);
    const catches = out.filter((e) => e.kind === 'catch');
    if (catches.length) lines.push(`${progress ? '  ' : ''}${''.padEnd(width)}          on error ${catches.map((e) => `${e.label} → ${e.to}`).join('; ')}`);
  }
  if (g.failure) lines.push('', `⚠ on an error, each of these ${g.failure.from.length} states goes to ${g.failure.entry}.`);
  return lines;
}

export const graphCommand: Command = {
  name: 'graph',
  usage: 'mlpipe graph [run] [--format text|mermaid] [-o json]',
  summary: 'Draw the state machine, with a run\'s progress when given one',
  help: [
    '[run] is the run name (`mlpipe list` shows them) or its execution ARN.',
    'Marks: ✓ done, ▶ current, ✗ failed; ⟲ a transition back to an earlier state (a wait loop);',
    '⚠ a state whose errors go to the failure path (its catches drawn as one edge).',
    '  --format text|mermaid   (default text)',
    OUTPUT_HELP.replace('one JSON document', 'the graph model (states with layout, transitions, the folded failure path) and the run\'s marks'),
  ],
  options: { format: { type: 'string' }, ...OUTPUT_OPTION },
  positionals: [0, 1],
  validate: (args, values) => {
    validateRunId(args[0]);
    outputFormat(values);
    if (values.format !== undefined && values.format !== 'text' && values.format !== 'mermaid') throw new UsageError('--format must be text or mermaid.');
  },
  async run({ target, args, values, io }) {
    const json = outputFormat(values) === 'json';
    const { definition } = await target.sfn.send(new DescribeStateMachineCommand({ stateMachineArn: target.stateMachineArn }));
    const graph = buildGraph(parseAsl(definition));
    let progress: Record<string, NodeProgress> | undefined;
    let run: { name: string; status: string } | undefined;
    if (args[0]) {
      const arn = await resolveRun(target, args[0]);
      const d = await describeRun(target, arn);
      run = { name: d.name ?? args[0], status: d.status ?? 'UNKNOWN' };
      progress = marksOf(progressOf(await runHistory(target, arn)), d.status === 'RUNNING');
    }
    if (json) return printJson(io, { ...graph, ...(run ? { run: { ...run, states: progress } } : {}) });
    if (values.format === 'mermaid') {
      if (run) io.out(`%% run ${run.name}: ${run.status}`);
      for (const l of renderMermaid(graph, progress)) io.out(l);
      return;
    }
    if (run) io.out(`run ${run.name}: ${run.status}`);
    for (const l of renderText(graph, progress)) io.out(l);
  },
};
