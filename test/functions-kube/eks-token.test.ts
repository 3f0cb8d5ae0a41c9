/**
 * The EKS token is a presigned STS URL, and STS verifies it against its own host: the URL must be signed
 * for the STS endpoint of the region's partition. Checked three ways:
 * - byte for byte against URLs recorded from the aws CLI's `aws eks get-token` code (botocore's presigner,
 *   endpoint rules and partitions data, clock frozen): fixtures/eks-token-vectors.py regenerates them;
 * - against an SigV4 verifier written here from the SigV4 specification (not @smithy/signature-v4), the
 *   check STS itself makes: the signature holds for the URL's own host and cluster header, and not for the
 *   host another partition would use;
 * - structurally: host, credential scope region, signed `x-k8s-aws-id`.
 */
import { createHash, createHmac } from 'node:crypto';
import { EKS_TOKEN_PREFIX, InvalidRegionError, createEksToken, stsHostname } from '../../functions/shared/eks-token';

const CREDENTIALS = { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY' };
const vector = { clusterName: 'my-cluster', region: 'us-west-2', credentials: CREDENTIALS, signingDate: new Date('2026-01-02T03:04:05Z') };

/** Recorded with awscli 1.45.11 / botocore 1.43.11 (fixtures/eks-token-vectors.py), cluster my-cluster, 2026-01-02T03:04:05Z. */
const BOTOCORE: { partition: string; region: string; host: string; signature: string }[] = [
  { partition: 'aws', region: 'us-west-2', host: 'sts.us-west-2.amazonaws.com', signature: 'fa5745ca09821615317a299e23602d9b952f6666992df2bedd9263dcc84e0154' },
  { partition: 'aws-cn', region: 'cn-north-1', host: 'sts.cn-north-1.amazonaws.com.cn', signature: '48def5f0288acf5f36deb3bdf9c4afb7b944d26afe1415fbf29a17e62eb6d0b3' },
  { partition: 'aws-cn', region: 'cn-northwest-1', host: 'sts.cn-northwest-1.amazonaws.com.cn', signature: '9442d9d5803c1923de0002a76cd50492852f07289812ec69a2fee207bf48846a' },
  { partition: 'aws-us-gov', region: 'us-gov-west-1', host: 'sts.us-gov-west-1.amazonaws.com', signature: '1085e95e4959d10aa76c45f31f276dc890d3300cd5d389aad460f272ed1fabe7' },
  { partition: 'aws-iso', region: 'us-iso-east-1', host: 'sts.us-iso-east-1.c2s.ic.gov', signature: '9d06dc975bc088ab20575812c0f2c9f947aead1e678cd48cf7cf7bf8c529b961' },
  { partition: 'aws-iso-b', region: 'us-isob-east-1', host: 'sts.us-isob-east-1.sc2s.sgov.gov', signature: '56a527a59190a522df743ff3a439db36a7fcf354264f760d6fe9ce334cff6cfd' },
  { partition: 'aws-iso-e', region: 'eu-isoe-west-1', host: 'sts.eu-isoe-west-1.cloud.adc-e.uk', signature: 'cb54b5281e512d63f51ce20f5e5206dd612f51c4a0f2c987b069e22556c10417' },
  { partition: 'aws-iso-f', region: 'us-isof-south-1', host: 'sts.us-isof-south-1.csp.hci.ic.gov', signature: '35b3948d5d7f9cc581975181817ab7ea4ee9fda17a78654b10bda36df16f7400' },
  { partition: 'aws-eusc', region: 'eusc-de-east-1', host: 'sts.eusc-de-east-1.amazonaws.eu', signature: '8f8d3aeffb2ca5beeff7675d964975d214b0704eaa1cfdd5dcb4c9d27ef0a984' },
];

/** The recorded URL: botocore's query order (sorted; no session token here), signature last. */
function botocoreUrl(v: (typeof BOTOCORE)[number]): string {
  return (
    `https://${v.host}/?Action=GetCallerIdentity&Version=2011-06-15&X-Amz-Algorithm=AWS4-HMAC-SHA256` +
    `&X-Amz-Credential=AKIDEXAMPLE%2F20260102%2F${v.region}%2Fsts%2Faws4_request&X-Amz-Date=20260102T030405Z` +
    `&X-Amz-Expires=60&X-Amz-SignedHeaders=host%3Bx-k8s-aws-id&X-Amz-Signature=${v.signature}`
  );
}

function decode(token: string): URL {
  expect(token.startsWith(EKS_TOKEN_PREFIX)).toBe(true);
  const body = token.slice(EKS_TOKEN_PREFIX.length);
  expect(body).toMatch(/^[A-Za-z0-9_-]+$/); // base64url, no padding
  return new URL(Buffer.from(body, 'base64url').toString('utf8'));
}

const rfc3986 = (s: string) => encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
const hmac = (key: Buffer | string, data: string) => createHmac('sha256', key).update(data, 'utf8').digest();
const sha256 = (data: string) => createHash('sha256').update(data, 'utf8').digest('hex');

/**
 * SigV4 presigned-URL verification as STS does it, from the spec: canonical request (GET, path, sorted
 * query without the signature, the signed headers with the host the request is sent to, the empty body's
 * hash) → string to sign → key derived from the secret, date, region and service → HMAC.
 */
function verifiesAt(url: URL, host: string, headers: Record<string, string>, secret: string): boolean {
  const q = url.searchParams;
  const [, date, region, service] = (q.get('X-Amz-Credential') ?? '').split('/');
  const signedHeaders = (q.get('X-Amz-SignedHeaders') ?? '').split(';');
  const all: Record<string, string> = { host, ...headers };
  const query = [...q.entries()]
    .filter(([k]) => k !== 'X-Amz-Signature')
    .map(([k, v]) => `${rfc3986(k)}=${rfc3986(v)}`)
    .sort()
    .join('&');
  const canonicalHeaders = signedHeaders.map((h) => `${h}:${(all[h] ?? '').trim()}\n`).join('');
  const canonicalRequest = ['GET', url.pathname, query, canonicalHeaders, signedHeaders.join(';'), sha256('')].join('\n');
  const scope = `${date}/${region}/${service}/aws4_request`;
  const stringToSign = ['AWS4-HMAC-SHA256', q.get('X-Amz-Date'), scope, sha256(canonicalRequest)].join('\n');
  const key = hmac(hmac(hmac(hmac(`AWS4${secret}`, date ?? ''), region ?? ''), service ?? ''), 'aws4_request');
  return hmac(key, stringToSign).toString('hex') === q.get('X-Amz-Signature');
}

describe('createEksToken', () => {
  it('matches the known signature and URL structure', async () => {
    // Act
    const url = decode(await createEksToken(vector));
    // Assess
    expect(url.protocol).toBe('https:');
    expect(url.host).toBe('sts.us-west-2.amazonaws.com');
    expect(url.pathname).toBe('/');
    expect([...url.searchParams.entries()]).toEqual([
      ['Action', 'GetCallerIdentity'],
      ['Version', '2011-06-15'],
      ['X-Amz-Algorithm', 'AWS4-HMAC-SHA256'],
      ['X-Amz-Credential', 'AKIDEXAMPLE/20260102/us-west-2/sts/aws4_request'],
      ['X-Amz-Date', '20260102T030405Z'],
      ['X-Amz-Expires', '60'],
      ['X-Amz-SignedHeaders', 'host;x-k8s-aws-id'],
      ['X-Amz-Signature', 'fa5745ca09821615317a299e23602d9b952f6666992df2bedd9263dcc84e0154'],
    ]);
    expect(url.search).toBe(
      '?Action=GetCallerIdentity&Version=2011-06-15&X-Amz-Algorithm=AWS4-HMAC-SHA256' +
        '&X-Amz-Credential=AKIDEXAMPLE%2F20260102%2Fus-west-2%2Fsts%2Faws4_request&X-Amz-Date=20260102T030405Z' +
        '&X-Amz-Expires=60&X-Amz-SignedHeaders=host%3Bx-k8s-aws-id' +
        '&X-Amz-Signature=fa5745ca09821615317a299e23602d9b952f6666992df2bedd9263dcc84e0154',
    );
  });

  it('signs the cluster name: another cluster gets another signature', async () => {
    const a = decode(await createEksToken(vector)).searchParams.get('X-Amz-Signature');
    const b = decode(await createEksToken({ ...vector, clusterName: 'other' })).searchParams.get('X-Amz-Signature');
    expect(a).not.toBe(b);
  });

  it('carries a session token, sorted before X-Amz-SignedHeaders, signature still last', async () => {
    const url = decode(await createEksToken({ ...vector, credentials: { ...vector.credentials, sessionToken: 'SESSION/TOKEN+=' } }));
    const keys = [...url.searchParams.keys()];
    expect(url.searchParams.get('X-Amz-Security-Token')).toBe('SESSION/TOKEN+=');
    expect(keys.indexOf('X-Amz-Security-Token')).toBeLessThan(keys.indexOf('X-Amz-SignedHeaders'));
    expect(keys.at(-1)).toBe('X-Amz-Signature');
  });
});

describe('EKS tokens in every partition', () => {
  it.each(BOTOCORE)('$partition ($region): the URL botocore presigns, byte for byte', async (v) => {
    // Act
    const url = decode(await createEksToken({ ...vector, region: v.region }));
    // Assess
    expect(url.href).toBe(botocoreUrl(v));
  });

  it.each(BOTOCORE)('$partition ($region): host, credential scope and signed x-k8s-aws-id', async (v) => {
    const url = decode(await createEksToken({ ...vector, region: v.region }));
    expect(url.host).toBe(v.host);
    expect(url.searchParams.get('X-Amz-Credential')).toBe(`AKIDEXAMPLE/20260102/${v.region}/sts/aws4_request`);
    expect(url.searchParams.get('X-Amz-SignedHeaders')?.split(';')).toEqual(['host', 'x-k8s-aws-id']);
  });

  it.each(BOTOCORE)('$partition ($region): verifies at its own STS host with its cluster, nowhere else', async (v) => {
    // Arrange: the host the token would name if the partition were ignored (or wrongly assumed to be China)
    const url = decode(await createEksToken({ ...vector, region: v.region }));
    const commercial = `sts.${v.region}.amazonaws.com`;
    const otherHost = v.host === commercial ? `${commercial}.cn` : commercial;
    const cluster = { 'x-k8s-aws-id': 'my-cluster' };
    // Assess: STS recomputes the signature over the host it was reached at and the header the authenticator sends
    expect(verifiesAt(url, v.host, cluster, CREDENTIALS.secretAccessKey)).toBe(true);
    expect(verifiesAt(url, otherHost, cluster, CREDENTIALS.secretAccessKey)).toBe(false);
    expect(verifiesAt(url, v.host, { 'x-k8s-aws-id': 'other-cluster' }, CREDENTIALS.secretAccessKey)).toBe(false);
  });
});

describe('stsHostname', () => {
  it.each([
    ['us-east-1', 'sts.us-east-1.amazonaws.com'],
    ['cn-northwest-1', 'sts.cn-northwest-1.amazonaws.com.cn'],
    ['us-gov-east-1', 'sts.us-gov-east-1.amazonaws.com'],
    ['us-isob-west-1', 'sts.us-isob-west-1.sc2s.sgov.gov'],
    // A region newer than the SDK's table falls in its partition by the partition's region pattern.
    ['cn-south-9', 'sts.cn-south-9.amazonaws.com.cn'],
    ['us-iso-north-7', 'sts.us-iso-north-7.c2s.ic.gov'],
  ])('%s → %s', (region, host) => {
    expect(stsHostname(region)).toBe(host);
  });

  it.each(['', 'US-EAST-1', 'us-east-1.evil.example', 'us east 1', 'us-east-'])('refuses "%s", naming it', (region) => {
    expect(() => stsHostname(region)).toThrow(InvalidRegionError);
    expect(() => stsHostname(region)).toThrow(`"${region}" is not an AWS region name`);
  });
});
