/**
 * A training thread for trainer.ts: computes the gradient of its slice of each batch into its own shared
 * buffer. Synchronised with Atomics on a shared control array (no message per batch: 470 batches an
 * epoch would spend more on postMessage than on sharing the work).
 */
import { workerData } from 'node:worker_threads';
import { accumulateGradients, newScratch, paramsOver, tensors } from './mlp';
import { CONTROL, type WorkerInit } from './trainer';

const init = workerData as WorkerInit;
const control = new Int32Array(init.control);
const stats = new Float64Array(init.stats);
const params = paramsOver(init.shape, init.params);
const grads = paramsOver(init.shape, init.grads);
const images = new Uint8Array(init.images);
const labels = new Uint8Array(init.labels);
const indices = new Int32Array(init.indices);
const scratch = newScratch(init.shape);
const slot = CONTROL.RANGES + 2 * init.index;

let generation = 0;
for (;;) {
  Atomics.wait(control, CONTROL.GENERATION, generation);
  generation = Atomics.load(control, CONTROL.GENERATION);
  if (Atomics.load(control, CONTROL.STOP) === 1) break;
  for (const t of tensors(grads)) t.fill(0);
  const result = accumulateGradients(
    params,
    init.shape,
    images,
    labels,
    indices,
    control[slot]!,
    control[slot + 1]!,
    control[CONTROL.BATCH_SIZE]!,
    grads,
    scratch,
  );
  stats[0] = result.loss;
  stats[1] = result.correct;
  Atomics.add(control, CONTROL.DONE, 1);
  Atomics.notify(control, CONTROL.DONE);
}
