/** Shared set-up for the local Kubernetes API tests: a server with a temp state dir and typed clients. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { startLocalKube, type ImageCommand, type LocalKube } from '../../local/kube';
import { storeChanges } from './store-changes';

export const HTTP_SERVER = join(__dirname, 'fixtures', 'http-server.cjs');

/** Images every test can use; commands run on this Node (22) through process.execPath. */
export const IMAGES: Record<string, ImageCommand> = {
  'example.com/ok:1': { command: process.execPath, args: ['-e', 'console.log("trained"); setTimeout(() => process.exit(0), 50)'] },
  'example.com/fail:1': { command: process.execPath, args: ['-e', 'for (let i = 1; i <= 5; i++) console.log("line " + i); console.error("boom"); process.exit(3)'] },
  'example.com/server': { command: process.execPath, args: [HTTP_SERVER] },
  'example.com/crash:1': { command: process.execPath, args: ['-e', 'console.log("crashing"); process.exit(1)'] },
  'example.com/sleeper:1': { command: process.execPath, args: ['-e', 'setInterval(() => {}, 1000)'] },
  // The images of the recorded transcripts (test/fixtures/k8s): a trainer that succeeds, a server that runs.
  'registry.example.com/mlpipe/train': { command: process.execPath, args: ['-e', 'setTimeout(() => process.exit(0), 50)'] },
  'registry.example.com/mlpipe/serve': { command: process.execPath, args: ['-e', 'setInterval(() => {}, 1000)'] },
};

export interface Harness {
  kube: LocalKube;
  kc: k8s.KubeConfig;
  core: k8s.CoreV1Api;
  apps: k8s.AppsV1Api;
  batch: k8s.BatchV1Api;
  objects: k8s.KubernetesObjectApi;
  dir: string;
  close(): Promise<void>;
}

export async function startHarness(): Promise<Harness> {
  const dir = mkdtempSync(join(tmpdir(), 'mlpipe-kube-'));
  const kube = await startLocalKube({ images: IMAGES, stateDir: join(dir, 'state'), env: { FROM_RUNNER: 'yes' } });
  const kc = new k8s.KubeConfig();
  kc.loadFromFile(kube.kubeconfigPath);
  return {
    kube,
    kc,
    dir,
    core: kc.makeApiClient(k8s.CoreV1Api),
    apps: kc.makeApiClient(k8s.AppsV1Api),
    batch: kc.makeApiClient(k8s.BatchV1Api),
    objects: k8s.KubernetesObjectApi.makeApiClient(kc),
    async close() {
      await kube.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Server-side apply exactly as @kubernetes/client-node 2.0.1 sends it. */
export const SSA = k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.ServerSideApply);

/**
 * Reads `read` until `done` holds, again after each change to the store of `kube` (controllers work on
 * events, so this is quick and takes no timer); fails with the last value after `timeoutMs` without.
 */
export async function waitFor<T>(kube: LocalKube, read: () => Promise<T>, done: (v: T) => boolean, timeoutMs = 15000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  const changes = storeChanges(kube);
  let last: T | undefined;
  try {
    do {
      last = await read();
      if (done(last)) return last;
    } while (await changes.next(deadline - Date.now()));
  } finally {
    changes.close();
  }
  throw new Error(`condition not met in ${timeoutMs} ms; last value: ${JSON.stringify(last, null, 1)?.slice(0, 3000)}`);
}

/** The error body a client call failed with, parsed (ApiException keeps it as a JSON string). */
export async function apiError(p: Promise<unknown>): Promise<{ code: number; body: Record<string, unknown> }> {
  try {
    await p;
  } catch (err) {
    if (err instanceof k8s.ApiException) {
      const body = typeof err.body === 'string' ? (JSON.parse(err.body) as Record<string, unknown>) : (err.body as Record<string, unknown>);
      return { code: err.code, body };
    }
    throw err;
  }
  throw new Error('expected the call to fail');
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
