/**
 * The state machine as a graph people can read: one model, built from the (synthesized) ASL definition,
 * that `mlpipe graph` prints (text, Mermaid, `-o json`) and the web console draws as SVG.
 *
 * Why a model of its own: drawn as is, the definition has a catch edge from nearly every Task to Cleanup
 * (sixteen of them), which buries the path a run takes. Here every `Catch` that leads into the failure path
 * (the state most catches go to, and what follows it) is FOLDED: the state is marked `catchesToFailure` and
 * one failure edge stands for all of them. A catch that only continues with the state's own `Next` (best
 * effort steps, e.g. NotifySuccess) is dropped and marked `continuesOnError`. Other catches (the approval's
 * States.Timeout) stay edges. The layout is layered: the main path (the longest way from the start to the
 * Succeed state) top to bottom in column 0, branches beside it, the failure path in a column of its own.
 */
import { z } from 'zod';

/** The part of an ASL definition the graph reads. */
const AslStateSchema = z.looseObject({
  Type: z.string(),
  Next: z.string().optional(),
  End: z.boolean().optional(),
  Default: z.string().optional(),
  Choices: z.array(z.looseObject({ Next: z.string() })).optional(),
  Catch: z.array(z.looseObject({ ErrorEquals: z.array(z.string()), Next: z.string() })).optional(),
});
export const AslSchema = z.looseObject({ StartAt: z.string(), States: z.record(z.string(), AslStateSchema) });
export type Asl = z.infer<typeof AslSchema>;
type AslState = z.infer<typeof AslStateSchema>;

export type EdgeKind = 'next' | 'choice' | 'default' | 'catch';

export interface GraphNode {
  name: string;
  type: string;
  /** Its errors go to the failure path (its catch edges are folded into the one failure edge). */
  catchesToFailure: boolean;
  /** It has a catch that just goes on with its Next: its errors do not stop the run. */
  continuesOnError: boolean;
  /** On the path from the start to the Succeed state that the layout draws straight down. */
  main: boolean;
  /** On the failure path (its entry and what follows it). */
  failure: boolean;
  /** Layout: row (0 at the top) and column (0 = the main path). */
  layer: number;
  column: number;
}

export interface GraphEdge {
  from: string;
  to: string;
  kind: EdgeKind;
  /** A choice's condition, `otherwise`, or a kept catch's error names. */
  label?: string;
  /** Goes back to a state that can reach its source: a wait loop. */
  back: boolean;
}

export interface GraphModel {
  startAt: string;
  nodes: GraphNode[];
  edges: GraphEdge[];
  /** The folded catches: every state in `from` goes to `entry` on an error. Absent when nothing catches. */
  failure?: { entry: string; from: string[] };
  layers: number;
  columns: number;
}

function condition(rule: Record<string, unknown>): string {
  const variable = typeof rule.Variable === 'string' ? rule.Variable : '';
  for (const [k, v] of Object.entries(rule)) {
    if (k === 'Variable' || k === 'Next') continue;
    if (k === 'And' || k === 'Or' || k === 'Not') return k.toLowerCase() + '(...)';
    const op = k.replace(/Path$/, '').replace(/^(String|Numeric|Boolean|Timestamp)/, '');
    const sym = { Equals: '==', LessThan: '<', GreaterThan: '>', LessThanEquals: '<=', GreaterThanEquals: '>=', Matches: '~' }[op] ?? k;
    return `${variable} ${sym} ${JSON.stringify(v)}`;
  }
  return variable;
}

/** Every transition of a state, catches included, in the definition's order. */
export function transitionsOf(s: AslState): Array<Omit<GraphEdge, 'from' | 'back'>> {
  const edges: Array<Omit<GraphEdge, 'from' | 'back'>> = [];
  if (s.Next) edges.push({ to: s.Next, kind: 'next' });
  for (const c of s.Choices ?? []) edges.push({ to: c.Next, kind: 'choice', label: condition(c) });
  if (s.Default) edges.push({ to: s.Default, kind: 'default', label: 'otherwise' });
  for (const c of s.Catch ?? []) edges.push({ to: c.Next, kind: 'catch', label: c.ErrorEquals.join(', ') });
  return edges;
}

