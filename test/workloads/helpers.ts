/**
 * Shared setup for the workload tests: a local S3 (s3rver) with the staged dataset, and the example
 * images run the way the local run starts its pods: bundled by local/images.ts, on plain Node 22, as child
 * processes. (Through tsx's loader each start cost ~1.5 s more CPU: tsx hooks every module tfjs loads.)
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startLocalS3, LOCAL_AWS_ENV, type LocalS3 } from '../../local/s3';
import { bundleImages } from '../../local/images';
import type { ImageCommand } from '../../local/kube';

export const REPO_ROOT = path.resolve(__dirname, '..', '..');
export const BUCKET = 'mlpipe-workloads-test';

export interface TestS3 {
  s3: LocalS3;
  dir: string;
  /** Env for child processes and for this process's clients. */
  env: Record<string, string>;
  stop(): Promise<void>;
}

export async function startTestS3(): Promise<TestS3> {
  const dir = mkdtempSync(path.join(tmpdir(), 'mlpipe-workloads-'));
  const s3 = await startLocalS3({ dir: path.join(dir, 's3'), buckets: [BUCKET] });
  const env = { ...LOCAL_AWS_ENV, AWS_ENDPOINT_URL_S3: s3.endpoint };
  const saved = Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]]));
  Object.assign(process.env, env);
  return {
    s3,
    dir,
    env,
    async stop() {
      await s3.stop();
      for (const [k, v] of Object.entries(saved)) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** The example entry points a test file may start, and the trainer's worker script they start by path. */
const SCRIPTS = ['examples/fashion-mnist/train.ts', 'examples/fashion-mnist/serve.ts'];
const WORKER = 'examples/fashion-mnist/mlp-worker.ts';
let bundled: { dir: string; commands: Record<string, ImageCommand> } | undefined;

/** Bundles the entry points once for the test file (its beforeAll); startScript runs them from there. */
export async function bundleScripts(): Promise<void> {
  if (bundled) return;
  const dir = mkdtempSync(path.join(tmpdir(), 'mlpipe-test-images-'));
  const entries = Object.fromEntries(SCRIPTS.map((s) => [s, path.join(REPO_ROOT, s)]));
  bundled = { dir, commands: await bundleImages(entries, [path.join(REPO_ROOT, WORKER)], dir, REPO_ROOT) };
}

/** Removes the bundles (the test file's afterAll). */
export function removeScriptBundles(): void {
  if (bundled) rmSync(bundled.dir, { recursive: true, force: true });
  bundled = undefined;
}

/** How the local run starts an image entry point (its bundle). */
export function scriptCommand(script: string): ImageCommand {
  const command = bundled?.commands[script];
  if (!command) throw new Error(`${script}: no bundle of it; call bundleScripts() in the test file's beforeAll (it bundles ${SCRIPTS.join(', ')})`);
  return command;
}

export interface Finished {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs an example entry point to completion with exactly `env` (plus PATH/HOME). */
export function runScript(script: string, env: Record<string, string>, timeoutMs = 45_000): Promise<Finished> {
  const child = startScript(script, env);
  return finished(child, timeoutMs);
}

export function startScript(script: string, env: Record<string, string>): ChildProcess & { output: { stdout: string; stderr: string } } {
  const { command, args, cwd } = scriptCommand(script);
  const child = spawn(command, args, {
    cwd,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  }) as ChildProcess & { output: { stdout: string; stderr: string } };
  child.output = { stdout: '', stderr: '' };
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (child.output.stdout += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (child.output.stderr += d));
  return child;
}

export function finished(child: ChildProcess & { output: { stdout: string; stderr: string } }, timeoutMs = 45_000): Promise<Finished> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`process did not exit in ${timeoutMs} ms; stdout:\n${child.output.stdout}\nstderr:\n${child.output.stderr}`));
    }, timeoutMs);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, ...child.output });
    });
  });
}

/** Resolves with the first match of `pattern` in the child's stdout, or rejects if it exits first. */
export function waitForOutput(
  child: ChildProcess & { output: { stdout: string; stderr: string } },
  pattern: RegExp,
  timeoutMs = 30_000,
): Promise<RegExpExecArray> {
  return new Promise((resolve, reject) => {
    const check = (): boolean => {
      const m = pattern.exec(child.output.stdout);
      if (m) {
        cleanup();
        resolve(m);
      }
      return Boolean(m);
    };
    const onExit = (code: number | null): void => {
      cleanup();
      reject(new Error(`process exited (${code}) before printing ${pattern}; stderr:\n${child.output.stderr}`));
    };
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`no ${pattern} in ${timeoutMs} ms; stdout:\n${child.output.stdout}\nstderr:\n${child.output.stderr}`));
    }, timeoutMs);
    const cleanup = (): void => {
      clearTimeout(timer);
      child.stdout!.off('data', check);
      child.off('exit', onExit);
    };
    if (check()) return;
    child.stdout!.on('data', check);
    child.once('exit', onExit);
  });
}
