/**
 * What a run cost, estimated at list prices: its Step Functions state transitions, its Lambda GB-seconds
 * and requests, and its training pod's CPU- and GPU-seconds priced as a share of an EC2 instance. One price
 * table for the pipeline (RecordRelease/RecordFailure write the estimate into the manifest and `$.release`,
 * the emails and `mlpipe status` show it) and for bench/cost.ts. Pure: no clock, no I/O; the CDK app
 * and the CLI import it too.
 *
 * What is counted, from the execution history (GetExecutionHistory, the real one or the local engine's):
 * - a transition per state entered, and per retry of a state (a second Scheduled event in it): AWS bills
 *   Standard workflows per state transition, retries included;
 * - per Lambda attempt, Started → Succeeded/Failed/TimedOut (for `invoke.waitForTaskToken`, Started →
 *   Submitted: the invocation, not the wait for the token), rounded up to the millisecond as Lambda bills,
 *   times the memory of the function behind that state (TASK_MEMORY_MB, from the template), and one request;
 *   an attempt still running (the one computing this) counts up to `now`;
 * - the training Job from submission to completion (or, if it never completed, until the run left training
 *   for Cleanup, or `now`) times the CPU and GPUs its pod requested; none for a retry, which reuses the
 *   training of the run it continues.
 * Not counted: free tiers, the EKS control plane ($0.10 an hour, whatever the runs), serving pods, S3, SNS,
 * CloudWatch, data transfer; the transitions and Lambda time after the estimate (a clean-up and a
 * notification: a few transitions and well under a second of Lambda).
 */
import * as z from 'zod';
import { cpuCores } from './k8s-names';

/** List prices of one region, in USD. */
export interface PriceList {
  /** Step Functions Standard, per state transition. */
  readonly perTransition: number;
  /** Lambda on arm64 (Graviton), per GB-second (first 7.5 billion GB-s a month). */
  readonly perGbSecond: number;
  /** Lambda, per request. */
  readonly perRequest: number;
  /**
   * A training pod's CPU, per vCPU-hour: on-demand m7g.large (2 vCPU, 8 GiB, Graviton3) divided by its
   * vCPUs. A pod is charged for what it requests, as if the node were shared with others in proportion.
   */
  readonly perVcpuHour: number;
  /**
   * A training pod's GPU, per GPU-hour: on-demand g5.xlarge (1 NVIDIA A10G, 4 vCPU, 16 GiB) for each GPU,
   * its own vCPUs included; a GPU pod's CPU request is charged on top at perVcpuHour (at most a few cents an
   * hour: an overestimate, stated here rather than guessed away).
   */
  readonly perGpuHour: number;
}

/**
 * List prices, checked 2026-11 on aws.amazon.com/step-functions/pricing, /lambda/pricing and
 * /ec2/pricing/on-demand (Linux). Regions not listed are priced as us-east-1, and the estimate says so.
 */
export const PRICES: Readonly<Record<string, PriceList>> = {
  'us-east-1': { perTransition: 0.025 / 1000, perGbSecond: 0.0000133334, perRequest: 0.2 / 1_000_000, perVcpuHour: 0.0816 / 2, perGpuHour: 1.006 },
  'us-west-2': { perTransition: 0.025 / 1000, perGbSecond: 0.0000133334, perRequest: 0.2 / 1_000_000, perVcpuHour: 0.0816 / 2, perGpuHour: 1.006 },
};
export const DEFAULT_PRICE_REGION = 'us-east-1';

/** The table for `region`, and the region whose prices it is (us-east-1's when the region has no row). */
export function pricesFor(region: string | undefined): { region: string; prices: PriceList } {
  const listed = region !== undefined ? PRICES[region] : undefined;
  if (listed) return { region: region!, prices: listed };
  return { region: DEFAULT_PRICE_REGION, prices: PRICES[DEFAULT_PRICE_REGION]! };
}

