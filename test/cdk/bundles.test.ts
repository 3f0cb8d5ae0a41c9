/**
 * What `cdk synth` ships: every Lambda entry bundled with the CDK's own esbuild options (no Docker), and
 * each bundle loading in a fresh Node process with its settings and exporting `handler`. The CDK tests
 * skip bundling for speed; this is where a bundle that breaks (an ESM-only dependency, a missing
 * module, a top-level error) is caught.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { build } from 'esbuild';
import { BENCH_ENV, BUNDLED_ENTRIES } from '../../bench/bundles';
import { esbuildOptions, PROJECT_ROOT } from '../../lib/constructs/lambda-defaults';

describe('Lambda bundles', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'mlpipe-bundle-test-'));
  });
  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('every entry bundles and loads in a fresh Node process, exporting a handler function', async () => {
    // One esbuild call for all entries (it parses shared modules once); otherwise the CDK's options, less
    // the source maps (they change no code and cost seconds here).
    const { outfile: _one, entryPoints: _all, ...options } = esbuildOptions('', '');
    const result = await build({
      ...options,
      sourcemap: false,
      entryPoints: Object.fromEntries(BUNDLED_ENTRIES.map(({ name, entry }) => [`${name}/index`, path.join(PROJECT_ROOT, entry)])),
      outdir: dir,
    });
    expect(result.errors).toEqual([]);
    const outfiles = BUNDLED_ENTRIES.map(({ name }) => ({ name, outfile: path.join(dir, name, 'index.js') }));
    // One child process loads them all: each bundle is self-contained, so they do not share modules.
    const script = `const out = {}; for (const [name, file] of ${JSON.stringify(outfiles.map((o) => [o.name, o.outfile]))}) out[name] = typeof require(file).handler; console.log(JSON.stringify(out));`;
    const stdout = execFileSync(process.execPath, ['-e', script], { env: { PATH: process.env.PATH ?? '', ...BENCH_ENV }, encoding: 'utf8' });
    const types = JSON.parse(stdout.trim().split('\n').at(-1) as string) as Record<string, string>;
    expect(types).toEqual(Object.fromEntries(BUNDLED_ENTRIES.map(({ name }) => [name, 'function'])));
    expect(Object.keys(types)).toHaveLength(19);
  }, 60_000);
});
