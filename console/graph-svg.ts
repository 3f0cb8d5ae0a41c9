/**
 * The state machine graph (cli/graph-model.ts) as an SVG for the console's run page: boxes at the model's
 * layered positions (main path straight down, branches beside it, the failure path on its own column),
 * coloured by a run's progress, each with the time the run spent in it. The folded catches are drawn once:
 * a ⚠ on each state whose errors go to the failure path, and one dashed edge into it.
 * Every name is escaped: the definition comes from the deployed stack.
 */
import type { GraphEdge, GraphModel, GraphNode, NodeProgress } from '../cli/graph-model';
import { escapeHtml } from './html';

const W = 200; // node width
const H = 38; // node height
const COL = 250; // column pitch
const ROW = 52; // row pitch
const LEFT = 90; // room for the loops and skips drawn left of the main path
const TOP = 16;

const x = (n: GraphNode) => LEFT + n.column * COL;
const y = (n: GraphNode) => TOP + n.layer * ROW;

export function seconds(s: number): string {
  if (s < 10) return `${s.toFixed(1)} s`;
  if (s < 120) return `${Math.round(s)} s`;
  const m = Math.floor(s / 60);
  return m < 60 ? `${m} min ${Math.round(s % 60)} s` : `${Math.floor(m / 60)} h ${m % 60} min`;
}

function edgePath(a: GraphNode, b: GraphNode, e: GraphEdge, lane: number): string {
  const [ax, ay, bx, by] = [x(a), y(a), x(b), y(b)];
  if (a.column === b.column && b.layer === a.layer + 1) return `M${ax + W / 2},${ay + H} L${bx + W / 2},${by}`;
  if (a.column === b.column) {
    // A loop back or a skip down the same column: around its left side (the main path) or right side.
    const left = a.column === 0;
    const side = left ? ax : ax + W;
    const off = (left ? -1 : 1) * (18 + 12 * lane);
    return `M${side},${ay + H / 2} C${side + off * 2},${ay + H / 2} ${side + off * 2},${by + H / 2} ${side},${by + H / 2}`;
  }
  if (e.back || b.layer <= a.layer) {
    // Back to an earlier row in another column: from the facing side to the facing side.
    const right = b.column > a.column;
    const sx = right ? ax + W : ax;
    const tx = right ? bx : bx + W;
    return `M${sx},${ay + H / 2} C${(sx + tx) / 2},${ay + H / 2} ${(sx + tx) / 2},${by + H / 2} ${tx},${by + H / 2}`;
  }
  const sx = ax + W / 2 + (b.column > a.column ? W / 4 : -W / 4);
  return `M${sx},${ay + H} C${sx},${ay + H + ROW / 2} ${bx + W / 2},${by - ROW / 2} ${bx + W / 2},${by}`;
}

/**
 * The SVG markup; `progress` colours the states a run has reached (the rest are drawn as not reached),
 * `taken` ("From→To") the transitions it went along.
 */
