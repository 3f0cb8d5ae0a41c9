/**
 * What waiting for a training run costs: `npm run bench -- cost`. For trainings of 10 min, 1 h and 8 h,
 * with and without progress reports, three designs side by side — 10 s polling (Wait → check → Choice),
 * the watch loop the pipeline had before (AwaitTraining watches WATCH_BUDGET_SECONDS, Choice, again) and
 * today's progress-aware wait (CheckTraining → Wait until shortly before the predicted end → a short
 * AwaitTraining watch). Each really runs on aws-local-stepfunctions; today's design is the training states
 * of statemachine/pipeline.asl.json as they are, planned by the real planner (training-wait.ts) with the
 * settings and memory sizes of the synthesized template. Simulated time stands in for the clock: Wait
 * states are overridden to 0 ms and each task says how much simulated time it covered.
 *
 * Per row: state transitions (counted from the execution's event log), Lambda GB-s and requests, the
 * list price, and the completion-detection latency (median over TRIALS trainings whose epochs vary):
 * the time from the Job's completion to a task seeing it. A watch sees it as it happens (counted as 0 s:
 * the API server's watch event arrives in milliseconds); a check sees it when it next wakes.
 *
 * Prices: us-east-1 list prices from the pipeline's own table (functions/shared/run-cost.ts, which the
 * per-run cost estimate uses too): Step Functions Standard $0.025 per 1,000 state transitions; Lambda arm64
 * $0.0000133334 per GB-s and $0.20 per 1M requests. Free tiers ignored.
 *
 *   npm run bench -- cost
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { StateMachine } from 'aws-local-stepfunctions';
import type { TrainingProgress } from '../functions/shared/progress';
import type { TRAINING_WAIT } from '../functions/shared/function-settings';
import { seededRandom } from '../functions/shared/random';
import type { SettingsOf } from '../functions/shared/settings';
import { pricesFor } from '../functions/shared/run-cost';
import { planTrainingCheck } from '../functions/shared/training-wait';
import { median } from './local-e2e';
import { pollingLoopDefinition, watchLoopDefinition } from './transitions';

type Definition = ConstructorParameters<typeof StateMachine>[0];
type WaitSettings = SettingsOf<typeof TRAINING_WAIT>;

export const PRICE = pricesFor('us-east-1').prices;

/**
 * Billed seconds of one check (CheckTraining, or a poll): a read of the Job, of its pods, of its
 * FailedCreate events and of progress.json from a warm container. An assumption, stated in the output.
 */
export const CHECK_BILLED_SECONDS = 0.3;
/** What a watch invocation bills beyond its watch: the same reads before and after it. */
export const WATCH_OVERHEAD_SECONDS = 0.3;
const POLL_INTERVAL_SECONDS = 10;
const TRIALS = 7;
const EPOCHS = 20;

const ASL = join(__dirname, '..', 'statemachine', 'pipeline.asl.json');
const T0 = Date.parse('2026-01-01T00:00:00.000Z');
const iso = (t: number) => new Date(T0 + t * 1000).toISOString();

// ---------------------------------------------------------------------------------------------------
// The simulated trainer

/** A training run: when it ends, and what progress.json says at any time. */
export interface SimulatedTraining {
  /** Seconds from submit to the Job's completion. */
  endsAt: number;
  /** progress.json as of `t` seconds after submit, if the trainer reports progress and has reported yet. */
  progressAt(t: number): TrainingProgress | undefined;
}

/**
 * A trainer like the example one: a start-up (pod scheduled, image pulled, data loaded: 5 % of the run, at
 * most a minute), EPOCHS epochs of ±10 % around their mean, each reported in progress.json with an ETA from
 * the mean epoch so far, then 5 s to write the model and metrics.json.
 */
export function simulatedTraining(seconds: number, reportsProgress: boolean, seed: number): SimulatedTraining {
  const rnd = seededRandom(seed); // the same trainings on every run
  const startup = Math.min(60, seconds * 0.05);
  const mean = (seconds - startup - 5) / EPOCHS;
  const reports: Array<{ at: number; progress: TrainingProgress }> = [];
  let t = startup;
  for (let epoch = 1; epoch <= EPOCHS; epoch++) {
    t += mean * (0.9 + 0.2 * rnd());
    const perEpoch = (t - startup) / epoch;
    reports.push({ at: t, progress: { fraction: epoch / EPOCHS, epoch, epochs: EPOCHS, etaSeconds: Math.round(perEpoch * (EPOCHS - epoch)), updatedAt: iso(t) } });
  }
  return {
    endsAt: t + 5,
    progressAt: (now) => (reportsProgress ? reports.filter((r) => r.at <= now).at(-1)?.progress : undefined),
  };
}

