/**
 * `mlpipe graph [run]`: the state machine as text (each state with its transitions; ⟲ marks a transition
 * back to an earlier state, i.e. a loop) or as a Mermaid flowchart, with a run's progress when given one:
 * ✓ done, ▶ current, ✗ failed.
 */
import { DescribeStateMachineCommand } from '@aws-sdk/client-sfn';
import { UsageError } from '../io';
import type { Command } from '../command';
import { describeRun, progressOf, resolveRun, runHistory, type StateProgress } from '../runs';
import { validateRunId } from '../validate';

interface AslState {
  Type: string;
  Next?: string;
  End?: boolean;
  Default?: string;
  Choices?: Array<Record<string, unknown> & { Next: string }>;
  Catch?: Array<{ ErrorEquals: string[]; Next: string }>;
}

interface Asl {
  StartAt: string;
  States: Record<string, AslState>;
}

interface Edge {
  to: string;
  label?: string;
  kind: 'next' | 'choice' | 'default' | 'catch';
}

function condition(rule: Record<string, unknown>): string {
  const variable = typeof rule.Variable === 'string' ? rule.Variable : '';
  for (const [k, v] of Object.entries(rule)) {
    if (k === 'Variable' || k === 'Next') continue;
    const op = k.replace(/Path$/, '').replace(/^(String|Numeric|Boolean|Timestamp)/, '');
    const sym = { Equals: '==', LessThan: '<', GreaterThan: '>', LessThanEquals: '<=', GreaterThanEquals: '>=', Matches: '~' }[op] ?? k;
    if (k === 'And' || k === 'Or' || k === 'Not') return k.toLowerCase() + '(...)';
    return `${variable} ${sym} ${JSON.stringify(v)}`;
  }
  return variable;
}

function edgesOf(s: AslState): Edge[] {
  const edges: Edge[] = [];
  if (s.Next) edges.push({ to: s.Next, kind: 'next' });
  for (const c of s.Choices ?? []) edges.push({ to: c.Next, kind: 'choice', label: condition(c) });
  if (s.Default) edges.push({ to: s.Default, kind: 'default', label: 'otherwise' });
  for (const c of s.Catch ?? []) edges.push({ to: c.Next, kind: 'catch', label: c.ErrorEquals.join(', ') });
  return edges;
}

/** States in the order a reader follows them: depth first along Next/Choices, error paths last. */
function order(asl: Asl): string[] {
  const seen: string[] = [];
  const visit = (name: string, includeCatch: boolean): void => {
    if (seen.includes(name) || !asl.States[name]) return;
    seen.push(name);
    for (const e of edgesOf(asl.States[name]!)) if (e.kind !== 'catch' || includeCatch) visit(e.to, includeCatch);
  };
  visit(asl.StartAt, false);
  for (const name of [...seen]) for (const e of edgesOf(asl.States[name]!)) if (e.kind === 'catch') visit(e.to, true);
  for (const name of Object.keys(asl.States)) visit(name, true);
  return seen;
}

function mark(name: string, progress?: StateProgress, running = false): string {
  if (!progress) return '';
  if (progress.failed.has(name)) return '✗ ';
  if (running && progress.current === name) return '▶ ';
  if (progress.done.has(name)) return '✓ ';
  return '  ';
}

/** A transition closes a loop when its target can come back to its source. */
function loopsBack(asl: Asl, from: string, to: string): boolean {
  const seen = new Set<string>();
  const stack = [to];
  while (stack.length) {
    const n = stack.pop()!;
    if (n === from) return true;
    if (seen.has(n) || !asl.States[n]) continue;
    seen.add(n);
    for (const e of edgesOf(asl.States[n]!)) stack.push(e.to);
  }
  return false;
}

