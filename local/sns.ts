/**
 * Local SNS for the local mode and the tests: an HTTP server on 127.0.0.1 that accepts `Publish` the way
 * @aws-sdk/client-sns sends it — the AWS query protocol (form-encoded `Action=Publish&Version=2010-03-31`,
 * answered in XML) — appends each message as one JSON line to `file` and hands it to `onMessage` (the local
 * runner prints it, approval links included). Clients find it through AWS_ENDPOINT_URL_SNS.
 */
import { randomUUID } from 'node:crypto';
import { appendFileSync, mkdirSync } from 'node:fs';
import { createServer, type ServerResponse } from 'node:http';
import { dirname } from 'node:path';
import { listenOnLoopback, readBody } from './http';

export interface LocalSnsMessage {
  messageId: string;
  topicArn: string;
  subject?: string;
  message: string;
  timestamp: string;
}

export interface LocalSns {
  /** e.g. http://127.0.0.1:41234 */
  endpoint: string;
  stop(): Promise<void>;
}

const NS = 'http://sns.amazonaws.com/doc/2010-03-31/';
const MAX_BODY = 512 * 1024;
const MAX_MESSAGE = 256 * 1024;

function xmlEscape(s: string): string {
  return s.replace(/[<>&'"]/g, (c) => `&#${c.charCodeAt(0)};`);
}

function sendError(res: ServerResponse, status: number, code: string, message: string): void {
  const requestId = randomUUID();
  res.writeHead(status, { 'content-type': 'text/xml', 'x-amzn-requestid': requestId });
  res.end(
    `<ErrorResponse xmlns="${NS}"><Error><Type>Sender</Type><Code>${code}</Code><Message>${xmlEscape(message)}</Message></Error>` +
      `<RequestId>${requestId}</RequestId></ErrorResponse>`,
  );
}

export async function startLocalSns(opts: { file: string; onMessage?(message: LocalSnsMessage): void; port?: number }): Promise<LocalSns> {
  mkdirSync(dirname(opts.file), { recursive: true });

  const publish = (params: URLSearchParams, res: ServerResponse) => {
    const topicArn = params.get('TopicArn') ?? params.get('TargetArn') ?? params.get('PhoneNumber');
    const message = params.get('Message');
    const subject = params.get('Subject') ?? undefined;
    if (!topicArn) return sendError(res, 400, 'InvalidParameter', 'Invalid parameter: TopicArn or TargetArn Reason: no value for required parameter');
    if (message === null || message === '') return sendError(res, 400, 'InvalidParameter', 'Invalid parameter: Message Reason: Empty message');
    if (Buffer.byteLength(message, 'utf8') > MAX_MESSAGE) {
      return sendError(res, 400, 'InvalidParameter', 'Invalid parameter: Message too long');
    }
    // The same rules SNS applies to email subjects, so local runs catch what AWS would reject.
    if (subject !== undefined && (subject.length > 100 || /[^\x20-\x7e]/.test(subject) || subject.trim() === '')) {
      return sendError(res, 400, 'InvalidParameter', 'Invalid parameter: Subject');
    }
    const record: LocalSnsMessage = { messageId: randomUUID(), topicArn, message, timestamp: new Date().toISOString() };
    if (subject !== undefined) record.subject = subject;
    appendFileSync(opts.file, `${JSON.stringify(record)}\n`);
    try {
      opts.onMessage?.(record);
    } catch (err) {
      console.error(`local SNS: onMessage failed: ${(err as Error).message}`);
    }
    const requestId = randomUUID();
    res.writeHead(200, { 'content-type': 'text/xml', 'x-amzn-requestid': requestId });
    res.end(
      `<PublishResponse xmlns="${NS}"><PublishResult><MessageId>${record.messageId}</MessageId></PublishResult>` +
        `<ResponseMetadata><RequestId>${requestId}</RequestId></ResponseMetadata></PublishResponse>`,
    );
  };

  const server = createServer((req, res) => {
    void (async () => {
      if (req.method !== 'POST') return sendError(res, 405, 'InvalidAction', 'Only POST is supported (AWS query protocol).');
      const body = await readBody(req, MAX_BODY);
      if (body === undefined) return sendError(res, 413, 'RequestEntityTooLarge', 'Request body too large.');
      const params = new URLSearchParams(body.toString('utf8'));
      const action = params.get('Action');
      if (action === 'Publish') return publish(params, res);
      return sendError(res, 400, 'InvalidAction', `The action ${action ?? '(none)'} is not valid for this local endpoint (only Publish).`);
    })().catch((err: unknown) => {
      if (!res.headersSent) sendError(res, 500, 'InternalError', (err as Error).message);
    });
  });
  const { endpoint, stop } = await listenOnLoopback(server, opts.port);
  return { endpoint, stop };
}

/** Reads the JSON lines `startLocalSns` wrote. */
export function parseSnsLog(text: string): LocalSnsMessage[] {
  return text
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as LocalSnsMessage);
}
