/**
 * Planning the training wait (CheckTraining, and AwaitTraining when its watch ends): how long the
 * WaitForTraining Wait state sleeps — no Lambda runs meanwhile — or how long AwaitTraining watches. Kept
 * out of phase.ts so the rollout and endpoint waits do not bundle progress.ts and its S3 client.
 *
 * Why: a watch held by a Lambda sees completion within a second, but bills the Lambda for the whole
 * training; 10 s polling bills ~1,080 transitions an hour. A Wait until shortly before the predicted end
 * costs one transition, and a short watch covers the end (docs/architecture.md, "Waiting for training").
 */
import type { TRAINING_WAIT } from './function-settings';
import { phaseClock } from './phase';
import { remainingSeconds, type TrainingProgress } from './progress';
import type { SettingsOf } from './settings';

/**
 * What to do next about a running training Job. `pending`: sleep `waitSeconds` in the WaitForTraining Wait
 * state (no Lambda runs; a whole number, as SecondsPath wants), then CheckTraining looks again. `watch`:
 * AwaitTraining watches for `waitSeconds` (completion seen as it happens).
 */
export interface TrainingCheckPlan {
  status: 'pending' | 'watch';
  waitSeconds: number;
}

/** The shortest Wait worth a Choice + Wait + Task round trip (3 transitions). */
export const MIN_CHECK_WAIT_SECONDS = 5;
/** The first Wait without a usable progress report; later ones double (they equal the time elapsed). */
export const FIRST_BACKOFF_WAIT_SECONDS = 10;
/**
 * How far a trainer's prediction is trusted: to ±10 % of the time it had left when it reported (an epoch
 * that runs 10 % slower or faster than the ones before). The watch opens that much earlier than the lead
 * says, and lasts that much longer, so a long last epoch's end still falls inside it.
 */
export const ETA_UNCERTAINTY = 0.1;

export interface TrainingCheckInput {
  /** When the Job was submitted (ISO): the phase deadline counts from here. */
  submittedAt: string;
  /** When its pod started (the Job's status.startTime), for extrapolating a progress report without an ETA. */
  startedAt?: string;
  progress?: TrainingProgress;
  now?: number;
}

/**
 * Plans the wait from the trainer's progress report (progress.ts): Wait until `lead` seconds (plus
 * ETA_UNCERTAINTY of what the report said was left) before the predicted end (capped at `maxWait`, the
 * longest a failure can go unseen, and floored at MIN_CHECK_WAIT_SECONDS), then watch until as long after
 * it (capped by the watch budget; a longer window takes several watches). Without a
 * usable report — none, no ETA yet, or the predicted end long past — Waits back off: as long as the
 * training (or its overrun) has lasted so far, from FIRST_BACKOFF_WAIT_SECONDS up to `maxWait`. `maxWait`
 * 0 always watches (the local run: its trainings last seconds). Nothing waits past the phase deadline.
 */
export function planTrainingCheck(s: SettingsOf<typeof TRAINING_WAIT>, input: TrainingCheckInput): TrainingCheckPlan {
  const now = input.now ?? phaseClock().now();
  const submitted = Date.parse(input.submittedAt);
  const since = Number.isNaN(submitted) ? now : submitted;
  const left = Math.max(0, (since + s.TRAINING_TIMEOUT_SECONDS * 1000 - now) / 1000);
  const lead = s.TRAINING_WATCH_LEAD_SECONDS;
  const maxWait = s.TRAINING_CHECK_MAX_WAIT_SECONDS;
  const watch = (seconds: number): TrainingCheckPlan => ({
    status: 'watch',
    waitSeconds: round1(Math.min(s.WATCH_BUDGET_SECONDS, left, Math.max(MIN_CHECK_WAIT_SECONDS, seconds))),
  });
  const wait = (seconds: number): TrainingCheckPlan => ({
    status: 'pending',
    waitSeconds: Math.max(1, Math.ceil(Math.min(maxWait, left, Math.max(MIN_CHECK_WAIT_SECONDS, seconds)))),
  });
  const backOff = (lasted: number) => wait(Math.max(FIRST_BACKOFF_WAIT_SECONDS, lasted));
  if (maxWait === 0) return watch(s.WATCH_BUDGET_SECONDS);

  const predicted = predictedEnd(input, since, now);
  if (predicted === undefined) return backOff((now - since) / 1000);
  const { untilEnd, leftAtReport } = predicted;
  const margin = lead + ETA_UNCERTAINTY * leftAtReport;
  if (untilEnd > margin) return wait(untilEnd - margin);
  if (untilEnd >= -margin) return watch(untilEnd + margin);
  // The report's end is long past (the last stretch is slower than it said, or the trainer hangs).
  return backOff(-untilEnd);
}

/** Seconds from `now` to the end the progress report predicts (negative once past), and what it said was left. */
function predictedEnd(input: TrainingCheckInput, since: number, now: number): { untilEnd: number; leftAtReport: number } | undefined {
  const { progress } = input;
  if (progress === undefined) return undefined;
  const reportedAt = Date.parse(progress.updatedAt);
  const startedAt = input.startedAt ?? new Date(since).toISOString();
  const leftAtReport = remainingSeconds(progress, startedAt, new Date(reportedAt));
  if (leftAtReport === undefined || Number.isNaN(reportedAt)) return undefined;
  return { untilEnd: (reportedAt + leftAtReport * 1000 - now) / 1000, leftAtReport };
}

const round1 = (n: number) => Math.round(n * 10) / 10;
