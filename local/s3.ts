/**
 * Local S3 for the local mode and the tests: s3rver on 127.0.0.1, files under `dir`.
 * Clients must use forcePathStyle and requestChecksumCalculation WHEN_REQUIRED (functions/shared/clients.ts
 * does when AWS_ENDPOINT_URL_S3 is set).
 *
 * s3rver 3.7.1 ignores conditional writes (a PUT with `If-Match` or `If-None-Match: *` simply overwrites)
 * and replaces an object in place, so a GET racing a PUT can read half a file. The registry relies on both
 * (production.json is updated read-modify-write with If-Match), so its store is swapped for one that
 * answers as S3 does and replaces objects atomically; everything else is s3rver's.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { createHash, randomUUID } from 'node:crypto';
import { createWriteStream, mkdirSync } from 'node:fs';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { dirname } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

// s3rver ships CommonJS without types; these are the parts of it used here (s3rver 3.7.1, pinned).
/* eslint-disable @typescript-eslint/no-require-imports */
const S3rver = require('s3rver') as new (opts: Record<string, unknown>) => S3rverApp;
const FilesystemStore = require('s3rver/lib/stores/filesystem') as new (directory: string) => FilesystemStoreApi;
const S3Error = require('s3rver/lib/models/error') as new (code: string, message: string, detail?: Record<string, string>) => S3ErrorApi;
/* eslint-enable @typescript-eslint/no-require-imports */

interface S3rverApp {
  run(): Promise<AddressInfo>;
  close(): Promise<void>;
  store: FilesystemStoreApi;
  context: { store: FilesystemStoreApi };
  /** Koa's middleware stack, composed when the server starts listening. */
  middleware: KoaMiddleware[];
}
type KoaMiddleware = (ctx: { method: string; headers: Record<string, string | string[] | undefined> }, next: () => Promise<void>) => Promise<void>;

interface StoredObject {
  bucket: string;
  key: string;
  content: Readable | Buffer;
  metadata: Record<string, string>;
}
interface FilesystemStoreApi {
  getResourcePath(bucket: string, key: string, resource: string): string;
  getMetadata(bucket: string, key: string): Promise<{ etag: string }>;
  putMetadata(bucket: string, key: string, metadata: Record<string, string>, md5?: string): Promise<void>;
  putObject(object: StoredObject): Promise<{ size: number; md5: string }>;
  getObject(bucket: string, key: string, options?: unknown): Promise<unknown>;
  copyObject(srcBucket: string, srcKey: string, destBucket: string, destKey: string, replacementMetadata: unknown): Promise<unknown>;
  deleteObject(bucket: string, key: string): Promise<void>;
}
interface S3ErrorApi extends Error {
  status: number;
  expose: boolean;
}

export interface LocalS3 {
  /** e.g. http://127.0.0.1:45123 */
  endpoint: string;
  stop(): Promise<void>;
}

export async function startLocalS3(opts: { dir: string; port?: number; buckets: string[] }): Promise<LocalS3> {
  mkdirSync(opts.dir, { recursive: true });
  const server = new S3rver({
    address: '127.0.0.1',
    port: opts.port ?? 0,
    directory: opts.dir,
    silent: true,
    configureBuckets: opts.buckets.map((name) => ({ name })),
  });
  server.store = server.context.store = new AtomicConditionalStore(opts.dir);
  // First in the stack, so the request's preconditions are known wherever the store is called from.
  server.middleware.unshift(rememberWriteConditions);
  const address = await server.run();
  let stopped = false;
  return {
    endpoint: `http://127.0.0.1:${address.port}`,
    async stop() {
      if (stopped) return;
      stopped = true;
      await server.close();
    },
  };
}

/** Static credentials the local endpoints accept (s3rver's fixed pair); never real ones. */
export const LOCAL_AWS_ENV = {
  AWS_REGION: 'us-east-1',
  AWS_ACCESS_KEY_ID: 'S3RVER',
  AWS_SECRET_ACCESS_KEY: 'S3RVER',
} as const;

// ---------------------------------------------------------------------------------------------------
// Conditional writes, as S3 answers them (PutObject, CompleteMultipartUpload, CopyObject):
// - `If-None-Match: *` and the key exists → 412 PreconditionFailed (Condition: If-None-Match);
//   any other If-None-Match value → 501 NotImplemented (S3 only implements `*` on writes);
// - `If-Match: <etag>` and the ETag differs → 412 PreconditionFailed (Condition: If-Match);
//   no object under the key → 404 NoSuchKey;
// - the precondition held when the request arrived but a write to the key landed while its body was
//   uploading → 409 ConditionalRequestConflict (S3: "a conflicting operation occurred during the upload").
// Writes and reads of one key are serialized, and a write replaces the object by rename, so a reader
// gets the whole old object or the whole new one, as from S3.

interface WriteConditions {
  ifMatch?: string;
  ifNoneMatch?: string;
}

const writeConditions = new AsyncLocalStorage<WriteConditions>();

const rememberWriteConditions: KoaMiddleware = async (ctx, next) => {
  const ifMatch = single(ctx.headers['if-match']);
  const ifNoneMatch = single(ctx.headers['if-none-match']);
  if ((ctx.method !== 'PUT' && ctx.method !== 'POST') || (ifMatch === undefined && ifNoneMatch === undefined)) return next();
  if (ifNoneMatch !== undefined && ifNoneMatch !== '*') {
    throw new S3Error('NotImplemented', 'A header you provided implies functionality that is not implemented', { Header: 'If-None-Match' });
  }
  return writeConditions.run({ ...(ifMatch !== undefined ? { ifMatch } : {}), ...(ifNoneMatch !== undefined ? { ifNoneMatch } : {}) }, next);
};

