/**
 * The example training image's entry point (the container contract in docs/architecture.md):
 *   DATA_URI          s3://…/ prefix holding train-images-idx3-ubyte and train-labels-idx1-ubyte
 *   MODEL_OUTPUT_URI  s3://…/ prefix to write model.json, weights.bin and metrics.json to
 *   HYPERPARAMETERS   JSON object, see hyperparameters.ts (all optional)
 *   CHECKPOINT_URI    optional s3://…/ prefix for checkpoints: saved after each epoch, resumed from on start
 *   DATA_CACHE_DIR    optional node-local directory caching DATA_URI's objects by ETag (the local run sets it)
 * Prints one line per epoch and overwrites MODEL_OUTPUT_URI's progress.json each epoch (fraction, epoch,
 * metrics, ETA: functions/shared/progress.ts). Exits 0 when the model and metrics.json are written, 1 on
 * a failure (message on stderr), 2 on invalid environment.
 */
import { z } from 'zod';
import type { TrainingProgress } from '../../functions/shared/progress';
import { loadLatestCheckpoint, saveCheckpoint, type RunFingerprint } from './checkpoint';
import { hyperparametersSchema, type Hyperparameters } from './hyperparameters';
import { decodeIdx } from './idx';
import type { MlpShape } from './mlp';
import { getBytes, getBytesCached, parseS3Prefix, putBytes, S3_URI } from './s3';
import { trainMlp, type EpochReport, type TrainingState } from './trainer';

const IMAGE_FILE = 'train-images-idx3-ubyte';
const LABEL_FILE = 'train-labels-idx1-ubyte';
const CLASSES = 10;
export const FRAMEWORK = 'js-float32-mlp';

export { hyperparametersSchema, type Hyperparameters } from './hyperparameters';

const s3UriSchema = z.string().regex(S3_URI, 'must be an S3 URI like s3://bucket/prefix/');

const envSchema = z.object({
  DATA_URI: s3UriSchema,
  MODEL_OUTPUT_URI: s3UriSchema,
  CHECKPOINT_URI: s3UriSchema.optional(),
  /** Optional node-local cache of the training data, keyed by each object's ETag (s3.ts getBytesCached). */
  DATA_CACHE_DIR: z.string().min(1).optional(),
  HYPERPARAMETERS: z
    .string()
    .optional()
    .transform((raw, ctx) => {
      if (raw === undefined || raw.trim() === '') return {};
      try {
        return JSON.parse(raw) as unknown;
      } catch (err) {
        ctx.addIssue({ code: 'custom', message: `is not valid JSON (${(err as Error).message})` });
        return z.NEVER;
      }
    })
    .pipe(hyperparametersSchema),
});

class InvalidEnvironmentError extends Error {
  override readonly name = 'InvalidEnvironmentError';
}

export function parseEnvironment(env: NodeJS.ProcessEnv): z.infer<typeof envSchema> {
  const parsed = envSchema.safeParse(env);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((issue) => {
      const [variable, ...rest] = issue.path.map(String);
      const what = variable === undefined ? 'environment' : rest.length ? `${variable} field "${rest.join('.')}"` : variable;
      const missing = variable !== undefined && rest.length === 0 && (env[variable] ?? '').trim() === '';
      return `${what}: ${missing ? 'is not set' : issue.message}`;
    });
    throw new InvalidEnvironmentError(`Invalid environment:\n  ${lines.join('\n  ')}`);
  }
  return parsed.data;
}