// ---------------------------------------------------------------------------------------------------
// The designs, run on aws-local-stepfunctions

interface SimState {
  training: { status: string; waitSeconds?: number; t: number; seenAt?: number };
}

export interface Memory {
  /** MemorySize (MB) of CheckTraining (also used for the 10 s poll's check). */
  checkMb: number;
  /** MemorySize (MB) of AwaitTraining. */
  watchMb: number;
}

export interface Outcome {
  transitions: number;
  gbSeconds: number;
  requests: number;
  /** Seconds from completion to a task seeing it. */
  latency: number;
  cost: number;
}

/** Today's training states from the pipeline file, ending in a Succeed where DeployStaging was. */
export function progressAwareDefinition(): Definition {
  const pipeline = JSON.parse(readFileSync(ASL, 'utf8')) as { States: Record<string, Record<string, unknown>> };
  const states: Record<string, unknown> = { TrainingDone: { Type: 'Succeed' } };
  for (const name of ['CheckTraining', 'IsTrainingComplete', 'WaitForTraining', 'AwaitTraining']) {
    const state = JSON.parse(JSON.stringify(pipeline.States[name]).replace(/"DeployStaging"/g, '"TrainingDone"')) as Record<string, unknown>;
    if (state.Type === 'Task') {
      state.Resource = `arn:aws:lambda:us-east-1:000000000000:function:${name}`;
      delete state.Retry;
      delete state.Catch;
    }
    states[name] = state;
  }
  return { StartAt: 'CheckTraining', States: states } as unknown as Definition;
}

type Handler = (input: SimState) => Promise<SimState['training']>;

async function execute(definition: Definition, handlers: Record<string, Handler>, waits: Record<string, number>): Promise<{ transitions: number; seenAt: number }> {
  const machine = new StateMachine(definition, { validationOptions: { checkPaths: false } });
  const execution = machine.run({ training: { status: 'pending', t: 0 } }, { overrides: { taskResourceLocalHandlers: handlers as never, waitTimeOverrides: waits } });
  let transitions = 0;
  for await (const event of execution.eventLogs as AsyncGenerator<{ type: string; state?: { name: string } }>) {
    if (event.type === 'StateEntered' && event.state?.name !== 'TrainingDone') transitions++;
  }
  const out = (await execution.result) as unknown as SimState;
  if (out.training.seenAt === undefined) throw new Error('the loop ended without seeing the training end');
  return { transitions, seenAt: out.training.seenAt };
}

/** Bills Lambda invocations: GB-s (1 ms granularity) and requests. */
class Bill {
  gbSeconds = 0;
  requests = 0;
  add(seconds: number, memoryMb: number): void {
    this.gbSeconds += (Math.ceil(seconds * 1000) / 1000) * (memoryMb / 1024);
    this.requests++;
  }
}

function outcome(transitions: number, bill: Bill, latency: number): Outcome {
  const cost = transitions * PRICE.perTransition + bill.gbSeconds * PRICE.perGbSecond + bill.requests * PRICE.perRequest;
  return { transitions, gbSeconds: bill.gbSeconds, requests: bill.requests, latency, cost };
}

/** 10 s polling: Wait, a check, a Choice. */
export async function polling(run: SimulatedTraining, memory: Memory): Promise<Outcome> {
  const bill = new Bill();
  const check: Handler = async ({ training }) => {
    const t = training.t + POLL_INTERVAL_SECONDS;
    bill.add(CHECK_BILLED_SECONDS, memory.checkMb);
    return t >= run.endsAt ? { status: 'succeeded', t, seenAt: t } : { status: 'pending', t };
  };
  const { transitions, seenAt } = await execute(pollingLoopDefinition(POLL_INTERVAL_SECONDS), { CheckTraining: check }, { WaitForTraining: 0 });
  return outcome(transitions, bill, seenAt - run.endsAt);
}

/** The watch loop before progress-aware waiting: AwaitTraining watches a whole budget, again and again. */
export async function watchLoop(run: SimulatedTraining, settings: WaitSettings, memory: Memory): Promise<Outcome> {
  const bill = new Bill();
  const watch: Handler = async ({ training }) => {
    const budget = settings.WATCH_BUDGET_SECONDS;
    if (run.endsAt <= training.t + budget) {
      bill.add(run.endsAt - training.t + WATCH_OVERHEAD_SECONDS, memory.watchMb);
      return { status: 'succeeded', t: run.endsAt, seenAt: run.endsAt };
    }
    bill.add(budget + WATCH_OVERHEAD_SECONDS, memory.watchMb);
    return { status: 'pending', t: training.t + budget };
  };
  const { transitions, seenAt } = await execute(watchLoopDefinition(), { AwaitTraining: watch }, {});
  return outcome(transitions, bill, seenAt - run.endsAt);
}

