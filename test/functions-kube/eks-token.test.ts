/** The EKS token is a presigned STS URL: checked byte for byte against a known-good signature. */
import { EKS_TOKEN_PREFIX, createEksToken } from '../../functions/shared/eks-token';

const vector = {
  clusterName: 'my-cluster',
  region: 'us-west-2',
  credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY' },
  signingDate: new Date('2026-01-02T03:04:05Z'),
};

function decode(token: string): URL {
  expect(token.startsWith(EKS_TOKEN_PREFIX)).toBe(true);
  const body = token.slice(EKS_TOKEN_PREFIX.length);
  expect(body).toMatch(/^[A-Za-z0-9_-]+$/); // base64url, no padding
  return new URL(Buffer.from(body, 'base64url').toString('utf8'));
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