/** Parses a definition (DescribeStateMachine's `definition`, or the ASL file) with a clear error. */
export function parseAsl(definition: string | undefined): Asl {
  let json: unknown;
  try {
    json = JSON.parse(definition ?? '');
  } catch (err) {
    throw new Error(`The state machine definition is not JSON: ${(err as Error).message}`);
  }
  const parsed = AslSchema.safeParse(json);
  if (!parsed.success) throw new Error(`The state machine definition is not ASL: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  for (const [name, s] of Object.entries(parsed.data.States)) {
    for (const e of transitionsOf(s)) if (!parsed.data.States[e.to]) throw new Error(`State ${name} goes to ${e.to}, which the definition does not have.`);
  }
  if (!parsed.data.States[parsed.data.StartAt]) throw new Error(`StartAt names ${parsed.data.StartAt}, which the definition does not have.`);
  return parsed.data;
}

export function buildGraph(asl: Asl): GraphModel {
  const names = Object.keys(asl.States);
  const state = (n: string): AslState => asl.States[n]!;

  // The failure path's entry: the state the most catches lead to (ties: the first in the definition).
  const catchTargets = new Map<string, number>();
  for (const n of names) for (const c of state(n).Catch ?? []) if (c.Next !== state(n).Next) catchTargets.set(c.Next, (catchTargets.get(c.Next) ?? 0) + 1);
  const entry = [...catchTargets.entries()].sort((a, b) => b[1] - a[1])[0]?.[0];
  const failurePath = new Set<string>();
  if (entry) {
    const stack = [entry];
    while (stack.length) {
      const n = stack.pop()!;
      if (failurePath.has(n)) continue;
      failurePath.add(n);
      for (const e of transitionsOf(state(n))) stack.push(e.to);
    }
  }

  const catchers: string[] = [];
  const continuing = new Set<string>();
  const raw: Array<Omit<GraphEdge, 'back'>> = [];
  for (const n of names) {
    const s = state(n);
    for (const e of transitionsOf(s)) {
      if (e.kind === 'catch' && e.to === s.Next) {
        continuing.add(n);
        continue;
      }
      // Inside the failure path a catch is its own best effort (Cleanup → RecordFailure); elsewhere, folded.
      if (e.kind === 'catch' && e.to === entry && !failurePath.has(n)) {
        if (!catchers.includes(n)) catchers.push(n);
        continue;
      }
      if (raw.some((r) => r.from === n && r.to === e.to && r.kind === e.kind)) continue;
      raw.push({ from: n, ...e });
    }
  }

  // Back edges: depth first from the start, an edge to a state on the current path closes a loop.
  const back = new Set<string>();
  const key = (from: string, to: string) => `${from}\u0000${to}`;
  const onPath = new Set<string>();
  const visited = new Set<string>();
  const visit = (n: string): void => {
    visited.add(n);
    onPath.add(n);
    for (const e of raw.filter((r) => r.from === n)) {
      if (onPath.has(e.to)) back.add(key(n, e.to));
      else if (!visited.has(e.to)) visit(e.to);
    }
    onPath.delete(n);
  };
  visit(asl.StartAt);
  for (const n of names) if (!visited.has(n)) visit(n);
  const edges: GraphEdge[] = raw.map((e) => ({ ...e, back: back.has(key(e.from, e.to)) }));
  const forward = edges.filter((e) => !e.back);

  // Layers: the longest forward distance from a source (Kahn's order over the forward edges).
  const layer = new Map<string, number>(names.map((n) => [n, 0]));
  const best = new Map<string, string>(); // the predecessor on the longest way in
  const indegree = new Map<string, number>(names.map((n) => [n, forward.filter((e) => e.to === n).length]));
  const queue = names.filter((n) => indegree.get(n) === 0);
  // The start first, so that a tie keeps it at the top.
  queue.sort((a, b) => Number(b === asl.StartAt) - Number(a === asl.StartAt));
  while (queue.length) {
    const n = queue.shift()!;
    for (const e of forward.filter((f) => f.from === n)) {
      if (layer.get(n)! + 1 > layer.get(e.to)!) {
        layer.set(e.to, layer.get(n)! + 1);
        best.set(e.to, n);
      }
      indegree.set(e.to, indegree.get(e.to)! - 1);
      if (indegree.get(e.to) === 0) queue.push(e.to);
    }
  }

  // The main path: back from the deepest Succeed state (else the deepest end state) along the longest way in.
  const ends = names.filter((n) => state(n).Type === 'Succeed');
  const candidates = ends.length ? ends : names.filter((n) => !failurePath.has(n) && !forward.some((e) => e.from === n));
  const goal = candidates.sort((a, b) => layer.get(b)! - layer.get(a)!)[0];
  const main = new Set<string>();
  for (let n: string | undefined = goal; n !== undefined; n = best.get(n)) main.add(n);

  // Columns: the main path in 0; per layer, the others in the next free columns; the failure path to the right of all.
  const column = new Map<string, number>();
  const used = new Map<number, number>();
  for (const n of main) column.set(n, 0);
  const byLayer = names.filter((n) => !main.has(n) && !failurePath.has(n)).sort((a, b) => layer.get(a)! - layer.get(b)!);
  for (const n of byLayer) {
    const l = layer.get(n)!;
    const c = (used.get(l) ?? 0) + 1;
    used.set(l, c);
    column.set(n, c);
  }
  // Beside whatever shares its rows, so it stays close to the main path.
  const failureColumn = Math.max(0, ...[...failurePath].map((n) => used.get(layer.get(n)!) ?? 0)) + 1;
  for (const n of failurePath) column.set(n, failureColumn);

  const nodes: GraphNode[] = names.map((n) => ({
    name: n,
    type: state(n).Type,
    catchesToFailure: catchers.includes(n),
    continuesOnError: continuing.has(n),
    main: main.has(n),
    failure: failurePath.has(n),
    layer: layer.get(n)!,
    column: column.get(n)!,
  }));
  return {
    startAt: asl.StartAt,
    nodes,
    edges,
    ...(entry && catchers.length ? { failure: { entry, from: catchers } } : {}),
    layers: Math.max(...nodes.map((n) => n.layer)) + 1,
    columns: Math.max(...nodes.map((n) => n.column)) + 1,
  };
}

/** How far a run got in each state, for colouring: what `progressOf` and the run view know. */
export type StateMark = 'done' | 'current' | 'failed';

export interface NodeProgress {
  mark: StateMark;
  /** Time spent in the state over all its visits. */
  seconds?: number;
  visits?: number;
}

/** Mermaid flowchart of the model: one dashed failure edge from a stand-in for the states that catch. */
export function renderMermaid(g: GraphModel, progress?: Record<string, NodeProgress>): string[] {
  const id = (n: string): string => n.replace(/[^A-Za-z0-9_]/g, '_');
  const lines = ['flowchart TD'];
  const byLayer = [...g.nodes].sort((a, b) => a.layer - b.layer || a.column - b.column);
  for (const n of byLayer) {
    const label = `${n.name}${n.catchesToFailure ? ' ⚠' : ''}`;
    lines.push(`  ${id(n.name)}${n.type === 'Choice' ? `{"${label}"}` : n.type === 'Succeed' || n.type === 'Fail' ? `(["${label}"])` : `["${label}"]`}`);
  }
  for (const e of g.edges) {
    const label = e.label ? `|"${e.label.replace(/"/g, "'")}"|` : '';
    lines.push(`  ${id(e.from)} ${e.kind === 'catch' ? '-.->' : '-->'}${label} ${id(e.to)}`);
  }
  if (g.failure) {
    lines.push(`  anyError(["an error in any ⚠ state (${g.failure.from.length})"])`, `  anyError -.-> ${id(g.failure.entry)}`);
  }
  if (progress) {
    lines.push('  classDef done fill:#d4edda,stroke:#28a745', '  classDef current fill:#fff3cd,stroke:#ffc107', '  classDef failed fill:#f8d7da,stroke:#dc3545');
    for (const n of byLayer) {
      const p = progress[n.name];
      if (p) lines.push(`  class ${id(n.name)} ${p.mark}`);
    }
  }
  return lines;
}
