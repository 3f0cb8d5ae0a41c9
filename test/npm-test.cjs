/**
 * `npm test`: the type check (tsc --noEmit) and the tests (jest, with this script's arguments) side by
 * side; it fails if either fails. Run one after the other, the type check's ~20 s came before the first
 * test on the 2-core machine; beside jest it uses the time jest's workers wait (on servers, child
 * processes, the synth lock), and its verdict is printed when it has one. Same priority as jest: niced,
 * it was starved until jest ended and then ran alone on one core, later than it would have finished.
 */
'use strict';
const { spawn } = require('node:child_process');
const path = require('node:path');

const ROOT = path.resolve(__dirname, '..');

function run(args, opts) {
  const child = spawn(process.execPath, args, { cwd: ROOT, ...opts });
  const done = new Promise((resolve) => {
    child.on('error', (err) => resolve({ code: 1, error: err }));
    child.on('close', (code, signal) => resolve({ code: code ?? 1, signal }));
  });
  return { child, done };
}

const started = Date.now();
// Incremental, its state in .mlpipe (git-ignored): a fresh clone checks everything (no slower than plain
// --noEmit), a later run rechecks only what changed and reuses the rest (about half the CPU, which the
// two jest workers share), and still reports the errors of files it did not recheck.
const tsc = run(
  [require.resolve('typescript/bin/tsc'), '--noEmit', '--incremental', '--tsBuildInfoFile', path.join(ROOT, '.mlpipe', 'tsc', 'tsconfig.tsbuildinfo')],
  { stdio: ['ignore', 'pipe', 'pipe'] },
);
const output = [];
tsc.child.stdout.on('data', (b) => output.push(b));
tsc.child.stderr.on('data', (b) => output.push(b));
const typeCheck = tsc.done.then(({ code, error }) => {
  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  if (code === 0) process.stderr.write(`tsc --noEmit: no type errors (${seconds} s)\n`);
  else process.stderr.write(`tsc --noEmit failed (exit ${code}${error ? `: ${error.message}` : ''}) after ${seconds} s:\n${Buffer.concat(output).toString('utf8')}\n`);
  return code;
});

const jest = run([require.resolve('jest/bin/jest'), ...process.argv.slice(2)], { stdio: 'inherit' });
// Ctrl-C reaches both through the terminal's process group; a signal sent to this script alone (kill,
// timeout, an IDE's stop, a closed terminal) is passed on, and the script ends as that signal would end it.
for (const [signal, number] of [['SIGINT', 2], ['SIGTERM', 15], ['SIGHUP', 1]]) {
  process.on(signal, () => {
    tsc.child.kill(signal);
    jest.child.kill(signal);
    Promise.all([tsc.done, jest.done]).then(() => process.exit(128 + number));
  });
}

Promise.all([typeCheck, jest.done]).then(([tscCode, { code: jestCode }]) => {
  if (tscCode !== 0) process.stderr.write('npm test: the type check failed (above).\n');
  process.exit(tscCode !== 0 ? tscCode : jestCode);
});
