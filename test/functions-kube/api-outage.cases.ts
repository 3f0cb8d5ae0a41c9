/**
 * Issue 8 item 7: a Kubernetes API outage is not a workload failure. The Await tasks reach the local
 * Kubernetes API through a proxy this test stops and restarts (connections refused) or turns into a 503 /
 * 429 answering machine, while the Job keeps running behind it. Time is an injected clock (setPhaseClock):
 * a 2-minute outage passes in virtual time, each pause of the handler moving it forward, so nothing waits
 * for real. What must hold: AwaitTraining answers `pending` through the outage (the state machine loops,
 * each loop no longer than the watch budget), the run then goes on to `succeeded`, the Job is the very
 * one submitted (same uid, never deleted or rewritten), and an outage that lasts past the phase deadline
 * fails with PhaseTimeoutError naming the unavailable API.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { handler as submitTraining } from '../../functions/submit-training';
import { handler as awaitTraining } from '../../functions/await-training';
import { handler as checkTraining } from '../../functions/check-training';
import { handler as awaitStagingRollout } from '../../functions/await-staging-rollout';
import { handler as deployStaging } from '../../functions/deploy-staging';
import { resetKube } from '../../functions/shared/kube';
import { setPhaseClock } from '../../functions/shared/phase';
import { reloadSettings } from '../../functions/shared/settings';
import type { PipelineState, RunContext, StageResult, TrainingResult } from '../../functions/shared/types';
import { startTestEnv, type TestEnv } from './env';

describe('api-outage', () => {
  /** A TCP proxy in front of the API server: `up` forwards, `down` refuses connections, `busy` answers `status`. */
  class ApiProxy {
    private server: Server | undefined;
    private readonly sockets = new Set<Socket>();
    mode: 'up' | { status: 503 | 429 } = 'up';
    /** Requests that reached the proxy while it answered an error status. */
    refusedRequests = 0;
    port = 0;

    constructor(private readonly target: URL) {}

    async start(): Promise<void> {
      const server = createServer((client) => this.accept(client));
      await new Promise<void>((resolve) => server.listen(this.port, '127.0.0.1', resolve));
      this.port = (server.address() as { port: number }).port;
      this.server = server;
    }

    /** Closes the listener and every open connection: clients then get ECONNREFUSED, watches drop. */
    async stop(): Promise<void> {
      const server = this.server;
      this.server = undefined;
      for (const s of this.sockets) s.destroy();
      await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
    }

    get running(): boolean {
      return this.server !== undefined;
    }

    private accept(client: Socket): void {
      this.sockets.add(client);
      client.on('close', () => this.sockets.delete(client));
      client.on('error', () => undefined);
      const mode = this.mode;
      if (mode !== 'up') {
        client.once('data', () => {
          this.refusedRequests++;
          const body = JSON.stringify({ kind: 'Status', apiVersion: 'v1', status: 'Failure', message: 'the API server is overloaded', reason: mode.status === 429 ? 'TooManyRequests' : 'ServiceUnavailable', code: mode.status });
          client.end(
            `HTTP/1.1 ${mode.status} ${mode.status === 429 ? 'Too Many Requests' : 'Service Unavailable'}\r\ncontent-type: application/json\r\nretry-after: 1\r\n` +
              `connection: close\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
          );
        });
        return;
      }
      const upstream = connect(Number(this.target.port), this.target.hostname);
      this.sockets.add(upstream);
      upstream.on('close', () => this.sockets.delete(upstream));
      upstream.on('error', () => client.destroy());
      client.on('close', () => upstream.destroy());
      upstream.on('close', () => client.destroy());
      client.pipe(upstream).pipe(client);
    }
  }

  /**
   * Virtual time: `now` starts at the real time and moves only when the handler pauses. `onSleep` runs at
   * each pause with the virtual time after it, e.g. to end an outage once two minutes have passed.
   */
  function virtualClock(onSleep: (now: number) => Promise<void>) {
    const clock = {
      t: Date.now(),
      sleeps: 0,
      now: () => clock.t,
      async sleep(ms: number) {
        clock.sleeps++;
        clock.t += ms;
        await onSleep(clock.t);
      },
    };
    return clock;
  }

  const OUTAGE_MS = 120_000;
  const BUDGET_SECONDS = 45;

  let env: TestEnv;
  let proxy: ApiProxy;
  let restoreClock: (() => void) | undefined;

  beforeAll(async () => {
    // A watch budget shorter than the outage: the outage spans several Await invocations.
    env = await startTestEnv({ WATCH_BUDGET_SECONDS: String(BUDGET_SECONDS) });
    proxy = new ApiProxy(new URL(env.kube.url));
    await proxy.start();
    // The handlers reach the API through the proxy: a kubeconfig like the local one, with the proxy's address.
    const kubeconfig = JSON.parse(readFileSync(env.kube.kubeconfigPath, 'utf8')) as { clusters: Array<{ cluster: { server: string } }> };
    kubeconfig.clusters[0]!.cluster.server = `http://127.0.0.1:${proxy.port}`;
    const proxied = env.kube.kubeconfigPath.replace(/\.yaml$|$/, '-proxied.yaml');
    writeFileSync(proxied, JSON.stringify(kubeconfig), { mode: 0o600 });
    process.env.KUBECONFIG = proxied;
    reloadSettings();
    resetKube();
  });
  afterEach(() => {
    restoreClock?.();
    restoreClock = undefined;
  });
  afterAll(async () => {
    await proxy?.stop();
    await env?.stop();
  });

  /** The Job as the API server holds it, read around the proxy. */
  async function jobBehindProxy(name: string): Promise<{ metadata: { uid: string; generation: number; deletionTimestamp?: string; managedFields: Array<{ manager: string; time: string }> }; status?: { conditions?: Array<{ type: string; status: string }> } }> {
    const res = await fetch(`${env.kube.url}/apis/batch/v1/namespaces/mlpipe-staging/jobs/${name}`, { headers: { authorization: `Bearer ${env.kube.token}` } });
    expect(res.status).toBe(200);
    return (await res.json()) as never;
  }

  /** Loops AwaitTraining as the state machine does; each answer with the virtual time it came at. */
  async function loopAwaitTraining(run: RunContext, training: TrainingResult, clock: { now(): number }, maxRounds: number) {
    const answers: Array<{ status: string; at: number }> = [];
    let result = training;
    for (let i = 0; i < maxRounds && result.status === 'pending'; i++) {
      result = await awaitTraining({ run, training: result } as PipelineState);
      answers.push({ status: result.status, at: clock.now() });
    }
    return { result, answers };
  }

  describe('a Kubernetes API outage during training', () => {
    it('API server stopped for 2 minutes, then back: AwaitTraining answers pending, then succeeded; the Job is untouched', async () => {
      // Prepare: a Job submitted through the proxy, then the API goes away.
      const run = await env.prepare('2026-03-01T00:00:00Z');
      const submitted = await submitTraining({ run });
      const before = await jobBehindProxy(run.names.trainingJob);
      await proxy.stop();
      let restartedAt: number | undefined;
      const clock = virtualClock(async (now) => {
        if (!proxy.running && now - start >= OUTAGE_MS) {
          await proxy.start(); // same port: the API server is back
          restartedAt = now;
        }
      });
      const start = clock.now();
      restoreClock = setPhaseClock(clock);

      // Act: the state machine's loop (IsTrainingComplete → AwaitTraining on `pending`).
      const { result, answers } = await loopAwaitTraining(run, submitted, clock, 8);

      // Assess
      expect(restartedAt! - start).toBeGreaterThanOrEqual(OUTAGE_MS);
      const pendings = answers.filter((a) => a.status === 'pending');
      // Every invocation during the outage used its whole budget (no hot loop), and none failed.
      expect(pendings.length).toBeGreaterThanOrEqual(Math.floor(OUTAGE_MS / 1000 / BUDGET_SECONDS));
      let previous = start;
      for (const p of pendings) {
        expect(p.at - previous).toBeGreaterThanOrEqual(BUDGET_SECONDS * 1000);
        expect(p.at - previous).toBeLessThanOrEqual(BUDGET_SECONDS * 1000 + 1);
        previous = p.at;
      }
      expect(result.status).toBe('succeeded');
      expect(result.metrics).toMatchObject({ accuracy: 0.875 });
      const after = await jobBehindProxy(run.names.trainingJob);
      expect(after.metadata.uid).toBe(before.metadata.uid);
      expect(after.metadata.generation).toBe(before.metadata.generation);
      expect(after.metadata.deletionTimestamp).toBeUndefined();
      // Only its controller wrote to it since: the pipeline applied it once, at submit.
      const ours = after.metadata.managedFields.filter((f) => f.manager === 'mlpipe');
      expect(ours).toEqual(before.metadata.managedFields.filter((f) => f.manager === 'mlpipe'));
      expect(after.status?.conditions).toEqual(expect.arrayContaining([expect.objectContaining({ type: 'Complete', status: 'True' })]));
    });

    it.each([503, 429] as const)('API answering %i for 2 minutes: pending until it recovers, then succeeded', async (status) => {
      const run = await env.prepare(`2026-03-01T00:0${status === 503 ? 1 : 2}:00Z`);
      const submitted = await submitTraining({ run });
      const before = await jobBehindProxy(run.names.trainingJob);
      proxy.mode = { status };
      const clock = virtualClock(async (now) => {
        if (proxy.mode !== 'up' && now - start >= OUTAGE_MS) proxy.mode = 'up';
      });
      const start = clock.now();
      restoreClock = setPhaseClock(clock);

      const { result, answers } = await loopAwaitTraining(run, submitted, clock, 8);

      expect(proxy.refusedRequests).toBeGreaterThan(0);
      expect(answers.filter((a) => a.status === 'pending').length).toBeGreaterThanOrEqual(2);
      expect(result.status).toBe('succeeded');
      expect((await jobBehindProxy(run.names.trainingJob)).metadata.uid).toBe(before.metadata.uid);
    });

    it('an outage that outlasts the training deadline: PhaseTimeoutError naming the unavailable API, not the workload', async () => {
      const run = await env.prepare('2026-03-01T00:03:00Z');
      await proxy.stop();
      const clock = virtualClock(async () => undefined);
      restoreClock = setPhaseClock(clock);
      try {
        // Submitted long ago: 30 s of the 14,400 s training phase are left.
        const training: TrainingResult = { jobName: run.names.trainingJob, namespace: 'mlpipe-staging', status: 'pending', submittedAt: new Date(clock.now() - 14_370_000).toISOString() };
        const err = await awaitTraining({ run, training } as PipelineState).then(
          () => undefined,
          (e: unknown) => e as Error,
        );
        expect(err?.name).toBe('PhaseTimeoutError');
        expect(err?.message).toContain('the training phase did not finish within 14400 s');
        expect(err?.message).toMatch(/The Kubernetes API was unavailable for the last 30 s: .*cannot reach the API server \(ECONNREFUSED\)/);
      } finally {
        await proxy.start();
      }
    });
  });

  describe('a Kubernetes API outage at a training check', () => {
    it('CheckTraining rides it out for 20 s, then answers a back-off Wait (no Lambda running meanwhile); the Job is untouched', async () => {
      const run = await env.prepare('2026-03-01T00:05:00Z');
      const submitted = await submitTraining({ run });
      const before = await jobBehindProxy(run.names.trainingJob);
      await proxy.stop();
      const clock = virtualClock(async () => undefined);
      const start = clock.now();
      restoreClock = setPhaseClock(clock);
      try {
        const result = await checkTraining({ run, training: submitted } as PipelineState);
        expect(clock.now() - start).toBeGreaterThanOrEqual(20_000);
        expect(clock.now() - start).toBeLessThanOrEqual(21_000);
        expect(result).toEqual({ ...submitted, status: 'pending', waitSeconds: expect.any(Number) });
        expect(result.waitSeconds).toBeGreaterThanOrEqual(10);
      } finally {
        await proxy.start();
      }
      expect((await jobBehindProxy(run.names.trainingJob)).metadata.uid).toBe(before.metadata.uid);
    });
  });

  describe('a Kubernetes API outage during a rollout', () => {
    it('AwaitStagingRollout answers pending while the API answers 503, then ready', async () => {
      const run = await env.prepare('2026-03-01T00:04:00Z');
      const deployed: StageResult = await deployStaging({ run });
      proxy.mode = { status: 503 };
      const clock = virtualClock(async (now) => {
        if (proxy.mode !== 'up' && now - start >= OUTAGE_MS) proxy.mode = 'up';
      });
      const start = clock.now();
      restoreClock = setPhaseClock(clock);
      let result = deployed;
      const statuses: string[] = [];
      for (let i = 0; i < 8 && result.status === 'pending'; i++) {
        result = await awaitStagingRollout({ run, staging: result } as PipelineState);
        statuses.push(result.status);
      }
      expect(statuses.slice(0, 2)).toEqual(['pending', 'pending']);
      expect(result.status).toBe('ready');
    });
  });
});
