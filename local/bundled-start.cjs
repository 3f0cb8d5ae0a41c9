/**
 * Runs a TypeScript entry point (`npm start`: local/main.ts; `npm run mlpipe` and the console beside
 * `npm start`: cli/main.ts) from one esbuild bundle of the project's code it imports, built on the
 * first start and cached under .mlpipe/start by a hash of every file that went into it. Through tsx's
 * loader, which compiles and resolves each module as it loads, the first output line came ~3 s after the
 * command (the import of main.ts alone measured 1.8 s); the bundle loads in a fraction of that. npm
 * packages stay outside it (local/installed-packages.cjs). Each module keeps its own `__dirname` and
 * `__filename` (the source file's), so paths found relative to a source file (the repository root, the
 * Lambda bootstrap, the reaper's program, the data cache) are what they were under tsx.
 * Plain CommonJS: it runs before any TypeScript loader.
 */
'use strict';
const { createHash } = require('node:crypto');
const { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } = require('node:fs');
const { createRequire, enableCompileCache } = require('node:module');
const { tmpdir } = require('node:os');
const path = require('node:path');

const ROOT = path.resolve(__dirname, '..');
/** Bump when the build below changes what it produces. */
const FORMAT = '2';
/** Bundles kept (the most recent), for switching branches back and forth without rebuilding. */
const KEEP = 3;

/** The cache directory: the repository's .mlpipe/start, or a temporary one when that cannot be written. */
function cacheDir() {
  for (const dir of [path.join(ROOT, '.mlpipe', 'start'), path.join(tmpdir(), `mlpipe-start-${process.getuid?.() ?? 'user'}`)]) {
    try {
      mkdirSync(dir, { recursive: true });
      return dir;
    } catch {
      // not writable: the next one
    }
  }
  throw new Error('no writable directory for the bundle of local/main.ts');
}

/**
 * The key of a bundle of `inputs` (repository-relative paths): their contents, how it is built (this
 * file, esbuild's version, Node's), and package-lock.json (the bundle names installed files by path).
 * Undefined when an input is gone.
 */
function keyOf(inputs) {
  // ROOT too: the bundle names this checkout's files by absolute path (a copy or the shared fallback cache must not reuse it).
  const hash = createHash('sha256').update(FORMAT).update(process.version).update(ROOT).update(readFileSync(__filename));
  hash.update(readFileSync(require.resolve('esbuild/package.json')));
  for (const rel of ['package-lock.json', ...inputs]) {
    const file = path.join(ROOT, rel);
    if (!existsSync(file)) return undefined;
    hash.update(rel).update('\0').update(readFileSync(file)).update('\0');
  }
  return hash.digest('hex').slice(0, 24);
}

/**
 * Gives each project module its source file's `__dirname` and `__filename`, on its first line (the
 * source map's lines stay the TypeScript's). In one bundle they would all be the bundle's.
 */
const sourcePaths = {
  name: 'source-paths',
  setup(b) {
    b.onLoad({ filter: /\.ts$/ }, (args) => {
      const source = readFileSync(args.path, 'utf8');
      if (!/\b__(dirname|filename)\b/.test(source)) return undefined;
      const header = `const __dirname = ${JSON.stringify(path.dirname(args.path))}, __filename = ${JSON.stringify(args.path)};`;
      return { contents: header + source, loader: 'ts' };
    });
  },
};

/**
 * @kubernetes/client-node goes into the bundle rather than being required: it is ES modules only, and
 * Node compiled its hundreds of files one by one as ES modules (measured: loading main.ts took 0.7 s of
 * CPU more with it outside). Its own imports are then the other plugins' (installed files).
 */
const bundledPackages = {
  name: 'bundled-packages',
  setup(b) {
    b.onResolve({ filter: /^@kubernetes\/client-node$/ }, (args) => ({ path: createRequire(path.join(args.resolveDir, 'x.js')).resolve(args.path) }));
  },
};

