/**
 * The serving contract's listen address (issue 8: serve.ts listened on every interface wherever it ran):
 * HOST, default 0.0.0.0 as a pod needs (the Service reaches it at the pod's IP); HOST=127.0.0.1, which the
 * local Kubernetes API gives every pod, keeps it on loopback. A bad HOST is refused, naming the variable.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { bundleScripts, finished, removeScriptBundles, startScript, waitForOutput } from '../workloads/helpers';
import { describeWithProc, listenersOf } from './lifecycle-procs';

const SERVE = 'examples/fashion-mnist/serve.ts';

describeWithProc('serve.ts listen address', () => {
  // An S3 that accepts and never answers: the server listens, then stays LOADING for as long as the test looks.
  let silentS3: Server;
  const sockets = new Set<Socket>();
  let env: Record<string, string>;

  beforeAll(async () => {
    await bundleScripts();
    silentS3 = createServer((s) => (sockets.add(s), s.on('error', () => undefined)));
    await new Promise<void>((r) => silentS3.listen(0, '127.0.0.1', r));
    const { port } = silentS3.address() as { port: number };
    env = {
      MODEL_URI: 's3://bucket/models/fm/v1/',
      MODEL_NAME: 'fm',
      PORT: '0',
      AWS_ENDPOINT_URL_S3: `http://127.0.0.1:${port}`,
      AWS_ACCESS_KEY_ID: 'local',
      AWS_SECRET_ACCESS_KEY: 'local',
      AWS_REGION: 'us-east-1',
    };
  });
  afterAll(async () => {
    removeScriptBundles();
    for (const s of sockets) s.destroy();
    await new Promise((r) => silentS3.close(r));
  });

  it.each([
    ['unset (a pod: every interface)', {}, ['0.0.0.0', '::']],
    ['127.0.0.1 (the local runner)', { HOST: '127.0.0.1' }, ['127.0.0.1']],
  ])('HOST %s', async (_name, extra: Record<string, string>, expected: string[]) => {
    const server = startScript(SERVE, { ...env, ...extra });
    try {
      const [, port] = await waitForOutput(server, /serving fm on port (\d+) of (\S+)/);
      const mine = listenersOf([server.pid!]).filter((l) => l.port === Number(port));
      expect(mine).toHaveLength(1);
      expect(expected).toContain(mine[0]!.address);
    } finally {
      server.kill('SIGKILL');
      await finished(server);
    }
  });

  it('refuses a HOST that is not an IP address, naming it', async () => {
    const result = await finished(startScript(SERVE, { ...env, HOST: 'every-interface' }));
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('HOST: must be an IP address to listen on');
  });
});
