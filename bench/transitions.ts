/**
 * State transitions per hour of training: the watch-based wait loop statemachine/pipeline.asl.json had
 * before progress-aware waiting (AwaitTraining watches for up to WATCH_BUDGET_SECONDS, then
 * IsTrainingComplete loops; bench/cost.ts runs today's design next to it) against the
 * 10 s polling loop of the design this project ports (Wait 10 s → check Task → Choice). Both loops really
 * run on aws-local-stepfunctions; simulated time stands in for the clock: waits are overridden to 0 ms,
 * and each task reports how much simulated time its call covered. Transitions are counted from the
 * execution's own event log (StateEntered of the loop states), not computed.
 *
 *   npx tsx bench/transitions.ts
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { StateMachine } from 'aws-local-stepfunctions';

type Definition = ConstructorParameters<typeof StateMachine>[0];
type LoopState = { training: { status: string; elapsedSeconds: number } };

const ASL = join(__dirname, '..', 'statemachine', 'pipeline.asl.json');

/**
 * The watch loop as the pipeline ran it before progress-aware waiting (bench/cost.ts compares both): the
 * pipeline's AwaitTraining state, and a Choice that loops back to it until `succeeded`, wired to a Succeed
 * instead of DeployStaging.
 */
export function watchLoopDefinition(): Definition {
  const pipeline = JSON.parse(readFileSync(ASL, 'utf8')) as { States: Record<string, Record<string, unknown>> };
  const awaitTraining: Record<string, unknown> = { ...pipeline.States.AwaitTraining, Resource: 'arn:aws:lambda:us-east-1:000000000000:function:await-training' };
  delete awaitTraining.Catch;
  delete awaitTraining.Retry;
  const choice = { Type: 'Choice', Choices: [{ Variable: '$.training.status', StringEquals: 'succeeded', Next: 'TrainingDone' }], Default: 'AwaitTraining' };
  return {
    StartAt: 'AwaitTraining',
    States: { AwaitTraining: awaitTraining, IsTrainingComplete: choice, TrainingDone: { Type: 'Succeed' } },
  } as unknown as Definition;
}

/** The ported design's loop: wait 10 s, ask, decide. */
export function pollingLoopDefinition(intervalSeconds: number): Definition {
  return {
    StartAt: 'WaitForTraining',
    States: {
      WaitForTraining: { Type: 'Wait', Seconds: intervalSeconds, Next: 'CheckTraining' },
      CheckTraining: { Type: 'Task', Resource: 'arn:aws:lambda:us-east-1:000000000000:function:check-training', ResultPath: '$.training', Next: 'IsTrainingComplete' },
      IsTrainingComplete: {
        Type: 'Choice',
        Choices: [{ Variable: '$.training.status', StringEquals: 'succeeded', Next: 'TrainingDone' }],
        Default: 'WaitForTraining',
      },
      TrainingDone: { Type: 'Succeed' },
    },
  } as unknown as Definition;
}

async function countTransitions(definition: Definition, handlers: Record<string, (input: LoopState) => Promise<LoopState['training']>>, waitOverrides: Record<string, number>): Promise<{ transitions: number; simulatedSeconds: number }> {
  const machine = new StateMachine(definition, { validationOptions: { checkPaths: false } });
  const execution = machine.run(
    { training: { status: 'pending', elapsedSeconds: 0 } },
    { overrides: { taskResourceLocalHandlers: handlers as never, waitTimeOverrides: waitOverrides } },
  );
  let transitions = 0;
  for await (const event of execution.eventLogs as AsyncGenerator<{ type: string; state?: { name: string } }>) {
    if (event.type === 'StateEntered' && event.state?.name !== 'TrainingDone') transitions++;
  }
  const out = (await execution.result) as LoopState;
  return { transitions, simulatedSeconds: out.training.elapsedSeconds };
}

/** Watch loop: one AwaitTraining call covers up to `budget` seconds, and returns as soon as the job completes. */
export async function watchTransitions(trainingSeconds: number, budgetSeconds = 240): Promise<number> {
  const awaitTraining = async ({ training }: LoopState) => {
    const elapsed = Math.min(trainingSeconds, training.elapsedSeconds + budgetSeconds);
    return { status: elapsed >= trainingSeconds ? 'succeeded' : 'pending', elapsedSeconds: elapsed };
  };
  const { transitions, simulatedSeconds } = await countTransitions(watchLoopDefinition(), { AwaitTraining: awaitTraining }, {});
  if (simulatedSeconds !== trainingSeconds) throw new Error(`watch loop simulated ${simulatedSeconds} s, expected ${trainingSeconds}`);
  return transitions;
}

/** Polling loop: each check follows one Wait of `interval` seconds. */
export async function pollingTransitions(trainingSeconds: number, intervalSeconds = 10): Promise<number> {
  const checkTraining = async ({ training }: LoopState) => {
    const elapsed = training.elapsedSeconds + intervalSeconds;
    return { status: elapsed >= trainingSeconds ? 'succeeded' : 'pending', elapsedSeconds: elapsed };
  };
  const { transitions } = await countTransitions(pollingLoopDefinition(intervalSeconds), { CheckTraining: checkTraining }, { WaitForTraining: 0 });
  return transitions;
}

/** One hour of training: transitions of the watch loop (240 s budget) vs 10 s polling. */
export async function benchTransitions(): Promise<{ watch: number; polling10s: number; ratio: number }> {
  const watch = await watchTransitions(3600, 240);
  const polling10s = await pollingTransitions(3600, 10);
  return { watch, polling10s, ratio: Math.round((polling10s / watch) * 10) / 10 };
}

async function main(): Promise<void> {
  const rows: Array<[string, number, number]> = [];
  for (const seconds of [600, 3600, 4 * 3600]) {
    rows.push([`${seconds / 60} min`, await watchTransitions(seconds, 240), await pollingTransitions(seconds, 10)]);
  }
  const started = performance.now();
  const hour = await benchTransitions();
  const ms = performance.now() - started;
  console.log('State transitions while training runs (counted from aws-local-stepfunctions event logs)');
  console.log('training   watch (240 s budget)   polling (10 s)   ratio');
  for (const [label, w, p] of rows) console.log(`${label.padEnd(10)} ${String(w).padStart(20)} ${String(p).padStart(16)} ${(p / w).toFixed(1).padStart(7)}`);
  console.log(`\n1 hour: watch ${hour.watch}, polling ${hour.polling10s}, ratio ${hour.ratio} (both executions ran in ${ms.toFixed(0)} ms)`);
}

if (require.main === module) {
  main().catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
}
