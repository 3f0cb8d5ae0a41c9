/**
 * AWS clients, created once per container. In local mode the standard AWS_ENDPOINT_URL_<SERVICE>
 * variables point them at loopback servers; S3 then needs path-style addressing and no streamed
 * checksums (s3rver stores chunk framing otherwise).
 */
import { S3Client, GetObjectCommand, PutObjectCommand, NoSuchKey } from '@aws-sdk/client-s3';
import { SNSClient } from '@aws-sdk/client-sns';
import { SFNClient } from '@aws-sdk/client-sfn';
import { InvalidInputError, S3UnavailableError, isTransient } from './errors';

let s3: S3Client | undefined;
let sns: SNSClient | undefined;
let sfn: SFNClient | undefined;

export function s3Client(): S3Client {
  if (!s3) {
    const local = Boolean(process.env.AWS_ENDPOINT_URL_S3);
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
export const S3_URI = /^s3:\/\/([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])\/(.*)$/;

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

/** Reads an object as bytes; `undefined` when it does not exist. */
export async function getObjectBytes(bucket: string, key: string): Promise<Uint8Array | undefined> {
  try {
    const out = await s3Client().send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    return out.Body ? await out.Body.transformToByteArray() : new Uint8Array();
  } catch (err) {
    if (err instanceof NoSuchKey || (err as { name?: string }).name === 'NoSuchKey') return undefined;
    wrap(err, `GetObject s3://${bucket}/${key}`);
  }
}

export async function getJson<T>(bucket: string, key: string): Promise<T | undefined> {
  const bytes = await getObjectBytes(bucket, key);
  return bytes ? (JSON.parse(Buffer.from(bytes).toString('utf8')) as T) : undefined;
}

export async function putJson(bucket: string, key: string, value: unknown): Promise<void> {
  try {
    await s3Client().send(
      new PutObjectCommand({
        Bucket: bucket,
        Key: key,
        Body: JSON.stringify(value, null, 2),
        ContentType: 'application/json',
      }),
    );
  } catch (err) {
    wrap(err, `PutObject s3://${bucket}/${key}`);
  }
}
