/**
 * Trains the example MLP (mlp.ts) with data-parallel threads: each batch is split between this thread and
 * `threads - 1` workers (mlp-worker.ts) that share the images and the weights through SharedArrayBuffers;
 * this thread sums their gradients in a fixed order and takes the Adam step, so a run is reproducible for
 * a given seed and thread count whatever the threads' timing. It can resume from a checkpoint of its own
 * state after any epoch (checkpoint.ts keeps it): weights, Adam's moments and step, the history, and the
 * shuffle order replayed from the seed, so a resumed run trains exactly as an uninterrupted one.
 */
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import {
  Adam,
  accumulateGradients,
  evaluate,
  initParams,
  newParams,
  newScratch,
  paramBytes,
  paramsOver,
  seededRandom,
  tensors,
  type AdamState,
  type MlpParams,
  type MlpShape,
} from './mlp';

export interface TrainOptions {
  epochs: number;
  batchSize: number;
  learningRate: number;
  hiddenUnits: number;
  seed: number;
  /** Fraction of the (possibly truncated) training set held out for validation, taken from its end. */
  validationSplit: number;
  /** Threads including this one. */
  threads: number;
  /**
   * `linear`: the learning rate falls linearly to `finalLearningRateFraction` of itself by the last step;
   * `constant`: it does not change.
   */
  learningRateSchedule: 'linear' | 'constant';
  finalLearningRateFraction: number;
}

export interface TrainData {
  /** count × 784 bytes, row-major (the IDX payload). */
  images: Uint8Array;
  labels: Uint8Array;
  count: number;
  inputs: number;
  classes: number;
}

export interface EpochReport {
  epoch: number;
  epochs: number;
  loss: number;
  accuracy: number;
  valLoss: number;
  valAccuracy: number;
  seconds: number;
}

export interface TrainedModel {
  shape: MlpShape;
  params: MlpParams;
  history: EpochReport[];
  trainSamples: number;
  validationSamples: number;
  /** Wall time of this call's epochs (not data loading or saving; not the epochs of a run resumed from). */
  seconds: number;
}

/** Everything needed to continue training after `epoch` completed epochs. */
export interface TrainingState {
  /** Epochs completed. */
  epoch: number;
  params: MlpParams;
  optimizer: AdamState;
  /** One report per completed epoch, earlier runs' included. */
  history: EpochReport[];
}

export interface TrainHooks {
  /** Continue from this state (a checkpoint) instead of from a fresh initialisation. */
  resumeFrom?: TrainingState;
  /**
   * Called after each epoch and awaited before the next one starts (a checkpoint is saved in between).
   * `state` holds live views of the model: read or copy them now, do not keep them.
   */
  onEpoch?: (report: EpochReport, state: TrainingState) => void | Promise<void>;
}

/** Int32 slots of the shared control array. */
export const CONTROL = { GENERATION: 0, STOP: 1, DONE: 2, BATCH_SIZE: 3, RANGES: 4 } as const;

export interface WorkerInit {
  index: number;
  shape: MlpShape;
  control: SharedArrayBuffer;
  stats: SharedArrayBuffer;
  params: SharedArrayBuffer;
  grads: SharedArrayBuffer;
  images: SharedArrayBuffer;
  labels: SharedArrayBuffer;
  indices: SharedArrayBuffer;
}

