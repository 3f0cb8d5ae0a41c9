/**
 * The synth cache: a repeat start with unchanged sources and context reuses the cloud assembly; a
 * change to any source the stack is built from, or to the context, means a new synth. Runs on a small
 * fake project tree, so nothing is synthesized here (test/e2e synthesizes the real stack).
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { synthesizeLocalStack, synthKey } from '../../local/lambda/synth';

describe('synth cache', () => {
  let root: string;

  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), 'mlpipe-synth-'));
    for (const dir of ['functions', 'lib', 'bin', 'statemachine']) mkdirSync(join(root, dir));
    writeFileSync(join(root, 'functions', 'a.ts'), 'export const a = 1;');
    writeFileSync(join(root, 'lib', 'b.ts'), 'export const b = 1;');
    writeFileSync(join(root, 'package-lock.json'), '{}');
    writeFileSync(join(root, 'cdk.json'), JSON.stringify({ context: { 'mlpipe:modelName': 'm' } }));
  });

  afterEach(() => rmSync(root, { recursive: true, force: true }));

  it.each([
    ['a function source', () => writeFileSync(join(root, 'functions', 'a.ts'), 'export const a = 2;')],
    ['a new lib file', () => writeFileSync(join(root, 'lib', 'c.ts'), '')],
    ['the lockfile', () => writeFileSync(join(root, 'package-lock.json'), '{"v":2}')],
  ])('changes when %s changes', (_, change) => {
    const before = synthKey({ watchBudget: 20 }, root);
    change();
    expect(synthKey({ watchBudget: 20 }, root)).not.toBe(before);
  });

  it('changes with the context, not with its key order', () => {
    expect(synthKey({ a: 1, b: 2 }, root)).toBe(synthKey({ b: 2, a: 1 }, root));
    expect(synthKey({ a: 1 }, root)).not.toBe(synthKey({ a: 2 }, root));
  });

  it('reuses a cached assembly without synthesizing', async () => {
    // GIVEN an assembly in the cache under the key of this tree and context (cdk.json's context included)
    const cacheDir = join(root, 'cache');
    const key = synthKey({ 'mlpipe:modelName': 'm', 'mlpipe:watchBudget': 20 }, root);
    mkdirSync(join(cacheDir, key), { recursive: true });
    writeFileSync(join(cacheDir, key, 'manifest.json'), '{}');
    // WHEN the local run asks for it (this fake tree has no bin/mlpipe.ts: a synth would fail)
    const result = await synthesizeLocalStack({ context: { watchBudget: 20 }, cacheDir, root });
    // THEN it comes from the cache
    expect(result).toMatchObject({ dir: join(cacheDir, key), cached: true, key });
  });
});
