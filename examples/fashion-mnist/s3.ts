/**
 * S3 access for the example training and serving images. They are their own images, so they do not
 * import the Lambda code: this is the small subset they need. Credentials come from the standard AWS SDK
 * chain (Pod Identity on EKS). In local mode AWS_ENDPOINT_URL_S3 points at s3rver, which needs path-style
 * addressing and no streamed checksums (it would store the chunk framing otherwise).
 */
import {
  S3Client,
  GetObjectCommand,
  PutObjectCommand,
  HeadObjectCommand,
  NoSuchKey,
  NotFound,
} from '@aws-sdk/client-s3';

import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

let client: S3Client | undefined;
let clientEndpoint: string | undefined;

export function s3(): S3Client {
  // Keyed on the endpoint: a process that stages data for several local S3 servers in turn (tests, the
  // local runner) must not keep talking to the first one.
  const endpoint = process.env.AWS_ENDPOINT_URL_S3 || undefined;
  if (!client || clientEndpoint !== endpoint) {
    client?.destroy();
    client = new S3Client(endpoint ? { forcePathStyle: true, requestChecksumCalculation: 'WHEN_REQUIRED' } : {});
    clientEndpoint = endpoint;
  }
  return client;
}

export interface S3Prefix {
  bucket: string;
  /** Key prefix, '' or ending in '/'. */
  prefix: string;
}

/** `s3://bucket` or `s3://bucket/key...`: group 1 is the bucket, group 2 the key (the images' env checks use it too). */
export const S3_URI = /^s3:\/\/([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(?:\/(.*))?$/;

/** Parses `s3://bucket/prefix/` (a missing trailing slash is added); the message names `variable`. */
export function parseS3Prefix(uri: string, variable: string): S3Prefix {
  const match = S3_URI.exec(uri);
  if (!match) throw new Error(`${variable} must be an S3 URI like s3://bucket/prefix/, got "${uri}".`);
  const key = match[2] ?? '';
  return { bucket: match[1]!, prefix: key === '' || key.endsWith('/') ? key : `${key}/` };
}

export function s3Uri(bucket: string, key: string): string {
  return `s3://${bucket}/${key}`;
}

/** Reads an object; throws a message naming the object when it is missing. */
export async function getBytes(bucket: string, key: string): Promise<Uint8Array> {
  const bytes = await getBytesIfExists(bucket, key);
  if (!bytes) throw new Error(`s3://${bucket}/${key} does not exist.`);
  return bytes;
}

/** Reads an object, or `undefined` when it does not exist (e.g. no checkpoint yet). */
export async function getBytesIfExists(bucket: string, key: string): Promise<Uint8Array | undefined> {
  return (await readObject(bucket, key))?.bytes;
}

/** An object's bytes and the ETag the GET answered, or `undefined` when it does not exist. */
async function readObject(bucket: string, key: string): Promise<{ bytes: Uint8Array; etag: string | undefined } | undefined> {
  try {
    const out = await s3().send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    return { bytes: out.Body ? await out.Body.transformToByteArray() : new Uint8Array(), etag: out.ETag };
  } catch (err) {
    if (err instanceof NoSuchKey || (err as { name?: string }).name === 'NoSuchKey') return undefined;
    throw new Error(`Reading s3://${bucket}/${key} failed: ${(err as Error).message}`);
  }
}

/**
 * Reads an object through a local cache directory (the optional DATA_CACHE_DIR of the training contract):
 * a node-local cache of the training set, so a pod that runs where an earlier one ran does not download it
 * again. Entries are keyed by bucket, key and ETag: a HEAD (no body) tells whether the cached copy is the
 * object as it is now; a changed object has a new ETag and is downloaded again, stored under the ETag the
 * GET itself answered. A cache that cannot be read or written is skipped (a warning through `warn`), never
 * an error: the object is then read as without a cache.
 */
export async function getBytesCached(bucket: string, key: string, cacheDir: string, warn: (message: string) => void): Promise<Uint8Array> {
  const file = (etag: string) => join(cacheDir, createHash('sha256').update(`${bucket}/${key}\n${etag}`).digest('hex'));
  let etag: string | undefined;
  try {
    etag = (await s3().send(new HeadObjectCommand({ Bucket: bucket, Key: key }))).ETag;
  } catch (err) {
    if (!(err instanceof NotFound || (err as { name?: string }).name === 'NotFound')) warn(`data cache: HEAD s3://${bucket}/${key} failed (${(err as Error).message}); reading it without the cache`);
  }
  const cached = etag === undefined ? undefined : file(etag);
  if (cached) {
    try {
      return new Uint8Array(readFileSync(cached));
    } catch (err) {
      // Not there yet (the first read of this object and version) is the usual miss; anything else is said.
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') warn(`data cache: could not read ${cached} (${(err as Error).message}); downloading s3://${bucket}/${key}`);
    }
  }
  const object = await readObject(bucket, key);
  if (!object) throw new Error(`s3://${bucket}/${key} does not exist.`);
  if (object.etag) {
    try {
      mkdirSync(cacheDir, { recursive: true });
      // Written aside and renamed: a pod killed mid-write, or two pods writing at once, never leave a torn entry.
      const tmp = `${file(object.etag)}.${process.pid}.tmp`;
      writeFileSync(tmp, object.bytes);
      renameSync(tmp, file(object.etag));
    } catch (err) {
      warn(`data cache: could not keep s3://${bucket}/${key} in ${cacheDir} (${(err as Error).message})`);
    }
  }
  return object.bytes;
}

export async function putBytes(bucket: string, key: string, body: Uint8Array | string, contentType: string): Promise<void> {
  try {
    await s3().send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body, ContentType: contentType }));
  } catch (err) {
    throw new Error(`Writing s3://${bucket}/${key} failed: ${(err as Error).message}`);
  }
}

/** Size of an object in bytes, or undefined when it does not exist. */
export async function objectSize(bucket: string, key: string): Promise<number | undefined> {
  try {
    const out = await s3().send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
    return out.ContentLength;
  } catch (err) {
    const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
    if (err instanceof NotFound || e.name === 'NotFound' || e.$metadata?.httpStatusCode === 404) return undefined;
    throw new Error(`HeadObject s3://${bucket}/${key} failed: ${(err as Error).message}`);
  }
}
