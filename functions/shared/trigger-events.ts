/**
 * What can start a pipeline run, as it arrives in the starter's SQS messages: an EventBridge event for an
 * ECR image push or an S3 object created under a pipeline's data prefix, or the payload an EventBridge
 * Scheduler schedule sends (`{"mlpipe":"schedule","repositoryName":"...","scheduledTime":"<aws.scheduler.scheduled-time>"}`).
 * Parsed with zod; a message that is none of these is reported with the reason, never guessed at.
 */
import * as z from 'zod';

/** The EventBridge envelope both AWS event kinds share. */
const awsEventSchema = z.object({
  id: z.string().optional(),
  account: z.string().regex(/^\d{12}$/, 'account must be a 12-digit AWS account id'),
  region: z.string().regex(/^[a-z]{2}(-[a-z]+)+-\d$/, 'region must be an AWS region like us-east-1'),
  time: z.string().optional(),
});

const ecrPushSchema = awsEventSchema.extend({
  source: z.literal('aws.ecr'),
  'detail-type': z.literal('ECR Image Action'),
  detail: z.object({
    'action-type': z.literal('PUSH'),
    result: z.literal('SUCCESS'),
    'repository-name': z.string().min(2).max(256),
    'image-digest': z.string().regex(/^sha256:[a-f0-9]{64}$/, 'image-digest must be sha256:<64 hex>'),
    'image-tag': z.string().optional(),
  }),
});

const s3CreatedSchema = awsEventSchema.extend({
  source: z.literal('aws.s3'),
  'detail-type': z.literal('Object Created'),
  detail: z.object({
    bucket: z.object({ name: z.string().min(3) }),
    object: z.object({ key: z.string().min(1), etag: z.string().optional(), 'version-id': z.string().optional() }),
  }),
});

const scheduleSchema = z.object({
  mlpipe: z.literal('schedule'),
  repositoryName: z.string().min(2).max(256),
  /** ISO time of the scheduled invocation; one run per scheduled time. */
  scheduledTime: z.iso.datetime({ offset: true }).optional(),
});

export type TriggerEvent =
  | { kind: 'ecr-push'; repositoryName: string; account: string; region: string; imageDigest: string; imageTag?: string; eventId?: string }
  | { kind: 's3-data'; account: string; region: string; bucket: string; key: string; etag: string; eventId?: string }
  | { kind: 'schedule'; repositoryName: string; scheduledTime: string };

export type ParseResult = { ok: true; event: TriggerEvent } | { ok: false; reason: 'malformed-json' | 'unknown-event'; detail: string };

function issues(err: z.ZodError): string {
  return err.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');
}

/**
 * Parses one SQS message body. `sentAt` (the message's SentTimestamp) stands in for a schedule payload's
 * scheduledTime when the schedule does not send one: it is the same on every redelivery.
 */
export function parseTriggerMessage(body: string, sentAt: Date): ParseResult {
  let value: unknown;
  try {
    value = JSON.parse(body);
  } catch (err) {
    return { ok: false, reason: 'malformed-json', detail: (err as Error).message };
  }
  const source = (value as { source?: unknown; mlpipe?: unknown } | null) ?? {};
  if (source.source === 'aws.ecr') {
    const r = ecrPushSchema.safeParse(value);
    if (!r.success) return { ok: false, reason: 'unknown-event', detail: `ECR event: ${issues(r.error)}` };
    const d = r.data.detail;
    return {
      ok: true,
      event: {
        kind: 'ecr-push',
        repositoryName: d['repository-name'],
        account: r.data.account,
        region: r.data.region,
        imageDigest: d['image-digest'],
        ...(d['image-tag'] ? { imageTag: d['image-tag'] } : {}),
        ...(r.data.id ? { eventId: r.data.id } : {}),
      },
    };
  }
  if (source.source === 'aws.s3') {
    const r = s3CreatedSchema.safeParse(value);
    if (!r.success) return { ok: false, reason: 'unknown-event', detail: `S3 event: ${issues(r.error)}` };
    const o = r.data.detail.object;
    return {
      ok: true,
      event: {
        kind: 's3-data',
        account: r.data.account,
        region: r.data.region,
        bucket: r.data.detail.bucket.name,
        key: o.key,
        // Without an etag (not sent for every kind of write) the version id, else the event id, makes it unique.
        etag: o.etag ?? o['version-id'] ?? r.data.id ?? '',
        ...(r.data.id ? { eventId: r.data.id } : {}),
      },
    };
  }
  if (source.mlpipe === 'schedule') {
    const r = scheduleSchema.safeParse(value);
    if (!r.success) return { ok: false, reason: 'unknown-event', detail: `schedule payload: ${issues(r.error)}` };
    return {
      ok: true,
      event: { kind: 'schedule', repositoryName: r.data.repositoryName, scheduledTime: r.data.scheduledTime ?? sentAt.toISOString() },
    };
  }
  return { ok: false, reason: 'unknown-event', detail: 'not an ECR push, S3 Object Created or mlpipe schedule event' };
}
