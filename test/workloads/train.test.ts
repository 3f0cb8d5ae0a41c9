/**
 * examples/fashion-mnist/train.ts run as the local run starts its pod (its bundle, local/images.ts, in a
 * Node 22 child process) against a real local S3: the container contract's outputs, exit codes and messages.
 */
import { stageFashionMnist } from '../../examples/fashion-mnist/stage-data';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { getBytes, getBytesCached, putBytes, s3 } from '../../examples/fashion-mnist/s3';
import { parseProgress } from '../../functions/shared/progress';
import { BUCKET, bundleScripts, removeScriptBundles, runScript, startTestS3, type TestS3 } from './helpers';

const TRAIN = 'examples/fashion-mnist/train.ts';

describe('train.ts', () => {
  let local: TestS3;
  let dataUri: string;

  beforeAll(async () => {
    local = await startTestS3();
    await bundleScripts();
    dataUri = (await stageFashionMnist({ bucket: BUCKET })).uri;
  });

  afterAll(async () => {
    s3().destroy();
    await local.stop();
    removeScriptBundles();
  });

  const env = (extra: Record<string, string>): Record<string, string> => ({ ...local.env, ...extra });
  const readJson = async (key: string): Promise<Record<string, unknown>> =>
    JSON.parse(Buffer.from(await getBytes(BUCKET, key)).toString('utf8')) as Record<string, unknown>;

  it('getBytesCached (DATA_CACHE_DIR): an object is kept by its ETag, read from the cache while unchanged, downloaded again once changed', async () => {
    // Arrange
    const dir = mkdtempSync(join(tmpdir(), 'mlpipe-data-cache-'));
    const warnings: string[] = [];
    const get = (cacheDir = dir) => getBytesCached(BUCKET, 'cache-test/object', cacheDir, (m) => warnings.push(m)).then((b) => Buffer.from(b).toString('utf8'));
    try {
      await putBytes(BUCKET, 'cache-test/object', 'first', 'application/octet-stream');

      // Act + Assert: the first read downloads and keeps one entry
      expect(await get()).toBe('first');
      const entries = readdirSync(dir);
      expect(entries).toHaveLength(1);
      // A second read comes from the entry (changed here behind the cache's back, so only a cache hit returns it).
      writeFileSync(join(dir, entries[0]!), 'from the cache');
      expect(await get()).toBe('from the cache');
      // A changed object has a new ETag: downloaded again, a second entry.
      await putBytes(BUCKET, 'cache-test/object', 'second', 'application/octet-stream');
      expect(await get()).toBe('second');
      expect(readdirSync(dir)).toHaveLength(2);
      // A cache that cannot be written (its directory is a file) is a warning, not a failure.
      const notADir = join(dir, entries[0]!);
      expect(await get(notADir)).toBe('second');
      expect(warnings.join('\n')).toMatch(/could not keep s3:\/\/.*cache-test\/object/);
      // A missing object is still an error naming it.
      await expect(getBytesCached(BUCKET, 'cache-test/missing', dir, () => undefined)).rejects.toThrow(/cache-test\/missing does not exist/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('trains on a subset with two threads, writes model.json, weights.bin, metrics.json, progress.json and checkpoints, exits 0', async () => {
    // Act (with DATA_CACHE_DIR, as the local run starts it)
    const started = Date.now();
    const cacheDir = mkdtempSync(join(tmpdir(), 'mlpipe-train-cache-'));
    const run = await runScript(
      TRAIN,
      env({
        DATA_URI: dataUri,
        MODEL_OUTPUT_URI: `s3://${BUCKET}/models/fm/v1/`,
        CHECKPOINT_URI: `s3://${BUCKET}/checkpoints/fm/v1/`,
        HYPERPARAMETERS: JSON.stringify({ epochs: 2, maxTrainSamples: 3000, hiddenUnits: 32, threads: 2, seed: 7 }),
        DATA_CACHE_DIR: cacheDir,
      }),
    );

    // Assess
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    // The trainer kept both data objects (images, labels) in its cache.
    expect(readdirSync(cacheDir)).toHaveLength(2);
    rmSync(cacheDir, { recursive: true, force: true });
    expect(run.stdout).toMatch(/^epoch 1\/2 loss=\d+\.\d+ acc=0\.\d+ val_loss=\d+\.\d+ val_acc=0\.\d+ seconds=\d/m);
    expect(run.stdout).toMatch(/^epoch 2\/2 /m);
    expect(run.stdout).toMatch(/threads=2/);
    expect(run.stdout).toContain('no checkpoint, starting at epoch 1');
    expect(run.stdout).toContain(`checkpoint: epoch 1 of 2 saved to s3://${BUCKET}/checkpoints/fm/v1/checkpoint-b.bin`);
    expect(run.stdout).toContain(`checkpoint: epoch 2 of 2 saved to s3://${BUCKET}/checkpoints/fm/v1/checkpoint-a.bin`);

    // The last progress report, in the contract's shape (what CheckTraining, npm start and status read).
    const { progress, problem } = parseProgress(await readJson('models/fm/v1/progress.json'));
    expect(problem).toBeUndefined();
    expect(progress).toMatchObject({ fraction: 1, epoch: 2, epochs: 2, etaSeconds: 0 });
    expect(Object.keys(progress!.metrics!)).toEqual(['loss', 'accuracy', 'val_accuracy']);
    expect(Date.parse(progress!.updatedAt)).toBeGreaterThanOrEqual(started);

    const metrics = await readJson('models/fm/v1/metrics.json');
    expect(metrics).toMatchObject({ epochs: 2, trainSamples: 2700, validationSamples: 300, framework: 'js-float32-mlp' });
    // 2,700 images and two epochs are far from the full model, but far above chance (0.1) too.
    expect(metrics.accuracy).toBeGreaterThan(0.6);
    expect(metrics.accuracy).toBeLessThanOrEqual(1);
    expect(metrics.loss).toBeGreaterThan(0);
    expect(metrics.trainSeconds).toBeGreaterThan(0);

    const model = await readJson('models/fm/v1/model.json');
    expect(model.format).toBe('layers-model');
    const manifest = model.weightsManifest as { paths: string[]; weights: { name: string; shape: number[] }[] }[];
    expect(manifest[0]!.paths).toEqual(['./weights.bin']);
    expect(manifest[0]!.weights.map((w) => w.shape)).toEqual([[784, 32], [32], [32, 10], [10]]);
    const weights = await getBytes(BUCKET, 'models/fm/v1/weights.bin');
    expect(weights.byteLength).toBe((784 * 32 + 32 + 32 * 10 + 10) * 4);
  });

  it.each([
    ['both URIs missing', {}, /DATA_URI: is not set[\s\S]*MODEL_OUTPUT_URI: is not set/],
    ['a URI that is not s3://', { DATA_URI: 'https://example.com/data', MODEL_OUTPUT_URI: 's3://b-1/m/' }, /DATA_URI: must be an S3 URI/],
    ['HYPERPARAMETERS not JSON', { HYPERPARAMETERS: '{epochs: 2}' }, /HYPERPARAMETERS: is not valid JSON/],
    ['a hyperparameter out of range', { HYPERPARAMETERS: '{"epochs": 0}' }, /HYPERPARAMETERS field "epochs": Too small/],
    ['an unknown hyperparameter (a typo)', { HYPERPARAMETERS: '{"epoch": 3}' }, /HYPERPARAMETERS: Unrecognized key: "epoch"/],
  ])('exits 2 naming the variable when the environment is invalid: %s', async (_, extra, message) => {
    const base: Record<string, string> =
      'DATA_URI' in extra || !('HYPERPARAMETERS' in extra) ? {} : { DATA_URI: dataUri, MODEL_OUTPUT_URI: `s3://${BUCKET}/models/x/` };
    const run = await runScript(TRAIN, env({ ...base, ...(extra as Record<string, string>) }));
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/^train: Invalid environment:/);
    expect(run.stderr).toMatch(message);
  });

  it('exits 1 with the message when the failWith test hook is set', async () => {
    const run = await runScript(
      TRAIN,
      env({ DATA_URI: dataUri, MODEL_OUTPUT_URI: `s3://${BUCKET}/models/fail/`, HYPERPARAMETERS: '{"failWith":"simulated out of memory"}' }),
    );
    expect(run.code).toBe(1);
    expect(run.stderr).toBe('train: failed: simulated out of memory\n');
  });

  it('exits 1 naming the object when the training data is not there', async () => {
    const run = await runScript(
      TRAIN,
      env({ DATA_URI: `s3://${BUCKET}/datasets/none/`, MODEL_OUTPUT_URI: `s3://${BUCKET}/models/none/` }),
    );
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/s3:\/\/mlpipe-workloads-test\/datasets\/none\/train-(images|labels)-idx[13]-ubyte does not exist/);
  });
});