const usd = z.number().nonnegative();
/** The estimate, as `$.release.cost`, the manifest and the RunView carry it. Compact: it rides in the state. */
export const RunCostSchema = z.object({
  usd: usd.describe('Total, USD.'),
  prices: z.string().describe("Whose list prices: the stack's region, or us-east-1 when the table has no row for it."),
  transitions: z.object({ count: z.number().int().nonnegative(), usd }),
  lambda: z.object({ gbSeconds: z.number().nonnegative(), requests: z.number().int().nonnegative(), usd }),
  training: z.object({ cpuSeconds: z.number().nonnegative(), gpuSeconds: z.number().nonnegative(), usd }),
  asOf: z.string().describe('When it was computed (ISO 8601): what the run did after this is not in it.'),
});
export type RunCost = z.infer<typeof RunCostSchema>;

/** The memory (MB) of the function behind each Task state: `*` for all not named. TASK_MEMORY_MB's value. */
export type TaskMemory = Readonly<Record<string, number>>;

/** The few fields of a history event this reads: the SDK's HistoryEvent and the local engine's both fit. */
export interface CostHistoryEvent {
  type?: string;
  timestamp?: Date | string;
  stateEnteredEventDetails?: { name?: string };
}

/** What `$.training` says about the Job, as far as the cost goes. */
export interface TrainingUsage {
  submittedAt?: string;
  completedAt?: string;
  /** What the pod requested (SubmitTraining): CPU as a Kubernetes quantity, whole GPUs. */
  request?: { cpu: string; gpus: number };
}

export interface RunCostInput {
  events: readonly CostHistoryEvent[];
  memory: TaskMemory;
  training?: TrainingUsage | undefined;
  /** A retry reuses the training of the run it continues: no pod time in this run. */
  trainingReused?: boolean;
  region: string | undefined;
  now: Date;
}

/** A state's invocation scheduled: each after the first within one state is a retry, which AWS bills as a transition. */
const SCHEDULED = new Set(['LambdaFunctionScheduled', 'TaskScheduled']);
const ATTEMPT_START = new Set(['LambdaFunctionStarted', 'TaskStarted']);
const ATTEMPT_END = new Set(['LambdaFunctionSucceeded', 'LambdaFunctionFailed', 'LambdaFunctionTimedOut', 'TaskSubmitted', 'TaskSucceeded', 'TaskFailed', 'TaskTimedOut']);

const time = (t: Date | string | undefined, fallback: Date): number => (t === undefined ? fallback.getTime() : new Date(t).getTime());
const round = (x: number, digits: number) => Math.round(x * 10 ** digits) / 10 ** digits;

/** Memory of the function behind `state`, from TASK_MEMORY_MB; a state it does not name gets `*`. */
export function memoryOf(memory: TaskMemory, state: string): number {
  const mb = memory[state] ?? memory['*'];
  if (mb === undefined) throw new Error(`TASK_MEMORY_MB names no memory for state ${state} and has no "*" entry.`);
  return mb;
}

/** Transitions, Lambda GB-s and requests from an execution history. */
export function historyUsage(events: readonly CostHistoryEvent[], memory: TaskMemory, now: Date): { transitions: number; gbSeconds: number; requests: number } {
  let transitions = 0;
  let gbSeconds = 0;
  let requests = 0;
  let state: string | undefined;
  let open: number | undefined;
  let scheduled = 0; // since the last StateEntered
  const close = (at: number) => {
    if (open === undefined || state === undefined) return;
    const billedSeconds = Math.ceil(Math.max(0, at - open)) / 1000;
    gbSeconds += billedSeconds * (memoryOf(memory, state) / 1024);
    open = undefined;
  };
  for (const e of events) {
    const type = e.type ?? '';
    const at = time(e.timestamp, now);
    if (type.endsWith('StateEntered')) {
      transitions += 1;
      state = e.stateEnteredEventDetails?.name;
      scheduled = 0;
    } else if (SCHEDULED.has(type)) {
      scheduled += 1;
      if (scheduled > 1) transitions += 1; // a Retry: no new StateEntered, but billed as a transition
    } else if (ATTEMPT_START.has(type)) {
      close(at); // never left open by a well-formed history; harmless if it were
      open = at;
      requests += 1;
    } else if (ATTEMPT_END.has(type)) {
      close(at);
    }
  }
  close(now.getTime());
  return { transitions, gbSeconds, requests };
}

