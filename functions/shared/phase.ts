/**
 * Time for the Await* tasks: one invocation watches for at most WATCH_BUDGET_SECONDS (well under the
 * Lambda timeout; the state machine loops on `pending`), and never past its phase's overall deadline
 * (TRAINING_/ROLLOUT_/ENDPOINT_TIMEOUT_SECONDS, counted from when the phase began). The numbers come from
 * the calling function's loaded settings (function-settings.ts *_WAIT).
 */
import { PhaseTimeoutError } from './errors';
import type { ENDPOINT_WAIT, ROLLOUT_WAIT, TRAINING_WAIT } from './function-settings';
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

export interface WaitPlan {
  /** How long this invocation may watch, in ms. */
  budgetMs: number;
  /** When the phase as a whole runs out (epoch ms). */
  deadline: number;
}

/**
 * Plans one Await invocation of a phase that began at `startedAt` (ISO). Past the phase deadline it
 * throws PhaseTimeoutError naming the phase, its object and the setting to raise.
 */
export function planWait(timing: PhaseTiming, startedAt: string, what: string, now = Date.now()): WaitPlan {
  const started = Date.parse(startedAt);
  const { phase, timeoutSeconds } = timing;
  const deadline = (Number.isNaN(started) ? now : started) + timeoutSeconds * 1000;
  if (now >= deadline) {
    throw new PhaseTimeoutError(
      `${what}: the ${phase} phase did not finish within ${timeoutSeconds} s (started ${startedAt}); ` +
        `raise ${timing.timeoutSetting} if it needs longer.`,
    );
  }
  return { budgetMs: Math.min(timing.watchBudgetSeconds * 1000, deadline - now), deadline };
}
