/**
 * Every run of the local state machine gets live traffic during its production rollout, whoever started
 * it (local/rollout-traffic.ts): a real local Step Functions engine runs a rollout's states, a real HTTP
 * model server stands in for production, and the canary's analysis (the real judge, on what the server
 * counted during the step) must see requests, for a run this process did not start as for its own.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { judge, statsOf } from '../../functions/shared/canary-analysis';
import type { CanaryState } from '../../functions/shared/types';
import { lineReporter, watchRolloutTraffic, type RolloutTrafficWatcher } from '../../local/rollout-traffic';
import { LocalStepFunctions, type TaskHandler } from '../../local/stepfunctions';
import { validatedFileFor } from '../sfn-validated';

const ARN = 'arn:aws:states:us-east-1:000000000000:stateMachine:mlpipe-rollout-traffic';
const EXEC = ARN.replace(':stateMachine:', ':execution:');
const FN = (n: string) => `arn:aws:lambda:us-east-1:000000000000:function:${n}`;
const MIN_REQUESTS = 10;
const IMAGES = new Uint8Array(28 * 28 * 4).map((_, i) => i % 256);

/** The rollout's states, as the pipeline names them: what the watcher follows. */
const definition = {
  StartAt: 'DeployProduction',
  States: {
    DeployProduction: {
      Type: 'Task', Resource: FN('deploy'), ResultPath: '$.production', Next: 'ShiftCanaryTraffic',
      Catch: [{ ErrorEquals: ['States.ALL'], ResultPath: '$.error', Next: 'Refused' }],
    },
    ShiftCanaryTraffic: { Type: 'Task', Resource: FN('shift'), ResultPath: '$.canary', Next: 'AnalyzeCanary' },
    AnalyzeCanary: { Type: 'Task', Resource: FN('analyze'), ResultPath: '$.canary', Next: 'Done' },
    Done: { Type: 'Succeed' },
    Refused: { Type: 'Pass', End: true },
  },
};

/**
 * Production's stand-in: answers every prediction as version v1 and counts them (on arrival). While
 * `hold` is on, answers wait until it is turned off (an answer slower than the canary's bake).
 */
function startProduction(): Promise<{ endpoint: string; count(): number; reached(n: number): Promise<void>; hold(on: boolean): void; server: Server }> {
  let count = 0;
  const waiters: Array<{ n: number; resolve(): void }> = [];
  let held: Array<() => void> | undefined;
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      count++;
      for (const w of waiters.filter((x) => x.n <= count)) w.resolve();
      const answer = () => {
        res.writeHead(200, { 'content-type': 'application/json', 'x-model-version': 'v1' });
        res.end(JSON.stringify({ predictions: [[0.1, 0.9]] }));
      };
      if (held) held.push(answer);
      else answer();
    });
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () =>
      resolve({
        endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
        count: () => count,
        reached: (n) => (count >= n ? Promise.resolve() : new Promise<void>((r) => waiters.push({ n, resolve: r }))),
        hold: (on) => {
          const answers = held;
          held = on ? (held ?? []) : undefined;
          if (!on) answers?.forEach((answer) => answer());
        },
        server,
      }),
    ),
  );
}

