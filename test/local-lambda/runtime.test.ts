/**
 * The local Lambda runtime runs a function like Lambda does: its bundle in a container (worker) of its
 * own, with exactly the template's environment plus the runtime's variables, its Timeout enforced, init
 * errors reported as the function's error, output lines handed to the log sink. Tiny handcrafted bundles
 * keep this fast; test/e2e runs the pipeline's real bundles.
 */
import { appendFileSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { transformSync } from 'esbuild';
import { LambdaInvocationError, LocalLambdaRuntime } from '../../local/lambda/runtime';
import { loadLocalStack, type CfnTemplate } from '../../local/lambda/template';

const LOCAL = {
  region: 'eu-west-1',
  accountId: '000000000000',
  artifactBucket: 'local-bucket',
  stateMachineArn: 'arn:aws:states:eu-west-1:000000000000:stateMachine:local',
  approvalUrl: 'http://127.0.0.1:1',
};

const BUNDLES: Record<string, string> = {
  env: 'exports.handler = async () => ({ env: process.env });',
  slow: 'exports.handler = () => new Promise(() => setInterval(() => undefined, 1000));',
  // Like a handler whose settings are read and validated when its module loads.
  init: "if (!process.env.REQUIRED_SETTING) { const e = new Error('Missing required setting: environment variable REQUIRED_SETTING is not set.'); e.name = 'ConfigurationError'; throw e; }\nexports.handler = async (event) => ({ echo: event });",
  logs: "exports.handler = async (event, context) => { console.log(JSON.stringify({ level: 'INFO', message: 'hello', requestId: context.awsRequestId })); console.error('plain line'); return context.getRemainingTimeInMillis() > 0; };",
  // Prewarm order: `first` takes a while to load and says so when done; `second` records at load whether it had.
  first: "let x = 0; for (let i = 0; i < 1e8; i++) x += i;\nrequire('node:fs').writeFileSync(process.env.MARKER, String(x));\nexports.handler = async () => 'first';",
  second: "const sawFirstLoaded = require('node:fs').existsSync(process.env.MARKER);\nexports.handler = async () => ({ sawFirstLoaded });",
  // What a function sees of NODE_OPTIONS, and whether Node itself maps its traces (reading maps at load).
  options: 'exports.handler = async () => ({ nodeOptions: process.env.NODE_OPTIONS, nodeMapsTraces: process.sourceMapsEnabled, noDeprecation: process.noDeprecation === true });',
  // Where its container's compile cache is (node:module getCompileCacheDir: undefined when none is enabled).
  cached: "exports.handler = async () => ({ dir: require('node:module').getCompileCacheDir() ?? null });",
  throws: "class TrainingFailedError extends Error { name = 'TrainingFailedError' }\nexports.handler = async () => { throw new TrainingFailedError('the Job failed'); };",
};

const MAPPED_SOURCE = `interface Event { n: number }
export const handler = async (event: Event): Promise<number> => {
  if (event.n > 1) throw new RangeError('n is too large');
  return event.n;
};
`;

function fnResource(asset: string, env: Record<string, unknown>, timeout = 30): CfnTemplate['Resources'][string] {
  return {
    Type: 'AWS::Lambda::Function',
    Properties: { Code: { S3Key: `${asset}.zip` }, Handler: 'index.handler', Runtime: 'nodejs22.x', Timeout: timeout, MemorySize: 128, Environment: { Variables: env } } as never,
  };
}

describe('local Lambda runtime', () => {
  let dir: string;
  let runtime: LocalLambdaRuntime;
  let stack: ReturnType<typeof loadLocalStack>;
  const logs: Array<{ fn: string; line: string; stream: string }> = [];

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'mlpipe-lambda-'));
    const assetDirs = new Map<string, string>();
    // A bundle with its source map beside it, as the stack's are: its error trace names handler.ts's line.
    const mapped = transformSync(MAPPED_SOURCE, { loader: 'ts', format: 'cjs', sourcemap: 'external', sourcefile: 'handler.ts' });
    for (const [name, code] of Object.entries({ ...BUNDLES, mapped: `${mapped.code}//# sourceMappingURL=index.js.map\n` })) {
      mkdirSync(join(dir, name));
      writeFileSync(join(dir, name, 'index.js'), code);
      assetDirs.set(`${name}.zip`, join(dir, name));
    }
    writeFileSync(join(dir, 'mapped', 'index.js.map'), mapped.map);
    const template: CfnTemplate = {
      Resources: {
        Bucket: { Type: 'AWS::S3::Bucket' },
        Machine: { Type: 'AWS::StepFunctions::StateMachine', Properties: { DefinitionString: '{"StartAt":"A","States":{"A":{"Type":"Pass","End":true}}}' } },
        Env: fnResource('env', { BUCKET: { Ref: 'Bucket' }, PLAIN: 'x' }),
        Slow: fnResource('slow', {}, 1),
        Init: fnResource('init', {}),
        Logs: fnResource('logs', {}),
        Throws: fnResource('throws', {}),
        Mapped: fnResource('mapped', { NODE_OPTIONS: '--enable-source-maps' }),
        Unmapped: fnResource('mapped', {}),
        First: fnResource('first', { MARKER: join(dir, 'first-loaded') }),
        Second: fnResource('second', { MARKER: join(dir, 'first-loaded') }),
        Cached: fnResource('cached', {}),
        Options: fnResource('options', { NODE_OPTIONS: '--enable-source-maps --no-deprecation' }),
      },
      Outputs: { ArtifactBucketName: { Value: { Ref: 'Bucket' } } },
    };
    stack = loadLocalStack(dir, LOCAL, { template, stackName: 'T', assetDirs });
    process.env.MLPIPE_PARENT_ONLY = 'must not leak';
    runtime = new LocalLambdaRuntime({
      stack,
      runtimeEnv: { AWS_ENDPOINT_URL_S3: 'http://127.0.0.1:9' },
      clusterEnv: { KUBECONFIG: '/nowhere' },
      onLog: (fn, line, stream) => logs.push({ fn: fn.logicalId, line, stream }),
    });
  });

  afterAll(async () => {
    await runtime.stop();
    delete process.env.MLPIPE_PARENT_ONLY;
    rmSync(dir, { recursive: true, force: true });
  });

  it("gives a function exactly its template environment plus Lambda's runtime variables", async () => {
    const { env } = (await runtime.invoke('Env', {})) as { env: Record<string, string> };
    expect(env).toMatchObject({ BUCKET: 'local-bucket', PLAIN: 'x', AWS_REGION: 'eu-west-1', AWS_LAMBDA_FUNCTION_NAME: 'T-Env', AWS_LAMBDA_FUNCTION_MEMORY_SIZE: '128', AWS_ENDPOINT_URL_S3: 'http://127.0.0.1:9' });
    expect(env.MLPIPE_PARENT_ONLY).toBeUndefined();
    // Only functions with cluster access (CLUSTER_NAME in their template) get the cluster's stand-in.
    expect(env.KUBECONFIG).toBeUndefined();
  });

  it('fails an invocation whose function lacks a setting it requires at load, naming the setting', async () => {
    const failure = runtime.invoke('Init', { a: 1 });
    await expect(failure).rejects.toThrow(LambdaInvocationError);
    await expect(runtime.invoke('Init', { a: 1 })).rejects.toMatchObject({ name: 'ConfigurationError', message: expect.stringContaining('REQUIRED_SETTING') });
  });

  it('keeps the error type a handler throws, so Retry/Catch match it', async () => {
    await expect(runtime.invoke('Throws', {})).rejects.toMatchObject({ name: 'TrainingFailedError', message: 'the Job failed' });
  });

  it("ends an invocation at the function's Timeout, as Sandbox.Timedout", async () => {
    await expect(runtime.invoke('Slow', {})).rejects.toMatchObject({ name: 'Sandbox.Timedout', message: expect.stringMatching(/Task timed out after 1\.\d\d seconds/) });
  });

  it('hands every stdout and stderr line to the log sink, with the invocation context', async () => {
    await expect(runtime.invoke('Logs', {})).resolves.toBe(true);
    // Lines cross from the worker asynchronously: wait for the second one.
    while (logs.filter((l) => l.fn === 'Logs').length < 2) await new Promise((r) => setImmediate(r));
    const mine = logs.filter((l) => l.fn === 'Logs');
    expect(mine).toEqual([
      { fn: 'Logs', line: expect.stringMatching(/^\{"level":"INFO","message":"hello","requestId":"[0-9a-f-]{36}"\}$/), stream: 'stdout' },
      { fn: 'Logs', line: 'plain line', stream: 'stderr' },
    ]);
  });

  it('prewarms one bundle at a time, in the order given, and resolves when all are loaded', async () => {
    // Loaded all at once (as before), `second` would load while `first` still computes.
    await runtime.prewarm(['First', 'Second']);
    expect(await runtime.invoke('Second', {})).toEqual({ sawFirstLoaded: true });
    expect(await runtime.invoke('First', {})).toBe('first');
  });

  it("maps a function's error trace to its TypeScript lines when its template asks for source maps", async () => {
    const failure = await runtime.invoke('Mapped', { n: 2 }).catch((err: LambdaInvocationError) => err);
    expect(failure).toMatchObject({ name: 'RangeError', message: 'n is too large' });
    expect((failure as LambdaInvocationError).payload.trace.join('\n')).toContain(`${join(dir, 'mapped', 'handler.ts')}:3:`);
    // Without NODE_OPTIONS=--enable-source-maps the trace names the bundle, as on Lambda.
    const plain = (await runtime.invoke('Unmapped', { n: 2 }).catch((err: LambdaInvocationError) => err)) as LambdaInvocationError;
    expect(plain.payload.trace.join('\n')).toContain(`${join(dir, 'mapped', 'index.js')}:`);
    expect(plain.payload.trace.join('\n')).not.toContain('handler.ts');
    // Mapped by lazy-source-maps.cjs, not by Node reading NODE_OPTIONS (every map parsed at load), which the
    // function still sees in its environment; its other flags still apply, as they would on Lambda.
    expect(await runtime.invoke('Options', {})).toEqual({ nodeOptions: '--enable-source-maps --no-deprecation', nodeMapsTraces: false, noDeprecation: true });
  });

  it("keeps the bundles' compiled code in the compile cache directory, and the next run's containers load from it", async () => {
    const cacheDir = join(dir, 'compile-cache');
    /** The cache's files: path → inode and mtime (a rewrite is a new file renamed over the old one). */
    const cacheFiles = () =>
      Object.fromEntries(
        readdirSync(cacheDir, { recursive: true, withFileTypes: true })
          .filter((e) => e.isFile())
          .map((e) => join(e.parentPath, e.name))
          .map((f) => [f, { ino: statSync(f).ino, mtimeMs: statSync(f).mtimeMs }]),
      );
    /** Loads the bundle in a container of a fresh runtime on `cacheDir`; the cache is written when it stops. */
    const loadInFreshRuntime = async () => {
      const own = new LocalLambdaRuntime({ stack, runtimeEnv: {}, compileCacheDir: cacheDir });
      try {
        return (await own.invoke('Cached', {})) as { dir: string | null };
      } finally {
        await own.stop();
      }
    };

    // GIVEN a run whose container compiled the bundle into the cache (files, not just the versioned
    // directory enableCompileCache makes before anything is cached), aged so that a rewrite shows
    const first = await loadInFreshRuntime();
    expect(first.dir && dirname(first.dir)).toBe(cacheDir); // its versioned directory (Node's version, V8's flags)
    const written = cacheFiles();
    expect(Object.keys(written).length).toBeGreaterThan(0);
    const aged = new Date('2000-01-01T00:00:00Z');
    for (const file of Object.keys(written)) utimesSync(file, aged, aged);
    const before = cacheFiles();

    // WHEN the next run's container loads the same bundle
    const second = await loadInFreshRuntime();

    // THEN its cache is on and the entry was accepted: Node writes an entry again only when it compiled the
    // module itself (none found, or one rejected), and here not one file changed
    expect(second.dir).toBe(first.dir);
    expect(cacheFiles()).toEqual(before);
    // (Control: a changed bundle's entry is rejected, and then rewritten: what the check above would see.)
    appendFileSync(join(dir, 'cached', 'index.js'), '// changed\n');
    await loadInFreshRuntime();
    expect(cacheFiles()).not.toEqual(before);
  });

  it('refuses a function the template does not have', async () => {
    await expect(runtime.invoke('Nope', {})).rejects.toMatchObject({ name: 'ResourceNotFoundException' });
  });
});
