/**
 * The console only reads: its AWS clients refuse any other command before it is signed or sent
 * (console/read-only.ts), and `mlpipe console` refuses bad options before contacting anything.
 */
import { GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { DescribeExecutionCommand, SFNClient, SendTaskSuccessCommand, StartExecutionCommand } from '@aws-sdk/client-sfn';
import { readOnly, S3_READS, SFN_READS, WriteRefusedError } from '../../console/read-only';
import { main } from '../../cli/main';

// Port 9 on loopback: nothing listens, so a call that gets past the guard fails to connect (offline).
const NOWHERE = { region: 'us-east-1', endpoint: 'http://127.0.0.1:9', credentials: { accessKeyId: 'x', secretAccessKey: 'y' }, maxAttempts: 1 };

describe('console read-only clients', () => {
  it('refuse writes before sending them, and let reads through', async () => {
    const sfn = new SFNClient(NOWHERE);
    readOnly(sfn, SFN_READS);
    readOnly(sfn, SFN_READS); // twice is once
    await expect(sfn.send(new StartExecutionCommand({ stateMachineArn: 'arn:aws:states:us-east-1:0:stateMachine:x' }))).rejects.toThrow(
      new WriteRefusedError('The console only reads: SFNClient StartExecutionCommand refused.'),
    );
    await expect(sfn.send(new SendTaskSuccessCommand({ taskToken: 't', output: '{}' }))).rejects.toBeInstanceOf(WriteRefusedError);
    const read = sfn.send(new DescribeExecutionCommand({ executionArn: 'arn:aws:states:us-east-1:0:execution:x:y' }));
    await expect(read).rejects.not.toBeInstanceOf(WriteRefusedError); // it went out (and found nobody)

    const s3 = new S3Client({ ...NOWHERE, forcePathStyle: true });
    readOnly(s3, S3_READS);
    await expect(s3.send(new PutObjectCommand({ Bucket: 'b', Key: 'k', Body: 'x' }))).rejects.toBeInstanceOf(WriteRefusedError);
    await expect(s3.send(new GetObjectCommand({ Bucket: 'b', Key: 'k' }))).rejects.not.toBeInstanceOf(WriteRefusedError);
  });

  it.each([
    [['--port', 'http'], 'mlpipe console: --port must be a port number (0-65535; 0: any free port), got "http".'],
    [['--port', '70000'], 'mlpipe console: --port must be a port number (0-65535; 0: any free port), got "70000".'],
    [['--exit-with', '0'], 'mlpipe console: --exit-with must be a process id, got "0".'],
    [['extra'], 'mlpipe console: takes no arguments, got "extra".'],
  ])('mlpipe console %j exits 2 naming the problem', async (args, message) => {
    const err: string[] = [];
    const code = await main(['console', ...args], { out: () => undefined, err: (l) => err.push(l) });
    expect({ code, first: err[0] }).toEqual({ code: 2, first: message });
  });
});
