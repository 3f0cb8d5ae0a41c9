/**
 * What `cdk synth` ships: every Lambda's asset in the synthesized assembly (bundled by the CDK's local
 * bundling step, lib/constructs/lambda-bundle.ts; synth-once.ts reads it from the e2e tests' shared synth),
 * its own, built from its own handler, within the size limit, loading in a fresh Node process with its
 * settings and exporting `handler`. The CDK tests skip bundling for speed; this is where a bundle that
 * breaks (an ESM-only dependency, a missing module, a top-level error, a stub that is reached) is caught.
 * The Kubernetes access is run from a bundle on both of its paths: a KUBECONFIG file against the local
 * Kubernetes API, and EKS (DescribeCluster + presigned-STS token) against loopback stand-ins over TLS. A
 * shipped bundle's error, thrown in the local Lambda runtime as `npm start` runs it, names our TypeScript lines.
 * settings.cases.ts (what each bundle reads at load) runs from this file: it loads the same bundles, and
 * one file builds them once (measured: the two files each built all 19 and loaded aws-cdk-lib).
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createServer as createHttpServer, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import type { Metafile } from 'esbuild';
import { BUNDLE_LIMIT_BYTES, bundleLambda } from '../../lib/constructs/lambda-bundle';
import { PROJECT_ROOT } from '../../lib/constructs/lambda-defaults';
import { startLocalKube, type LocalKube } from '../../local/kube';
import { LocalLambdaRuntime, type LambdaInvocationError } from '../../local/lambda/runtime';
import { loadLocalStack } from '../../local/lambda/template';
import { EKS_TOKEN_PREFIX } from '../../functions/shared/eks-token';
import { bundleSources, loadedBundles, removeShippedBundles, RESOURCES, shippedStack, type Shipped } from './synth-once';
import './settings.cases';

const run = promisify(execFile);

/** Runs `handler(event)` of a bundle in a fresh Node process with exactly `env`; resolves with its result. */
async function invoke(bundle: string, event: unknown, env: Record<string, string>): Promise<unknown> {
  const script = `require(${JSON.stringify(bundle)}).handler(JSON.parse(process.argv[1])).then((r) => console.log(JSON.stringify(r)), (e) => { console.error(e.name + ': ' + e.message); process.exit(1); })`;
  const { stdout } = await run(process.execPath, ['-e', script, JSON.stringify(event)], { env: { PATH: process.env.PATH ?? '', ...env } });
  return JSON.parse(stdout.trim().split('\n').at(-1) as string);
}

/** The 1-based line of `file` (relative to the repository) that contains `text`; fails when there is none. */
function lineOf(file: string, text: string): number {
  const index = readFileSync(path.join(PROJECT_ROOT, file), 'utf8').split('\n').findIndex((line) => line.includes(text));
  if (index < 0) throw new Error(`lineOf: ${file} has no line containing ${JSON.stringify(text)}`);
  return index + 1;
}

/** The biggest packages of a bundle, for a failure message that says what to cut. */
function biggestInputs(metafile: Metafile): string {
  const output = Object.values(metafile.outputs).find((o) => o.entryPoint !== undefined);
  const byPackage = new Map<string, number>();
  for (const [file, { bytesInOutput }] of Object.entries(output?.inputs ?? {})) {
    const key = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(file)?.[1] ?? file;
    byPackage.set(key, (byPackage.get(key) ?? 0) + bytesInOutput);
  }
  return [...byPackage].sort((a, b) => b[1] - a[1]).slice(0, 6).map(([k, v]) => `${k} ${(v / 1024).toFixed(0)} KB`).join(', ');
}

afterAll(removeShippedBundles);

