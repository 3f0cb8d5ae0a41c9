/**
 * The example trainer's checkpoints (examples/fashion-mnist/checkpoint.ts, trainer.ts resumeFrom): a run
 * resumed from any epoch's checkpoint ends with exactly the weights of an uninterrupted run, and on a real
 * local S3 the newest checkpoint of the same run is picked, a torn one never is.
 */
import { loadLatestCheckpoint, saveCheckpoint, slotFor, type RunFingerprint } from '../../examples/fashion-mnist/checkpoint';
import { seededRandom, tensors, type MlpShape } from '../../examples/fashion-mnist/mlp';
import { getBytes, putBytes, s3 } from '../../examples/fashion-mnist/s3';
import { trainMlp, type TrainData, type TrainOptions, type TrainingState } from '../../examples/fashion-mnist/trainer';
import { BUCKET, startTestS3, type TestS3 } from './helpers';

const SHAPE: MlpShape = { inputs: 784, hidden: 16, classes: 10 };
const OPTS: TrainOptions = {
  epochs: 3, batchSize: 32, learningRate: 0.003, hiddenUnits: SHAPE.hidden, seed: 5, validationSplit: 0.1, threads: 1,
  learningRateSchedule: 'linear', finalLearningRateFraction: 0.05,
};
const FINGERPRINT: RunFingerprint = { dataUri: 's3://b/d/', samples: 300, epochs: 3, hiddenUnits: 16, seed: 5 };

/** 300 synthetic images, sparse like Fashion-MNIST's, label = a function of the pixels. */
function syntheticData(): TrainData {
  const count = 300;
  const random = seededRandom(11);
  const images = new Uint8Array(count * 784);
  const labels = new Uint8Array(count);
  for (let n = 0; n < count; n++) {
    labels[n] = n % 10;
    for (let k = 0; k < 784; k++) if (random() < 0.3) images[n * 784 + k] = Math.floor(random() * 128) + (k % 10 === labels[n] ? 127 : 0);
  }
  return { images, labels, count, inputs: 784, classes: 10 };
}

/** A tensor's own bytes (several tensors may share one buffer). */
function bytes(t: Float32Array): Buffer {
  return Buffer.from(t.buffer, t.byteOffset, t.byteLength);
}

/** A copy of live training state (onEpoch hands out views). */
function copyState(state: TrainingState): TrainingState {
  const params = { w1: state.params.w1.slice(), b1: state.params.b1.slice(), w2: state.params.w2.slice(), b2: state.params.b2.slice() };
  return {
    epoch: state.epoch,
    params,
    optimizer: { step: state.optimizer.step, m: state.optimizer.m.map((t) => t.slice()), v: state.optimizer.v.map((t) => t.slice()) },
    history: state.history.map((r) => ({ ...r })),
  };
}

describe('trainMlp resumeFrom', () => {
  const data = syntheticData();
  let straight: Awaited<ReturnType<typeof trainMlp>>;
  const states: TrainingState[] = [];

  beforeAll(async () => {
    // One uninterrupted run, keeping its state after each epoch.
    straight = await trainMlp(data, OPTS, { onEpoch: (_, state) => void states.push(copyState(state)) });
  });

  it.each([1, 2, 3])('a run resumed after epoch %i ends with the weights and history of an uninterrupted run', async (after) => {
    // Act
    const resumed = await trainMlp(data, OPTS, { resumeFrom: states[after - 1]! });

    // Assess: bit for bit the same model; the history covers all epochs once.
    tensors(resumed.params).forEach((t, i) => expect(bytes(t).equals(bytes(tensors(straight.params)[i]!))).toBe(true));
    expect(resumed.history.map((r) => r.epoch)).toEqual([1, 2, 3]);
    expect(resumed.history.map((r) => r.valLoss)).toEqual(straight.history.map((r) => r.valLoss));
  });

  it('differs from an uninterrupted run when resumed without the optimizer state (the check can fail)', async () => {
    const first = states[0]!;
    const fresh = { ...first, optimizer: { step: 0, m: first.optimizer.m.map((t) => new Float32Array(t.length)), v: first.optimizer.v.map((t) => new Float32Array(t.length)) } };
    const resumed = await trainMlp(data, OPTS, { resumeFrom: fresh });
    expect(bytes(resumed.params.w1).equals(bytes(straight.params.w1))).toBe(false);
  });
});

