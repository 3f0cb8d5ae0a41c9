/**
 * Watch bookmarks on kube-apiserver's schedule (transcripts 09 and 21), with a short timeoutSeconds so the
 * test takes seconds, not minutes: a bookmark only when the resource type changed somewhere since the last
 * line sent, 2 s before timeoutSeconds ends the watch (else every 60 s) — so never within client-node's
 * 30 s idle limit on a quiet cluster; and a plain watch without resourceVersion ends its replay with an
 * initial-events-end bookmark.
 */
import { startHarness, type Harness } from './helpers';

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
  for (const ns of ['bm-quiet', 'bm-noise']) await h.core.createNamespace({ body: { metadata: { name: ns } } });
});
afterAll(async () => {
  await h.close();
});

interface Line {
  at: number;
  type: string;
  object: { kind?: string; apiVersion?: string; metadata?: { name?: string; resourceVersion?: string; creationTimestamp?: null; annotations?: Record<string, string> } };
}

/** Reads a watch to its end (the server closes it at timeoutSeconds), noting each line's arrival time. */
async function watchLines(query: string): Promise<{ lines: Line[]; endedAfterMs: number }> {
  const started = Date.now();
  const res = await fetch(`${h.kube.url}/api/v1/namespaces/bm-quiet/configmaps?watch=1&${query}`, { headers: { Authorization: `Bearer ${h.kube.token}` } });
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  const lines: Line[] = [];
  let buffer = '';
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let nl: number;
    while ((nl = buffer.indexOf('\n')) >= 0) {
      lines.push({ at: Date.now() - started, ...(JSON.parse(buffer.slice(0, nl)) as Omit<Line, 'at'>) });
      buffer = buffer.slice(nl + 1);
    }
  }
  return { lines, endedAfterMs: Date.now() - started };
}

async function currentRv(): Promise<string> {
  return (await h.core.listNamespacedConfigMap({ namespace: 'bm-quiet' })).metadata!.resourceVersion!;
}

it('sends no bookmark at all while nothing of the type changes, and ends at timeoutSeconds', async () => {
  const { lines, endedAfterMs } = await watchLines(`allowWatchBookmarks=true&timeoutSeconds=3&resourceVersion=${await currentRv()}`);
  expect(lines).toEqual([]);
  expect(endedAfterMs).toBeGreaterThanOrEqual(2900);
});

it('sends one bookmark 2 s before timeoutSeconds when the type changed elsewhere, carrying only its resourceVersion', async () => {
  const watching = watchLines(`allowWatchBookmarks=true&timeoutSeconds=3&resourceVersion=${await currentRv()}`);
  const noise = await h.core.createNamespacedConfigMap({ namespace: 'bm-noise', body: { metadata: { name: 'noise' }, data: { k: 'v' } } });
  const { lines } = await watching;
  expect(lines.map(({ at: _at, ...l }) => l)).toEqual([
    { type: 'BOOKMARK', object: { kind: 'ConfigMap', apiVersion: 'v1', metadata: { resourceVersion: noise.metadata!.resourceVersion, creationTimestamp: null } } },
  ]);
  expect(lines[0]!.at).toBeGreaterThanOrEqual(900);
  expect(lines[0]!.at).toBeLessThan(2500);
});

it('ends the replay of a watch without resourceVersion with an initial-events-end bookmark', async () => {
  await h.core.createNamespacedConfigMap({ namespace: 'bm-quiet', body: { metadata: { name: 'present' }, data: { k: 'v' } } });
  const { lines } = await watchLines('allowWatchBookmarks=true&timeoutSeconds=1');
  expect(lines.map((l) => [l.type, l.object.metadata?.name ?? l.object.metadata?.annotations?.['k8s.io/initial-events-end']])).toEqual([
    ['ADDED', 'present'],
    ['BOOKMARK', 'true'],
  ]);
});
