// Jest transformer: TypeScript, and the ESM-only packages @kubernetes/client-node 2.x pulls in, to
// CommonJS with esbuild. Type checking is tsc's job (`npm test` runs `tsc --noEmit` beside jest).
//
// @kubernetes/client-node's entry (dist/index.js) becomes the whole package bundled into one module, its
// dependencies left as requires: its ~2,000 files otherwise went through Jest's module registry again in
// every test file that loads it, ~3 s of CPU each (measured: a test file that only loads it), and a
// cold cache transformed each of them (~12 s of CPU per worker on a fresh clone). Cached by the package's
// version, so an upgrade rebuilds it.
const { createHash } = require('node:crypto');
const { readFileSync } = require('node:fs');
const path = require('node:path');
const { buildSync, transformSync } = require('esbuild');

const ESM_SYNTAX = /^\s*(import\s|import\{|export\s|export\{)/m;
const CLIENT_NODE_ENTRY = /[\\/]node_modules[\\/]@kubernetes[\\/]client-node[\\/]dist[\\/]index\.js$/;
// zod's CommonJS entry, bundled the same way: zod is loaded in every test file (functions/shared/settings.ts,
// through setup-settings.ts), and its 124 files through the registry cost ~130 ms of CPU in each.
const ZOD_ENTRY = /[\\/]node_modules[\\/]zod[\\/]index\.cjs$/;
const BUNDLED_ENTRY = (filename) => CLIENT_NODE_ENTRY.test(filename) || ZOD_ENTRY.test(filename);
/** This file's content: a change to how files are transformed is a new cache key. */
const SELF = readFileSync(__filename);

/** The version of the package whose entry `entry` is (client-node: dist/index.js; zod: index.cjs). */
function packageVersion(entry) {
  const dir = CLIENT_NODE_ENTRY.test(entry) ? path.join(path.dirname(entry), '..') : path.dirname(entry);
  return JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')).version;
}

module.exports = {
  getCacheKey(source, filename, options) {
    const hash = createHash('sha256').update(SELF).update('\0').update(filename).update('\0').update(source).update('\0').update(options.configString).update('\0').update(options.instrument ? 'instrument' : '');
    if (BUNDLED_ENTRY(filename)) hash.update('\0').update(packageVersion(filename));
    return hash.digest('hex');
  },
  process(source, filename) {
    if (BUNDLED_ENTRY(filename)) {
      const result = buildSync({
        entryPoints: [filename],
        bundle: true,
        packages: 'external',
        platform: 'node',
        format: 'cjs',
        target: 'node22',
        // Whitespace minified (names kept): the bundle is 5.4 MB instead of 15.5 MB of indentation, and every
        // test file that loads client-node compiles it again in its own context (measured, one load: 246 ->
        // 115 ms of CPU; esbuild's build 5.1 -> 1.1 s, once per worker on a cold cache). No source map: a map
        // Jest would carry for each test file; a stack frame into client-node still names its function.
        minifyWhitespace: true,
        write: false,
        logLevel: 'silent',
      });
      return { code: result.outputFiles[0].text };
    }
    const isTs = filename.endsWith('.ts');
    if (!isTs && filename.includes('/node_modules/') && !ESM_SYNTAX.test(source)) {
      return { code: source }; // already CommonJS
    }
    const result = transformSync(source, {
      loader: isTs ? 'ts' : 'js',
      format: 'cjs',
      target: 'node22',
      sourcemap: 'inline',
      sourcefile: filename,
    });
    return { code: result.code };
  },
};
