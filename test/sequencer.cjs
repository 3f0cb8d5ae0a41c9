// Jest test sequencer: failed files first, then slowest first. Jest's own order uses the durations it
// cached, but runs every file WITHOUT a cached duration first, smallest or not: on a fresh clone (where CI
// runs) that is every file, and after a partial run (`npx jest <some files>` in the same checkout) the
// slowest files, which have durations, went last and left one worker on them alone (measured: the e2e
// file and the CDK files started after 425 s of small ones). So a file without a duration is estimated
// from its size, with the *.cases.ts files it imports (test/cdk/stack.test.ts is a few lines that run
// ~25 s of CDK tests), at the milliseconds per byte of the files that have durations.
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
    const sorted = super.sort(tests); // sets each test's cached duration (or undefined)
    const sizes = new Map(sorted.map((t) => [t.path, sizeWithCases(t.path)]));
    const timed = sorted.filter((t) => t.duration != null);
    const timedBytes = timed.reduce((n, t) => n + sizes.get(t.path), 0);
    const msPerByte = timedBytes > 0 ? timed.reduce((n, t) => n + t.duration, 0) / timedBytes : 1;
    const estimate = (t) => (t.duration != null ? t.duration : sizes.get(t.path) * msPerByte);
    return sorted.sort((a, b) => {
      const failedA = this.hasFailed(a);
      const failedB = this.hasFailed(b);
      if (failedA !== failedB) return failedA ? -1 : 1;
      return estimate(b) - estimate(a);
    });
  }
}

module.exports = CasesAwareSequencer;
