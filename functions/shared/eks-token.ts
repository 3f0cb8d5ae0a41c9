/**
 * EKS bearer tokens without the aws CLI or aws-iam-authenticator (DESIGN decision 4): a presigned STS
 * GetCallerIdentity URL, signed over the header `x-k8s-aws-id: <cluster>`, base64url-encoded behind
 * `k8s-aws-v1.`. The EKS authenticator replays the URL against STS to learn who is calling, so the URL
 * must be exactly what STS would verify: query sorted, X-Amz-Signature last, 60 s expiry.
 *
 * The host is signed too, so it must be the STS endpoint of the region's own partition
 * (`sts.cn-north-1.amazonaws.com.cn`, `sts.us-iso-east-1.c2s.ic.gov`, …): a URL signed for another
 * partition's host cannot verify there. The DNS suffix comes from the AWS SDK's partitions data (the
 * same table STS's endpoint rules use: `sts.{Region}.{PartitionResult#dnsSuffix}`), already in every
 * bundle that talks to EKS through @aws-sdk/client-eks, so a new partition arrives with an SDK update.
 */
import { Sha256 } from '@aws-crypto/sha256-js';
import { partition } from '@aws-sdk/core/client';
import { HttpRequest } from '@smithy/protocol-http';
import { SignatureV4 } from '@smithy/signature-v4';

export interface EksTokenCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

export interface EksTokenRequest {
  clusterName: string;
  region: string;
  credentials: EksTokenCredentials;
  /** When the URL is signed; the token is valid for 60 s after this (EKS itself caps it at 15 min). */
  signingDate: Date;
}

export const EKS_TOKEN_PREFIX = 'k8s-aws-v1.';
const EXPIRES_SECONDS = 60;

/** A region name as AWS spells them (`us-west-2`, `cn-north-1`, `us-isob-east-1`, `eusc-de-east-1`). */
const REGION_NAME = /^[a-z]{2,4}(-[a-z0-9]+)+-\d+$/;

export class InvalidRegionError extends Error {
  override name = 'InvalidRegionError';
}

/**
 * The regional STS host for a region, in the region's partition: `sts.<region>.<partition DNS suffix>`.
 * A region no partition claims falls in `aws`, as the SDKs do (new commercial regions come first).
 */
export function stsHostname(region: string): string {
  if (!REGION_NAME.test(region)) {
    throw new InvalidRegionError(`EKS token: "${region}" is not an AWS region name (expected e.g. us-west-2 or cn-north-1)`);
  }
  return `sts.${region}.${partition(region).dnsSuffix}`;
}

/** Builds the presigned STS URL the token wraps. Pure: same input, same URL. */
export async function presignGetCallerIdentity(req: EksTokenRequest): Promise<string> {
  const hostname = stsHostname(req.region);
  const signer = new SignatureV4({
    service: 'sts',
    region: req.region,
    credentials: req.credentials,
    sha256: Sha256,
  });
  const request = new HttpRequest({
    method: 'GET',
    protocol: 'https:',
    hostname,
    path: '/',
    query: { Action: 'GetCallerIdentity', Version: '2011-06-15' },
    headers: { host: hostname, 'x-k8s-aws-id': req.clusterName },
  });
  const signed = await signer.presign(request, { expiresIn: EXPIRES_SECONDS, signingDate: req.signingDate });
  const query = signed.query as Record<string, string | string[] | null | undefined>;
  const keys = Object.keys(query)
    .filter((k) => k !== 'X-Amz-Signature')
    .sort();
  keys.push('X-Amz-Signature');
  const pairs = keys.map((k) => {
    const value = query[k];
    if (typeof value !== 'string') throw new Error(`presigned STS query parameter ${k} is not a single string`);
    return `${encodeRfc3986(k)}=${encodeRfc3986(value)}`;
  });
  return `https://${hostname}/?${pairs.join('&')}`;
}

/** `k8s-aws-v1.` + base64url(presigned URL), padding stripped. Never log the result. */
export async function createEksToken(req: EksTokenRequest): Promise<string> {
  const url = await presignGetCallerIdentity(req);
  return EKS_TOKEN_PREFIX + Buffer.from(url, 'utf8').toString('base64url');
}

/** SigV4's URI encoding: encodeURIComponent plus the reserved characters it leaves alone. */
function encodeRfc3986(value: string): string {
  return encodeURIComponent(value).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}
