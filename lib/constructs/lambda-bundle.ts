/**
 * How every Lambda is bundled: esbuild's JS API with one plugin that keeps @kubernetes/client-node from
 * dragging in what mlpipe never runs. CDK's NodejsFunction runs the esbuild CLI, which takes no plugins,
 * so lambda-defaults.ts calls `bundleLambdaSync` from a local bundling step, and bench/bundles.ts calls
 * `bundleLambda`: what it measures is what ships (test/cdk/bundles.test.ts loads the synthesized assets).
 *
 * The plugin (numbers: `npm run bench -- bundles`):
 * - marks client-node's modules side-effect free: it has no `exports` map or `sideEffects` flag, and its
 *   index re-exports every generated API class and model, so without this esbuild keeps all of them;
 * - swaps in functions/shared/kube/not-bundled.ts for modules the code provably never reaches: undici
 *   (requests go through node:http(s), functions/shared/kube/transport.ts), the azure/gcp/oidc auth
 *   providers and SOCKS proxies (refused up front by functions/shared/kube/config.ts `assertSupported`).
 */
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readdirSync, realpathSync, rmSync, statSync } from 'node:fs';
import * as path from 'node:path';
import { build, type BuildOptions, type Plugin } from 'esbuild';

const PROJECT_ROOT = path.resolve(__dirname, '..', '..');
export const ESBUILD_TARGET = 'node22';
/** The issue-7 budget for a Kubernetes-calling bundle (test/cdk/bundles.test.ts holds every bundle to it). */
export const BUNDLE_LIMIT_BYTES = 1.2 * 1024 * 1024;

const NOT_BUNDLED = path.join(PROJECT_ROOT, 'functions', 'shared', 'kube', 'not-bundled.ts');
const CLIENT_NODE_DIST = /[\\/]node_modules[\\/]@kubernetes[\\/]client-node[\\/]dist[\\/]/;
/** Packages client-node imports that mlpipe's code never reaches (see the module comment). */
const STUBBED_PACKAGES = /^(undici|socks|socks-proxy-agent)$/;
/** client-node's own modules for the same. */
const STUBBED_MODULES = /^\.\/(azure_auth|gcp_auth|oidc_auth)\.js$/;
const SKIP = 'mlpipe-client-node-resolved';

function isFile(file: string): boolean {
  return statSync(file, { throwIfNoEntry: false })?.isFile() ?? false;
}

export const clientNodePlugin: Plugin = {
  name: 'mlpipe-client-node',
  setup(b) {
    // Dependencies left external (e.g. a scan of our own sources): nothing to shape.
    if (b.initialOptions.packages === 'external') return;
    const fromClientNode = (importer: string): boolean => CLIENT_NODE_DIST.test(importer);
    b.onResolve({ filter: STUBBED_PACKAGES }, (args) => (fromClientNode(args.importer) ? { path: NOT_BUNDLED } : undefined));
    b.onResolve({ filter: STUBBED_MODULES }, (args) => (fromClientNode(args.importer) ? { path: NOT_BUNDLED } : undefined));
    b.onResolve({ filter: /^@kubernetes\/client-node(\/.*)?$|^\.\.?\// }, async (args) => {
      if ((args.pluginData as Record<string, unknown> | undefined)?.[SKIP]) return undefined;
      if (!args.path.startsWith('@kubernetes/') && !fromClientNode(args.importer)) return undefined;
      // client-node's ~2,000 relative imports name their file ('./gen/apis/CoreV1Api.js'): taken as it is.
      // Asking esbuild (b.resolve) for each made a bundle that reaches client-node take ~5x the CPU (measured:
      // 19 s vs 4 s of esbuild for one entry), and every synth and bundle test paid it. Anything else
      // (a directory, no extension, a package) goes to esbuild's resolver.
      const direct = args.path.startsWith('.') ? path.resolve(args.resolveDir, args.path) : undefined;
      if (direct !== undefined && isFile(direct)) return { path: realpathSync(direct), sideEffects: false };
      const resolved = await b.resolve(args.path, {
        kind: args.kind,
        importer: args.importer,
        resolveDir: args.resolveDir,
        pluginData: { [SKIP]: true },
      });
      if (resolved.errors.length > 0) return { errors: resolved.errors };
      return { path: resolved.path, sideEffects: false };
    });
  },
};

export interface LambdaBundleOptions {
  /** @default true (shipped bundles carry source maps; tests may skip them) */
  readonly sourcemap?: boolean;
}

/** esbuild options for one handler file (absolute path) into `outfile`. */
export function lambdaBuildOptions(entry: string, outfile: string, opts: LambdaBundleOptions = {}): BuildOptions {
  const sourcemap = opts.sourcemap ?? true;
  return {
    entryPoints: [entry],
    outfile,
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: ESBUILD_TARGET,
    // The AWS SDK is bundled rather than taken from the runtime: the handlers are tested against the exact
    // SDK versions in package-lock.json, and the runtime's copy changes under you.
    external: [],
    minify: true,
    sourcemap,
    sourcesContent: false,
    // ESM dependencies bundled to CJS: `import.meta.url` has no CJS equivalent esbuild could pick.
    logLevel: 'warning',
    plugins: [clientNodePlugin],
  };
}

