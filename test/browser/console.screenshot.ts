/**
 * Makes docs/console-run.png and docs/console-model.png from a real local pipeline, not from fixtures: a
 * first release, then a second run with other hyperparameters released over it (so the run page compares
 * the candidate's classes with production's and the model page has a history and a retained version),
 * then the console (console/server.ts, as `mlpipe console` serves it) in headless Chromium at 1280 px,
 * each page captured whole. Not a test (jest runs *.test.ts only); takes a few minutes (two trainings,
 * and a synth of the stack when its cache is cold).
 *
 *   npx tsx test/browser/console.screenshot.ts [out-dir]      (default docs/)
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startLocalPipeline } from '../../local/pipeline';
import { REPO_ROOT } from '../../local/lambda/synth';
import { resolveTarget } from '../../cli/target';
import { startConsole } from '../../console/server';
import { launchChromium } from './chromium';

/** The candidate: fewer epochs and another seed than the defaults, so some classes differ both ways. */
const CANDIDATE = { epochs: 3, seed: 7 };

async function main(outDir: string): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'mlpipe-console-shot-'));
  const log = (line: string) => process.stderr.write(`${line}\n`);
  // A looser drop limit than the default: the 3-epoch candidate may trail the champion a little and must
  // still be released; latency is not gated (on a busy machine it measures the machine).
  const pipeline = await startLocalPipeline({
    stateDir: dir,
    approvalPort: 0,
    log,
    context: { maxAccuracyDrop: 0.03, maxP95LatencyMs: 10000 },
    synthCacheDir: join(REPO_ROOT, '.mlpipe', 'synth'),
  });
  const chromium = await launchChromium();
  try {
    for (const input of [{}, { hyperparameters: CANDIDATE }]) {
      const run = await pipeline.run(input, { approval: 'auto-approve' });
      if (run.status !== 'SUCCEEDED') throw new Error(`a release ended ${run.status}: ${run.error} ${run.cause}`);
    }
    const target = await resolveTarget({ local: true, stateDir: dir });
    const server = await startConsole(target, { port: 0 });
    try {
      const page = await chromium.browser.newPage();
      await page.setViewport({ width: 1280, height: 900, deviceScaleFactor: 1 });
      await page.goto(`${server.url}/`);
      // The newest run: the second release.
      await page.click('#runs tbody tr:first-child a[href^="/runs/"]');
      await page.waitForSelector('svg.graph');
      await page.screenshot({ path: join(outDir, 'console-run.png'), fullPage: true });
      await page.click('#lineage a[href^="/models/"]');
      await page.waitForSelector('#serving');
      await page.screenshot({ path: join(outDir, 'console-model.png'), fullPage: true });
      process.stdout.write(`wrote ${join(outDir, 'console-run.png')} and ${join(outDir, 'console-model.png')}\n`);
    } finally {
      await server.close();
    }
  } finally {
    await chromium.close();
    await pipeline.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

main(process.argv[2] ?? join(REPO_ROOT, 'docs')).catch((err: Error) => {
  process.stderr.write(`${err.stack ?? err.message}\n`);
  process.exitCode = 1;
});
