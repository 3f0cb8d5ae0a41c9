/**
 * production.json under concurrent writers, over real HTTP against the local S3 (which answers conditional
 * writes as S3 does): releases and rollbacks racing on one model each land in the history exactly once, in
 * an order every writer saw (linearizable), and a writer that keeps losing fails with a named error after
 * a bounded number of attempts, having written nothing.
 *
 * Contention is made certain, not hoped for: a client middleware holds the first round of conditional
 * PutObjects until every writer has read production.json, so all but one of them write a stale version.
 */
import { s3Client } from '../../functions/shared/clients';
import {
  PRODUCTION_UPDATE_RETRY,
  readProduction,
  recordProductionRelease,
  recordRollback,
  type ConditionalUpdateRetry,
  type ProductionRecord,
} from '../../functions/shared/registry';
import { BUCKET, startLocalAws, type LocalAws } from './fixtures';

const ARN = (n: string) => `arn:aws:states:us-east-1:000000000000:execution:mlpipe:${n}`;

/** The default policy, with its backoffs counted (each one follows a conditional write S3 refused). */
function countingRetry(overrides: Partial<ConditionalUpdateRetry> = {}): ConditionalUpdateRetry & { delays: number[] } {
  const delays: number[] = [];
  return {
    ...PRODUCTION_UPDATE_RETRY,
    ...overrides,
    delays,
    sleep: (ms) => {
      delays.push(ms);
      return overrides.sleep ? overrides.sleep(ms) : new Promise((resolve) => setTimeout(resolve, ms));
    },
  };
}

/** Adds a step to the S3 client's stack that sees each conditional PutObject before it is sent. */
function onConditionalPut(name: string, hook: (key: string) => Promise<void>): void {
  s3Client().middlewareStack.add(
    (next, context) => async (args) => {
      const input = args.input as { Key?: string; IfMatch?: string; IfNoneMatch?: string };
      if (context.commandName === 'PutObjectCommand' && (input.IfMatch || input.IfNoneMatch)) await hook(input.Key ?? '');
      return next(args);
    },
    { step: 'finalizeRequest', name },
  );
}

/** Holds the first `n` conditional puts until all `n` are waiting, then lets them go together. */
function barrier(n: number): void {
  const waiting: (() => void)[] = [];
  let open = false;
  onConditionalPut('firstRoundBarrier', async () => {
    if (open) return;
    await new Promise<void>((resolve) => {
      waiting.push(resolve);
      if (waiting.length === n) {
        open = true;
        waiting.forEach((release) => release());
      }
    });
  });
}

/**
 * Every writer's answer is a state of the one final history: its history is a prefix of the final one and
 * ends with its own entry, and a rollback's previousVersion is the version of the entry just before it.
 */
function expectLinearizable(final: ProductionRecord, answers: ProductionRecord[]): void {
  for (const answer of answers) {
    const i = answer.history.length - 1;
    expect(final.history.slice(0, i + 1)).toEqual(answer.history);
    expect(answer.version).toBe(answer.history[i]!.version);
    if (answer.history[i]!.action === 'rollback') expect(answer.previousVersion).toBe(final.history[i - 1]!.version);
  }
  expect(final.version).toBe(final.history.at(-1)!.version);
}

