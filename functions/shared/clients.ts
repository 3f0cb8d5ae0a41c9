/**
 * AWS clients, created once per container. In local mode the standard AWS_ENDPOINT_URL_<SERVICE>
 * variables point them at loopback servers; S3 then needs path-style addressing and no streamed
 * checksums (s3rver stores chunk framing otherwise).
 */
import { S3Client, GetObjectCommand, PutObjectCommand, NoSuchKey, type GetObjectCommandOutput } from '@aws-sdk/client-s3';
import { SNSClient } from '@aws-sdk/client-sns';
import { SFNClient } from '@aws-sdk/client-sfn';
import { InvalidInputError, S3UnavailableError, isTransient } from './errors';
import { AWS_ENDPOINT_URL_S3, S3_URI, currentSetting } from './settings';

let s3: S3Client | undefined;
let sns: SNSClient | undefined;
let sfn: SFNClient | undefined;

export function s3Client(): S3Client {
  if (!s3) {
    // The SDK reads AWS_ENDPOINT_URL_S3 itself; we only need to know that it points at s3rver.
    const local = currentSetting(AWS_ENDPOINT_URL_S3) !== undefined;
    s3 = new S3Client(local ? { forcePathStyle: true, requestChecksumCalculation: 'WHEN_REQUIRED' } : {});
  }
  return s3;
}

export function snsClient(): SNSClient {
  sns ??= new SNSClient({});
  return sns;
}

export function sfnClient(): SFNClient {
  sfn ??= new SFNClient({});
  return sfn;
}

/** Forget cached clients (tests change endpoints between suites). */
export function resetClients(): void {
  s3 = undefined;
  sns = undefined;
  sfn = undefined;
}

export interface S3Location {
  bucket: string;
  key: string;
}

/** `s3://<bucket>/<key>`: a valid bucket name, then a key that may be empty (a prefix). */
export { S3_URI };

/** Parses `s3://bucket/key`; the message names `field` when it is not one. */
export function parseS3Uri(uri: string, field = 'uri'): S3Location {
  const match = S3_URI.exec(uri);
  if (!match) {
    throw new InvalidInputError(`${field} must be an S3 URI like s3://bucket/prefix/, got "${uri}".`);
  }
  return { bucket: match[1]!, key: match[2]! };
}

function wrap(err: unknown, what: string): never {
  if (isTransient(err)) throw new S3UnavailableError(`S3 ${what} failed: ${(err as Error).message}`);
  throw err;
}

/** GetObject; `undefined` when the object does not exist. */
async function getObject(bucket: string, key: string): Promise<GetObjectCommandOutput | undefined> {
  try {
    return await s3Client().send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  } catch (err) {
    if (err instanceof NoSuchKey || (err as { name?: string }).name === 'NoSuchKey') return undefined;
    wrap(err, `GetObject s3://${bucket}/${key}`);
  }
}

/** Reads an object as bytes; `undefined` when it does not exist. */
export async function getObjectBytes(bucket: string, key: string): Promise<Uint8Array | undefined> {
  const out = await getObject(bucket, key);
  if (!out) return undefined;
  return out.Body ? await out.Body.transformToByteArray() : new Uint8Array();
}

export async function getJson<T>(bucket: string, key: string): Promise<T | undefined> {
  const bytes = await getObjectBytes(bucket, key);
  return bytes ? (JSON.parse(Buffer.from(bytes).toString('utf8')) as T) : undefined;
}

function putJsonCommand(bucket: string, key: string, value: unknown, condition?: WriteCondition): PutObjectCommand {
  const precondition = condition === undefined ? {} : 'ifMatch' in condition ? { IfMatch: condition.ifMatch } : { IfNoneMatch: condition.ifNoneMatch };
  return new PutObjectCommand({ Bucket: bucket, Key: key, Body: JSON.stringify(value, null, 2), ContentType: 'application/json', ...precondition });
}

export async function putJson(bucket: string, key: string, value: unknown): Promise<void> {
  try {
    await s3Client().send(putJsonCommand(bucket, key, value));
  } catch (err) {
    wrap(err, `PutObject s3://${bucket}/${key}`);
  }
}

/** A JSON object as read, with the ETag a conditional write must name to replace exactly this version. */
export interface VersionedJson<T> {
  value: T;
  etag: string;
}

/** Reads JSON with its ETag; `undefined` when it does not exist. */
export async function getJsonVersioned<T>(bucket: string, key: string): Promise<VersionedJson<T> | undefined> {
  const out = await getObject(bucket, key);
  if (!out) return undefined;
  const body = out.Body ? await out.Body.transformToString('utf8') : '';
  if (!out.ETag) throw new S3UnavailableError(`S3 GetObject s3://${bucket}/${key} answered without an ETag.`);
  return { value: JSON.parse(body) as T, etag: out.ETag };
}

/** `ifMatch`: replace only the version with this ETag; `ifNoneMatch: '*'`: create only if absent. */
export type WriteCondition = { ifMatch: string } | { ifNoneMatch: '*' };

/**
 * Writes JSON only if `condition` holds (S3 conditional writes). Returns false when S3 refused because the
 * object changed since it was read: 412 PreconditionFailed, 409 ConditionalRequestConflict (a conflicting
 * write landed during this one), or 404 NoSuchKey (If-Match on an object deleted meanwhile).
 */
export async function putJsonIf(bucket: string, key: string, value: unknown, condition: WriteCondition): Promise<boolean> {
  try {
    await s3Client().send(putJsonCommand(bucket, key, value, condition));
    return true;
  } catch (err) {
    const status = (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
    if (status === 412 || status === 409 || (status === 404 && 'ifMatch' in condition)) return false;
    wrap(err, `PutObject s3://${bucket}/${key}`);
  }
}
