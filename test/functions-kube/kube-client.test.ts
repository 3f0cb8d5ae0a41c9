/**
 * functions/shared/kube against the answers a real kube-apiserver v1.32 gives (test/fixtures/k8s,
 * transcripts 02, 09, 10): watches resume through 410 Expired (as an ERROR event, as the real server
 * sends it, and as HTTP 410), through streams that go silent (no bookmark comes for a quiet collection)
 * and through streams the server closes at once, without busy-looping; a 422 immutable-field answer
 * becomes one line naming the field and why; a pod that never got a node has "no log", not an
 * unreachable API server. The local Kubernetes API where it answers like the real one (410 after a watch
 * cache restart, 204 logs, immutable Job templates); a loopback server replaying the transcripts' answers
 * for the forms it does not produce (HTTP 410, a silent or closing stream).
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { V1ConfigMap, V1Job, V1Pod } from '@kubernetes/client-node';
import { startLocalKube, type LocalKube } from '../../local/kube';
import {
  applyObject,
  collectionPath,
  NO_LOG_NOT_SCHEDULED,
  podLogTail,
  resetKube,
  watchUntil,
} from '../../functions/shared/kube';

const TRANSCRIPTS = join(__dirname, '..', 'fixtures', 'k8s');
interface Transcript {
  requests: Array<{ method: string; path: string; status: number; response: unknown; rawLines?: Array<string | null> }>;
}
const transcript = (file: string) => JSON.parse(readFileSync(join(TRANSCRIPTS, file), 'utf8')) as Transcript;

const saved = { ...process.env };
let dir: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'mlpipe-kube-client-'));
});
afterAll(() => {
  process.env = saved;
  resetKube();
  rmSync(dir, { recursive: true, force: true });
});

/** Points the kube module at `server` (plain HTTP, as the local API's kubeconfig does). */
function useServer(url: string): void {
  const file = join(dir, `kubeconfig-${Date.now()}-${Math.random()}.json`);
  writeFileSync(
    file,
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'c', cluster: { server: url, 'insecure-skip-tls-verify': true } }],
      users: [{ name: 'u', user: { token: 'test-token' } }],
      contexts: [{ name: 'c', context: { cluster: 'c', user: 'u' } }],
      'current-context': 'c',
    }),
  );
  process.env.KUBECONFIG = file;
  resetKube();
}