/** A bundle over the limit, rebuilt with a metafile (only then: the shipped asset has none) to name its biggest packages. */
async function overLimit(entry: string, bundle: string): Promise<string> {
  const dir = mkdtempSync(path.join(tmpdir(), 'mlpipe-over-limit-'));
  try {
    const { metafile } = await bundleLambda(entry, dir);
    return `${entry}: ${(statSync(bundle).size / 1024).toFixed(0)} KB (${biggestInputs(metafile)})`;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('Lambda bundles', () => {
  let shipped: Shipped;
  const probe = () => shipped.probe;

  // A fresh clone synthesizes the e2e stack first (or waits for the e2e suite that does): minutes on a loaded machine.
  beforeAll(async () => {
    shipped = await shippedStack();
  }, 600_000);

  it(`every bundle is at most ${(BUNDLE_LIMIT_BYTES / 2 ** 20).toFixed(1)} MB`, async () => {
    const over = await Promise.all(shipped.functions.filter((f) => statSync(f.bundle).size > BUNDLE_LIMIT_BYTES).map((f) => overLimit(f.entry, f.bundle)));
    expect(over).toEqual([]);
  });

  it('gives every function its own asset, bundled from its own handler', () => {
    // CDK stages an asset once per cache key (source path + bundling options; a local bundling closure is not
    // part of it), so a key that did not name the entry once gave all 19 functions the first one's bundle.
    const dirs = shipped.functions.map((f) => path.dirname(f.bundle));
    expect(new Set(dirs).size).toBe(dirs.length);
    const handlers = shipped.functions.map((f) => ({
      entry: f.entry,
      handlers: bundleSources(f.bundle).filter((s) => /^functions\/[^/]+\.ts$/.test(path.relative(PROJECT_ROOT, s))).map((s) => path.relative(PROJECT_ROOT, s)),
    }));
    expect(handlers).toEqual(shipped.functions.map((f) => ({ entry: f.entry, handlers: [f.entry] })));
  });

  it('leaves out undici, the generated API classes and models, and the unused auth providers', () => {
    // A source map lists the inputs that left code in the bundle, not what esbuild parsed and then dropped.
    const inputs = [...new Set(shipped.functions.flatMap((f) => bundleSources(f.bundle)))];
    // (The check sees client-node's files: through its own source maps, dist/*.js are listed as src/*.ts.)
    expect(inputs.filter((f) => /client-node\/(dist|src)\/config\.(js|ts)$/.test(f))).not.toEqual([]);
    expect(inputs.filter((f) => /node_modules\/(undici|openid-client|socks|jsonpath-plus)\//.test(f))).toEqual([]);
    expect(inputs.filter((f) => /client-node\/(dist|src)\/(gen\/(apis|models)\/|azure_auth|gcp_auth|oidc_auth|watch\.(js|ts))/.test(f))).toEqual([]);
  });

  it('every entry loads in a fresh Node process and exports a handler function', async () => {
    // Each bundle in its own process with its template Environment (the loads settings.cases.ts reads too).
    const loads = await loadedBundles();
    const types = Object.fromEntries(shipped.functions.map((f) => [f.entry, loads.get(f.logicalId)?.handler]));
    expect(types).toEqual(Object.fromEntries(shipped.functions.map((f) => [f.entry, 'function'])));
    expect(Object.keys(types)).toHaveLength(25);
  }, 300_000);

  it("maps a shipped bundle's error trace to its TypeScript lines in the local Lambda runtime, as npm start runs it", async () => {
    // GIVEN the synthesized stack as the local run loads it (its template sets NODE_OPTIONS=--enable-source-maps:
    // the runtime's bootstrap then maps traces with local/lazy-source-maps.cjs, from the map beside the bundle)
    const stack = loadLocalStack(shipped.assembly, RESOURCES);
    const prepare = stack.functions.find((f) => f.logicalId.includes('FunctionsPrepareRun'));
    expect(prepare?.environment.NODE_OPTIONS).toBe('--enable-source-maps');
    const runtime = new LocalLambdaRuntime({ stack, runtimeEnv: {} });
    try {
      // WHEN PrepareRun is given an execution input that is not an object
      const event = { input: 'not an object', executionArn: 'arn:aws:states:eu-west-1:123456789012:execution:m:r', executionName: 'r', startTime: '2026-01-01T00:00:00Z' };
      const failure = (await runtime.invoke(prepare!.logicalId, event).catch((err: unknown) => err)) as LambdaInvocationError;

      // THEN its trace names where it was thrown and the handler's line that called it, in our sources
      expect(failure).toMatchObject({ name: 'InvalidInputError', message: expect.stringContaining('Execution input is invalid') });
      const trace = failure.payload.trace.join('\n');
      expect(trace).toContain(`${path.join(PROJECT_ROOT, 'functions', 'shared', 'state.ts')}:${lineOf('functions/shared/state.ts', 'must be a JSON object like')}:`);
      expect(trace).toContain(`${path.join(PROJECT_ROOT, 'functions', 'prepare-run.ts')}:${lineOf('functions/prepare-run.ts', 'parseRunRequest(ctx.input)')}:`);
      expect(trace).not.toContain('index.js');
    } finally {
      await runtime.stop();
    }
  }, 30_000);

  describe('Kubernetes access from a bundle', () => {
    let kube: LocalKube;
    let kubeDir: string;
    beforeAll(async () => {
      kubeDir = mkdtempSync(path.join(tmpdir(), 'mlpipe-bundle-kube-'));
      kube = await startLocalKube({ stateDir: kubeDir, images: {}, namespaces: ['probe'] });
    });
    afterAll(async () => {
      await kube.stop();
      rmSync(kubeDir, { recursive: true, force: true });
    });

    it('KUBECONFIG: applies, reads, lists and watches a Service; a missing pod has no log', async () => {
      const result = await invoke(probe(), { namespace: 'probe', name: 'svc-a', write: true }, { KUBECONFIG: kube.kubeconfigPath });
      expect(result).toEqual({
        applied: 'svc-a',
        read: 'svc-a',
        listed: 1,
        seen: 'LISTED svc-a',
        log: expect.stringMatching(/^\(log unavailable: .*HTTP 404/),
      });
    }, 30_000);

    it('EKS: endpoint and CA from DescribeCluster, a presigned-STS bearer token, verified TLS', async () => {
      const fixtures = path.join(__dirname, '..', 'functions-kube', 'fixtures');
      const cert = readFileSync(path.join(fixtures, 'apiserver-cert.pem'));
      const key = readFileSync(path.join(fixtures, 'apiserver-key.pem'));
      const authorizations: string[] = [];
      const api = createHttpsServer({ cert, key }, (req, res) => {
        authorizations.push(req.headers.authorization ?? '');
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({ apiVersion: 'v1', kind: 'Service', metadata: { name: 'svc-eks', namespace: 'ns' } }));
      });
      const listen = (s: Server) => new Promise<number>((r) => s.listen(0, '127.0.0.1', () => r((s.address() as AddressInfo).port)));
      const apiPort = await listen(api);
      const eks = createHttpServer((_req, res) => {
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({ cluster: { name: 'c', endpoint: `https://127.0.0.1:${apiPort}`, status: 'ACTIVE', certificateAuthority: { data: cert.toString('base64') } } }));
      });
      const eksPort = await listen(eks);
      try {
        const result = await invoke(
          probe(),
          { namespace: 'ns', name: 'svc-eks', write: false },
          {
            CLUSTER_NAME: 'c',
            AWS_REGION: 'eu-west-1',
            AWS_ACCESS_KEY_ID: 'AKIDTEST',
            AWS_SECRET_ACCESS_KEY: 'test-secret',
            AWS_ENDPOINT_URL_EKS: `http://127.0.0.1:${eksPort}`,
          },
        );
        expect(result).toEqual({ read: 'svc-eks' });
        expect(authorizations).toHaveLength(1);
        expect(authorizations[0]!.startsWith(`Bearer ${EKS_TOKEN_PREFIX}`)).toBe(true);
      } finally {
        await new Promise((r) => api.close(r));
        await new Promise((r) => eks.close(r));
      }
    }, 30_000);
  });
});