export async function trainMlp(
  data: TrainData,
  opts: TrainOptions,
  hooks: TrainHooks = {},
): Promise<TrainedModel> {
  const shape: MlpShape = { inputs: data.inputs, hidden: opts.hiddenUnits, classes: data.classes };
  const validationSamples = Math.floor(data.count * opts.validationSplit);
  const trainSamples = data.count - validationSamples;
  if (trainSamples < 1) throw new Error(`No training samples left after holding out ${validationSamples} for validation.`);

  // Everything the workers read lives in shared memory: one copy of the images, not one per thread.
  const images = shareBytes(data.images.subarray(0, data.count * data.inputs));
  const labels = shareBytes(data.labels.subarray(0, data.count));
  const indicesBuffer = new SharedArrayBuffer(trainSamples * 4);
  const indices = new Int32Array(indicesBuffer);
  for (let i = 0; i < trainSamples; i++) indices[i] = i;
  const paramsBuffer = new SharedArrayBuffer(paramBytes(shape));
  const params = paramsOver(shape, paramsBuffer);
  initParams(params, shape, opts.seed);
  const grads = newParams(shape);
  const optimizer = new Adam(params, opts.learningRate);
  const scratch = newScratch(shape);
  const shuffleRandom = seededRandom(opts.seed + 1);
  const resume = hooks.resumeFrom;
  if (resume) {
    if (resume.epoch > opts.epochs) throw new Error(`Cannot resume after epoch ${resume.epoch} of a run of ${opts.epochs} epochs.`);
    tensors(params).forEach((t, i) => {
      const saved = tensors(resume.params)[i]!;
      if (saved.length !== t.length) throw new Error('The state to resume from does not fit this model\'s shape.');
      t.set(saved);
    });
    optimizer.restore(resume.optimizer);
    // Each epoch shuffles the previous epoch's order: replaying the completed epochs' shuffles (cheap next to
    // one epoch) gives the order an uninterrupted run would use next.
    for (let e = 0; e < resume.epoch; e++) shuffle(indices, shuffleRandom);
  }

  const workerCount = Math.max(0, Math.min(opts.threads - 1, Math.floor(opts.batchSize / 2)));
  const control = new Int32Array(new SharedArrayBuffer((CONTROL.RANGES + 2 * workerCount) * 4));
  const workers = await startWorkers(workerCount, shape, control, paramsBuffer, images, labels, indicesBuffer);

  const batchesPerEpoch = Math.ceil(trainSamples / opts.batchSize);
  const totalSteps = batchesPerEpoch * opts.epochs;
  let step = (resume?.epoch ?? 0) * batchesPerEpoch;
  const learningRateScale = (): number =>
    opts.learningRateSchedule === 'constant'
      ? 1
      : 1 - (1 - opts.finalLearningRateFraction) * (step / Math.max(1, totalSteps - 1));

  const history: EpochReport[] = [...(resume?.history ?? [])];
  const started = performance.now();
  try {
    for (let epoch = (resume?.epoch ?? 0) + 1; epoch <= opts.epochs; epoch++) {
      const epochStarted = performance.now();
      shuffle(indices, shuffleRandom);
      let loss = 0;
      let correct = 0;
      for (let from = 0; from < trainSamples; from += opts.batchSize) {
        const to = Math.min(trainSamples, from + opts.batchSize);
        const size = to - from;
        // This thread takes the first share; worker w the (w+1)-th.
        const share = Math.ceil(size / (workers.length + 1));
        control[CONTROL.BATCH_SIZE] = size;
        workers.forEach((_, w) => {
          control[CONTROL.RANGES + 2 * w] = Math.min(to, from + share * (w + 1));
          control[CONTROL.RANGES + 2 * w + 1] = Math.min(to, from + share * (w + 2));
        });
        Atomics.store(control, CONTROL.DONE, 0);
        Atomics.add(control, CONTROL.GENERATION, 1);
        Atomics.notify(control, CONTROL.GENERATION);

        for (const t of tensors(grads)) t.fill(0);
        const own = accumulateGradients(
          params, shape, data.images, data.labels, indices, from, Math.min(to, from + share), size, grads, scratch,
        );
        loss += own.loss;
        correct += own.correct;

        for (let done = Atomics.load(control, CONTROL.DONE); done < workers.length; done = Atomics.load(control, CONTROL.DONE)) {
          // Blocking is fine in a batch job; a thread that died cannot report (its error event needs this
          // event loop), so a long silence is the failure signal.
          if (Atomics.wait(control, CONTROL.DONE, done, 60_000) === 'timed-out') {
            throw new Error(`A training thread did not finish its share of a batch in 60 s; ${workers.length - done} still busy.`);
          }
        }
        for (const w of workers) {
          addInto(grads, w.grads);
          loss += w.stats[0]!;
          correct += w.stats[1]!;
        }
        optimizer.step(grads, learningRateScale());
        step++;
      }
      const val = validationSamples > 0
        ? evaluate(params, shape, data.images, data.labels, trainSamples, data.count)
        : { loss: Number.NaN, accuracy: Number.NaN };
      const report: EpochReport = {
        epoch,
        epochs: opts.epochs,
        loss: loss / trainSamples,
        accuracy: correct / trainSamples,
        valLoss: val.loss,
        valAccuracy: val.accuracy,
        seconds: (performance.now() - epochStarted) / 1000,
      };
      history.push(report);
      await hooks.onEpoch?.(report, { epoch, params, optimizer: optimizer.state(), history });
      await new Promise((resolve) => setImmediate(resolve)); // let signals and stdout through between epochs
    }
  } finally {
    Atomics.store(control, CONTROL.STOP, 1);
    Atomics.add(control, CONTROL.GENERATION, 1);
    Atomics.notify(control, CONTROL.GENERATION);
    await Promise.all(workers.map((w) => w.exited));
  }
  // Copy out of shared memory so callers hold ordinary arrays.
  const result = newParams(shape);
  tensors(result).forEach((t, i) => t.set(tensors(params)[i]!));
  return {
    shape,
    params: result,
    history,
    trainSamples,
    validationSamples,
    seconds: (performance.now() - started) / 1000,
  };
}