function single(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value.join(', ') : value;
}

/** ETags compare without their quotes (SDKs send them quoted as S3 returns them; curl users often don't). */
const bareEtag = (etag: string) => etag.trim().replace(/^W\//, '').replace(/^"(.*)"$/, '$1');

function preconditionFailed(condition: 'If-Match' | 'If-None-Match'): S3ErrorApi {
  return new S3Error('PreconditionFailed', 'At least one of the pre-conditions you specified did not hold', { Condition: condition });
}

function conditionalConflict(): S3ErrorApi {
  const err = new S3Error('ConditionalRequestConflict', 'A conflicting conditional operation is currently in progress against this resource. Please try again.');
  err.status = 409; // s3rver's status table predates conditional writes
  err.expose = true;
  return err;
}

/** One queue per key: a write's check-and-replace and a read's open happen one at a time. */
class KeyLocks {
  private readonly tails = new Map<string, Promise<void>>();

  async run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.tails.get(key) ?? Promise.resolve();
    let release!: () => void;
    const done = new Promise<void>((resolve) => (release = resolve));
    const tail = previous.then(() => done);
    this.tails.set(key, tail);
    await previous;
    try {
      return await fn();
    } finally {
      release();
      if (this.tails.get(key) === tail) this.tails.delete(key);
    }
  }
}

class AtomicConditionalStore extends FilesystemStore {
  private readonly locks = new KeyLocks();
  /** Completed writes per key, to tell a write that landed during an upload (409) from an old one (412). */
  private readonly generations = new Map<string, number>();

  /** The current ETag, or null when there is no object. */
  private async currentEtag(bucket: string, key: string): Promise<string | null> {
    try {
      return (await this.getMetadata(bucket, key)).etag;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw err;
    }
  }

  /** Throws S3's answer when `conditions` do not hold for the object as it is now. */
  private async check(bucket: string, key: string, conditions: WriteConditions | undefined): Promise<void> {
    if (!conditions) return;
    const etag = await this.currentEtag(bucket, key);
    if (conditions.ifNoneMatch !== undefined && etag !== null) throw preconditionFailed('If-None-Match');
    if (conditions.ifMatch !== undefined) {
      if (etag === null) throw new S3Error('NoSuchKey', 'The specified key does not exist.', { Key: key });
      if (conditions.ifMatch.trim() !== '*' && bareEtag(conditions.ifMatch) !== bareEtag(etag)) throw preconditionFailed('If-Match');
    }
  }

  private async heldAtStart(bucket: string, key: string, conditions: WriteConditions | undefined): Promise<boolean> {
    try {
      await this.check(bucket, key, conditions);
      return true;
    } catch {
      return false;
    }
  }

  private bump(id: string): void {
    this.generations.set(id, (this.generations.get(id) ?? 0) + 1);
  }

  override async putObject(object: StoredObject): Promise<{ size: number; md5: string }> {
    const conditions = writeConditions.getStore();
    const id = `${object.bucket}/${object.key}`;
    const generation = this.generations.get(id) ?? 0;
    const held = await this.heldAtStart(object.bucket, object.key, conditions);
    const objectPath = this.getResourcePath(object.bucket, object.key, 'object');
    await mkdir(dirname(objectPath), { recursive: true });
    // Not named `*._S3rver_object`, so listings never see a half-uploaded object.
    const staged = `${objectPath}.${randomUUID()}.upload`;
    try {
      const md5 = createHash('md5');
      let size = 0;
      if (Buffer.isBuffer(object.content)) {
        md5.update(object.content);
        size = object.content.length;
        await writeFile(staged, object.content);
      } else {
        await pipeline(
          object.content,
          async function* (chunks: AsyncIterable<Buffer>) {
            for await (const chunk of chunks) {
              md5.update(chunk);
              size += chunk.length;
              yield chunk;
            }
          },
          createWriteStream(staged),
        );
      }
      const digest = md5.digest('hex');
      return await this.locks.run(id, async () => {
        try {
          await this.check(object.bucket, object.key, conditions);
        } catch (err) {
          throw held && (this.generations.get(id) ?? 0) !== generation ? conditionalConflict() : err;
        }
        await rename(staged, objectPath);
        await this.putMetadata(object.bucket, object.key, object.metadata, digest);
        this.bump(id);
        return { size, md5: digest };
      });
    } finally {
      await rm(staged, { force: true });
    }
  }

  override async getObject(bucket: string, key: string, options?: unknown): Promise<unknown> {
    // s3rver's getObject resolves once the file is open: a later rename leaves this reader on the old file.
    return this.locks.run(`${bucket}/${key}`, () => super.getObject(bucket, key, options));
  }

  override async copyObject(srcBucket: string, srcKey: string, destBucket: string, destKey: string, replacementMetadata: unknown): Promise<unknown> {
    const id = `${destBucket}/${destKey}`;
    return this.locks.run(id, async () => {
      await this.check(destBucket, destKey, writeConditions.getStore());
      const metadata = await super.copyObject(srcBucket, srcKey, destBucket, destKey, replacementMetadata);
      this.bump(id);
      return metadata;
    });
  }

  override async deleteObject(bucket: string, key: string): Promise<void> {
    const id = `${bucket}/${key}`;
    return this.locks.run(id, async () => {
      await super.deleteObject(bucket, key);
      this.bump(id);
    });
  }
}