/** Bundles one handler to `<outdir>/index.js` (+ .map); resolves with the esbuild result (metafile on). */
export async function bundleLambda(entry: string, outdir: string, opts: LambdaBundleOptions = {}) {
  return build({ ...lambdaBuildOptions(path.resolve(PROJECT_ROOT, entry), path.join(outdir, 'index.js'), opts), metafile: true });
}

/**
 * Several handlers in one esbuild call (it parses shared modules once), each to `<outdir>/<name>/index.js`
 * with the options `bundleLambda` ships; for tests.
 */
export async function bundleLambdas(entries: Record<string, string>, outdir: string, opts: LambdaBundleOptions = {}) {
  const { entryPoints: _one, outfile: _file, ...options } = lambdaBuildOptions('', '', opts);
  return build({
    ...options,
    entryPoints: Object.fromEntries(Object.entries(entries).map(([name, entry]) => [`${name}/index`, path.resolve(PROJECT_ROOT, entry)])),
    outdir,
    metafile: true,
  });
}

/** The handlers: every .ts file directly under functions/ (shared modules live in functions/shared/). */
function handlerEntries(): Map<string, string> {
  const dir = path.join(PROJECT_ROOT, 'functions');
  return new Map(readdirSync(dir).filter((f) => f.endsWith('.ts')).map((f) => [`functions/${f}`, f.slice(0, -3)]));
}

/** Prefix of the batch directories this process bundles into (see bundleLambdaSync). */
const BATCH_PREFIX = `mlpipe-bundles-${process.pid}`;
/** Output directories' parents whose batch is built (the cdk.out of each synth in this process). */
const batches = new Set<string>();

/**
 * The same, synchronously, for CDK's `tryBundle` (which cannot await): esbuild's synchronous API takes no
 * plugins, so the bundling runs in a child Node process. The first handler a synth asks for builds every
 * handler in one child and one esbuild call (it parses the shared modules and the AWS SDK once); each call
 * then copies its own bundle. Measured on the shared 2-core machine, cold synth of the local stack
 * (local/lambda/synth.ts): 395 s with one child per function, 171 s with the batch, under a heavier load.
 * The batch is built in sibling directories of the output directory, at the same depth, so the source maps'
 * relative paths, hence the bundles and their asset hashes, are what a build of the one handler gives (the
 * two synths above produced the same asset hashes).
 */
export function bundleLambdaSync(entry: string, outdir: string): void {
  const name = handlerEntries().get(path.relative(PROJECT_ROOT, path.resolve(PROJECT_ROOT, entry)).split(path.sep).join('/'));
  if (name === undefined) {
    execFileSync(process.execPath, ['--import', 'tsx', __filename, entry, outdir], { cwd: PROJECT_ROOT, stdio: ['ignore', 'inherit', 'inherit'] });
    return;
  }
  const parent = path.dirname(path.resolve(outdir));
  const built = (n: string) => path.join(parent, `${BATCH_PREFIX}-${n}`);
  if (!batches.has(parent) || !existsSync(path.join(built(name), 'index.js'))) {
    execFileSync(process.execPath, ['--import', 'tsx', __filename, '--all', parent, BATCH_PREFIX], { cwd: PROJECT_ROOT, stdio: ['ignore', 'inherit', 'inherit'] });
    if (batches.size === 0) process.once('exit', removeBatches);
    batches.add(parent);
  }
  mkdirSync(outdir, { recursive: true });
  for (const file of readdirSync(built(name))) copyFileSync(path.join(built(name), file), path.join(outdir, file));
}

function removeBatches(): void {
  for (const parent of batches) {
    for (const e of readdirSync(parent)) if (e.startsWith(`${BATCH_PREFIX}-`)) rmSync(path.join(parent, e), { recursive: true, force: true });
  }
}

if (require.main === module) {
  const args = process.argv.slice(2);
  const [entry, outdir] = args;
  let work: Promise<unknown>;
  if (entry === '--all' && args.length === 3) {
    // Every handler to <parent>/<prefix>-<name>/index.js (bundleLambdaSync).
    const [, parent, prefix] = args as [string, string, string];
    work = bundleLambdas(Object.fromEntries([...handlerEntries()].map(([file, name]) => [`${prefix}-${name}`, file])), parent);
  } else if (entry && outdir) {
    work = bundleLambda(entry, outdir);
  } else {
    console.error('usage: node --import tsx lib/constructs/lambda-bundle.ts <entry.ts> <outdir> | --all <parent-dir> <prefix>');
    process.exit(2);
  }
  work.catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
}
