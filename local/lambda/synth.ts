/**
 * The local run's stack: bin/mlpipe.ts synthesized the way `cdk synth` runs it (a child process with
 * CDK_OUTDIR and CDK_CONTEXT_JSON), with cdk.json's context and the local configuration as `mlpipe:*`
 * context on top. The cloud assembly is cached under a hash of everything that shapes it (functions/,
 * lib/, bin/, statemachine/, package-lock.json, cdk.json, the local context), so a repeat start with
 * unchanged sources skips the synth and its bundling.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { isAlive } from '../process-alive';
import { releaseGroup, superviseGroup } from '../reaper';

export const REPO_ROOT = resolve(__dirname, '..', '..');

/** What shapes the synthesized stack, besides the context. */
const SOURCES = ['functions', 'lib', 'bin', 'statemachine', 'package-lock.json', 'cdk.json', 'tsconfig.json'];
/** Cloud assemblies kept in a cache directory (the most recently used). */
const KEEP = 4;

export class SynthError extends Error {
  override name = 'SynthError';
}

export interface SynthResult {
  /** The cloud assembly directory (manifest.json, the template, asset.* directories). */
  dir: string;
  /** It came from the cache. */
  cached: boolean;
  ms: number;
  key: string;
}

function filesUnder(path: string): string[] {
  if (!existsSync(path)) return [];
  if (!statSync(path).isDirectory()) return [path];
  return readdirSync(path, { withFileTypes: true }).flatMap((e) => (e.name === 'node_modules' ? [] : filesUnder(join(path, e.name))));
}

/** Bump when runApp changes what it produces: every cached assembly is then stale. */
const SYNTH_FORMAT = '1';

/** The cache key: the sources' paths and contents, how synth runs (SYNTH_FORMAT), the context. */
export function synthKey(context: Record<string, unknown>, root = REPO_ROOT): string {
  const hash = createHash('sha256').update(SYNTH_FORMAT);
  const files = SOURCES.flatMap((s) => filesUnder(join(root, s))).sort();
  for (const file of files) {
    hash.update(relative(root, file)).update('\0').update(readFileSync(file)).update('\0');
  }
  hash.update(JSON.stringify(Object.entries(context).sort(([a], [b]) => a.localeCompare(b))));
  return hash.digest('hex').slice(0, 24);
}

/** cdk.json's context (what `cdk synth` would pass), then `mlpipe:*` keys of the local configuration. */
function appContext(local: Record<string, unknown>, root: string): Record<string, unknown> {
  const cdkJson = JSON.parse(readFileSync(join(root, 'cdk.json'), 'utf8')) as { context?: Record<string, unknown> };
  const prefixed = Object.fromEntries(Object.entries(local).map(([k, v]) => [k.includes(':') ? k : `mlpipe:${k}`, v]));
  return { ...cdkJson.context, ...prefixed };
}

