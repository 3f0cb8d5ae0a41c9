// Jest test sequencer: failed files first, then slowest first. Jest's own order uses the durations it
// cached, but runs every file WITHOUT a cached duration first, smallest or not: on a fresh clone (where CI
// runs) that is every file, and after a partial run (`npx jest <some files>` in the same checkout) the
// slowest files, which have durations, went last and left one worker on them alone (measured: the e2e
// file and the CDK files started after 425 s of small ones). So a file Jest has no duration for takes its
// duration from test/durations.json (seconds per file of a fresh-clone `npm test` on the 2-core machine;
// refresh it from Jest's cache, /tmp/jest_<uid>/perf-cache-*, when the suite changes shape), and a file
// not listed there is estimated from its size, with the *.cases.ts files it imports (test/cdk/stack.test.ts
// is a few lines that run ~25 s of CDK tests), at the milliseconds per byte of the files with a duration.
// The files that run the synthesized local stack (they import test/e2e/shared-synth.ts, themselves or
// through a helper of theirs: test/cdk/bundles.test.ts loads its bundles via synth-once.ts) wait for one
// synth, which a fresh clone does not have yet (a minute or more): started side by side, one worker sat
// idle on the lock (measured: lifecycle-kill's worker waited while local-pipeline's synthesized). The
// first of them keeps its place; the others start after other files that make up 15 % of the estimated
// work have (on the other worker: ~90 s on a fresh clone, about a cold synth), and still early enough not
// to finish last.
const { existsSync, readFileSync, statSync } = require('node:fs');
const path = require('node:path');
const Sequencer = require('@jest/test-sequencer').default;

const CASES_IMPORT = /^import '(\.\.?\/[\w./-]+\.cases)';$/gm;
const HINTS = JSON.parse(readFileSync(path.join(__dirname, 'durations.json'), 'utf8'));
const ROOT = path.resolve(__dirname, '..');
/** test/durations.json's duration of a file, in ms (Jest's unit). */
const hint = (file) => {
  const seconds = HINTS[path.relative(ROOT, file).split(path.sep).join('/')];
  return typeof seconds === 'number' ? seconds * 1000 : undefined;
};
const SHARED_SYNTH_IMPORT = /^import [^;]* from '(?:\.\.?\/)+(?:e2e\/)?shared-synth';$/m;
const RELATIVE_IMPORT = /^import [^;]* from '(\.\.?\/[\w./-]+)';$/gm;
/** `file` imports the shared synth, itself or through a module it imports (one level). */
function usesSharedSynth(file) {
  const source = readFileSync(file, 'utf8');
  if (SHARED_SYNTH_IMPORT.test(source)) return true;
  return [...source.matchAll(RELATIVE_IMPORT)].some(([, rel]) => {
    const helper = path.resolve(path.dirname(file), `${rel}.ts`);
    return existsSync(helper) && SHARED_SYNTH_IMPORT.test(readFileSync(helper, 'utf8'));
  });
}
/** Share of the estimated work, in files that do not wait on the synth, started before a second one that does. */
const AFTER_SYNTH_SHARE = 0.15;

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
    const known = new Map(sorted.map((t) => [t.path, t.duration ?? hint(t.path)]).filter(([, ms]) => ms != null));
    const sizes = new Map(sorted.map((t) => [t.path, sizeWithCases(t.path)]));
    const timed = sorted.filter((t) => known.has(t.path));
    const timedBytes = timed.reduce((n, t) => n + sizes.get(t.path), 0);
    const msPerByte = timedBytes > 0 ? timed.reduce((n, t) => n + known.get(t.path), 0) / timedBytes : 1;
    const estimate = (t) => known.get(t.path) ?? sizes.get(t.path) * msPerByte;
    sorted.sort((a, b) => {
      const failedA = this.hasFailed(a);
      const failedB = this.hasFailed(b);
      if (failedA !== failedB) return failedA ? -1 : 1;
      return estimate(b) - estimate(a);
    });
    return spreadSynthUsers(sorted, estimate);
  }
}

/** `order` with each file that waits on the shared synth, but the first, started no earlier than AFTER_SYNTH_SHARE of the work. */
function spreadSynthUsers(order, estimate) {
  const users = order.filter((t) => usesSharedSynth(t.path));
  const later = new Set(users.slice(1));
  if (later.size === 0) return order;
  const rest = order.filter((t) => !later.has(t));
  const total = order.reduce((n, t) => n + estimate(t), 0);
  let cut = 0;
  for (let before = 0; cut < rest.length && before < total * AFTER_SYNTH_SHARE; cut++) if (rest[cut] !== users[0]) before += estimate(rest[cut]);
  // Each goes to the cut, or stays where it was if that is further back; inserted back to front.
  const placements = [...later].map((t) => ({ t, at: Math.max(cut, rest.filter((x) => order.indexOf(x) < order.indexOf(t)).length) }));
  placements.sort((a, b) => b.at - a.at || order.indexOf(b.t) - order.indexOf(a.t));
  for (const { t, at } of placements) rest.splice(at, 0, t);
  return rest;
}

module.exports = CasesAwareSequencer;
