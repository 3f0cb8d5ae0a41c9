/**
 * Time for the Await* tasks: one invocation watches for at most WATCH_BUDGET_SECONDS (well under the
 * Lambda timeout; the state machine loops on `pending`), and never past its phase's overall deadline
 * (TRAINING_/ROLLOUT_/ENDPOINT_TIMEOUT_SECONDS, counted from when the phase began). The numbers come from
 * the calling function's loaded settings (function-settings.ts *_WAIT).
 *
 * An unreachable Kubernetes API (or one answering 5xx/429) says nothing about the workload: the Job keeps
 * running while the API server restarts or the control plane is upgraded. So an invocation rides an outage
 * out (rideOutOutage): it tries again with back-off until its budget is spent, then answers `pending` like
 * any other budget that ran out; only the phase deadline ends the wait. Each loop of the state machine is
 * thereby bounded by the budget, and the loops by the deadline.
 *
 * Training is planned (training-wait.ts): a cheap check, then a Wait state (no Lambda running) until
 * shortly before the end the trainer's progress report predicts, then a watch that covers the end.
 */
import { KubernetesUnavailableError, PhaseTimeoutError } from './errors';
import type { ENDPOINT_WAIT, ROLLOUT_WAIT, TRAINING_WAIT } from './function-settings';
import { logger } from './logger';
import type { SettingsOf } from './settings';

export type Phase = 'training' | 'rollout' | 'endpoint';

/** How long a phase may take and how long one invocation watches. */
export interface PhaseTiming {
  phase: Phase;
  timeoutSeconds: number;
  /** The setting to raise when the phase runs out. */
  timeoutSetting: string;
  watchBudgetSeconds: number;
}

export function trainingTiming(s: SettingsOf<typeof TRAINING_WAIT>): PhaseTiming {
  return { phase: 'training', timeoutSeconds: s.TRAINING_TIMEOUT_SECONDS, timeoutSetting: 'TRAINING_TIMEOUT_SECONDS', watchBudgetSeconds: s.WATCH_BUDGET_SECONDS };
}

export function rolloutTiming(s: SettingsOf<typeof ROLLOUT_WAIT>): PhaseTiming {
  return { phase: 'rollout', timeoutSeconds: s.ROLLOUT_TIMEOUT_SECONDS, timeoutSetting: 'ROLLOUT_TIMEOUT_SECONDS', watchBudgetSeconds: s.WATCH_BUDGET_SECONDS };
}

export function endpointTiming(s: SettingsOf<typeof ENDPOINT_WAIT>): PhaseTiming {
  return { phase: 'endpoint', timeoutSeconds: s.ENDPOINT_TIMEOUT_SECONDS, timeoutSetting: 'ENDPOINT_TIMEOUT_SECONDS', watchBudgetSeconds: s.WATCH_BUDGET_SECONDS };
}

/**
 * Where the Await tasks get the time and pause: the system clock, except in tests, which replace it
 * (setPhaseClock) to show a long outage without waiting through it. Watches keep real timers: they only
 * run while the API answers.
 */
export interface Clock {
  now(): number;
  sleep(ms: number): Promise<void>;
}

const systemClock: Clock = {
  now: () => Date.now(),
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
};

let clock: Clock = systemClock;

export function phaseClock(): Clock {
  return clock;
}

/** Test hook: use `replacement` until the returned function restores the system clock. */
export function setPhaseClock(replacement: Clock): () => void {
  clock = replacement;
  return () => {
    clock = systemClock;
  };
}

export interface WaitPlan {
  /** How long this invocation may watch, in ms. */
  budgetMs: number;
  /** When this invocation's budget runs out (epoch ms). */
  endsAt: number;
  /** When the phase as a whole runs out (epoch ms). */
  deadline: number;
}

/**
 * Plans one Await invocation of a phase that began at `startedAt` (ISO). Past the phase deadline it
 * throws PhaseTimeoutError naming the phase, its object and the setting to raise, then `why` (what was
 * seen last) if given.
 */
export function planWait(timing: PhaseTiming, startedAt: string, what: string, now = clock.now(), why?: string): WaitPlan {
  const started = Date.parse(startedAt);
  const { phase, timeoutSeconds } = timing;
  const deadline = (Number.isNaN(started) ? now : started) + timeoutSeconds * 1000;
  if (now >= deadline) {
    throw new PhaseTimeoutError(
      `${what}: the ${phase} phase did not finish within ${timeoutSeconds} s (started ${startedAt}); ` +
        `raise ${timing.timeoutSetting} if it needs longer.${why ? `\n${why}` : ''}`,
    );
  }
  const budgetMs = Math.min(timing.watchBudgetSeconds * 1000, deadline - now);
  return { budgetMs, endsAt: now + budgetMs, deadline };
}

/** The first pause after the API failed, doubled after each further failure up to the cap. */
const OUTAGE_PAUSE_START_MS = 1_000;
const OUTAGE_PAUSE_MAX_MS = 15_000;

export type Attempted<R> =
  | { kind: 'done'; value: R }
  /** The budget ran out with the API unavailable since `since` (epoch ms); `error` is the last failure. */
  | { kind: 'unavailable'; since: number; error: KubernetesUnavailableError };

/**
 * Runs `attempt` with what is left of this invocation's budget, again from the start after each
 * KubernetesUnavailableError (pausing 1 s, doubling to 15 s), until it answers or the budget is spent.
 * Every attempt only reads, so starting over is safe. Any other error is the attempt's answer.
 */
export async function rideOutOutage<R>(plan: WaitPlan, attempt: (budgetMs: number) => Promise<R>): Promise<Attempted<R>> {
  let pause = OUTAGE_PAUSE_START_MS;
  let since: number | undefined;
  for (;;) {
    const left = plan.endsAt - clock.now();
    try {
      const value = await attempt(Math.max(1, left));
      if (since !== undefined) logger.info('Kubernetes API available again', { unavailableForMs: clock.now() - since });
      return { kind: 'done', value };
    } catch (err) {
      if (!(err instanceof KubernetesUnavailableError)) throw err;
      const failedAt = clock.now();
      if (since === undefined) {
        since = failedAt;
        logger.warn('Kubernetes API unavailable: waiting for it (the workload is not touched)', { error: err.message });
      }
      const remaining = plan.endsAt - failedAt;
      if (remaining <= 0) return { kind: 'unavailable', since, error: err };
      await clock.sleep(Math.min(pause, remaining));
      pause = Math.min(pause * 2, OUTAGE_PAUSE_MAX_MS);
    }
  }
}

/**
 * After an invocation spent its budget with the API unavailable: returns so the task can answer `pending`,
 * or, once the phase deadline has passed, throws PhaseTimeoutError saying the API was unavailable and why.
 */
export function afterOutage(timing: PhaseTiming, startedAt: string, what: string, outage: { since: number; error: Error }): void {
  const now = clock.now();
  const seconds = Math.round((now - outage.since) / 1000);
  planWait(timing, startedAt, what, now, `The Kubernetes API was unavailable for the last ${seconds} s: ${outage.error.message}`);
}