/** Today's design: the pipeline's training states, each wait planned by planTrainingCheck. */
export async function progressAware(run: SimulatedTraining, settings: WaitSettings, memory: Memory): Promise<Outcome> {
  const bill = new Bill();
  const plan = (t: number) => ({ ...planTrainingCheck(settings, { submittedAt: iso(0), startedAt: iso(2), progress: run.progressAt(t), now: T0 + t * 1000 }), t });
  const check: Handler = async ({ training }) => {
    // It follows SubmitTraining (t 0) or the Wait its last plan asked for.
    const t = training.t + (training.status === 'pending' ? (training.waitSeconds ?? 0) : 0);
    bill.add(CHECK_BILLED_SECONDS, memory.checkMb);
    return t >= run.endsAt ? { status: 'succeeded', t, seenAt: t } : plan(t);
  };
  const watch: Handler = async ({ training }) => {
    const budget = Math.min(settings.WATCH_BUDGET_SECONDS, training.status === 'watch' ? (training.waitSeconds ?? Infinity) : Infinity);
    if (run.endsAt <= training.t + budget) {
      bill.add(Math.max(0, run.endsAt - training.t) + WATCH_OVERHEAD_SECONDS, memory.watchMb);
      return { status: 'succeeded', t: run.endsAt, seenAt: Math.max(run.endsAt, training.t) };
    }
    bill.add(budget + WATCH_OVERHEAD_SECONDS, memory.watchMb);
    return plan(training.t + budget);
  };
  const { transitions, seenAt } = await execute(progressAwareDefinition(), { CheckTraining: check, AwaitTraining: watch }, { WaitForTraining: 0 });
  return outcome(transitions, bill, seenAt - run.endsAt);
}

// ---------------------------------------------------------------------------------------------------
// The table

export const DESIGNS = ['10 s polling', 'watch loop (before)', 'progress-aware (now)'] as const;
export type Design = (typeof DESIGNS)[number];

export interface Row {
  seconds: number;
  progress: boolean;
  design: Design;
  /** Medians over the trials (the first trial's for transitions, GB-s, requests and cost). */
  transitions: number;
  gbSeconds: number;
  requests: number;
  cost: number;
  costPerHour: number;
  latency: number;
}

/** One row per training length × progress × design, over `trials` trainings with varied epochs. */
export async function benchCost(settings: WaitSettings, memory: Memory, lengths = [600, 3600, 8 * 3600], trials = TRIALS): Promise<Row[]> {
  const rows: Row[] = [];
  for (const seconds of lengths) {
    // A run longer than the phase deadline would time out: the deadline is raised for it, as a user would.
    const s = { ...settings, TRAINING_TIMEOUT_SECONDS: Math.max(settings.TRAINING_TIMEOUT_SECONDS, seconds * 2) };
    for (const progress of [true, false]) {
      for (const design of DESIGNS) {
        const outcomes: Outcome[] = [];
        for (let trial = 0; trial < trials; trial++) {
          const run = simulatedTraining(seconds, progress, 1000 * seconds + trial);
          outcomes.push(design === '10 s polling' ? await polling(run, memory) : design === 'watch loop (before)' ? await watchLoop(run, s, memory) : await progressAware(run, s, memory));
        }
        const mid = (f: (o: Outcome) => number) => median(outcomes.map(f));
        const cost = mid((o) => o.cost);
        rows.push({
          seconds, progress, design,
          transitions: mid((o) => o.transitions), gbSeconds: mid((o) => o.gbSeconds), requests: mid((o) => o.requests),
          cost, costPerHour: cost / (seconds / 3600), latency: mid((o) => o.latency),
        });
      }
    }
  }
  return rows;
}

// ---------------------------------------------------------------------------------------------------
// The synthesized template: memory sizes and settings, not copies of them

interface CfnFunction {
  Type: string;
  Properties?: { MemorySize?: number; Architectures?: string[]; Environment?: { Variables?: Record<string, unknown> } };
}

