/**
 * The training wait planner (functions/shared/training-wait.ts) on an injected clock: a Wait until shortly
 * before the end progress.json predicts (capped by the max wait, floored), a watch around the end, backed-off
 * Waits without a usable report, nothing past the phase deadline, and `0` = watch at once.
 */
import { FIRST_BACKOFF_WAIT_SECONDS, MIN_CHECK_WAIT_SECONDS, planTrainingCheck } from '../../functions/shared/training-wait';
import type { TrainingProgress } from '../../functions/shared/progress';

const SUBMITTED = Date.parse('2026-11-29T12:00:00.000Z');
const iso = (secondsAfterSubmit: number) => new Date(SUBMITTED + secondsAfterSubmit * 1000).toISOString();
/** Settings as deployed by default: 240 s watch budget, 4 h deadline, 300 s max wait, 60 s lead. */
const DEFAULTS = { WATCH_BUDGET_SECONDS: 240, TRAINING_TIMEOUT_SECONDS: 14_400, TRAINING_CHECK_MAX_WAIT_SECONDS: 300, TRAINING_WATCH_LEAD_SECONDS: 60 };

/** The plan at `t` seconds after submit, the trainer (if given) having reported at `reportedAt` s. */
function planAt(t: number, progress?: Omit<TrainingProgress, 'updatedAt'> & { reportedAt: number }, settings = DEFAULTS, startedAt?: number) {
  const report = progress && { ...progress, reportedAt: undefined, updatedAt: iso(progress.reportedAt) };
  return planTrainingCheck(settings, {
    submittedAt: iso(0),
    startedAt: startedAt === undefined ? undefined : iso(startedAt),
    progress: report && (JSON.parse(JSON.stringify(report)) as TrainingProgress),
    now: SUBMITTED + t * 1000,
  });
}

describe('without a progress report: backed-off Waits', () => {
  it.each([
    [0, FIRST_BACKOFF_WAIT_SECONDS],
    [10, 10],
    [20, 20],
    [40, 40],
    [160, 160],
    [1000, 300],
  ])('%i s after submit → Wait %i s (as long as it has run so far, from 10 s up to the max wait)', (t, wait) => {
    expect(planAt(t)).toEqual({ status: 'pending', waitSeconds: wait });
  });
});

