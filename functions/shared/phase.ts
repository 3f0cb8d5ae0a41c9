/**
 * Time for the Await* tasks: one invocation watches for at most WATCH_BUDGET_SECONDS (well under the
 * Lambda timeout; the state machine loops on `pending`), and never past its phase's overall deadline
 * (TRAINING_/ROLLOUT_/ENDPOINT_TIMEOUT_SECONDS, counted from when the phase began).
 */
import { numberEnv } from './config';
import { PhaseTimeoutError } from './errors';

export type Phase = 'training' | 'rollout' | 'endpoint';

const TIMEOUT_SETTINGS: Record<Phase, { name: string; defaultSeconds: number }> = {
  training: { name: 'TRAINING_TIMEOUT_SECONDS', defaultSeconds: 14_400 },
  rollout: { name: 'ROLLOUT_TIMEOUT_SECONDS', defaultSeconds: 900 },
  endpoint: { name: 'ENDPOINT_TIMEOUT_SECONDS', defaultSeconds: 900 },
};

export function watchBudgetSeconds(): number {
  return numberEnv('WATCH_BUDGET_SECONDS', 240, { min: 0.1, max: 840 });
}

export function phaseTimeoutSeconds(phase: Phase): number {
  const s = TIMEOUT_SETTINGS[phase];
  return numberEnv(s.name, s.defaultSeconds, { min: 1 });
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
export function planWait(phase: Phase, startedAt: string, what: string, now = Date.now()): WaitPlan {
  const started = Date.parse(startedAt);
  const timeoutSeconds = phaseTimeoutSeconds(phase);
  const deadline = (Number.isNaN(started) ? now : started) + timeoutSeconds * 1000;
  if (now >= deadline) {
    throw new PhaseTimeoutError(
      `${what}: the ${phase} phase did not finish within ${timeoutSeconds} s (started ${startedAt}); ` +
        `raise ${TIMEOUT_SETTINGS[phase].name} if it needs longer.`,
    );
  }
  return { budgetMs: Math.min(watchBudgetSeconds() * 1000, deadline - now), deadline };
}