/** A loopback API server scripted per request; records what it was asked. */
async function scriptedServer(answer: (req: IncomingMessage, res: ServerResponse, n: number) => void) {
  const requests: string[] = [];
  const open = new Set<ServerResponse>();
  const server: Server = createServer((req, res) => {
    requests.push(req.url!);
    open.add(res);
    res.on('close', () => open.delete(res));
    answer(req, res, requests.length);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  useServer(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
  return {
    requests,
    async stop() {
      for (const res of open) res.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}

const CM_PATH = '/api/v1/namespaces/tx-09/configmaps';
const configMap = (name: string, rv: string) => ({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, namespace: 'tx-09', resourceVersion: rv } });
const list = (rv: string, items: unknown[] = []) => JSON.stringify({ kind: 'ConfigMapList', apiVersion: 'v1', metadata: { resourceVersion: rv }, items });
const named = (name: string) => (cm: V1ConfigMap, type: string) => (cm.metadata?.name === name ? `${type} ${name}` : undefined);

describe('watchUntil against kube-apiserver answers (loopback replay)', () => {
  it('relists after the ERROR event with a Status 410 Expired the real server sends for a too-old resourceVersion', async () => {
    // Prepare: the exact line transcript 09 received for a watch from rv=1.
    const expired = transcript('09-watch-expired-rv-and-bookmarks.json').requests.find((r) => r.path.endsWith('watch=1&resourceVersion=1'))!;
    const errorLine = expired.rawLines!.find((l) => l?.includes('"ERROR"'))!;
    const server = await scriptedServer((req, res, n) => {
      const url = new URL(req.url!, 'http://x');
      if (url.searchParams.get('watch') !== '1') return res.end(list(n === 1 ? '1' : '2926'));
      res.writeHead(200, { 'content-type': 'application/json' });
      if (url.searchParams.get('resourceVersion') === '1') return res.end(errorLine + '\n');
      res.end(JSON.stringify({ type: 'ADDED', object: configMap('cm-2', '2930') }) + '\n');
    });
    try {
      // Act
      const result = await watchUntil(CM_PATH, {}, named('cm-2'), 10_000);
      // Assess
      expect(result).toBe('ADDED cm-2');
      expect(server.requests.map((u) => new URL(u, 'http://x').searchParams.get('resourceVersion') ?? 'list')).toEqual(['list', '1', 'list', '2926']);
    } finally {
      await server.stop();
    }
  });

  it('relists after an HTTP 410 answer to the watch request', async () => {
    const server = await scriptedServer((req, res, n) => {
      const url = new URL(req.url!, 'http://x');
      if (url.searchParams.get('watch') !== '1') return res.end(list(n === 1 ? '5' : '9'));
      if (url.searchParams.get('resourceVersion') === '5') {
        res.writeHead(410, { 'content-type': 'application/json' });
        return res.end(JSON.stringify({ kind: 'Status', apiVersion: 'v1', status: 'Failure', message: 'too old resource version: 5 (8)', reason: 'Expired', code: 410 }));
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ type: 'ADDED', object: configMap('cm-3', '10') }) + '\n');
    });
    try {
      expect(await watchUntil(CM_PATH, {}, named('cm-3'), 10_000)).toBe('ADDED cm-3');
      expect(server.requests.filter((u) => !u.includes('watch=1'))).toHaveLength(2);
    } finally {
      await server.stop();
    }
  });

  it('resumes a silent stream after the idle limit from the same resourceVersion, without relisting', async () => {
    // The real server sends nothing at all for a quiet collection (transcript 09: 75 s, no bookmark).
    const resumes: Array<{ kind: string; resourceVersion?: string; after?: string }> = [];
    const server = await scriptedServer((req, res) => {
      const url = new URL(req.url!, 'http://x');
      if (url.searchParams.get('watch') !== '1') return res.end(list('7'));
      res.writeHead(200, { 'content-type': 'application/json' });
      res.flushHeaders();
      const watches = server.requests.filter((u) => u.includes('watch=1')).length;
      if (watches >= 2) res.end(JSON.stringify({ type: 'MODIFIED', object: configMap('cm-1', '8') }) + '\n');
      // the first watch: silence, the connection left open
    });
    try {
      const result = await watchUntil(CM_PATH, {}, named('cm-1'), 10_000, undefined, { idleMs: 300, onResume: (e) => void resumes.push(e) });
      expect(result).toBe('MODIFIED cm-1');
      expect(resumes).toEqual([
        { kind: 'list', after: undefined },
        { kind: 'watch', resourceVersion: '7', after: undefined },
        { kind: 'watch', resourceVersion: '7', after: 'idle' },
      ]);
    } finally {
      await server.stop();
    }
  });

  it('backs off instead of busy-looping when every stream closes at once, and answers undefined at the budget', async () => {
    const server = await scriptedServer((req, res) => {
      const url = new URL(req.url!, 'http://x');
      if (url.searchParams.get('watch') !== '1') return res.end(list('3'));
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end();
    });
    try {
      expect(await watchUntil(CM_PATH, {}, named('never'), 1_500)).toBeUndefined();
      // 250 + 500 + 1000 ms of backoff fill the budget: a handful of watches, not hundreds.
      const watches = server.requests.filter((u) => u.includes('watch=1')).length;
      expect(watches).toBeGreaterThanOrEqual(2);
      expect(watches).toBeLessThanOrEqual(5);
    } finally {
      await server.stop();
    }
  });

  it('fails at once on a watch refused for a reason a retry does not fix (403), naming the request', async () => {
    const server = await scriptedServer((req, res) => {
      if (!req.url!.includes('watch=1')) return res.end(list('3'));
      res.writeHead(403, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ kind: 'Status', apiVersion: 'v1', status: 'Failure', reason: 'Forbidden', code: 403, message: 'configmaps is forbidden: User "x" cannot watch resource "configmaps"' }));
    });
    try {
      await expect(watchUntil(CM_PATH, {}, named('x'), 10_000)).rejects.toMatchObject({
        name: 'KubernetesRequestError',
        message: `Kubernetes watch ${CM_PATH} failed: HTTP 403 Forbidden: configmaps is forbidden: User "x" cannot watch resource "configmaps"`,
      });
    } finally {
      await server.stop();
    }
  });
});

