// Jest test sequencer: Jest's own order (failed first, then slowest first by the durations it cached),
// except that a test file without a cached duration (every file on a fresh clone, where CI runs) is
// sized with the *.cases.ts files it imports: test/cdk/stack.test.ts is a few lines that run ~25 s of
// CDK tests, and by its own size Jest would start it last, leaving one worker on it while the other idles.
const { readFileSync, statSync } = require('node:fs');
const path = require('node:path');
const Sequencer = require('@jest/test-sequencer').default;

const CASES_IMPORT = /^import '(\.\.?\/[\w./-]+\.cases)';$/gm;

function sizeWithCases(file) {
  const source = readFileSync(file, 'utf8');
  let size = Buffer.byteLength(source);
  for (const [, rel] of source.matchAll(CASES_IMPORT)) {
    size += statSync(path.resolve(path.dirname(file), `${rel}.ts`)).size;
  }
  return size;
}

class CasesAwareSequencer extends Sequencer {
  sort(tests) {
    const sorted = super.sort(tests);
    if (sorted.some((t) => t.duration != null)) return sorted; // Jest has timings: its order stands
    const sizes = new Map(sorted.map((t) => [t.path, sizeWithCases(t.path)]));
    return sorted.sort((a, b) => {
      const failedA = this.hasFailed(a);
      const failedB = this.hasFailed(b);
      if (failedA !== failedB) return failedA ? -1 : 1;
      return sizes.get(b.path) - sizes.get(a.path);
    });
  }
}

module.exports = CasesAwareSequencer;
