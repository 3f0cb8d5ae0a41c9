/** progress.json (functions/shared/progress.ts): validation, compaction, time left and the one-line description. */
import { describeProgress, formatDuration, parseProgress, remainingSeconds } from '../../functions/shared/progress';

const at = '2026-11-29T16:00:00.000Z';

describe('parseProgress', () => {
  it('keeps the contract fields and drops unknown ones', () => {
    const { progress } = parseProgress({ fraction: 0.4, epoch: 2, epochs: 5, metrics: { loss: 0.41, accuracy: 0.85 }, etaSeconds: 31, updatedAt: at, extra: 'x' });
    expect(progress).toEqual({ fraction: 0.4, epoch: 2, epochs: 5, metrics: { loss: 0.41, accuracy: 0.85 }, etaSeconds: 31, updatedAt: at });
  });

  it('keeps finite numeric metrics only, at most eight', () => {
    const metrics = Object.fromEntries(Array.from({ length: 12 }, (_, i) => [`m${i}`, i]));
    const { progress } = parseProgress({ fraction: 0.1, updatedAt: at, metrics: { ...metrics, bad: 'x', inf: null } });
    expect(Object.keys(progress?.metrics ?? {})).toHaveLength(8);
    expect(progress?.metrics).not.toHaveProperty('bad');
  });

  it.each([
    [undefined, 'missing'],
    [[1], 'not a JSON object'],
    [{ updatedAt: at }, 'fraction'],
    [{ fraction: 1.5, updatedAt: at }, 'fraction'],
    [{ fraction: 0.5, updatedAt: 'yesterday' }, 'updatedAt'],
  ])('names the problem with %j', (raw, problem) => {
    const out = parseProgress(raw);
    expect(out.progress).toBeUndefined();
    expect(out.problem).toContain(problem);
  });
});

describe('remainingSeconds', () => {
  const started = '2026-11-29T15:59:00.000Z';
  it('counts the trainer ETA down from its report', () => {
    expect(remainingSeconds({ fraction: 0.5, etaSeconds: 60, updatedAt: at }, started, new Date('2026-11-29T16:00:20.000Z'))).toBe(40);
    expect(remainingSeconds({ fraction: 0.5, etaSeconds: 60, updatedAt: at }, started, new Date('2026-11-29T16:05:00.000Z'))).toBe(0);
  });
  it('extrapolates from the fraction done without an ETA', () => {
    // 60 s for 25 % → 180 s left at the report, 10 s later 170 s.
    expect(remainingSeconds({ fraction: 0.25, updatedAt: at }, started, new Date('2026-11-29T16:00:10.000Z'))).toBe(170);
    expect(remainingSeconds({ fraction: 0, updatedAt: at }, started, new Date(at))).toBeUndefined();
  });
});

describe('describeProgress', () => {
  it('reads as one line', () => {
    expect(describeProgress({ fraction: 0.4, epoch: 2, epochs: 5, metrics: { loss: 0.41, accuracy: 0.85 }, etaSeconds: 31, updatedAt: at })).toBe(
      'epoch 2/5 · 40 % · loss 0.410 · accuracy 0.850 · ETA 31 s',
    );
  });
  it('formats durations', () => {
    expect([formatDuration(42), formatDuration(185), formatDuration(7800)]).toEqual(['42 s', '3 min 5 s', '2 h 10 min']);
  });
});
