/**
 * examples/fashion-mnist/mlp.ts's math against first principles: the hand-optimised gradient (non-zero
 * pixels only, active hidden units only, four pixels per pass) equals a central finite difference of the
 * loss for every parameter, and splitting a batch across threads sums to the same gradient. Tiny shapes,
 * chosen so every code path runs: pixel counts that are and are not multiples of four, zero pixels,
 * inactive hidden units.
 */
import { accumulateGradients, evaluate, initParams, newParams, newScratch, tensors, type MlpShape } from '../../examples/fashion-mnist/mlp';
import { seededRandom } from '../../functions/shared/random';

const shape: MlpShape = { inputs: 13, hidden: 9, classes: 4 };
const SAMPLES = 6;

/** Images with about a third of the pixels zero (background), labels spread over the classes. */
function data(seed: number): { images: Uint8Array; labels: Uint8Array; indices: Int32Array } {
  const random = seededRandom(seed);
  const images = new Uint8Array(SAMPLES * shape.inputs);
  for (let i = 0; i < images.length; i++) images[i] = random() < 0.35 ? 0 : 1 + Math.floor(random() * 255);
  const labels = Uint8Array.from({ length: SAMPLES }, (_, i) => i % shape.classes);
  return { images, labels, indices: Int32Array.from({ length: SAMPLES }, (_, i) => i) };
}

/** Mean cross-entropy over the batch, in float64 as far as forward() allows (float32 weights). */
function meanLoss(params: ReturnType<typeof newParams>, d: ReturnType<typeof data>): number {
  return evaluate(params, shape, d.images, d.labels, 0, SAMPLES).loss;
}

describe('mlp.ts gradient', () => {
  it('matches a central finite difference of the loss for every weight and bias', () => {
    // Arrange
    const d = data(3);
    const params = newParams(shape);
    initParams(params, shape, 11);
    const grads = newParams(shape);

    // Act
    accumulateGradients(params, shape, d.images, d.labels, d.indices, 0, SAMPLES, SAMPLES, grads, newScratch(shape));

    // Assess
    // Small enough that no hidden unit crosses ReLU's kink, large enough for float32 forward passes.
    const h = 1e-3;
    let checked = 0;
    let inactive = 0;
    tensors(params).forEach((p, q) => {
      const g = tensors(grads)[q]!;
      for (let i = 0; i < p.length; i++) {
        const saved = p[i]!;
        p[i] = saved + h;
        const hi = p[i]!; // as float32 stores it
        const up = meanLoss(params, d);
        p[i] = saved - h;
        const lo = p[i]!;
        const down = meanLoss(params, d);
        p[i] = saved;
        const numeric = (up - down) / (hi - lo);
        expect(Math.abs(g[i]! - numeric)).toBeLessThan(2e-4 + 0.01 * Math.abs(numeric));
        if (q === 0 && g[i] === 0) inactive++;
        checked++;
      }
    });
    expect(checked).toBe(13 * 9 + 9 + 9 * 4 + 4);
    // Some w1 gradients are exactly zero (a zero pixel or an inactive unit) and most are not: both paths ran.
    expect(inactive).toBeGreaterThan(0);
    expect(inactive).toBeLessThan(13 * 9 - 20);
  });

  it('sums to the same gradient when the batch is split across threads', () => {
    // Arrange
    const d = data(5);
    const params = newParams(shape);
    initParams(params, shape, 2);
    const whole = newParams(shape);
    const parts = [newParams(shape), newParams(shape), newParams(shape)];

    // Act
    const all = accumulateGradients(params, shape, d.images, d.labels, d.indices, 0, SAMPLES, SAMPLES, whole, newScratch(shape));
    const bounds = [0, 1, 4, SAMPLES];
    const stats = parts.map((g, t) =>
      accumulateGradients(params, shape, d.images, d.labels, d.indices, bounds[t]!, bounds[t + 1]!, SAMPLES, g, newScratch(shape)),
    );

    // Assess
    expect(stats.reduce((a, s) => a + s.loss, 0)).toBeCloseTo(all.loss, 4);
    expect(stats.reduce((a, s) => a + s.correct, 0)).toBe(all.correct);
    tensors(whole).forEach((w, q) => {
      for (let i = 0; i < w.length; i++) {
        const sum = parts.reduce((a, g) => a + tensors(g)[q]![i]!, 0);
        expect(sum).toBeCloseTo(w[i]!, 5);
      }
    });
  });
});
