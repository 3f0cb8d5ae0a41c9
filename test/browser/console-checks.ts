/**
 * What a person sees in the web console, checked in headless Chromium against a REAL local run: the
 * end-to-end suite (test/e2e/local-pipeline.test.ts) calls checkConsole after its shared release, so the
 * browser test costs a console start and a few page loads, not a pipeline run of its own. Checks what is
 * shown (text in cells, the colours of the graph's states by computed style, links that lead somewhere),
 * not the HTML string.
 */
import { request } from 'node:http';
import type { Page } from 'puppeteer-core';
import { resolveTarget } from '../../cli/target';
import { startConsole, type ConsoleServer } from '../../console/server';
import { launchChromium } from './chromium';

/** The graph's fills (console/graph-svg.ts GRAPH_CSS) as Chromium computes them. */
export const FILL = { done: 'rgb(212, 237, 218)', current: 'rgb(255, 243, 205)', failed: 'rgb(248, 215, 218)', pending: 'rgb(255, 255, 255)' };

export interface ConsoleCheck {
  stateDir: string;
  /** The released run: its name, model and version. */
  release: { name: string; model: string; version: string };
  /** Starts another run and resolves with its name once started (it need not end); the list must show it live. */
  startAnotherRun(): Promise<string>;
}

const text = (page: Page, selector: string) => page.$eval(selector, (e) => (e as HTMLElement).innerText);

async function fillOf(page: Page, state: string): Promise<string> {
  return page.$eval(`g.state[data-state="${state}"] rect`, (r) => getComputedStyle(r).fill);
}

export async function checkConsole(c: ConsoleCheck): Promise<void> {
  const target = await resolveTarget({ local: true, stateDir: c.stateDir });
  const server: ConsoleServer = await startConsole(target, { port: 0 });
  const chromium = await launchChromium();
  try {
    const page = await chromium.browser.newPage();
    await page.setViewport({ width: 1280, height: 900 });

    // The runs list shows the release, then a new run appears without the page reloading.
    await page.goto(`${server.url}/`);
    const row = `#runs tr[data-run="${c.release.name}"]`;
    expect(await page.$$eval(`${row} td`, (tds) => tds.map((td) => (td as HTMLElement).innerText))).toEqual([
      c.release.name,
      'SUCCEEDED',
      'Succeeded',
      c.release.model,
      c.release.version,
      expect.stringMatching(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ$/),
      expect.stringMatching(/^\d/),
    ]);
    await page.evaluate(() => ((window as unknown as { notReloaded: boolean }).notReloaded = true));
    const another = await c.startAnotherRun();
    await page.waitForSelector(`#runs tr[data-run="${another}"]`, { timeout: 30_000 });
    expect(await page.evaluate(() => (window as unknown as { notReloaded?: boolean }).notReloaded)).toBe(true);

    // The run page: the graph coloured by the run's progress, with timings; the evaluation; the log tail.
    await page.click(`${row} a[href^="/runs/"]`);
    await page.waitForSelector('svg.graph');
    expect(await text(page, 'h1')).toBe(`${c.release.name} SUCCEEDED`);
    for (const state of ['Prepare', 'SubmitTraining', 'EvaluateModel', 'RequestApproval', 'RecordRelease', 'Succeeded']) expect([state, await fillOf(page, state)]).toEqual([state, FILL.done]);
    for (const state of ['Cleanup', 'PipelineFailed', 'FailEvaluationGate', 'RejectModel']) expect([state, await fillOf(page, state)]).toEqual([state, FILL.pending]);
    expect(await page.$eval('g.state[data-state="EvaluateModel"] text.timing', (t) => t.textContent)).toMatch(/^\d+(\.\d)? s$/);
    // The catches are one failure path: one failure edge, drawn into Cleanup.
    expect(await page.$$eval('path.edge.failure', (p) => p.length)).toBe(1);
    expect(await page.$eval('g.failure-fold', (g) => g.textContent)).toMatch(/an error in any of\s*the \d+ marked states/);

    // Per-class accuracy, one row per Fashion-MNIST class, and the confusion matrix (rows sum to the samples).
    const perClass = await page.$$eval('#per-class tbody tr', (rows) => rows.map((r) => Array.from(r.querySelectorAll('td')).map((td) => (td as HTMLElement).innerText)));
    expect(perClass).toHaveLength(10);
    expect(perClass.map((r) => r[0])).toContain('Shirt');
    for (const r of perClass) expect(r[1]).toMatch(/^\d{1,3}\.\d %$/);
    const matrix = await page.$$eval('#confusion tbody tr', (rows) => rows.map((r) => Array.from(r.querySelectorAll('td')).map((td) => Number((td as HTMLElement).innerText))));
    expect(matrix).toHaveLength(10);
    expect(matrix.every((r) => r.length === 10)).toBe(true);
    const samples = Number(await page.$$eval('#evaluation table.kv tr', (rows) => rows.find((r) => r.querySelector('th')?.textContent === 'samples')?.querySelector('td')?.textContent));
    expect(matrix.flat().reduce((s, v) => s + v, 0)).toBe(samples);

    // Lineage and the decision, and the end of the training pod's log.
    expect(await text(page, '#lineage')).toMatch(/image\s+mlpipe\/fashion-mnist-train:local/);
    expect(await text(page, '#decisions')).toMatch(/Approved by \S+ at \d{4}-.* from /);
    expect(await text(page, '#log pre')).toMatch(/val_acc=/);

    // The model page: what serves production now and how it got there.
    await page.click('#lineage a[href^="/models/"]');
    await page.waitForSelector('#serving');
    expect(await text(page, 'h1')).toBe(`Model ${c.release.model}`);
    const serving = await text(page, '#serving .version');
    const history = await page.$$eval('#history tbody tr', (rows) => rows.map((r) => Array.from(r.querySelectorAll('td')).map((td) => (td as HTMLElement).innerText)));
    expect(history.find((h) => h[1] === 'release' && h[2] === c.release.version && h[4] === c.release.name)).toBeDefined();
    // What serves is the newest release or rollback in the history (another test may have released since).
    expect(history.find((h) => h[1] === 'release' || h[1] === 'rollback')?.[2]).toBe(serving);
    expect(await page.$$eval('#versions tbody td:first-child', (tds) => tds.map((td) => td.textContent))).toContain(c.release.version);

    // An unknown run is a 404 page that says so; a write is refused.
    const missing = await page.goto(`${server.url}/runs/no-such-run`);
    expect(missing?.status()).toBe(404);
    expect(await text(page, 'main')).toContain('There is no run "no-such-run"');
    expect((await fetch(`${server.url}/`, { method: 'POST' })).status).toBe(405);
    // A request addressed to another name (a rebinding page's) is refused before anything is read.
    const foreign = await new Promise<number>((resolve, reject) => {
      const req = request(`${server.url}/api/runs`, { headers: { host: 'attacker.example' } }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
      req.end();
    });
    expect(foreign).toBe(421);
  } finally {
    await chromium.close();
    await server.close();
  }
}
