/**
 * local/traffic.ts against two real HTTP servers (two "versions") behind the local load balancer
 * (local/kube/lb-proxy.ts) on loopback: a new connection per request spreads the requests over both,
 * answers are tallied by X-Model-Version with status and latency, the bodies are real images, refused
 * connections count as NO_ANSWER, windows by time, and stop() leaves nothing in flight.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { LoadBalancerProxy } from '../../local/kube/lb-proxy';
import { NO_ANSWER, TrafficGenerator, type TrafficResult } from '../../local/traffic';

interface Version {
  server: Server;
  port: number;
  requests: number;
  connections: number;
  instances: number[][];
}

/** A "model server" answering as `version`; every `failEvery`-th prediction answers 500. */
async function startVersion(version: string, failEvery = 0): Promise<Version> {
  const v: Version = { server: undefined as unknown as Server, port: 0, requests: 0, connections: 0, instances: [] };
  v.server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      v.requests++;
      v.instances.push(...(JSON.parse(Buffer.concat(chunks).toString('utf8')) as { instances: number[][] }).instances);
      res.setHeader('x-model-version', version);
      if (req.url !== '/v1/models/fm:predict') return void res.writeHead(404).end('{"error":"wrong path"}');
      if (failEvery && v.requests % failEvery === 0) return void res.writeHead(500, { 'content-type': 'application/json' }).end('{"error":"injected"}');
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"predictions":[[1]]}');
    });
  });
  v.server.on('connection', () => v.connections++);
  await new Promise<void>((resolve) => v.server.listen(0, '127.0.0.1', resolve));
  v.port = (v.server.address() as AddressInfo).port;
  return v;
}

/** Resolves once `n` results (of requests sent at or after `since`) have come in. */
function results(traffic: TrafficGenerator, n: number, since = Number.NEGATIVE_INFINITY): Promise<TrafficResult[]> {
  return new Promise((resolve) => {
    const seen: TrafficResult[] = [];
    const off = traffic.onResult((r) => {
      if (r.sentAt < since) return;
      seen.push(r);
      if (seen.length === n) {
        off();
        resolve(seen);
      }
    });
  });
}

/** Three distinct "images" of 784 bytes. */
const IMAGES = Uint8Array.from({ length: 3 * 784 }, (_, i) => (i * 7 + Math.floor(i / 784) * 50) % 256);