describe('production.json with concurrent writers', () => {
  let aws: LocalAws;

  beforeAll(async () => {
    aws = await startLocalAws();
  });
  afterAll(async () => {
    await aws.stop();
  });
  afterEach(() => {
    s3Client().middlewareStack.remove('firstRoundBarrier');
    s3Client().middlewareStack.remove('interfere');
  });

  const release = (model: string, version: string, retry: ConditionalUpdateRetry) =>
    recordProductionRelease(
      { modelName: model, version, previousVersion: null, endpoint: 'http://127.0.0.1:30080', switchedAt: `2026-01-01T00:00:00.000Z`, executionArn: ARN(`${model}-${version}`) },
      retry,
    );

  it('8 releases racing to create production.json: one creates, the rest retry, all 8 are in the history', async () => {
    // Arrange
    const retry = countingRetry();
    barrier(8);
    const versions = Array.from({ length: 8 }, (_, i) => `v${i + 1}`);
    // Act
    const answers = await Promise.all(versions.map((v) => release('racecreate', v, retry)));
    // Assess
    const final = (await readProduction('racecreate'))!;
    expect(final.history.map((h) => h.version).sort()).toEqual(versions);
    expect(new Set(final.history.map((h) => h.executionArn)).size).toBe(8);
    expectLinearizable(final, answers);
    expect(retry.delays.length).toBeGreaterThanOrEqual(7); // the first round had one winner
  });

  it('a rollback racing releases (12 writers, half each) loses no history', async () => {
    // Arrange: v0 released, then 6 releases and 6 rollbacks (to v0) all at once
    const retry = countingRetry();
    await release('racemixed', 'v0', retry);
    barrier(12);
    const writers = Array.from({ length: 12 }, (_, i) =>
      i % 2 === 0
        ? () => release('racemixed', `v${i + 1}`, retry)
        : () => recordRollback({ modelName: 'racemixed', toVersion: 'v0', by: `ops-${i}`, at: `2026-01-02T00:00:${String(i).padStart(2, '0')}.000Z` }, retry),
    );
    // Act
    const answers = await Promise.all(writers.map((write) => write()));
    // Assess
    const final = (await readProduction('racemixed'))!;
    expect(final.history).toHaveLength(13);
    expect(final.history.filter((h) => h.action === 'release').map((h) => h.version).sort()).toEqual(['v0', 'v1', 'v11', 'v3', 'v5', 'v7', 'v9']);
    expect(final.history.filter((h) => h.action === 'rollback').map((h) => h.by).sort()).toEqual(['ops-1', 'ops-11', 'ops-3', 'ops-5', 'ops-7', 'ops-9']);
    expectLinearizable(final, answers);
    expect(retry.delays.length).toBeGreaterThanOrEqual(11);
  });

  it('a retried RecordRelease after a rollback leaves production where the rollback put it', async () => {
    const retry = countingRetry();
    await release('retried', 'v1', retry);
    await release('retried', 'v2', retry);
    await recordRollback({ modelName: 'retried', toVersion: 'v1', by: 'ops', at: '2026-01-03T00:00:00.000Z' }, retry);
    const before = await readProduction('retried');
    // Act: RecordRelease of v2 runs again (same execution), e.g. a Step Functions retry after a timeout
    await release('retried', 'v2', retry);
    // Assess
    expect(await readProduction('retried')).toEqual(before);
    expect(before).toMatchObject({ version: 'v1', previousVersion: 'v2' });
  });

  describe('the 412 path, one writer against a competing one', () => {
    /** Before each conditional put of production.json, another writer appends a rollback (plain PUT). */
    function interfere(model: string, times: number): { count: () => number } {
      let count = 0;
      onConditionalPut('interfere', async (key) => {
        if (key !== `models/${model}/production.json` || count >= times) return;
        count++;
        const current = (await readProduction(model))!;
        const competing: ProductionRecord = {
          ...current,
          version: 'v1',
          previousVersion: current.version,
          history: [...current.history, { version: 'v1', at: `2026-01-04T00:00:0${count}.000Z`, action: 'rollback', by: `competitor-${count}` }],
        };
        const res = await fetch(`${aws.s3.endpoint}/${BUCKET}/${key}`, { method: 'PUT', body: JSON.stringify(competing), headers: { 'content-type': 'application/json' } });
        expect(res.status).toBe(200);
      });
      return { count: () => count };
    }

    it('retries after a 412 and keeps the competing write it lost to', async () => {
      // Arrange
      await release('lostonce', 'v1', countingRetry());
      const competitor = interfere('lostonce', 1);
      const retry = countingRetry({ random: () => 0.5 });
      // Act
      const answer = await release('lostonce', 'v2', retry);
      // Assess: the competitor's rollback stays, the release comes after it
      expect(competitor.count()).toBe(1);
      expect(retry.delays).toEqual([25]); // 0.5 × min(1000, 50 × 2^0)
      expect(answer.history.map((h) => `${h.action}:${h.version}`)).toEqual(['release:v1', 'rollback:v1', 'release:v2']);
      expect(answer).toMatchObject({ version: 'v2', previousVersion: 'v1' });
      expect(await readProduction('lostonce')).toEqual(answer);
    });

    it('gives up after the bounded attempts with RegistryConflictError, having written nothing', async () => {
      // Arrange: the competitor wins every round
      await release('alwayslost', 'v1', countingRetry());
      const competitor = interfere('alwayslost', Number.POSITIVE_INFINITY);
      const retry = countingRetry({ attempts: 4, random: () => 0.5, sleep: () => Promise.resolve() });
      // Act
      const failed = release('alwayslost', 'v2', retry);
      // Assess
      await expect(failed).rejects.toMatchObject({
        name: 'RegistryConflictError',
        message: expect.stringContaining(`s3://${BUCKET}/models/alwayslost/production.json kept changing while it was being updated: 4 conditional writes in a row lost`),
      });
      expect(competitor.count()).toBe(4);
      expect(retry.delays).toEqual([25, 50, 100]); // jittered, doubling, none after the last attempt
      const final = (await readProduction('alwayslost'))!;
      expect(final.history.map((h) => h.by ?? h.version)).toEqual(['v1', 'competitor-1', 'competitor-2', 'competitor-3', 'competitor-4']);
    });
  });
});