/**
 * Seconds the training pod ran: submission to completion; a Job that never completed ran until the run
 * entered Cleanup (which deletes it), or until `now`. Zero when nothing was submitted or the training was reused.
 */
export function trainingSeconds(training: TrainingUsage | undefined, events: readonly CostHistoryEvent[], now: Date, reused: boolean): number {
  if (reused || !training?.submittedAt) return 0;
  const from = Date.parse(training.submittedAt);
  const cleanup = events.find((e) => e.type === 'TaskStateEntered' && e.stateEnteredEventDetails?.name === 'Cleanup');
  const to = training.completedAt ? Date.parse(training.completedAt) : time(cleanup?.timestamp, now);
  return Number.isFinite(from) && Number.isFinite(to) && to > from ? (to - from) / 1000 : 0;
}

/** The estimate for one run. */
export function estimateRunCost(input: RunCostInput): RunCost {
  const { region, prices } = pricesFor(input.region);
  const usage = historyUsage(input.events, input.memory, input.now);
  const seconds = trainingSeconds(input.training, input.events, input.now, input.trainingReused === true);
  const cpu = input.training?.request ? (cpuCores(input.training.request.cpu) ?? 0) : 0;
  const gpus = input.training?.request?.gpus ?? 0;
  const cpuSeconds = seconds * cpu;
  const gpuSeconds = seconds * gpus;

  const transitionsUsd = usage.transitions * prices.perTransition;
  const lambdaUsd = usage.gbSeconds * prices.perGbSecond + usage.requests * prices.perRequest;
  const trainingUsd = (cpuSeconds / 3600) * prices.perVcpuHour + (gpuSeconds / 3600) * prices.perGpuHour;
  return {
    usd: round(transitionsUsd + lambdaUsd + trainingUsd, 6),
    prices: region,
    transitions: { count: usage.transitions, usd: round(transitionsUsd, 6) },
    lambda: { gbSeconds: round(usage.gbSeconds, 3), requests: usage.requests, usd: round(lambdaUsd, 6) },
    training: { cpuSeconds: round(cpuSeconds, 1), gpuSeconds: round(gpuSeconds, 1), usd: round(trainingUsd, 6) },
    asOf: input.now.toISOString(),
  };
}

/** A dollar amount as the emails and `mlpipe status` show it: cents, or two significant digits below a cent. */
export function formatUsd(usd: number): string {
  if (usd >= 0.01) return `$${usd.toFixed(2)}`;
  if (usd === 0) return '$0';
  return `$${usd.toPrecision(2)}`;
}

/** The estimate in a line per component, for the emails and `mlpipe status`. */
export function costLines(cost: RunCost): string[] {
  return [
    `${formatUsd(cost.usd)} at ${cost.prices} list prices`,
    `state transitions ${cost.transitions.count}: ${formatUsd(cost.transitions.usd)}`,
    `Lambda ${cost.lambda.gbSeconds} GB-s, ${cost.lambda.requests} requests: ${formatUsd(cost.lambda.usd)}`,
    `training pod ${cost.training.cpuSeconds} CPU-s, ${cost.training.gpuSeconds} GPU-s: ${formatUsd(cost.training.usd)}`,
  ];
}

/** Seconds spent in `state`, all its entries together (an entry still open counts up to `now`). */
export function secondsInState(events: readonly CostHistoryEvent[], state: string, now: Date): number | undefined {
  let total: number | undefined;
  let entered: number | undefined;
  for (const e of events) {
    const type = e.type ?? '';
    if (type.endsWith('StateEntered')) {
      if (entered !== undefined) total = (total ?? 0) + (time(e.timestamp, now) - entered) / 1000;
      entered = e.stateEnteredEventDetails?.name === state ? time(e.timestamp, now) : undefined;
    }
  }
  if (entered !== undefined) total = (total ?? 0) + (now.getTime() - entered) / 1000;
  return total;
}