interface TrainingWorker {
  grads: MlpParams;
  stats: Float64Array;
  exited: Promise<void>;
  failed?: Error;
}

async function startWorkers(
  count: number,
  shape: MlpShape,
  control: Int32Array,
  params: SharedArrayBuffer,
  images: SharedArrayBuffer,
  labels: SharedArrayBuffer,
  indices: SharedArrayBuffer,
): Promise<TrainingWorker[]> {
  // Same extension as this file: .ts under tsx, .js when bundled.
  const file = path.join(__dirname, `mlp-worker${path.extname(__filename)}`);
  const started = Array.from({ length: count }, (_, index) => {
    const gradsBuffer = new SharedArrayBuffer(paramBytes(shape));
    const statsBuffer = new SharedArrayBuffer(16);
    const init: WorkerInit = {
      index,
      shape,
      control: control.buffer as SharedArrayBuffer,
      stats: statsBuffer,
      params,
      grads: gradsBuffer,
      images,
      labels,
      indices,
    };
    const worker = new Worker(file, { workerData: init });
    const entry: TrainingWorker = {
      grads: paramsOver(shape, gradsBuffer),
      stats: new Float64Array(statsBuffer),
      exited: Promise.resolve(),
    };
    entry.exited = new Promise<void>((resolve) => {
      worker.on('error', (err) => {
        entry.failed = new Error(`Training thread ${index} failed: ${err.message}`);
      });
      worker.on('exit', () => resolve());
    });
    return new Promise<TrainingWorker>((resolve, reject) => {
      worker.once('online', () => resolve(entry));
      worker.once('error', reject);
    });
  });
  return Promise.all(started);
}

function shareBytes(bytes: Uint8Array): SharedArrayBuffer {
  const shared = new SharedArrayBuffer(bytes.byteLength);
  new Uint8Array(shared).set(bytes);
  return shared;
}

function shuffle(indices: Int32Array, random: () => number): void {
  for (let i = indices.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    const t = indices[i]!;
    indices[i] = indices[j]!;
    indices[j] = t;
  }
}

function addInto(target: MlpParams, source: MlpParams): void {
  const ts = tensors(target);
  const ss = tensors(source);
  for (let q = 0; q < ts.length; q++) {
    const t = ts[q]!;
    const s = ss[q]!;
    for (let i = 0; i < t.length; i++) t[i]! += s[i]!;
  }
}