describe('a 422 immutable-field answer (transcript 02) as one line', () => {
  const answers = transcript('02-apply-job-template-change-immutable.json').requests.filter((r) => r.status === 422);

  it.each([
    [
      'the pod template (a 5.6 KB Go dump in the API message)',
      answers.find((r) => JSON.stringify(r.response).includes('"field": "spec.template"') || (r.response as { details: { causes: Array<{ field: string }> } }).details.causes[0]!.field === 'spec.template')!,
      "Job mlpipe-staging/fashion-train: spec.template is immutable (a Job's pod template cannot change after creation; delete the Job or use a new version)",
    ],
    [
      'completions',
      answers.find((r) => (r.response as { details: { causes: Array<{ field: string }> } }).details.causes[0]!.field === 'spec.completions')!,
      "Job mlpipe-staging/fashion-train: spec.completions is immutable (a Job's completions cannot change after creation; delete the Job or use a new version)",
    ],
  ])('%s', async (_what, recorded, expected) => {
    expect(JSON.stringify(recorded.response).length).toBeGreaterThan(300);
    const server = await scriptedServer((_req, res) => {
      res.writeHead(422, { 'content-type': 'application/json' });
      res.end(JSON.stringify(recorded.response));
    });
    try {
      const err = (await applyObject({ apiVersion: 'batch/v1', kind: 'Job', metadata: { name: 'fashion-train', namespace: 'mlpipe-staging' } }).catch((e: unknown) => e)) as Error;
      expect(err.name).toBe('KubernetesRequestError');
      expect(err.message).toBe(expected);
    } finally {
      await server.stop();
    }
  });
});

describe('against the local Kubernetes API', () => {
  let kube: LocalKube;
  beforeAll(async () => {
    kube = await startLocalKube({ stateDir: join(dir, 'kube'), images: {}, namespaces: ['ns', 'other'] });
  });
  beforeEach(() => {
    process.env.KUBECONFIG = kube.kubeconfigPath;
    resetKube();
  });
  afterAll(async () => {
    await kube.stop();
  });

  it('a watch whose resourceVersion expired (API server restart) relists and still sees the change', async () => {
    const resumes: string[] = [];
    const result = await watchUntil(
      collectionPath('Service', 'ns'),
      {},
      (svc, type) => (svc.metadata?.name === 'late' ? `${type} late` : undefined),
      10_000,
      undefined,
      {
        onResume: async (e) => {
          resumes.push(`${e.kind}${e.after ? ` after ${e.after}` : ''}`);
          if (e.kind === 'watch' && !e.after) {
            // Between the list and the watch: a change elsewhere, then an API server restart, so the
            // list's resourceVersion is older than the new watch cache (transcript 09, "after the restart").
            await applyObject({ apiVersion: 'v1', kind: 'Service', metadata: { name: 'noise', namespace: 'other' }, spec: { ports: [{ port: 80 }] } });
            kube.restartWatchCache();
          }
          if (e.kind === 'watch' && e.after === 'expired') {
            await applyObject({ apiVersion: 'v1', kind: 'Service', metadata: { name: 'late', namespace: 'ns' }, spec: { ports: [{ port: 80 }] } });
          }
        },
      },
    );
    expect(resumes).toEqual(['list', 'watch', 'list after expired', 'watch after expired']);
    expect(result).toBe('ADDED late');
  });

  it('changing an applied Job\'s pod template fails in one line that names the field and why', async () => {
    const job = (image: string): V1Job => ({
      apiVersion: 'batch/v1',
      kind: 'Job',
      metadata: { name: 'train-x', namespace: 'ns' },
      spec: { template: { spec: { restartPolicy: 'Never', containers: [{ name: 'train', image }] } } },
    });
    await applyObject(job('test.local/none:1'));
    const err = (await applyObject(job('test.local/none:2')).catch((e: unknown) => e)) as Error;
    expect(err.name).toBe('KubernetesRequestError');
    expect(err.message).toBe("Job ns/train-x: spec.template is immutable (a Job's pod template cannot change after creation; delete the Job or use a new version)");
  });

  it('a pod that never got a node has no log (204), said as such', async () => {
    const pod: V1Pod = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'pending-pod', namespace: 'ns' },
      spec: { nodeSelector: { 'no-such-label': 'x' }, containers: [{ name: 'main', image: 'test.local/none:1' }] },
    };
    await applyObject(pod);
    expect(await podLogTail('ns', 'pending-pod')).toBe(NO_LOG_NOT_SCHEDULED);
    expect(NO_LOG_NOT_SCHEDULED).toBe('(no log: the pod never started (not scheduled))');
  });
});