describe('TrafficGenerator', () => {
  let stable: Version;
  let canary: Version;
  let lb: LoadBalancerProxy;

  beforeAll(async () => {
    stable = await startVersion('v1');
    canary = await startVersion('v2', 2);
    lb = new LoadBalancerProxy(() => [
      { host: '127.0.0.1', port: stable.port },
      { host: '127.0.0.1', port: canary.port },
    ]);
    await lb.listen();
  });

  afterAll(async () => {
    await lb.close();
    for (const v of [stable, canary]) await new Promise((resolve) => v.server.close(resolve));
  });

  it('spreads requests over both versions through the load balancer and tallies each by X-Model-Version', async () => {
    // Prepare
    const before = { stable: stable.requests, canary: canary.requests, stableConn: stable.connections, canaryConn: canary.connections };
    // 40/s: after a stall of this process (a busy host) the generator catches up with a second's worth at
    // once; at 200/s that burst timed out in part on a loaded host and the tally no longer matched the servers'.
    const traffic = new TrafficGenerator({ url: `http://127.0.0.1:${lb.port}`, modelName: 'fm', ratePerSecond: 40, images: IMAGES });

    // Act
    traffic.start();
    await results(traffic, 20);
    await traffic.stop();

    // Assess: a connection per request, alternating pods (round-robin per connection), all sent ones answered.
    const s = traffic.snapshot();
    const sentToStable = stable.requests - before.stable;
    const sentToCanary = canary.requests - before.canary;
    expect(s.inFlight).toBe(0);
    expect(s.done).toBe(sentToStable + sentToCanary);
    expect(Math.abs(sentToStable - sentToCanary)).toBeLessThanOrEqual(1);
    expect(stable.connections - before.stableConn).toBe(sentToStable);
    expect(canary.connections - before.canaryConn).toBe(sentToCanary);
    expect(s.byVersion.v1).toMatchObject({ ok: sentToStable, failed: 0 });
    expect(s.byVersion.v2!.ok + s.byVersion.v2!.failed).toBe(sentToCanary);
    expect(Math.abs(s.byVersion.v2!.failed - sentToCanary / 2)).toBeLessThanOrEqual(1);
    expect(s.byVersion.v1!.share + s.byVersion.v2!.share).toBeCloseTo(1, 2);
    expect(s.byVersion.v1!.p95Ms).toEqual(expect.any(Number));
    expect(s.failures.length).toBeGreaterThan(0);
    expect(s.failures.every((f) => f.version === 'v2' && f.status === 500 && f.error === 'HTTP 500: injected')).toBe(true);
  });

  it('sends the images, one per request, scaled to 0..1, each in turn', async () => {
    const traffic = new TrafficGenerator({ url: `http://127.0.0.1:${stable.port}`, modelName: 'fm', ratePerSecond: 100, images: IMAGES });
    const from = stable.instances.length;
    traffic.start();
    await results(traffic, 4);
    await traffic.stop();
    const sent = stable.instances.slice(from);
    expect(sent.length).toBeGreaterThanOrEqual(4);
    // Which image each carried (arrival order may differ from send order under load): all three, in turn.
    const which = sent.map((instance) => {
      expect(instance).toHaveLength(784);
      return [0, 1, 2].find((k) => instance.every((v, i) => Math.abs(v - IMAGES[k * 784 + i]! / 255) < 1e-4));
    });
    expect(which.every((k) => k !== undefined)).toBe(true);
    expect(new Set(which).size).toBe(3);
    const counts = [0, 1, 2].map((k) => which.filter((w) => w === k).length);
    expect(Math.max(...counts) - Math.min(...counts)).toBeLessThanOrEqual(1);
  });

  it('counts refused connections as failed with no answer, and windows the tally by send time', async () => {
    // A port nothing listens on: a server closed again.
    const gone = await startVersion('gone');
    await new Promise((resolve) => gone.server.close(resolve));
    const traffic = new TrafficGenerator({ url: `http://127.0.0.1:${gone.port}`, modelName: 'fm', ratePerSecond: 100, images: IMAGES });
    traffic.start();
    const first = await results(traffic, 3);
    const since = traffic.now();
    await results(traffic, 3, since);
    const until = traffic.now();
    await results(traffic, 3, until);
    await traffic.stop();
    expect(first.every((r) => r.version === NO_ANSWER && r.status === 0 && !r.ok && r.error === 'ECONNREFUSED')).toBe(true);
    const all = traffic.snapshot();
    const later = traffic.snapshot({ since });
    expect(all.byVersion[NO_ANSWER]).toMatchObject({ ok: 0, failed: all.done, share: 1, p95Ms: null });
    expect(later.done).toBeLessThan(all.done);
    expect(later.done).toBeGreaterThanOrEqual(6);
    const between = traffic.snapshot({ since, until });
    expect(between.done).toBeGreaterThanOrEqual(3);
    expect(between.done).toBeLessThan(later.done);
    expect(between.done).toBe(traffic.snapshot({ since }).done - traffic.snapshot({ since: until }).done);
  });

  it('refuses options that cannot work, naming them', () => {
    expect(() => new TrafficGenerator({ url: 'http://127.0.0.1:1', modelName: 'fm', ratePerSecond: 0 })).toThrow(/ratePerSecond must be between 0 and 1000 \(got 0\)/);
    expect(() => new TrafficGenerator({ url: 'https://example.com', modelName: 'fm' })).toThrow(/url must be http:\/\//);
    expect(() => new TrafficGenerator({ url: 'http://127.0.0.1:1', modelName: '../x' })).toThrow(/modelName "..\/x" is not a model name/);
    expect(() => new TrafficGenerator({ url: 'http://127.0.0.1:1', modelName: 'fm', images: new Uint8Array(100) })).toThrow(/whole 28x28 images/);
  });
});