describe('with a progress report', () => {
  it('an hour to go: Wait the max wait (how late a failure is seen), not the hour', () => {
    expect(planAt(600, { fraction: 0.14, etaSeconds: 3600, reportedAt: 600 })).toEqual({ status: 'pending', waitSeconds: 300 });
  });

  it('200 s to go: Wait until the lead (60 s) and 10 % of that (20 s) before the predicted end', () => {
    expect(planAt(600, { fraction: 0.9, etaSeconds: 200, reportedAt: 600 })).toEqual({ status: 'pending', waitSeconds: 120 });
  });

  it('counts the ETA down from when it was reported', () => {
    // Reported 50 s ago with 250 s to go: 200 s to go now, watched from 60 + 25 s before the end.
    expect(planAt(650, { fraction: 0.9, etaSeconds: 250, reportedAt: 600 })).toEqual({ status: 'pending', waitSeconds: 115 });
  });

  it('a Wait shorter than the floor is not worth its transitions: the floor', () => {
    // 70 s to go, watched from 67 s before the end: 3 s is less than the floor.
    expect(planAt(600, { fraction: 0.95, etaSeconds: 70, reportedAt: 600 })).toEqual({ status: 'pending', waitSeconds: MIN_CHECK_WAIT_SECONDS });
  });

  it('within the lead: watch until as long after the predicted end', () => {
    expect(planAt(600, { fraction: 0.99, etaSeconds: 30, reportedAt: 600 })).toEqual({ status: 'watch', waitSeconds: 93 });
  });

  it('just past the predicted end: watch out the rest of the lead', () => {
    expect(planAt(640, { fraction: 1, etaSeconds: 0, reportedAt: 600 })).toEqual({ status: 'watch', waitSeconds: 20 });
  });

  it('a watch never exceeds the watch budget', () => {
    const lead = { ...DEFAULTS, TRAINING_WATCH_LEAD_SECONDS: 600 };
    expect(planAt(600, { fraction: 0.9, etaSeconds: 500, reportedAt: 600 }, lead)).toEqual({ status: 'watch', waitSeconds: 240 });
  });

  it('a long last stretch: the watch opens 10 % of what the report said was left earlier, so a slower epoch still ends inside it', () => {
    // One 1,440 s epoch left at 27,000 s: watched from 60 + 144 s before the predicted end (28,440 s).
    expect(planAt(27_000, { fraction: 0.95, etaSeconds: 1440, reportedAt: 27_000 }, { ...DEFAULTS, TRAINING_TIMEOUT_SECONDS: 86_400 })).toEqual({ status: 'pending', waitSeconds: 300 });
    expect(planAt(28_236, { fraction: 0.95, etaSeconds: 1440, reportedAt: 27_000 }, { ...DEFAULTS, TRAINING_TIMEOUT_SECONDS: 86_400 })).toEqual({ status: 'watch', waitSeconds: 240 });
    expect(planAt(28_200, { fraction: 0.95, etaSeconds: 1440, reportedAt: 27_000 }, { ...DEFAULTS, TRAINING_TIMEOUT_SECONDS: 86_400 })).toEqual({ status: 'pending', waitSeconds: 36 });
  });

  it('long past the predicted end (a slow last stretch, or a hung trainer): backed-off Waits by the overrun', () => {
    expect(planAt(900, { fraction: 1, etaSeconds: 0, reportedAt: 600 })).toEqual({ status: 'pending', waitSeconds: 300 });
    // Predicted end at 610 s, 90 s overrun at 700 s: Wait as long again.
    expect(planAt(700, { fraction: 0.98, etaSeconds: 10, reportedAt: 600 })).toEqual({ status: 'pending', waitSeconds: 90 });
  });

  it('without an ETA: extrapolated from the fraction done since the pod started', () => {
    // Started at 100 s, 25 % at 400 s → 900 s to go at the report, 850 s at 450 s: Wait the max.
    expect(planAt(450, { fraction: 0.25, reportedAt: 400 }, DEFAULTS, 100)).toEqual({ status: 'pending', waitSeconds: 300 });
    // 90 % at 1000 s (started at 100 s) → 100 s to go, watched from 70 s before: Wait 30 s.
    expect(planAt(1000, { fraction: 0.9, reportedAt: 1000 }, DEFAULTS, 100)).toEqual({ status: 'pending', waitSeconds: 30 });
  });

  it('a report that says nothing about the time left (0 % done, no ETA): backed-off Waits', () => {
    expect(planAt(30, { fraction: 0, reportedAt: 30 })).toEqual({ status: 'pending', waitSeconds: 30 });
  });
});

describe('limits', () => {
  it('nothing waits past the phase deadline', () => {
    // 4 h deadline, 100 s left, an hour to go by the report.
    expect(planAt(14_300, { fraction: 0.8, etaSeconds: 3600, reportedAt: 14_300 })).toEqual({ status: 'pending', waitSeconds: 100 });
    expect(planAt(14_380)).toEqual({ status: 'pending', waitSeconds: 20 });
  });

  it('Waits are whole seconds (SecondsPath takes integers only)', () => {
    const plan = planAt(600.3, { fraction: 0.9, etaSeconds: 200.75, reportedAt: 600 });
    expect(Number.isInteger(plan.waitSeconds)).toBe(true);
    expect(plan).toEqual({ status: 'pending', waitSeconds: 121 });
  });

  it('max wait 0 (the local run): always a watch of the whole budget', () => {
    const local = { ...DEFAULTS, WATCH_BUDGET_SECONDS: 20, TRAINING_CHECK_MAX_WAIT_SECONDS: 0 };
    expect(planAt(0, undefined, local)).toEqual({ status: 'watch', waitSeconds: 20 });
    expect(planAt(5, { fraction: 0.1, etaSeconds: 3600, reportedAt: 5 }, local)).toEqual({ status: 'watch', waitSeconds: 20 });
  });
});