export function renderText(asl: Asl, progress?: StateProgress, running = false): string[] {
  const names = order(asl);
  const width = Math.max(...names.map((n) => n.length));
  const lines: string[] = [];
  names.forEach((name) => {
    const s = asl.States[name]!;
    const edges = edgesOf(s);
    const back = (e: Edge): string => (names.indexOf(e.to) <= names.indexOf(name) && loopsBack(asl, name, e.to) ? ' ⟲' : '');
    const main = edges.filter((e) => e.kind !== 'catch');
    const transitions = main.length
      ? main.map((e) => (e.label ? `→ ${e.to}${back(e)} if ${e.label}` : `→ ${e.to}${back(e)}`)).join('; ').replace(' if otherwise', ' otherwise')
      : s.Type === 'Succeed' || s.Type === 'Fail' || s.End ? '(end)' : '';
    lines.push(`${mark(name, progress, running)}${name.padEnd(width)}  ${s.Type.padEnd(7)} ${transitions}`);
    const catches = edges.filter((e) => e.kind === 'catch');
    if (catches.length) lines.push(`${progress ? '  ' : ''}${''.padEnd(width)}          on error ${catches.map((e) => `${e.label} → ${e.to}`).join('; ')}`);
  });
  return lines;
}

export function renderMermaid(asl: Asl, progress?: StateProgress, running = false): string[] {
  const id = (n: string): string => n.replace(/[^A-Za-z0-9_]/g, '_');
  const lines = ['flowchart TD'];
  for (const name of order(asl)) {
    const s = asl.States[name]!;
    lines.push(`  ${id(name)}${s.Type === 'Choice' ? `{"${name}"}` : s.Type === 'Succeed' || s.Type === 'Fail' ? `(["${name}"])` : `["${name}"]`}`);
  }
  for (const name of order(asl)) {
    for (const e of edgesOf(asl.States[name]!)) {
      const label = e.label ? `|"${e.label.replace(/"/g, "'")}"|` : '';
      lines.push(`  ${id(name)} ${e.kind === 'catch' ? '-.->' : '-->'}${label} ${id(e.to)}`);
    }
  }
  if (progress) {
    lines.push('  classDef done fill:#d4edda,stroke:#28a745', '  classDef current fill:#fff3cd,stroke:#ffc107', '  classDef failed fill:#f8d7da,stroke:#dc3545');
    for (const name of order(asl)) {
      const m = mark(name, progress, running).trim();
      const cls = { '✓': 'done', '▶': 'current', '✗': 'failed' }[m];
      if (cls) lines.push(`  class ${id(name)} ${cls}`);
    }
  }
  return lines;
}

export const graphCommand: Command = {
  name: 'graph',
  usage: 'mlpipe graph [run] [--format text|mermaid]',
  summary: 'Draw the state machine, with a run\'s progress when given one',
  help: ['[run] is the run name (`mlpipe list` shows them) or its execution ARN.', 'Marks: ✓ done, ▶ current, ✗ failed; ⟲ a transition back to an earlier state (a wait loop).', '  --format text|mermaid   (default text)'],
  options: { format: { type: 'string' } },
  positionals: [0, 1],
  validate: (args) => validateRunId(args[0]),
  async run({ target, args, values, io }) {
    const format = typeof values.format === 'string' ? values.format : 'text';
    if (format !== 'text' && format !== 'mermaid') throw new UsageError('--format must be text or mermaid.');
    const { definition } = await target.sfn.send(new DescribeStateMachineCommand({ stateMachineArn: target.stateMachineArn }));
    const asl = JSON.parse(definition ?? '{}') as Asl;
    let progress: StateProgress | undefined;
    let running = false;
    if (args[0]) {
      const arn = await resolveRun(target, args[0]);
      const d = await describeRun(target, arn);
      running = d.status === 'RUNNING';
      progress = progressOf(await runHistory(target, arn));
      io.out(format === 'mermaid' ? `%% run ${d.name}: ${d.status}` : `run ${d.name}: ${d.status}`);
    }
    for (const l of format === 'mermaid' ? renderMermaid(asl, progress, running) : renderText(asl, progress, running)) io.out(l);
  },
};
