/**
 * The EKS path of functions/shared/kube (config.ts), without AWS: a loopback stand-in for eks:DescribeCluster
 * (AWS_ENDPOINT_URL_EKS) returns an HTTPS API server on 127.0.0.1 and its CA (a test-only self-signed
 * certificate). Checks that requests carry a presigned-STS bearer token for the cluster over verified TLS,
 * that endpoint, CA and token are reused, and how API errors map to the named errors.
 */
import { readFileSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingMessage, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { applyObject, readObject, resetKube } from '../../functions/shared/kube';
import { EKS_TOKEN_PREFIX } from '../../functions/shared/eks-token';
import { reloadSettings } from '../../functions/shared/settings';

const FIXTURES = join(__dirname, 'fixtures');
const cert = readFileSync(join(FIXTURES, 'apiserver-cert.pem'));
const key = readFileSync(join(FIXTURES, 'apiserver-key.pem'));

let eks: Server;
let api: Server;
let describeCalls = 0;
let apiRequests: Array<{ method: string; url: string; authorization?: string; contentType?: string }> = [];
let nextStatus: number | undefined;
const saved = { ...process.env };

function listen(server: Server): Promise<number> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port)));
}

function body(req: IncomingMessage): Promise<string> {
  return new Promise((resolve) => {
    let text = '';
    req.on('data', (c: Buffer) => (text += c.toString()));
    req.on('end', () => resolve(text));
  });
}

beforeAll(async () => {
  api = createHttpsServer({ cert, key }, async (req, res) => {
    const text = await body(req);
    apiRequests.push({ method: req.method!, url: req.url!, authorization: req.headers.authorization, contentType: req.headers['content-type'] });
    res.setHeader('content-type', 'application/json');
    if (nextStatus) {
      const code = nextStatus;
      nextStatus = undefined;
      res.writeHead(code);
      res.end(JSON.stringify({ kind: 'Status', apiVersion: 'v1', status: 'Failure', code, reason: code === 403 ? 'Forbidden' : 'ServiceUnavailable', message: `services "x" is forbidden: User "arn:aws:sts::1:assumed-role/mlpipe" cannot get (test ${code})` }));
      return;
    }
    if (req.method === 'PATCH') {
      res.writeHead(200);
      res.end(text); // echo the applied object
      return;
    }
    res.writeHead(200);
    res.end(JSON.stringify({ apiVersion: 'v1', kind: 'Service', metadata: { name: 'x', namespace: 'ns' } }));
  });
  const apiPort = await listen(api);
  eks = createHttpServer((req, res) => {
    describeCalls++;
    res.setHeader('content-type', 'application/json');
    if (req.url === '/clusters/down-cluster') {
      // An endpoint nothing listens on: the API server is unreachable.
      res.end(JSON.stringify({ cluster: { name: 'down-cluster', endpoint: 'https://127.0.0.1:1', status: 'ACTIVE', certificateAuthority: { data: cert.toString('base64') } } }));
      return;
    }
    if (req.url !== '/clusters/prod-cluster') {
      res.writeHead(404);
      res.end(JSON.stringify({ message: `No cluster found for name: ${req.url}` }));
      return;
    }
    res.end(JSON.stringify({ cluster: { name: 'prod-cluster', endpoint: `https://127.0.0.1:${apiPort}`, status: 'ACTIVE', certificateAuthority: { data: cert.toString('base64') } } }));
  });
  const eksPort = await listen(eks);
  delete process.env.KUBECONFIG;
  Object.assign(process.env, {
    CLUSTER_NAME: 'prod-cluster',
    AWS_REGION: 'eu-west-1',
    AWS_ACCESS_KEY_ID: 'AKIDTEST',
    AWS_SECRET_ACCESS_KEY: 'test-secret',
    AWS_ENDPOINT_URL_EKS: `http://127.0.0.1:${eksPort}`,
  });
  reloadSettings(); // kube access reads the loaded settings
  resetKube();
});

afterAll(async () => {
  process.env = saved;
  reloadSettings(); // kube access reads the loaded settings
  resetKube();
  await new Promise((r) => api.close(r));
  await new Promise((r) => eks.close(r));
});

beforeEach(() => {
  apiRequests = [];
});