export function graphSvg(g: GraphModel, progress: Record<string, NodeProgress> = {}, taken: ReadonlySet<string> = new Set()): string {
  const byName = new Map(g.nodes.map((n) => [n.name, n]));
  // One column more when the failure fold's note would fall outside.
  const failureColumn = g.failure ? byName.get(g.failure.entry)!.column + 1 : 0;
  const width = LEFT + Math.max(g.columns, failureColumn + 1) * COL;
  const height = TOP * 2 + g.layers * ROW;
  const parts: string[] = [];
  parts.push(
    `<svg xmlns="http://www.w3.org/2000/svg" class="graph" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" role="img" aria-label="state machine">`,
    `<style>${GRAPH_CSS}</style>`,
    '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#6c757d"/></marker>',
    '<marker id="arrow-fail" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#dc3545"/></marker></defs>',
  );
  // Skips and loops along one column get lanes of their own, the longest outermost.
  const lanes = new Map<GraphEdge, number>();
  const sameColumn = g.edges
    .filter((e) => byName.get(e.from)!.column === byName.get(e.to)!.column && byName.get(e.to)!.layer !== byName.get(e.from)!.layer + 1)
    .sort((p, q) => Math.abs(byName.get(p.from)!.layer - byName.get(p.to)!.layer) - Math.abs(byName.get(q.from)!.layer - byName.get(q.to)!.layer));
  for (const e of sameColumn) {
    const [lo, hi] = [byName.get(e.from)!.layer, byName.get(e.to)!.layer].sort((p, q) => p - q);
    const busy = [...lanes.entries()]
      .filter(([o]) => byName.get(o.from)!.column === byName.get(e.from)!.column)
      .filter(([o]) => {
        const [olo, ohi] = [byName.get(o.from)!.layer, byName.get(o.to)!.layer].sort((p, q) => p - q);
        return olo! <= hi! && lo! <= ohi!;
      })
      .map(([, l]) => l);
    let lane = 0;
    while (busy.includes(lane)) lane++;
    lanes.set(e, lane);
  }
  for (const e of g.edges) {
    const a = byName.get(e.from)!;
    const b = byName.get(e.to)!;
    const went = taken.has(`${e.from}→${e.to}`) ? ' taken' : '';
    const title = e.label ? `<title>${escapeHtml(`${e.from} → ${e.to}: ${e.label}`)}</title>` : '';
    parts.push(
      `<path class="edge ${e.kind}${e.back ? ' back' : ''}${went}" d="${edgePath(a, b, e, lanes.get(e) ?? 0)}" marker-end="url(#arrow)">${title}</path>`,
    );
  }
  if (g.failure) {
    // Beside the failure path's entry, in the column to its right (free on the failure path's rows).
    const entry = byName.get(g.failure.entry)!;
    const lx = x(entry) + COL;
    const ly = y(entry);
    parts.push(
      `<g class="failure-fold"><title>${escapeHtml(`On an error, each of these goes to ${g.failure.entry}: ${g.failure.from.join(', ')}`)}</title>`,
      `<text x="${lx + 4}" y="${ly + 14}">${escapeHtml(`⚠ an error in any of`)}</text>`,
      `<text x="${lx + 4}" y="${ly + 29}">${escapeHtml(`the ${g.failure.from.length} marked states`)}</text>`,
      `<path class="edge failure" d="M${lx},${ly + H / 2} L${x(entry) + W},${ly + H / 2}" marker-end="url(#arrow-fail)"/></g>`,
    );
  }
  for (const n of g.nodes) {
    const p = progress[n.name];
    const mark = p?.mark ?? 'pending';
    const rx = n.type === 'Succeed' || n.type === 'Fail' ? H / 2 : n.type === 'Choice' ? 12 : 4;
    const timing = p?.seconds !== undefined ? `${seconds(p.seconds)}${p.visits && p.visits > 1 ? ` · ${p.visits}×` : ''}` : n.type === 'Choice' ? 'choice' : '';
    const tip = `${n.name} (${n.type})${p ? `: ${mark}` : ': not reached'}${timing && p ? `, ${timing}` : ''}${n.catchesToFailure ? '; on an error it goes to the failure path' : ''}${n.continuesOnError ? '; its errors do not stop the run' : ''}`;
    parts.push(
      `<g class="state ${mark} ${n.type.toLowerCase()}" data-state="${escapeHtml(n.name)}" transform="translate(${x(n)},${y(n)})"><title>${escapeHtml(tip)}</title>`,
      `<rect width="${W}" height="${H}" rx="${rx}"/>`,
      `<text class="name" x="${W / 2}" y="${timing ? 16 : 23}" text-anchor="middle">${escapeHtml(n.name)}</text>`,
      timing ? `<text class="timing" x="${W / 2}" y="31" text-anchor="middle">${escapeHtml(timing)}</text>` : '',
      n.catchesToFailure ? `<text class="catches" x="${W - 4}" y="13" text-anchor="end">⚠</text>` : '',
      '</g>',
    );
  }
  parts.push('</svg>');
  return parts.join('');
}

/** The SVG's own style (inside it, so the drawing stands alone). */
const GRAPH_CSS = `
svg.graph { font: 12px system-ui, sans-serif; }
.state rect { fill: #fff; stroke: #adb5bd; stroke-width: 1.5; }
.state.pending text { fill: #868e96; }
.state.done rect { fill: #d4edda; stroke: #28a745; }
.state.current rect { fill: #fff3cd; stroke: #e0a800; stroke-width: 2.5; }
.state.failed rect { fill: #f8d7da; stroke: #dc3545; stroke-width: 2.5; }
.state.choice rect { stroke-dasharray: 4 2; }
.state .timing { font-size: 11px; fill: #495057; }
.state .catches { fill: #dc3545; font-size: 11px; }
.edge { fill: none; stroke: #adb5bd; stroke-width: 1.2; }
.edge.taken { stroke: #495057; stroke-width: 1.8; }
.edge.catch { stroke-dasharray: 5 3; }
.edge.failure { stroke: #dc3545; stroke-dasharray: 5 3; stroke-width: 1.5; }
.failure-fold text { fill: #dc3545; font-size: 11px; }
`;
