/**
 * The example trainer's hyperparameters: what train.ts parses HYPERPARAMETERS with. The image declares the
 * same rules to the pipeline as a JSON Schema in its `io.mlpipe.hyperparameters` label (Dockerfile.train),
 * so Prepare refuses a bad value before any Job exists; test/functions-ecr/hyperparameters.test.ts checks
 * that the two agree. Kept apart from train.ts so that check loads no tfjs.
 */
import os from 'node:os';
import { z } from 'zod';

// Values may arrive as strings (the pipeline's hyperparameters are string | number | boolean).
const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max);

/**
 * Defaults chosen by measurement (README): four epochs of batches of 64 with a linearly decaying rate reach
 * 0.88+ held-out accuracy for about the CPU time two epochs took before mlp.ts's gradient got 2.4× faster.
 */
export const hyperparametersSchema = z
  .object({
    epochs: int(1, 1000).default(4),
    batchSize: int(1, 60000).default(64),
    learningRate: z.coerce.number().positive().max(1).default(0.002),
    /** `linear` decays the rate to finalLearningRateFraction × learningRate by the last batch. */
    learningRateSchedule: z.enum(['linear', 'constant']).default('linear'),
    finalLearningRateFraction: z.coerce.number().min(0).max(1).default(0.05),
    hiddenUnits: int(1, 4096).default(128),
    seed: int(0, 2 ** 31 - 1).default(42),
    validationSplit: z.coerce.number().gt(0).max(0.5).default(0.1),
    /** Use only the first N training images (class-balanced: the staged files interleave classes). */
    maxTrainSamples: int(10, 10_000_000).optional(),
    /** Threads including the main one; default: the CPUs this process may use, at most 4. */
    threads: int(1, 64).default(Math.max(1, Math.min(4, os.availableParallelism()))),
    /** Test hook: fail with this message (exit 1) before doing anything. */
    failWith: z.string().optional(),
  })
  .strict();
export type Hyperparameters = z.infer<typeof hyperparametersSchema>;