/** CheckTraining's and AwaitTraining's memory and settings, from the default stack synthesized without bundling. */
async function fromTemplate(): Promise<{ memory: Memory; settings: WaitSettings; architectures: string }> {
  process.env.CDK_VALIDATION ??= 'false';
  const { App } = await import('aws-cdk-lib');
  const { MlPipeStack } = await import('../lib/mlpipe-stack.js');
  const app = new App({ context: { 'aws:cdk:bundling-stacks': [] } });
  const stack = new MlPipeStack(app, 'MlPipeStack', { env: { account: '123456789012', region: 'us-east-1' }, pipeline: { clusterName: 'bench' } });
  const template = app.synth().getStackArtifact(stack.artifactId).template as { Resources: Record<string, CfnFunction> };
  const fn = (id: string) => {
    const found = Object.entries(template.Resources).find(([logicalId, r]) => r.Type === 'AWS::Lambda::Function' && logicalId.includes(`Functions${id}`));
    if (!found) throw new Error(`no ${id} function in the synthesized template`);
    return found[1].Properties ?? {};
  };
  const check = fn('CheckTraining');
  const watch = fn('AwaitTraining');
  const env = (check.Environment?.Variables ?? {}) as Record<string, string>;
  const num = (name: string) => {
    const v = Number(env[name]);
    if (!Number.isFinite(v)) throw new Error(`CheckTraining's environment has no ${name}`);
    return v;
  };
  return {
    memory: { checkMb: check.MemorySize ?? 128, watchMb: watch.MemorySize ?? 128 },
    settings: {
      WATCH_BUDGET_SECONDS: num('WATCH_BUDGET_SECONDS'),
      TRAINING_TIMEOUT_SECONDS: num('TRAINING_TIMEOUT_SECONDS'),
      TRAINING_CHECK_MAX_WAIT_SECONDS: num('TRAINING_CHECK_MAX_WAIT_SECONDS'),
      TRAINING_WATCH_LEAD_SECONDS: num('TRAINING_WATCH_LEAD_SECONDS'),
    },
    architectures: [...new Set([...(check.Architectures ?? ['x86_64']), ...(watch.Architectures ?? ['x86_64'])])].join(', '),
  };
}

const label = (seconds: number) => (seconds < 3600 ? `${seconds / 60} min` : `${seconds / 3600} h`);
const usd = (n: number) => `$${n.toFixed(n < 0.01 ? 5 : 4)}`;

async function main(): Promise<void> {
  const synthStarted = performance.now();
  const { memory, settings, architectures } = await fromTemplate();
  const synthMs = performance.now() - synthStarted;
  if (architectures !== 'arm64') console.warn(`(the functions run on ${architectures}: the arm64 price below undercounts them)`);
  const started = performance.now();
  const rows = await benchCost(settings, memory);
  const ms = performance.now() - started;

  console.log('Waiting for a training run: cost and completion-detection latency, 3 designs (all on aws-local-stepfunctions)');
  console.log(`From the synthesized template (${(synthMs / 1000).toFixed(1)} s): CheckTraining ${memory.checkMb} MB, AwaitTraining ${memory.watchMb} MB, ${architectures}; ` +
    `WATCH_BUDGET_SECONDS ${settings.WATCH_BUDGET_SECONDS}, TRAINING_CHECK_MAX_WAIT_SECONDS ${settings.TRAINING_CHECK_MAX_WAIT_SECONDS}, TRAINING_WATCH_LEAD_SECONDS ${settings.TRAINING_WATCH_LEAD_SECONDS}.`);
  console.log(`Prices: $0.025 / 1,000 transitions, $0.0000133334 / GB-s (arm64), $0.20 / 1M requests. A check bills ${CHECK_BILLED_SECONDS} s, a watch ${WATCH_OVERHEAD_SECONDS} s beyond its watch; the 10 s poll's check runs at CheckTraining's size.`);
  console.log(`Trainings: ${EPOCHS} epochs ±10 %, progress.json after each; medians of ${TRIALS} trainings. Detection = completion → a task sees it (a watch: at once).\n`);
  const header = ['training', 'progress', 'design', 'transitions', 'Lambda GB-s', 'requests', 'cost', 'per training h', 'detection (median)'];
  const widths = [9, 9, 21, 12, 12, 9, 10, 15, 19];
  const line = (cells: string[]) => cells.map((c, i) => (i < 3 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join(' ');
  console.log(line(header));
  for (const r of rows) {
    console.log(line([label(r.seconds), r.progress ? 'yes' : 'no', r.design, String(r.transitions), r.gbSeconds.toFixed(1), String(r.requests), usd(r.cost), usd(r.costPerHour), `${r.latency.toFixed(1)} s`]));
  }
  const target = rows.filter((r) => r.design === 'progress-aware (now)' && r.progress && r.seconds >= 3600);
  const met = target.every((r) => r.costPerHour <= 0.002 && r.latency <= 2);
  console.log(`\nTarget (≤ $0.002 per training hour, median detection ≤ 2 s, with progress, 1 h and 8 h): ${met ? 'met' : 'NOT met'}. (Executions ran in ${(ms / 1000).toFixed(1)} s.)`);
  if (!met) process.exitCode = 1;
}

if (require.main === module) {
  main().catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
}
