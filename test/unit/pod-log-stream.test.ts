/**
 * `mlpipe logs -f` reads the log through followPodLogOnce: against a loopback server standing in for the
 * API server's log endpoint, a connection that drops mid-stream ends the follow as 'dropped' with what
 * arrived delivered (client-node's Log.log hung and crashed the process here), a clean end is 'ended', and
 * an error status rejects with the API server's message.
 */
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { followPodLogOnce } from '../../cli/pod-log-stream';
import { resetKube } from '../../functions/shared/kube';
import { reloadSettings } from '../../functions/shared/settings';

describe('followPodLogOnce', () => {
  let server: Server;
  let dir: string;
  const saved = process.env.KUBECONFIG;
  const seen: string[] = [];
  let answer: 'drop' | 'end' | 'missing' = 'end';

  beforeAll(async () => {
    server = createServer((req, res) => {
      seen.push(req.url ?? '');
      if (answer === 'missing') {
        res.writeHead(404, { 'Content-Type': 'application/json' });
        res.end(JSON.stringify({ kind: 'Status', status: 'Failure', reason: 'NotFound', message: 'pods "p" not found', code: 404 }));
        return;
      }
      res.writeHead(200, { 'Content-Type': 'text/plain' });
      res.write('epoch 1/2\n', () => {
        if (answer === 'drop') res.socket?.destroy();
        else res.end('epoch 2/2\n');
      });
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    dir = mkdtempSync(join(tmpdir(), 'mlpipe-podlog-'));
    const kubeconfig = join(dir, 'kubeconfig');
    const server_ = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    writeFileSync(
      kubeconfig,
      JSON.stringify({
        apiVersion: 'v1', kind: 'Config', 'current-context': 'c',
        clusters: [{ name: 'k', cluster: { server: server_, 'insecure-skip-tls-verify': true } }], users: [{ name: 'u', user: { token: 't' } }],
        contexts: [{ name: 'c', context: { cluster: 'k', user: 'u' } }],
      }),
    );
    process.env.KUBECONFIG = kubeconfig;
    reloadSettings();
    resetKube();
  });

  afterAll(async () => {
    if (saved === undefined) delete process.env.KUBECONFIG;
    else process.env.KUBECONFIG = saved;
    reloadSettings();
    resetKube();
    server.closeAllConnections();
    server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const read = async () => {
    const chunks: Buffer[] = [];
    const how = await followPodLogOnce({ namespace: 'mlpipe-staging', pod: 'p', container: 'train', tailLines: 5 }, (c) => chunks.push(c));
    return { how, text: Buffer.concat(chunks).toString('utf8') };
  };

  it('a dropped connection ends the follow as dropped, with what arrived delivered', async () => {
    answer = 'drop';
    expect(await read()).toEqual({ how: 'dropped', text: 'epoch 1/2\n' });
    expect(seen.at(-1)).toBe('/api/v1/namespaces/mlpipe-staging/pods/p/log?container=train&follow=true&tailLines=5');
  });

  it('a stream the API server closes is ended, every byte delivered', async () => {
    answer = 'end';
    expect(await read()).toEqual({ how: 'ended', text: 'epoch 1/2\nepoch 2/2\n' });
  });

  it("an error status rejects with the API server's message", async () => {
    answer = 'missing';
    await expect(read()).rejects.toThrow('HTTP 404 NotFound: pods "p" not found');
  });
});