describe('checkpoints on S3', () => {
  let local: TestS3;
  let states: TrainingState[];

  beforeAll(async () => {
    local = await startTestS3();
    states = [];
    await trainMlp(syntheticData(), OPTS, { onEpoch: (_, state) => void states.push(copyState(state)) });
  });
  afterAll(async () => {
    s3().destroy();
    await local.stop();
  });

  const uri = (name: string) => `s3://${BUCKET}/checkpoints/${name}/`;

  it('finds nothing where nothing was saved', async () => {
    await expect(loadLatestCheckpoint(uri('none'), SHAPE, FINGERPRINT)).resolves.toEqual({ skipped: [] });
  });

  it('resumes from the newest of the two slots, with all of its state', async () => {
    for (const state of states.slice(0, 3)) await saveCheckpoint(uri('newest'), state, SHAPE, FINGERPRINT);
    const loaded = await loadLatestCheckpoint(uri('newest'), SHAPE, FINGERPRINT);
    expect(loaded.from).toBe(`${uri('newest')}${slotFor(3)}`);
    expect(loaded.skipped).toEqual([]);
    expect(loaded.state!.epoch).toBe(3);
    expect(loaded.state!.optimizer.step).toBe(states[2]!.optimizer.step);
    expect(loaded.state!.history).toEqual(states[2]!.history);
    expect(bytes(loaded.state!.params.w1).equals(bytes(states[2]!.params.w1))).toBe(true);
    expect(bytes(loaded.state!.optimizer.v[3]!).equals(bytes(states[2]!.optimizer.v[3]!))).toBe(true);
  });

  it.each([
    ['cut short', (b: Uint8Array) => b.subarray(0, b.byteLength - 100), /truncated/],
    ['with a flipped byte', (b: Uint8Array) => { const c = b.slice(); c[c.byteLength - 5]! ^= 1; return c; }, /checksum mismatch/],
    ['not a checkpoint at all', () => Buffer.from('{"weights": []}'), /not a checkpoint of this trainer/],
    // A header that still parses but says another epoch (same length: "epoch":2 → "epoch":9).
    ['with a damaged header', (b: Uint8Array) => Buffer.from(Buffer.from(b).toString('latin1').replace('"epoch":2', '"epoch":9'), 'latin1'), /checksum mismatch/],
  ])('never reads a torn write as a checkpoint (%s): the older slot is used', async (name, damage, problem) => {
    const at = uri(`torn-${name.replace(/\W+/g, '-')}`);
    await saveCheckpoint(at, states[0]!, SHAPE, FINGERPRINT);
    const newest = await saveCheckpoint(at, states[1]!, SHAPE, FINGERPRINT);
    const key = newest.replace(`s3://${BUCKET}/`, '');
    await putBytes(BUCKET, key, damage(await getBytes(BUCKET, key)), 'application/octet-stream');

    const loaded = await loadLatestCheckpoint(at, SHAPE, FINGERPRINT);

    expect(loaded.state?.epoch).toBe(1);
    expect(loaded.skipped).toHaveLength(1);
    expect(loaded.skipped[0]).toMatch(problem);
    expect(loaded.skipped[0]).toContain(newest);
  });

  it('does not resume from another run\'s checkpoint, and says what differs', async () => {
    await saveCheckpoint(uri('other'), states[0]!, SHAPE, FINGERPRINT);
    const loaded = await loadLatestCheckpoint(uri('other'), SHAPE, { ...FINGERPRINT, epochs: 5 });
    expect(loaded.state).toBeUndefined();
    expect(loaded.skipped).toEqual([`${uri('other')}${slotFor(1)}: made with epochs=3, this run has epochs=5`]);
  });
});
