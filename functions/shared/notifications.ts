/**
 * What mlpipe tells people, over SNS: the approval request email (RequestApproval) and the outcome of a
 * run (Notify). Plain text, because email is the subscriber most topics have. SNS limits: subject <= 100
 * printable ASCII characters, message <= 256 KiB.
 */
import { PublishCommand } from '@aws-sdk/client-sns';
import { snsClient } from './clients';
import { requireEnv } from './config';
import type { ProductionComparison } from './registry';
import type { EvaluationResult } from './types';

const MAX_SUBJECT = 100;
/** Below SNS's 256 KiB so headers and encoding overhead always fit. */
export const MAX_MESSAGE_BYTES = 240 * 1024;

/** SNS rejects subjects with non-ASCII or control characters, or longer than 100 characters. */
export function safeSubject(text: string): string {
  const ascii = text
    .normalize('NFKD')
    .replace(/[^\x20-\x7e]/g, (c) => (/\s/.test(c) ? ' ' : ''))
    .replace(/\s+/g, ' ')
    .trim();
  const subject = ascii.length > MAX_SUBJECT ? `${ascii.slice(0, MAX_SUBJECT - 3)}...` : ascii;
  return subject || 'mlpipe notification';
}

/** Keeps the end of `text` (a log tail matters most at its end) within `maxBytes` of UTF-8. */
export function keepTail(text: string, maxBytes: number): string {
  const buf = Buffer.from(text, 'utf8');
  if (buf.length <= maxBytes) return text;
  const marker = '[... earlier output trimmed ...]\n';
  // Cutting mid-character leaves replacement characters at the start only; drop them.
  const tail = buf.subarray(buf.length - (maxBytes - marker.length)).toString('utf8').replace(/^\uFFFD+/, '');
  return marker + tail;
}

export async function publish(subject: string, message: string): Promise<string> {
  const out = await snsClient().send(
    new PublishCommand({
      TopicArn: requireEnv('NOTIFICATION_TOPIC_ARN'),
      Subject: safeSubject(subject),
      Message: keepTail(message, MAX_MESSAGE_BYTES),
    }),
  );
  if (!out.MessageId) throw new Error('SNS Publish returned no MessageId.');
  return out.MessageId;
}

// ---------------------------------------------------------------------------------------------------
// Formatting

export const fmt = {
  accuracy: (x: number | null | undefined) => (x === null || x === undefined ? 'n/a' : x.toFixed(4)),
  ms: (x: number | null | undefined) => (x === null || x === undefined ? 'n/a' : `${x} ms`),
  rate: (x: number | null | undefined) => (x === null || x === undefined ? 'n/a' : `${Math.round(x * 10000) / 100}%`),
};

/** Candidate vs production, as aligned plain-text rows. */
export function metricsTable(evaluation: EvaluationResult, production: ProductionComparison | null): string {
  const prodLabel = production ? `production ${production.version}` : 'production';
  const rows: [string, string, string][] = [
    ['', 'this model', prodLabel],
    ['accuracy', fmt.accuracy(evaluation.accuracy), production ? fmt.accuracy(production.accuracy) : 'none'],
    ['p95 latency', fmt.ms(evaluation.latencyMsP95), production ? fmt.ms(production.latencyMsP95) : 'none'],
    ['error rate', fmt.rate(evaluation.errorRate), production ? fmt.rate(production.errorRate) : 'none'],
  ];
  const w0 = Math.max(...rows.map((r) => r[0].length));
  const w1 = Math.max(...rows.map((r) => r[1].length));
  return rows.map(([a, b, c]) => `  ${a.padEnd(w0)}  ${b.padEnd(w1)}  ${c}`.trimEnd()).join('\n');
}

export interface ApprovalEmail {
  modelName: string;
  version: string;
  image: string;
  evaluation: EvaluationResult;
  production: ProductionComparison | null;
  approveUrl: string;
  rejectUrl: string;
  expiresAt: string;
}

export function approvalEmail(e: ApprovalEmail): { subject: string; message: string } {
  return {
    subject: `[mlpipe] Approve ${e.modelName} ${e.version} for production?`,
    message: [
      `Model ${e.modelName} version ${e.version} passed its evaluation gate and waits for your decision.`,
      '',
      `Image:      ${e.image}`,
      `Evaluation: ${e.evaluation.summary}`,
      `Samples:    ${e.evaluation.samples}`,
      '',
      metricsTable(e.evaluation, e.production),
      '',
      `Approve: ${e.approveUrl}`,
      '',
      `Reject:  ${e.rejectUrl}`,
      '',
      'Each link opens a confirmation page; nothing happens until you press the button there.',
      `The links expire at ${e.expiresAt}; if nobody decides by then, the model is rejected.`,
      `Report: ${e.evaluation.reportUri}`,
    ].join('\n'),
  };
}