async function bundle(dir, entry) {
  const { build } = require('esbuild');
  const { installedPackages } = require('./installed-packages.cjs');
  const tmp = path.join(dir, `build-${process.pid}`);
  const result = await build({
    entryPoints: [path.join(ROOT, entry)],
    outfile: path.join(tmp, 'main.cjs'),
    absWorkingDir: ROOT,
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node22',
    sourcemap: true,
    metafile: true,
    logLevel: 'error',
    plugins: [bundledPackages, installedPackages, sourcePaths],
  });
  // The project's files; a bundled package's are those package-lock.json pins.
  const inputs = Object.keys(result.metafile.inputs).filter((f) => !/(^|\/)node_modules\//.test(f)).sort();
  const key = keyOf(inputs);
  const out = path.join(dir, key);
  writeFileSync(path.join(tmp, 'entry'), entry);
  if (!existsSync(path.join(out, 'main.cjs'))) {
    try {
      renameSync(tmp, out);
    } catch (err) {
      // A concurrent start built the same key first (the same bundle): use its.
      if (!existsSync(path.join(out, 'main.cjs'))) throw err;
    }
  }
  rmSync(tmp, { recursive: true, force: true });
  writeFileSync(path.join(dir, `manifest-${process.pid}.json`), JSON.stringify({ inputs }));
  renameSync(path.join(dir, `manifest-${process.pid}.json`), manifestOf(dir, entry));
  prune(dir, key, entry);
  return path.join(out, 'main.cjs');
}

/** Each entry's last bundle is named by its own manifest. */
function manifestOf(dir, entry) {
  return path.join(dir, `manifest-${entry.replace(/[^A-Za-z0-9]+/g, '-')}.json`);
}

/** Keeps `keep` and the KEEP - 1 other most recently built bundles of the same entry. */
function prune(dir, keep, entry) {
  const others = readdirSync(dir, { withFileTypes: true })
    .filter((e) => e.isDirectory() && /^[0-9a-f]{24}$/.test(e.name) && e.name !== keep)
    // Bundles of another entry stay; those of the first format (no entry file) were local/main.ts's.
    .filter((e) => !existsSync(path.join(dir, e.name, 'entry')) || readFileSync(path.join(dir, e.name, 'entry'), 'utf8') === entry)
    .map((e) => ({ dir: path.join(dir, e.name), built: statSync(path.join(dir, e.name)).mtimeMs }))
    .sort((a, b) => b.built - a.built);
  for (const e of others.slice(KEEP - 1)) rmSync(e.dir, { recursive: true, force: true });
}

/** The bundle of `entry` as the sources are now: the cached one when every input is unchanged. */
async function currentBundle(entry) {
  const dir = cacheDir();
  // V8's compiled code of the bundle and the packages it loads, kept on disk: a repeat start skips most
  // of the compiling (measured: 8 % of the CPU loading takes).
  enableCompileCache(path.join(dir, 'compile-cache'));
  try {
    const { inputs } = JSON.parse(readFileSync(manifestOf(dir, entry), 'utf8'));
    const key = keyOf(inputs);
    if (key && existsSync(path.join(dir, key, 'main.cjs'))) return path.join(dir, key, 'main.cjs');
  } catch {
    // no manifest yet, or a torn one: build
  }
  return bundle(dir, entry);
}

/**
 * Loads `entry` (repository-relative, e.g. 'local/main.ts') from its bundle; `then` gets the bundle's
 * exports (a module that runs itself on load needs none).
 */
function runBundled(entry, what, then) {
  currentBundle(entry).then(
    (file) => {
      // The source map is written next to it (node --enable-source-maps reads it); it is not read by
      // default: parsing it and sizing every loaded file's lines cost 0.35 s of CPU per start.
      const exported = require(file);
      if (then) then(exported);
    },
    (err) => {
      // esbuild has printed the compile errors (logLevel 'error'); anything else is said here.
      if (!Array.isArray(err.errors)) console.error(`${what} failed to start: ${err.message}`);
      process.exit(1);
    },
  );
}

module.exports = { runBundled };
