/**
 * The console beside `npm start` (console/process.ts): its address answers at once, the child process starts
 * on demand (the first connection) and serves through it (a client resetting while it starts does no harm);
 * a child that cannot start answers 503 with why.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { spawnConsole, type ConsoleProcess } from '../../console/process';
import { LocalStepFunctions, startLocalSfnEndpoint, type LocalSfnEndpoint } from '../../local/stepfunctions';
import { writeLocalFile } from '../cli/local-file';
import { validatedFileFor } from '../sfn-validated';

const ARN = 'arn:aws:states:us-east-1:000000000000:stateMachine:mlpipe-console-process';

/** The server side of the next connection accepted on `port` in this process (Node's net.server.socket channel). */
function acceptedSocket(port: number): Promise<Socket> {
  return new Promise((resolve) => {
    const onAccept = (message: unknown) => {
      const { socket } = message as { socket: Socket };
      if (socket.localPort !== port) return;
      unsubscribe('net.server.socket', onAccept);
      resolve(socket);
    };
    subscribe('net.server.socket', onAccept);
  });
}

describe('the console child of npm start', () => {
  let dir: string;
  let sfn: LocalStepFunctions;
  let endpoint: LocalSfnEndpoint;
  const consoles: ConsoleProcess[] = [];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'mlpipe-console-process-'));
    const definition = { StartAt: 'Done', States: { Done: { Type: 'Succeed' } } };
    sfn = new LocalStepFunctions({ definition, validatedFile: validatedFileFor(definition), stateMachineArn: ARN, taskHandlers: {} });
    endpoint = await startLocalSfnEndpoint(sfn);
    writeLocalFile(dir, { sfnEndpoint: endpoint.endpoint, bucket: 'mlpipe-console-process', stateMachineArn: ARN });
  });

  afterAll(async () => {
    for (const c of consoles) c.stop();
    await sfn.close();
    await endpoint.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('starts the child at the first connection and serves its pages through the printed address, past a client that reset', async () => {
    // GIVEN a lazy console on a local run with one finished run
    sfn.startExecution({ name: 'seen-through-the-console', input: '{}' });
    const web = await spawnConsole(dir, { port: 0, lazy: true });
    consoles.push(web);
    let started = false;
    // (Its failure is the test's failure, told by the fetch below: not an unhandled rejection after it.)
    void web.ready.then(() => (started = true), () => undefined);
    await new Promise((r) => setImmediate(r));
    expect(started).toBe(false);

    // WHEN a client connects, writes and resets while the child is starting (its parked socket errors with
    // ECONNRESET: uncaught, that ended the run), and then a browser opens the address (the child is not
    // running yet: the request waits for it)
    const port = Number(new URL(web.url).port);
    const accepted = acceptedSocket(port);
    const reset = connect(port, '127.0.0.1');
    reset.write('GET /api/runs HTTP/1.1\r\nhost: x\r\n');
    // The console's side of it, once it has read what was written (reset earlier, and the kernel may close
    // it with no error to handle); the console's connection callback (start, park) ran before that.
    const parked = await accepted;
    await once(parked, 'readable');
    // (Not events.once: it rejects at the 'error' this awaits.)
    const closed = new Promise<boolean>((resolve) => parked.once('close', resolve));
    reset.resetAndDestroy();
    // The reset reached it as an error (close's hadError), which the console handled: no uncaught ECONNRESET.
    expect(await closed).toBe(true);
    const res = await fetch(`${web.url}/api/runs`);

    // THEN the child started and answered it
    expect(res.status).toBe(200);
    expect(started).toBe(true);
    expect(JSON.stringify(await res.json())).toContain('seen-through-the-console');
    const again = await fetch(`${web.url}/`);
    expect(again.status).toBe(200);
    expect(await again.text()).toContain('seen-through-the-console');
  });

  it('answers 503 with the child\'s own words when it cannot start', async () => {
    const web = await spawnConsole(join(dir, 'no-such-state-dir'), { port: 0, lazy: true });
    consoles.push(web);
    const res = await fetch(`${web.url}/`);
    expect(res.status).toBe(503);
    expect(await res.text()).toMatch(/The console is not running: the console ended \(exit 1\): .*No local pipeline: .*local\.json does not exist/);
    await expect(web.ready).rejects.toThrow(/No local pipeline/);
  });
});