async function main(): Promise<void> {
  const env = parseEnvironment(process.env);
  const hp = env.HYPERPARAMETERS;
  if (hp.failWith !== undefined) throw new Error(hp.failWith);

  const started = performance.now();
  const data = parseS3Prefix(env.DATA_URI, 'DATA_URI');
  const cacheDir = env.DATA_CACHE_DIR;
  const read = (key: string) => (cacheDir ? getBytesCached(data.bucket, key, cacheDir, (m) => log(`warning: ${m}`)) : getBytes(data.bucket, key));
  const [imageBytes, labelBytes] = await Promise.all([read(data.prefix + IMAGE_FILE), read(data.prefix + LABEL_FILE)]);
  const images = decodeIdx(imageBytes, IMAGE_FILE);
  const labels = decodeIdx(labelBytes, LABEL_FILE);
  if (images.dims.length !== 3 || labels.dims.length !== 1 || images.dims[0] !== labels.dims[0]) {
    throw new Error(`${IMAGE_FILE} (${images.dims.join('x')}) and ${LABEL_FILE} (${labels.dims.join('x')}) do not match.`);
  }
  const inputs = images.dims[1]! * images.dims[2]!;
  const count = Math.min(images.dims[0]!, hp.maxTrainSamples ?? Infinity);
  for (let i = 0; i < count; i++) {
    if (labels.data[i]! >= CLASSES) throw new Error(`${LABEL_FILE}: label ${labels.data[i]} at ${i} is not a class 0-9.`);
  }
  log(`loaded ${count} of ${images.dims[0]} images (${images.dims.slice(1).join('x')}) from ${env.DATA_URI} in ${seconds(started)} s`);
  // TensorFlow.js (~1 s of CPU to load through tsx) only writes the model in its format at the end: it loads
  // while training runs, and a run refused above (invalid environment, missing data) exits without it.
  const modelIo = import('./model-io.js');
  modelIo.catch(() => undefined); // a load failure is reported where the model is saved
  const shape: MlpShape = { inputs, hidden: hp.hiddenUnits, classes: CLASSES };
  const fingerprint = runFingerprint(hp, count, env.DATA_URI);
  let resumeFrom: TrainingState | undefined;
  if (env.CHECKPOINT_URI !== undefined) {
    const found = await loadLatestCheckpoint(env.CHECKPOINT_URI, shape, fingerprint);
    for (const skipped of found.skipped) log(`ignoring checkpoint ${skipped}`);
    resumeFrom = found.state;
    log(resumeFrom ? `resuming from checkpoint: epoch ${resumeFrom.epoch} of ${hp.epochs} (${found.from})` : 'no checkpoint, starting at epoch 1');
  }
  log(`training ${inputs}-${hp.hiddenUnits}-${CLASSES} MLP: epochs=${hp.epochs} batchSize=${hp.batchSize} learningRate=${hp.learningRate} (${hp.learningRateSchedule}) threads=${hp.threads} seed=${hp.seed}`);
  const progress = progressWriter(env.MODEL_OUTPUT_URI);
  await progress.write(resumeFrom?.history ?? [], hp.epochs);

  const trained = await trainMlp(
    { images: images.data, labels: labels.data, count, inputs, classes: CLASSES },
    hp,
    {
      ...(resumeFrom ? { resumeFrom } : {}),
      onEpoch: async (r: EpochReport, state: TrainingState) => {
        log(
          `epoch ${r.epoch}/${r.epochs} loss=${r.loss.toFixed(4)} acc=${r.accuracy.toFixed(4)} ` +
            `val_loss=${r.valLoss.toFixed(4)} val_acc=${r.valAccuracy.toFixed(4)} seconds=${r.seconds.toFixed(1)}`,
        );
        // The checkpoint first: progress that says "epoch N done" then always has epoch N saved behind it.
        if (env.CHECKPOINT_URI !== undefined) {
          try {
            const saved = await saveCheckpoint(env.CHECKPOINT_URI, state, shape, fingerprint);
            log(`checkpoint: epoch ${r.epoch} of ${r.epochs} saved to ${saved}`);
          } catch (err) {
            // Hours of training are not thrown away for a checkpoint: a retry would start further back.
            log(`warning: checkpoint of epoch ${r.epoch} not saved: ${(err as Error).message}`);
          }
        }
        await progress.write(state.history, hp.epochs);
      },
    },
  );
  const last = trained.history.at(-1)!;

  const { saveModelToS3, toTfjsModel } = await modelIo;
  const written = await saveModelToS3(toTfjsModel(trained.shape, trained.params), env.MODEL_OUTPUT_URI);
  const metrics = {
    accuracy: round(last.valAccuracy),
    loss: round(last.valLoss),
    trainAccuracy: round(last.accuracy),
    trainLoss: round(last.loss),
    // All epochs the model was trained for, those of the pods resumed from included.
    epochs: trained.history.length,
    trainSamples: trained.trainSamples,
    validationSamples: trained.validationSamples,
    trainSeconds: round(trained.history.reduce((sum, r) => sum + r.seconds, 0), 2),
    ...(resumeFrom ? { resumedFromEpoch: resumeFrom.epoch } : {}),
    framework: FRAMEWORK,
  };
  const out = parseS3Prefix(env.MODEL_OUTPUT_URI, 'MODEL_OUTPUT_URI');
  // Last: metrics.json says the model beside it is complete.
  await putBytes(out.bucket, `${out.prefix}metrics.json`, JSON.stringify(metrics, null, 2), 'application/json');
  log(`wrote ${[...written, `s3://${out.bucket}/${out.prefix}metrics.json`].join(', ')}`);
  log(`done: val_acc=${metrics.accuracy} in ${seconds(started)} s (training ${metrics.trainSeconds} s)`);
}

/** What a checkpoint must have been made with to be resumed from: everything that changes the training. */
function runFingerprint(hp: Hyperparameters, samples: number, dataUri: string): RunFingerprint {
  return {
    dataUri,
    samples,
    epochs: hp.epochs,
    batchSize: hp.batchSize,
    learningRate: hp.learningRate,
    learningRateSchedule: hp.learningRateSchedule,
    finalLearningRateFraction: hp.finalLearningRateFraction,
    hiddenUnits: hp.hiddenUnits,
    seed: hp.seed,
    validationSplit: hp.validationSplit,
  };
}

/**
 * progress.json next to the model (the optional part of the container contract), overwritten each epoch.
 * A failed write is a warning: progress is for watching a run, never a reason to fail it.
 */
function progressWriter(modelOutputUri: string): { write(history: EpochReport[], epochs: number): Promise<void> } {
  const out = parseS3Prefix(modelOutputUri, 'MODEL_OUTPUT_URI');
  return {
    async write(history, epochs) {
      const last = history.at(-1);
      // ETA: the mean epoch so far times the epochs left.
      const seconds = history.map((r) => r.seconds);
      const perEpoch = seconds.length ? seconds.reduce((a, b) => a + b, 0) / seconds.length : undefined;
      const progress: TrainingProgress = {
        fraction: round(history.length / epochs),
        epoch: history.length,
        epochs,
        ...(last ? { metrics: finite({ loss: round(last.loss), accuracy: round(last.accuracy), val_accuracy: round(last.valAccuracy) }) } : {}),
        ...(perEpoch !== undefined ? { etaSeconds: round(perEpoch * (epochs - history.length), 1) } : {}),
        updatedAt: new Date().toISOString(),
      };
      try {
        await putBytes(out.bucket, `${out.prefix}progress.json`, JSON.stringify(progress), 'application/json');
      } catch (err) {
        log(`warning: progress.json not written: ${(err as Error).message}`);
      }
    },
  };
}

/** JSON has no NaN (no validation samples): leave such metrics out. */
function finite(metrics: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(metrics).filter(([, v]) => Number.isFinite(v)));
}

function log(line: string): void {
  process.stdout.write(`${line}\n`);
}

function seconds(since: number): string {
  return ((performance.now() - since) / 1000).toFixed(1);
}

function round(value: number, digits = 4): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

if (require.main === module) {
  main().then(
    () => {
      process.exitCode = 0;
    },
    (err: unknown) => {
      const e = err as Error;
      process.stderr.write(`train: ${e instanceof InvalidEnvironmentError ? '' : 'failed: '}${e.message}\n`);
      process.exitCode = e instanceof InvalidEnvironmentError ? 2 : 1;
    },
  );
}