function runApp(outdir: string, context: Record<string, unknown>, logFile: string, root: string): Promise<void> {
  return new Promise((resolvePromise, reject) => {
    const env: NodeJS.ProcessEnv = { ...process.env, CDK_OUTDIR: outdir, CDK_CONTEXT_JSON: JSON.stringify(context) };
    // Environment-agnostic, like `cdk synth` without credentials: the account and region are the local ones.
    delete env.CDK_DEFAULT_ACCOUNT;
    delete env.CDK_DEFAULT_REGION;
    // A process group of its own, registered with the reaper: a run killed mid-synth takes the synth (and
    // the bundlers it started) with it.
    const child = spawn(process.execPath, ['--import', 'tsx', join(root, 'bin', 'mlpipe.ts')], { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    if (child.pid) superviseGroup(child.pid);
    const output: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => output.push(b));
    child.stderr.on('data', (b: Buffer) => output.push(b));
    child.on('error', reject);
    child.on('close', (code) => {
      if (child.pid) releaseGroup(child.pid);
      const text = Buffer.concat(output).toString('utf8');
      writeFileSync(logFile, text);
      if (code === 0) resolvePromise();
      else reject(new SynthError(`synthesizing the stack failed (exit ${code}); the last lines of ${logFile}:\n${text.trim().split('\n').slice(-15).join('\n')}`));
    });
  });
}

const inFlight = new Map<string, Promise<SynthResult>>();

/**
 * The cloud assembly for this local configuration: from `cacheDir` when the sources are unchanged,
 * else synthesized into it. Concurrent callers in one process share one synth; across processes the
 * last rename wins and both results are the same.
 */
export function synthesizeLocalStack(opts: { context: Record<string, unknown>; cacheDir: string; root?: string }): Promise<SynthResult> {
  const root = opts.root ?? REPO_ROOT;
  const started = performance.now();
  const context = appContext(opts.context, root);
  const key = synthKey(context, root);
  const dir = join(resolve(opts.cacheDir), key);
  if (existsSync(join(dir, 'manifest.json'))) {
    const now = new Date();
    utimesSync(dir, now, now); // most recently used: pruning keeps it
    return Promise.resolve({ dir, cached: true, ms: performance.now() - started, key });
  }
  let pending = inFlight.get(dir);
  if (!pending) {
    pending = (async () => {
      mkdirSync(opts.cacheDir, { recursive: true });
      // Another process (a parallel jest worker, a second `npm start`) may be synthesizing the same stack.
      const release = await lock(`${dir}.lock`, () => existsSync(join(dir, 'manifest.json')));
      if (release === undefined) {
        inFlight.delete(dir);
        return { dir, cached: true, ms: performance.now() - started, key };
      }
      const tmp = `${dir}.tmp-${process.pid}-${Date.now()}`;
      try {
        await runApp(tmp, context, `${tmp}.log`, root);
        if (!existsSync(join(dir, 'manifest.json'))) {
          rmSync(dir, { recursive: true, force: true });
          renameSync(tmp, dir);
        }
        renameSync(`${tmp}.log`, join(opts.cacheDir, `${key}.synth.log`));
      } finally {
        rmSync(tmp, { recursive: true, force: true });
        rmSync(`${tmp}.log`, { force: true });
        release();
        inFlight.delete(dir);
      }
      prune(opts.cacheDir, dir);
      return { dir, cached: false, ms: performance.now() - started, key };
    })();
    inFlight.set(dir, pending);
  }
  return pending;
}

/**
 * Takes the lock file `path` (its content is the holder's pid) and resolves to its release, or resolves
 * to undefined once `done()` says the holder finished the work. A holder that died leaves a stale lock,
 * which is taken over.
 */
async function lock(path: string, done: () => boolean): Promise<(() => void) | undefined> {
  for (;;) {
    try {
      writeFileSync(path, String(process.pid), { flag: 'wx' });
      const release = () => rmSync(path, { force: true });
      // The previous holder may have finished between our last look and taking the lock.
      if (!done()) return release;
      release();
      return undefined;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    if (done()) return undefined;
    const holder = Number(readFileSync(path, 'utf8').trim());
    if (!Number.isInteger(holder) || !isAlive(holder)) {
      rmSync(path, { force: true });
      continue;
    }
    // The holder's synth takes minutes; checking twice a second costs nothing.
    await new Promise((r) => setTimeout(r, 500));
  }
}

/** Keeps the KEEP most recently used assemblies (each is ~100 MB of bundles and source maps). */
function prune(cacheDir: string, keep: string): void {
  const entries = readdirSync(cacheDir, { withFileTypes: true })
    .filter((e) => e.isDirectory() && /^[0-9a-f]{24}$/.test(e.name))
    .map((e) => ({ path: join(cacheDir, e.name), used: statSync(join(cacheDir, e.name)).mtimeMs }))
    .sort((a, b) => b.used - a.used);
  for (const e of entries.slice(KEEP)) {
    if (e.path === keep) continue;
    rmSync(e.path, { recursive: true, force: true });
    rmSync(`${e.path}.synth.log`, { force: true });
  }
}
