/** Shared pieces of the trigger tests and the burst benchmark: events as EventBridge delivers them, SQS records, a tiny machine. */
import { createHash, randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import type { SQSEvent, SQSRecord } from 'aws-lambda';
import { listenOnLoopback, readBody } from '../../local/http';

export const ACCOUNT = '123456789012';
export const REGION = 'us-east-1';
export const STATE_MACHINE_ARN = `arn:aws:states:${REGION}:${ACCOUNT}:stateMachine:mlpipe-triggers`;

/** One Pass state: starting a run costs microseconds, so what is measured is the starter. */
export const PASS_MACHINE = { StartAt: 'Prepare', States: { Prepare: { Type: 'Pass', End: true } } };

export function digestOf(seed: string): string {
  return `sha256:${createHash('sha256').update(seed).digest('hex')}`;
}

export function ecrPush(repositoryName: string, imageDigest: string, imageTag = 'latest'): object {
  return {
    version: '0',
    id: randomUUID(),
    'detail-type': 'ECR Image Action',
    source: 'aws.ecr',
    account: ACCOUNT,
    time: new Date().toISOString(),
    region: REGION,
    resources: [],
    detail: { result: 'SUCCESS', 'repository-name': repositoryName, 'image-digest': imageDigest, 'action-type': 'PUSH', 'image-tag': imageTag },
  };
}

export function s3Created(bucket: string, key: string, etag: string): object {
  return {
    version: '0',
    id: randomUUID(),
    'detail-type': 'Object Created',
    source: 'aws.s3',
    account: ACCOUNT,
    time: new Date().toISOString(),
    region: REGION,
    resources: [`arn:aws:s3:::${bucket}`],
    detail: { version: '0', bucket: { name: bucket }, object: { key, size: 10, etag }, reason: 'PutObject' },
  };
}

export function record(body: string | object, messageId: string = randomUUID(), sentAt = Date.now()): SQSRecord {
  return {
    messageId,
    receiptHandle: randomUUID(),
    body: typeof body === 'string' ? body : JSON.stringify(body),
    attributes: { ApproximateReceiveCount: '1', SentTimestamp: String(sentAt), SenderId: 'AIDA', ApproximateFirstReceiveTimestamp: String(sentAt) },
    messageAttributes: {},
    md5OfBody: '',
    eventSource: 'aws:sqs',
    eventSourceARN: `arn:aws:sqs:${REGION}:${ACCOUNT}:mlpipe-triggers`,
    awsRegion: REGION,
  };
}

export function batches(records: SQSRecord[], size = 10): SQSEvent[] {
  const out: SQSEvent[] = [];
  for (let i = 0; i < records.length; i += size) out.push({ Records: records.slice(i, i + size) });
  return out;
}

/** Deterministic Fisher-Yates shuffle (mulberry32), so a failing order can be reproduced. */
export function shuffle<T>(items: T[], seed = 42): T[] {
  let a = seed >>> 0;
  const rand = (): number => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const copy = [...items];
  for (let i = copy.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [copy[i], copy[j]] = [copy[j]!, copy[i]!];
  }
  return copy;
}

/**
 * An ECR API stand-in that answers DescribeImages (awsJson1_1) from a map repository → images: the
 * starter asks it for the latest image when data or a schedule triggers a re-run.
 */
export async function startEcrStandIn(images: Record<string, Array<{ digest: string; pushedAt: Date }>>): Promise<{ endpoint: string; stop(): Promise<void> }> {
  const server = createServer((req, res) => {
    void readBody(req).then((bytes) => {
      const body = JSON.parse(bytes?.toString('utf8') || '{}') as { repositoryName?: string };
      const target = String(req.headers['x-amz-target']);
      const list = images[body.repositoryName ?? ''];
      const send = (status: number, payload: object): void => {
        res.writeHead(status, { 'content-type': 'application/x-amz-json-1.1' });
        res.end(JSON.stringify(payload));
      };
      if (target !== 'AmazonEC2ContainerRegistry_V20150921.DescribeImages') return send(400, { __type: 'UnknownOperationException', message: target });
      if (!list) return send(400, { __type: 'RepositoryNotFoundException', message: `repository ${body.repositoryName} not found` });
      send(200, {
        imageDetails: list.map((i) => ({ repositoryName: body.repositoryName, imageDigest: i.digest, imagePushedAt: i.pushedAt.getTime() / 1000 })),
      });
    });
  });
  const { endpoint, stop } = await listenOnLoopback(server);
  return { endpoint, stop };
}
