/**
 * How production takes a new version: the rollout settings (strategy, canary steps, bake time, analysis
 * interval, thresholds) as one zod schema — the ROLLOUT setting (construct prop `rollout`, context
 * `mlpipe:rollout`) and a run's `rollout` override are parsed with it, so a rule lives once — and the
 * pure arithmetic of a canary: how many pods each version runs for a requested weight, and what share of
 * traffic that makes reachable. Pure: the CDK app imports it.
 */
import * as z from 'zod';
import { FaultSpecError, parseFault } from './fault';

const whole = (min: number, max?: number) => {
  let s = z.number('must be a number').int('must be a whole number').min(min, `must be >= ${min}`);
  if (max !== undefined) s = s.max(max, `must be <= ${max}`);
  return s;
};
const fraction = z.number('must be a number').min(0, 'must be between 0 and 1').max(1, 'must be between 0 and 1');

/** Canary steps: traffic percentages, strictly ascending, the last one 100. */
export const RolloutStepsSchema = z
  .array(whole(1, 100), 'must be a list of percentages like [10, 50, 100]')
  .min(1, 'must name at least one step (the last is 100)')
  .max(20, 'must have at most 20 steps')
  .superRefine((steps, ctx) => {
    for (let i = 1; i < steps.length; i++) {
      if (steps[i]! <= steps[i - 1]!) ctx.addIssue({ code: 'custom', message: `must ascend: step ${i + 1} (${steps[i]}) is not above step ${i} (${steps[i - 1]})` });
    }
    if (steps.at(-1) !== 100) ctx.addIssue({ code: 'custom', message: `must end at 100 (the step that promotes the candidate), got ${steps.at(-1)}` });
  });

/** The canary's judgement thresholds (canary-analysis.ts judge). */
const ThresholdFields = {
  /** Highest error rate the canary may show, absolute. */
  maxErrorRate: fraction.default(0.05),
  /** How much the canary's error rate may exceed the stable version's over the same step. */
  maxErrorRateIncrease: fraction.default(0.02),
  /** Highest p95 latency of the canary (ms), absolute. */
  maxP95LatencyMs: z.number('must be a number').positive('must be above 0').default(1000),
  /** How many times the stable version's p95 the canary's may be. */
  maxP95Ratio: z.number('must be a number').min(1, 'must be >= 1 (1 = no slower than stable)').default(1.5),
  /** Requests each version must answer in a step before a verdict; below it the step is inconclusive. */
  minRequests: whole(1).default(50),
};

const RolloutFields = {
  strategy: z.enum(['canary', 'blueGreen'], 'must be "canary" or "blueGreen"').default('canary'),
  steps: RolloutStepsSchema.default([10, 50, 100]),
  /** How long each step below 100 % bakes before it may pass. */
  bakeSeconds: whole(1, 86_400).default(300),
  /** Analysis runs this often during a bake; a fail rolls back at once. */
  analysisIntervalSeconds: whole(1, 3600).default(60),
  /** Inconclusive bakes (too few requests) extended this many times before the step counts as failed. */
  maxInconclusive: whole(0, 10).default(2),
  ...ThresholdFields,
};

/** The ROLLOUT setting: every field defaulted, unknown fields refused (a typo must not be ignored). */
export const RolloutSchema = z.strictObject(RolloutFields);
export type Rollout = z.infer<typeof RolloutSchema>;

/**
 * `FAULT` for the candidate's pods (fault.ts, the grammar the example server reads): `error-rate=<0..1>`,
 * `latency-ms=<n>`, comma-separated. Checked at Prepare, so a typo fails the run before anything deploys.
 */
export const CandidateFaultSchema = z.string().superRefine((spec, ctx) => {
  try {
    parseFault(spec);
  } catch (err) {
    if (!(err instanceof FaultSpecError)) throw err;
    ctx.addIssue({ code: 'custom', message: `${err.message} (a FAULT like "error-rate=0.2" or "error-rate=0.2,latency-ms=50")` });
  }
});

/** A run's override: any rollout field, plus `candidateFault` (a drill: run input only, never a stack setting). */
export const RolloutOverrideSchema = z.strictObject({
  ...Object.fromEntries(Object.entries(RolloutFields).map(([k, v]) => [k, (v as z.ZodDefault<z.ZodType>).unwrap().optional()])) as {
    [K in keyof typeof RolloutFields]: z.ZodOptional<ReturnType<(typeof RolloutFields)[K]['unwrap']>>;
  },
  candidateFault: CandidateFaultSchema.optional(),
});
export type RolloutOverride = z.infer<typeof RolloutOverrideSchema>;

/** `$.run.rollout`: the stack's rollout with the run's override over it. */
export const RunRolloutSchema = RolloutSchema.extend({ candidateFault: CandidateFaultSchema.optional() });
export type RunRollout = z.infer<typeof RunRolloutSchema>;

/**
 * The run's rollout: the override's fields over the stack's. Checked whole by the caller (RunRolloutSchema):
 * each part may be valid and the merge not, e.g. a step list that no longer suits.
 */
export function mergeRollout(stack: Rollout, override: RolloutOverride | undefined, check = true): RunRollout {
  const defined = Object.fromEntries(Object.entries(override ?? {}).filter(([, v]) => v !== undefined));
  const merged = { ...stack, ...defined };
  return check ? RunRolloutSchema.parse(merged) : (merged as RunRollout);
}

/** Pods of each version for a requested weight, and the share of pods (hence of connections) that reaches the canary. */
export interface SplitPlan {
  weight: number;
  canaryReplicas: number;
  stableReplicas: number;
  /** canaryReplicas / total, as a percentage: what a LoadBalancer spreading connections over pods gives the canary. */
  reachablePercent: number;
}

/**
 * The split without a mesh: total capacity N stays; below 100 % the canary gets
 * clamp(ceil(w·N/100), 1, N−1) pods and stable the rest; at 100 % the canary gets all N. So with N = 4,
 * 10 % requested is 1 of 4 pods = 25 % reachable. Needs N >= 2 below 100 % (one pod cannot be split).
 */
export function splitFor(weight: number, totalReplicas: number): SplitPlan {
  if (!Number.isInteger(totalReplicas) || totalReplicas < 1) throw new RangeError(`total replicas must be a whole number >= 1, got ${totalReplicas}`);
  if (weight >= 100) return { weight, canaryReplicas: totalReplicas, stableReplicas: 0, reachablePercent: 100 };
  if (totalReplicas < 2) throw new RangeError(`a canary below 100 % needs at least 2 replicas to split, got ${totalReplicas}`);
  const canary = Math.min(totalReplicas - 1, Math.max(1, Math.ceil((weight * totalReplicas) / 100)));
  return { weight, canaryReplicas: canary, stableReplicas: totalReplicas - canary, reachablePercent: Math.round((canary / totalReplicas) * 1000) / 10 };
}

/** "10 % requested → 1 of 4 pods = 25 % reachable", for logs and the live display. */
export function describeSplit(plan: SplitPlan): string {
  const total = plan.canaryReplicas + plan.stableReplicas;
  return `${plan.weight} % requested → ${plan.canaryReplicas} of ${total} pods = ${plan.reachablePercent} % reachable`;
}
