/** The watch-based wait loop costs a few dozen state transitions per training hour, not ~1,080. */
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
