/**
 * A minimal local SQS for the starter's tests, the burst benchmark and local mode: SendMessage,
 * ReceiveMessage (with visibility timeout and short long-polling), DeleteMessage, GetQueueUrl, over the
 * protocol @aws-sdk/client-sqs 3.x speaks (awsJson1_0, `X-Amz-Target: AmazonSQS.<Operation>`).
 * Clients point at it with AWS_ENDPOINT_URL_SQS. Queues are in memory.
 */
import { createHash, randomUUID } from 'node:crypto';
import { createServer, type ServerResponse } from 'node:http';
import { listenOnLoopback, readBody } from './http';

export interface LocalSqsMessage {
  messageId: string;
  body: string;
  /** String attributes by name (what the starter sends). */
  attributes: Record<string, string>;
  sentAt: Date;
  receiveCount: number;
}

export interface LocalSqs {
  endpoint: string;
  queueUrl(name: string): string;
  /** Every message currently in the queue (in flight or not), oldest first: for assertions. */
  messages(name: string): LocalSqsMessage[];
  stop(): Promise<void>;
}

interface Stored extends LocalSqsMessage {
  messageAttributes: Record<string, { DataType: string; StringValue?: string }>;
  invisibleUntil: number;
  receipt?: string;
}

const ACCOUNT = '000000000000';

function md5(text: string): string {
  return createHash('md5').update(text, 'utf8').digest('hex');
}

class SqsError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly status = 400,
  ) {
    super(message);
  }
}

function reply(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/x-amz-json-1.0', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

export async function startLocalSqs(opts: { queues: string[]; port?: number }): Promise<LocalSqs> {
  const queues = new Map<string, Stored[]>(opts.queues.map((q) => [q, []]));
  let endpoint = '';
  const queueOf = (url: unknown): Stored[] => {
    const name = typeof url === 'string' ? url.split('/').pop() ?? '' : '';
    const q = queues.get(name);
    if (!q) throw new SqsError('QueueDoesNotExist', `The specified queue does not exist: ${String(url)}`);
    return q;
  };
  const visible = (q: Stored[]): Stored[] => q.filter((m) => m.invisibleUntil <= Date.now());

  const ops: Record<string, (b: Record<string, unknown>) => Promise<unknown> | unknown> = {
    GetQueueUrl: (b) => {
      queueOf(`/${String(b.QueueName)}`);
      return { QueueUrl: `${endpoint}/${ACCOUNT}/${String(b.QueueName)}` };
    },
    SendMessage: (b) => {
      const q = queueOf(b.QueueUrl);
      if (typeof b.MessageBody !== 'string' || b.MessageBody.length === 0) {
        throw new SqsError('MissingParameter', 'The request must contain the parameter MessageBody.');
      }
      const messageAttributes = (b.MessageAttributes ?? {}) as Stored['messageAttributes'];
      const m: Stored = {
        messageId: randomUUID(),
        body: b.MessageBody,
        attributes: Object.fromEntries(Object.entries(messageAttributes).map(([k, v]) => [k, v.StringValue ?? ''])),
        messageAttributes,
        sentAt: new Date(),
        receiveCount: 0,
        invisibleUntil: Date.now() + 1000 * Number(b.DelaySeconds ?? 0),
      };
      q.push(m);
      return { MessageId: m.messageId, MD5OfMessageBody: md5(m.body) };
    },
    ReceiveMessage: async (b) => {
      const q = queueOf(b.QueueUrl);
      const max = Math.min(10, Math.max(1, Number(b.MaxNumberOfMessages ?? 1)));
      const waitMs = 1000 * Math.min(2, Number(b.WaitTimeSeconds ?? 0));
      const visibilityMs = 1000 * Number(b.VisibilityTimeout ?? 30);
      const deadline = Date.now() + waitMs;
      while (visible(q).length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      const picked = visible(q).slice(0, max);
      for (const m of picked) {
        m.receiveCount += 1;
        m.receipt = randomUUID();
        m.invisibleUntil = Date.now() + visibilityMs;
      }
      return {
        Messages: picked.map((m) => ({
          MessageId: m.messageId,
          ReceiptHandle: m.receipt,
          MD5OfBody: md5(m.body),
          Body: m.body,
          Attributes: { SentTimestamp: String(m.sentAt.getTime()), ApproximateReceiveCount: String(m.receiveCount) },
          ...(Object.keys(m.messageAttributes).length ? { MessageAttributes: m.messageAttributes } : {}),
        })),
      };
    },
    DeleteMessage: (b) => {
      const q = queueOf(b.QueueUrl);
      const i = q.findIndex((m) => m.receipt !== undefined && m.receipt === b.ReceiptHandle);
      if (i < 0) throw new SqsError('ReceiptHandleIsInvalid', `The input receipt handle "${String(b.ReceiptHandle)}" is not valid.`);
      q.splice(i, 1);
      return {};
    },
  };

  const server = createServer((req, res) => {
    void (async () => {
      const target = String(req.headers['x-amz-target'] ?? '');
      const op = target.startsWith('AmazonSQS.') ? target.slice('AmazonSQS.'.length) : '';
      const body = await readBody(req);
      const raw = body?.toString('utf8');
      const handler = ops[op];
      try {
        if (body === undefined) throw new SqsError('RequestEntityTooLarge', 'Request body too large.', 413);
        if (!handler) throw new SqsError('UnsupportedOperation', `Operation ${op || '(none)'} is not supported by the local SQS.`);
        reply(res, 200, await handler(raw ? (JSON.parse(raw) as Record<string, unknown>) : {}));
      } catch (err) {
        const e = err instanceof SqsError ? err : new SqsError('InternalError', (err as Error).message, 500);
        reply(res, e.status, { __type: `com.amazonaws.sqs#${e.code}`, message: e.message }, {
          'x-amzn-query-error': `AWS.SimpleQueueService.${e.code};Sender`,
        });
      }
    })();
  });
  const listener = await listenOnLoopback(server, opts.port);
  endpoint = listener.endpoint;
  return {
    endpoint,
    queueUrl: (name) => `${endpoint}/${ACCOUNT}/${name}`,
    messages: (name) =>
      (queues.get(name) ?? []).map(({ messageId, body, attributes, sentAt, receiveCount }) => ({ messageId, body, attributes, sentAt, receiveCount })),
    stop: listener.stop,
  };
}
