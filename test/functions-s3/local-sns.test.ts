/** Local SNS speaks the protocol @aws-sdk/client-sns really sends (AWS query) and keeps every message. */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PublishCommand, SNSClient } from '@aws-sdk/client-sns';
import { LOCAL_AWS_ENV } from '../../local/s3';
import { startLocalSns, parseSnsLog, type LocalSns, type LocalSnsMessage } from '../../local/sns';

describe('local SNS', () => {
  let sns: LocalSns;
  let dir: string;
  let client: SNSClient;
  const seen: LocalSnsMessage[] = [];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'mlpipe-sns-'));
    sns = await startLocalSns({ file: join(dir, 'out', 'sns.jsonl'), onMessage: (m) => seen.push(m) });
    client = new SNSClient({
      endpoint: sns.endpoint,
      region: LOCAL_AWS_ENV.AWS_REGION,
      credentials: { accessKeyId: LOCAL_AWS_ENV.AWS_ACCESS_KEY_ID, secretAccessKey: LOCAL_AWS_ENV.AWS_SECRET_ACCESS_KEY },
    });
  });
  afterAll(async () => {
    client.destroy();
    await sns.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('publishes through the SDK, returns a MessageId, writes a JSON line and calls onMessage', async () => {
    const TopicArn = 'arn:aws:sns:us-east-1:000000000000:t';
    const message = 'Approve: http://127.0.0.1:8787/approvals/abc?action=approve&exp=1&sig=ff\nünïcode & <xml>';
    const out = await client.send(new PublishCommand({ TopicArn, Subject: '[mlpipe] Approve fashion v1?', Message: message }));
    expect(out.MessageId).toMatch(/^[0-9a-f-]{36}$/);
    // The last line and message: the other test may have run first.
    const lines = parseSnsLog(readFileSync(join(dir, 'out', 'sns.jsonl'), 'utf8')).slice(-1);
    expect(lines).toEqual([expect.objectContaining({ messageId: out.MessageId, topicArn: TopicArn, subject: '[mlpipe] Approve fashion v1?', message })]);
    expect(seen.slice(-1).map((m) => m.messageId)).toEqual([out.MessageId]);
  });

  it('rejects what SNS rejects: a subject over 100 characters or with non-ASCII, an empty message', async () => {
    const TopicArn = 'arn:aws:sns:us-east-1:000000000000:t';
    const before = seen.length;
    await expect(client.send(new PublishCommand({ TopicArn, Subject: 'x'.repeat(101), Message: 'm' }))).rejects.toMatchObject({
      name: 'InvalidParameterException',
    });
    await expect(client.send(new PublishCommand({ TopicArn, Subject: 'déjà', Message: 'm' }))).rejects.toMatchObject({
      name: 'InvalidParameterException',
    });
    await expect(client.send(new PublishCommand({ TopicArn, Message: '' }))).rejects.toMatchObject({ name: 'InvalidParameterException' });
    expect(seen).toHaveLength(before); // none of them was kept
  });
});
