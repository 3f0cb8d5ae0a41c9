/**
 * The watch-based wait loop costs a few dozen state transitions per training hour, not ~1,080; the
 * progress-aware wait (bench/cost.ts: the pipeline's training states and planner) costs under $0.002 per
 * training hour and sees the end at once when the trainer reports progress.
 */
import { progressAware, simulatedTraining, watchLoop } from '../../bench/cost';
import { benchTransitions, watchTransitions } from '../../bench/transitions';

describe('bench/transitions', () => {
  it('counts AwaitTraining + Choice per 240 s budget against Wait + Task + Choice per 10 s', async () => {
    const { watch, polling10s, ratio } = await benchTransitions();
    expect(watch).toBe(30); // 15 invocations of 240 s, each followed by IsTrainingComplete
    expect(polling10s).toBe(1080); // 360 × (Wait + Task + Choice)
    expect(ratio).toBe(36);
  });

  it('ends the loop in the invocation that sees completion', async () => {
    expect(await watchTransitions(100, 240)).toBe(2);
    expect(await watchTransitions(241, 240)).toBe(4);
  });
});

describe('bench/cost', () => {
  // The deployed defaults (settings.ts, pipeline-functions.ts); `npm run bench -- cost` reads them from the template.
  const settings = { WATCH_BUDGET_SECONDS: 240, TRAINING_TIMEOUT_SECONDS: 14_400, TRAINING_CHECK_MAX_WAIT_SECONDS: 300, TRAINING_WATCH_LEAD_SECONDS: 60 };
  const memory = { checkMb: 192, watchMb: 256 };

  it('an hour with progress reports: under $0.002, the end seen by a watch, a tenth of the watch loop', async () => {
    const run = simulatedTraining(3600, true, 1);
    const now = await progressAware(run, settings, memory);
    const before = await watchLoop(run, settings, memory);
    expect(now.cost).toBeLessThan(0.002);
    expect(now.latency).toBe(0);
    expect(now.cost).toBeLessThan(before.cost / 5);
    expect(now.transitions).toBeLessThan(70); // a check every 5 min at most, 3 transitions each
  });

  it('without progress reports: backed-off Waits, a failure or the end seen within the max wait', async () => {
    const now = await progressAware(simulatedTraining(3600, false, 1), settings, memory);
    expect(now.cost).toBeLessThan(0.002);
    expect(now.latency).toBeLessThanOrEqual(settings.TRAINING_CHECK_MAX_WAIT_SECONDS);
  });
});