describe('rollout traffic for every run of the local state machine', () => {
  let production: Awaited<ReturnType<typeof startProduction>>;
  let sfn: LocalStepFunctions;
  let rollouts: RolloutTrafficWatcher;
  const lines: string[] = [];
  const baselines = new Map<string, number>();
  /** Runs whose analysis waits for the test (the overlap case). */
  const held = new Map<string, Promise<void>>();

  const canary = (over: Partial<CanaryState>): CanaryState => ({
    status: 'baking', stableVersion: 'v1', totalReplicas: 2, step: 0, weight: 100, canaryReplicas: 2, stableReplicas: 0,
    reachablePercent: 100, scaledAt: '2026-11-29T00:00:00Z', inconclusive: 0, analyses: 0, waitSeconds: 2, steps: [], ...over,
  });

  const handlers: Record<string, TaskHandler> = {
    DeployProduction: async (input) => {
      if ((input as { refuse?: boolean }).refuse) throw Object.assign(new Error('another canary (version v3 over v1) splits production traffic now'), { name: 'CanaryError' });
      return { status: 'pending', rollout: { strategy: 'canary', stableVersion: 'v1', reason: 'canary over v1, steps 100 %' } };
    },
    ShiftCanaryTraffic: async (_input, ctx) => {
      baselines.set(ctx.executionArn, production.count());
      return canary({});
    },
    // The bake ends once the step has the requests an analysis needs (at most 3 s: without traffic it would
    // never end); then the real judge decides on what the server counted during the step.
    AnalyzeCanary: async (_input, ctx) => {
      await held.get(ctx.executionArn);
      const from = baselines.get(ctx.executionArn)!;
      let guard: NodeJS.Timeout | undefined;
      await Promise.race([production.reached(from + MIN_REQUESTS), new Promise((r) => (guard = setTimeout(r, 3000)))]);
      clearTimeout(guard);
      const n = production.count() - from;
      const stats = statsOf({ requests: n, errors: 0, buckets: [[5, n]], pods: 2, podsRead: 2 });
      const evidence = { ...judge(stats, null, { maxErrorRate: 0.05, maxErrorRateIncrease: 0.05, maxP95LatencyMs: 5000, maxP95Ratio: 10, minRequests: MIN_REQUESTS }), servedShare: 1 };
      const passed = evidence.verdict === 'pass';
      return canary({
        status: passed ? 'promote' : 'rollback', analyses: 1, last: evidence,
        steps: [{ weight: 100, canaryReplicas: 2, stableReplicas: 0, reachablePercent: 100, startedAt: 'a', endedAt: 'b', analyses: 1, evidence }],
      });
    },
  };

  const input = (extra: Record<string, unknown> = {}) =>
    JSON.stringify({ run: { modelName: 'fashion', version: 'v2', rollout: { strategy: 'canary', steps: [100], bakeSeconds: 2 } }, ...extra });
  const outputOf = async (name: string) => JSON.parse((await sfn.waitForExecution(`${EXEC}:${name}`)).output ?? 'null') as { canary?: CanaryState };
  const linesOf = (name: string) => lines.filter((l) => l.startsWith(`[${name}]`));

  beforeAll(async () => {
    production = await startProduction();
    sfn = new LocalStepFunctions({ definition, validatedFile: validatedFileFor(definition), stateMachineArn: ARN, taskHandlers: handlers });
    rollouts = watchRolloutTraffic(sfn, {
      ratePerSecond: 100,
      images: IMAGES,
      productionRecord: async (modelName) => ({ modelName, version: 'v1', previousVersion: null, endpoint: production.endpoint, switchedAt: '', history: [] }),
      reporterFor: (name) => lineReporter((l) => lines.push(l), `[${name}]   `),
    });
  });

  afterAll(async () => {
    await rollouts.stop();
    await sfn.close();
    production.server.closeAllConnections();
    await new Promise((r) => production.server.close(r));
  });

  it('a run started elsewhere (mlpipe run) gets the traffic its canary analysis needs, tallied per step in its lines; its generator stops when it ends', async () => {
    // WHEN a run this process did not start rolls out while a version serves
    sfn.startExecution({ name: 'cli-run', input: input() });
    const out = await outputOf('cli-run');

    // THEN its canary's analysis saw requests and passed (without traffic: inconclusive, "canary served 0 requests")
    expect(out.canary?.last).toMatchObject({ verdict: 'pass' });
    expect(out.canary!.last!.canary.requests).toBeGreaterThanOrEqual(MIN_REQUESTS);
    // and its lines, prefixed with its name, show the traffic and the analysis with the client's tally of the step
    expect(linesOf('cli-run')).toEqual([
      `[cli-run]   traffic   100 requests/s of held-out images to production ${production.endpoint} (serving v1) during the rollout`,
      expect.stringMatching(/^\[cli-run\] {3}canary step 1\/1 100 % \(2 of 2 pods = 100 % reachable\), analysis 1: PASS, served 100 %$/),
      expect.stringMatching(/^\[cli-run\] {5}canary v2: /),
      '[cli-run]     stable v1: n/a',
      // (what the client has had answered when the analysis ends: on a busy host, maybe none yet)
      expect.stringMatching(/^\[cli-run\] {5}client view this step: (v1 \d+ ok\/0 failed|\d+ in flight|v1 \d+ ok\/0 failed, \d+ in flight)$/),
    ]);

    // AND a run this process tracks (npm start's own) goes through the same watcher: its own generator (the
    // first one stopped with its run and gave the model's slot back), reported to its printer, and what it
    // saw is given back when it ends; here production answers only after the analysis (as on a busy host)
    const own: string[] = [];
    production.hold(true);
    const { executionArn } = sfn.startExecution({ name: 'own-run', input: input() });
    const done = rollouts.track(executionArn, lineReporter((l) => own.push(l), ''));
    expect((await outputOf('own-run')).canary?.last?.verdict).toBe('pass');
    production.hold(false);
    const seen = await done();
    expect(own[0]).toMatch(/^traffic {3}100 requests\/s/);
    expect(own).toContainEqual(expect.stringMatching(/^canary step 1\/1 100 % .*: PASS/));
    expect(own).toContainEqual(expect.stringMatching(/^ {2}client view this step: \d+ in flight$/));
    expect(seen?.endpoint).toBe(production.endpoint);
    expect(seen?.steps).toEqual([expect.objectContaining({ step: 0, weight: 100, verdict: 'pass' })]);
    // the step's tally once every request sent in it is answered: what the server counted for the analysis
    expect(seen!.steps[0]!.snapshot.byVersion.v1!.ok).toBeGreaterThan(0);
    expect(seen!.steps[0]!.snapshot.inFlight).toBe(0);
    expect(seen!.total.failures).toEqual([]);
    expect(linesOf('own-run')).toEqual([]);
  });

  it('one generator per model: a run DeployProduction refuses sends none, and an overlapping rollout uses the first one\'s', async () => {
    let release!: () => void;
    held.set(`${EXEC}:first`, new Promise<void>((r) => (release = r)));
    sfn.startExecution({ name: 'first', input: input() });
    while (!linesOf('first').length) await new Promise((r) => setImmediate(r));

    // WHEN another canary is refused by DeployProduction while the first bakes, and one more gets past it
    const refused = await sfn.waitForExecution((sfn.startExecution({ name: 'refused', input: input({ refuse: true }) })).executionArn);
    sfn.startExecution({ name: 'overlap', input: input() });
    while (!baselines.has(`${EXEC}:overlap`)) await new Promise((r) => setImmediate(r));
    // (the first rollout goes on until the overlapping one's step has had its requests)
    await production.reached(baselines.get(`${EXEC}:overlap`)! + MIN_REQUESTS);
    release();

    // THEN the refused run started no traffic; the overlapping one sent none of its own and said whose it shares
    expect(refused.status).toBe('SUCCEEDED');
    expect(linesOf('refused')).toEqual([]);
    expect(linesOf('overlap')[0]).toBe("[overlap]   traffic   none of its own: the rollout of first sends fashion's production traffic");
    expect(linesOf('overlap').some((l) => l.includes('requests/s'))).toBe(false);
    // both analyses saw the one generator's requests
    expect((await outputOf('first')).canary?.last?.verdict).toBe('pass');
    expect((await outputOf('overlap')).canary?.last?.verdict).toBe('pass');
  });
});
