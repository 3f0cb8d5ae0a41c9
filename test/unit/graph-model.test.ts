/**
 * The graph model of the real pipeline definition (cli/graph-model.ts) and its drawings: the catches fold
 * into one failure path, the main path runs straight down column 0, no two states share a place, and the
 * Mermaid and SVG renderings say the same (escaping names that come from a definition).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildGraph, parseAsl, renderMermaid, type Asl } from '../../cli/graph-model';
import { graphSvg } from '../../console/graph-svg';

const DEFINITION = readFileSync(join(__dirname, '../../statemachine/pipeline.asl.json'), 'utf8');

describe('graph model of statemachine/pipeline.asl.json', () => {
  const asl = parseAsl(DEFINITION);
  const g = buildGraph(asl);
  const node = (name: string) => g.nodes.find((n) => n.name === name)!;

  it('folds every catch into Cleanup into one failure path, keeping the other catches', () => {
    const intoCleanup = Object.entries(asl.States).filter(([, s]) => s.Catch?.some((c) => c.Next === 'Cleanup')).map(([n]) => n);
    expect(intoCleanup.length).toBeGreaterThan(10);
    expect(g.failure).toEqual({ entry: 'Cleanup', from: intoCleanup });
    expect(g.edges.filter((e) => e.kind === 'catch' && e.to === 'Cleanup')).toEqual([]);
    // The approval's timeout is its own branch; the failure path's own best-effort catches stay inside it.
    expect(g.edges).toContainEqual({ from: 'RequestApproval', to: 'ExpireApproval', kind: 'catch', label: 'States.Timeout', back: false });
    expect(g.nodes.filter((n) => n.failure).map((n) => n.name).sort()).toEqual(['Cleanup', 'NotifyFailure', 'PipelineFailed', 'RecordFailure']);
    // A catch that continues with Next (best effort) is no edge at all.
    expect(node('NotifySuccess')).toMatchObject({ continuesOnError: true, catchesToFailure: false });
    expect(g.edges.filter((e) => e.from === 'NotifySuccess')).toEqual([{ from: 'NotifySuccess', to: 'Succeeded', kind: 'next', back: false }]);
  });

  it('lays the main path from the start to Succeeded straight down column 0, one state per row', () => {
    const main = g.nodes.filter((n) => n.main).sort((a, b) => a.layer - b.layer);
    expect(main[0]?.name).toBe('Prepare');
    expect(main.at(-1)?.name).toBe('Succeeded');
    expect(main.map((n) => n.layer)).toEqual(main.map((_, i) => i));
    expect(main.every((n) => n.column === 0)).toBe(true);
    for (const name of ['SubmitTraining', 'EvaluateModel', 'RequestApproval', 'DeployProduction', 'RecordRelease']) expect(node(name).main).toBe(true);
    // Each main state's successor on the path is one of its transitions.
    for (let i = 1; i < main.length; i++) expect(g.edges.some((e) => e.from === main[i - 1]!.name && e.to === main[i]!.name)).toBe(true);
  });

  it('gives every state a place of its own, branches beside the path, the failure path in one column', () => {
    const places = g.nodes.map((n) => `${n.layer},${n.column}`);
    expect(new Set(places).size).toBe(places.length);
    expect(new Set(g.nodes.filter((n) => n.failure).map((n) => n.column)).size).toBe(1);
    expect(node('FailEvaluationGate').column).toBeGreaterThan(0);
    expect(g.columns).toBeLessThanOrEqual(4);
    // The wait loops are back edges (drawn going up), nothing else is.
    expect(g.edges.filter((e) => e.back).map((e) => e.from).sort()).toEqual(
      ['AwaitTraining', 'CanaryVerdict', 'CanaryVerdict', 'IsCanaryShifted', 'IsProductionEndpointReady', 'IsProductionRolledOut', 'IsStagingEndpointReady', 'IsStagingRolledOut', 'WaitForTraining'],
    );
    for (const e of g.edges.filter((x) => !x.back)) expect(node(e.to).layer).toBeGreaterThan(node(e.from).layer);
  });

  it('draws one failure edge in Mermaid instead of one per catching state', () => {
    const lines = renderMermaid(g, { Prepare: { mark: 'done' }, SubmitTraining: { mark: 'failed' } });
    expect(lines.filter((l) => l.includes('-.-> Cleanup'))).toEqual(['  anyError -.-> Cleanup']);
    // and the two catches that are branches of their own: Prepare's and the approval's timeout
    expect(lines.filter((l) => l.includes('-.->'))).toEqual(['  Prepare -.->|"States.ALL"| FailPrepare', '  RequestApproval -.->|"States.Timeout"| ExpireApproval', '  anyError -.-> Cleanup']);
    expect(lines).toContain('  SubmitTraining["SubmitTraining ⚠"]');
    expect(lines).toContain('  class SubmitTraining failed');
  });

  it('SVG: a group per state with its mark and timing, names escaped', () => {
    const svg = graphSvg(g, { Prepare: { mark: 'done', seconds: 1.24 }, CheckTraining: { mark: 'current', seconds: 150, visits: 3 } });
    expect(svg).toContain('class="state done task" data-state="Prepare"');
    expect(svg).toContain('>1.2 s<');
    expect(svg).toContain('>2 min 30 s · 3×<');
    expect(svg.match(/class="state /g)).toHaveLength(g.nodes.length);
    expect(svg.match(/class="edge failure"/g)).toHaveLength(1);
    const evil: Asl = { StartAt: '<b>x', States: { '<b>x': { Type: 'Succeed' } } };
    const drawn = graphSvg(buildGraph(evil));
    expect(drawn).not.toContain('<b>');
    expect(drawn).toContain('&lt;b&gt;x');
  });

  it('refuses a definition that is not ASL, naming the problem', () => {
    expect(() => parseAsl('{')).toThrow(/not JSON/);
    expect(() => parseAsl('{"StartAt":"A","States":{"A":{"Type":"Pass","Next":"B"}}}')).toThrow('State A goes to B, which the definition does not have.');
    expect(() => parseAsl('{"States":{}}')).toThrow(/StartAt/);
  });
});
