/**
 * The local images' commands as plain JavaScript: each entry point (train.ts, serve.ts, and the trainer's
 * worker script) bundled by esbuild into one CommonJS file, its npm packages left as `require`s of their
 * installed files. A pod then starts on plain Node, as it would from its image, instead of through tsx's
 * loader, which hooks every module tfjs loads: measured, importing @tensorflow/tfjs costs 2.4 s of CPU
 * through tsx against 1.0 s without, and a repeat local run starts about ten such pods.
 */
import { basename, extname, join } from 'node:path';
import { build } from 'esbuild';
import { installedPackages } from './installed-packages.cjs';
import type { ImageCommand } from './kube';

const LAZY_SOURCE_MAPS = join(__dirname, 'lazy-source-maps.cjs');

/**
 * Bundles `entries` (image → TypeScript entry file) and `extra` (files an entry starts by path, next to
 * it: the trainer's worker script) into `outDir`; returns each image's command. Entries are named
 * `<file>.cjs`, so a script that finds a sibling by its own extension (trainer.ts: mlp-worker + extname of
 * __filename) finds the bundled sibling.
 */
export async function bundleImages(entries: Record<string, string>, extra: string[], outDir: string, cwd: string): Promise<Record<string, ImageCommand>> {
  await build({
    entryPoints: [...Object.values(entries), ...extra],
    outdir: outDir,
    outExtension: { '.js': '.cjs' },
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node22',
    sourcemap: true,
    logLevel: 'error',
    plugins: [installedPackages],
  });
  const out = (file: string) => join(outDir, `${basename(file, extname(file))}.cjs`);
  // A pod's stack trace names the TypeScript lines, as it did through tsx: mapped when written
  // (lazy-source-maps.cjs), not with --enable-source-maps, which parsed tfjs's maps in every pod.
  return Object.fromEntries(Object.entries(entries).map(([image, file]) => [image, { command: process.execPath, args: ['--require', LAZY_SOURCE_MAPS, out(file)], cwd }]));
}
