/**
 * How every Lambda is bundled: esbuild's JS API with one plugin that keeps @kubernetes/client-node from
 * dragging in what mlpipe never runs. CDK's NodejsFunction runs the esbuild CLI, which takes no plugins,
 * so lambda-defaults.ts calls `bundleLambdaSync` from a local bundling step, and bench/bundles.ts and
 * test/cdk/bundles.test.ts call `bundleLambda`: what they measure and test is what ships.
 *
 * The plugin (numbers: `npm run bench -- bundles`):
 * - marks client-node's modules side-effect free: it has no `exports` map or `sideEffects` flag, and its
 *   index re-exports every generated API class and model, so without this esbuild keeps all of them;
 * - swaps in functions/shared/kube/not-bundled.ts for modules the code provably never reaches: undici
 *   (requests go through node:http(s), functions/shared/kube/transport.ts), the azure/gcp/oidc auth
 *   providers and SOCKS proxies (refused up front by functions/shared/kube/config.ts `assertSupported`).
 */
import { execFileSync } from 'node:child_process';
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

/**
 * The same, synchronously, for CDK's `tryBundle` (which cannot await): runs this file in a child Node
 * process, since esbuild's synchronous API takes no plugins.
 */
export function bundleLambdaSync(entry: string, outdir: string): void {
  execFileSync(process.execPath, ['--import', 'tsx', __filename, entry, outdir], { cwd: PROJECT_ROOT, stdio: ['ignore', 'inherit', 'inherit'] });
}

if (require.main === module) {
  const [entry, outdir] = process.argv.slice(2);
  if (!entry || !outdir) {
    console.error('usage: node --import tsx lib/constructs/lambda-bundle.ts <entry.ts> <outdir>');
    process.exit(2);
  }
  bundleLambda(entry, outdir).catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
}
