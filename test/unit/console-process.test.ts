/**
 * The console beside `npm start` (console/process.ts): its address answers at once, the child process starts
 * on demand (the first connection) and serves through it (a client resetting while it starts does no harm);
 * a child that cannot start answers 503 with why.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { connect } from 'node:net';
import { join } from 'node:path';
import { spawnConsole, type ConsoleProcess } from '../../console/process';
import { LocalStepFunctions, startLocalSfnEndpoint, type LocalSfnEndpoint } from '../../local/stepfunctions';
import { writeLocalFile } from '../cli/local-file';

const ARN = 'arn:aws:states:us-east-1:000000000000:stateMachine:mlpipe-console-process';

describe('the console child of npm start', () => {
  let dir: string;
  let sfn: LocalStepFunctions;
  let endpoint: LocalSfnEndpoint;
  const consoles: ConsoleProcess[] = [];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'mlpipe-console-process-'));
    sfn = new LocalStepFunctions({ definition: { StartAt: 'Done', States: { Done: { Type: 'Succeed' } } }, stateMachineArn: ARN, taskHandlers: {} });
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
    void web.ready.then(() => (started = true));
    await new Promise((r) => setImmediate(r));
    expect(started).toBe(false);

    // WHEN a client connects, writes and resets while the child is starting (its parked socket errors with
    // ECONNRESET: uncaught, that ended the run), and then a browser opens the address (the child is not
    // running yet: the request waits for it)
    const children = () => process.getActiveResourcesInfo().filter((r) => r === 'ProcessWrap').length;
    const before = children();
    const reset = connect(Number(new URL(web.url).port), '127.0.0.1');
    reset.write('GET /api/runs HTTP/1.1\r\nhost: x\r\n');
    // The console accepted it once the child is spawned (the same callback); a few turns of the event loop
    // later it has read what was written (a reset before that is no error on its side): reset then, parked.
    while (children() === before) await new Promise((r) => setImmediate(r));
    for (let turn = 0; turn < 10; turn++) await new Promise((r) => setImmediate(r));
    reset.resetAndDestroy();
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