describe('kube access on EKS', () => {
  it('calls the DescribeCluster endpoint over verified TLS with a presigned-STS bearer token, reused', async () => {
    // Arrange: a cold connection (other tests of this file may have made one, in any order)
    resetKube();
    const describedBefore = describeCalls;
    // Act
    const first = await readObject({ kind: 'Service', namespace: 'ns', name: 'x' });
    const second = await readObject({ kind: 'Service', namespace: 'ns', name: 'x' });
    // Assess
    expect(first?.metadata?.name).toBe('x');
    expect(second?.metadata?.name).toBe('x');
    expect(describeCalls - describedBefore).toBe(1);
    expect(apiRequests.map((r) => r.url)).toEqual(['/api/v1/namespaces/ns/services/x', '/api/v1/namespaces/ns/services/x']);
    const auth = apiRequests[0]!.authorization!;
    expect(apiRequests[1]!.authorization).toBe(auth);
    expect(auth.startsWith(`Bearer ${EKS_TOKEN_PREFIX}`)).toBe(true);
    const url = new URL(Buffer.from(auth.slice(`Bearer ${EKS_TOKEN_PREFIX}`.length), 'base64url').toString());
    expect(url.host).toBe('sts.eu-west-1.amazonaws.com');
    expect(url.searchParams.get('X-Amz-Credential')).toMatch(/^AKIDTEST\/\d{8}\/eu-west-1\/sts\/aws4_request$/);
    expect(url.searchParams.get('X-Amz-SignedHeaders')).toBe('host;x-k8s-aws-id');
  });

  it('applies with server-side apply: PATCH, apply-patch content type, fieldManager mlpipe, force', async () => {
    await applyObject({ apiVersion: 'v1', kind: 'Service', metadata: { name: 'x', namespace: 'ns' }, spec: { type: 'LoadBalancer' } });
    expect(apiRequests).toHaveLength(1);
    expect(apiRequests[0]).toMatchObject({ method: 'PATCH', contentType: 'application/apply-patch+yaml' });
    const url = new URL(apiRequests[0]!.url, 'https://x');
    expect(url.pathname).toBe('/api/v1/namespaces/ns/services/x');
    expect(url.searchParams.get('fieldManager')).toBe('mlpipe');
    expect(url.searchParams.get('force')).toBe('true');
  });

  it.each([
    [403, 'KubernetesRequestError', /HTTP 403 Forbidden: services "x" is forbidden/],
    [503, 'KubernetesUnavailableError', /HTTP 503/],
    [429, 'KubernetesUnavailableError', /HTTP 429/],
  ])('maps HTTP %i to %s with the Status message', async (code, name, message) => {
    nextStatus = code;
    const err = (await applyObject({ apiVersion: 'v1', kind: 'Service', metadata: { name: 'x', namespace: 'ns' } }).catch((e: unknown) => e)) as Error;
    expect(err.name).toBe(name);
    expect(err.message).toMatch(message);
    expect(err.message).not.toContain(EKS_TOKEN_PREFIX);
  });

  it('maps an unknown cluster (DescribeCluster 404) to KubernetesRequestError', async () => {
    process.env.CLUSTER_NAME = 'other-cluster';
    reloadSettings();
    try {
      const err = (await readObject({ kind: 'Service', namespace: 'ns', name: 'x' }).catch((e: unknown) => e)) as Error;
      expect(err.name).toBe('KubernetesRequestError'); // DescribeCluster 404: not something a retry fixes
      expect(err.message).toMatch(/DescribeCluster other-cluster/);
    } finally {
      process.env.CLUSTER_NAME = 'prod-cluster';
      reloadSettings();
    }
  });

  it('maps an unreachable API server to KubernetesUnavailableError', async () => {
    process.env.CLUSTER_NAME = 'down-cluster';
    reloadSettings();
    try {
      await expect(readObject({ kind: 'Service', namespace: 'ns', name: 'x' })).rejects.toMatchObject({
        name: 'KubernetesUnavailableError',
        message: expect.stringMatching(/cannot reach the API server/),
      });
    } finally {
      process.env.CLUSTER_NAME = 'prod-cluster';
      reloadSettings();
    }
  });
});
