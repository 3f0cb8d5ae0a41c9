/**
 * The approval store, approvals/<id>.json: one record per execution holding the Step Functions task token
 * (never logged, never shown), the evaluation the approver is asked about, and the decision once made.
 * `decideApproval` is the one way a decision is made — by the approval page and by `mlpipe approve`.
 *
 * Concurrency: the task token is the lock. Step Functions accepts exactly one SendTaskSuccess/Failure
 * per token, so two racing deciders cannot both win; the loser gets TaskTimedOut and is told the request
 * was decided. The record write uses S3 conditional writes (IfMatch on the ETag read before deciding);
 * AWS S3 enforces it, s3rver (local mode) ignores it — there a loser that marks the record expired can
 * briefly race the winner's write, and the winner then rewrites its decision unconditionally.
 */
import { createHash } from 'node:crypto';
import { GetObjectCommand, NoSuchKey, PutObjectCommand } from '@aws-sdk/client-s3';
import { SendTaskFailureCommand, SendTaskSuccessCommand } from '@aws-sdk/client-sfn';
import * as z from 'zod';
import { approvalId } from './approval-link';
import { putJson, s3Client, sfnClient } from './clients';
import { ApprovalLinkError, InvalidInputError, S3UnavailableError } from './errors';
import { artifactBucket, type ProductionComparison } from './registry';
import type { ApprovalDecision, EvaluationResult } from './types';

export { approvalId };
export type { ProductionComparison };

export type ApprovalStatus = 'pending' | 'approved' | 'rejected' | 'expired';

export interface ApprovalRecord {
  id: string;
  executionArn: string;
  modelName: string;
  version: string;
  image: string;
  /** Secret: whoever holds it can decide. Stays in S3; never logged, never rendered. */
  taskToken: string;
  createdAt: string;
  expiresAt: string;
  evaluation: EvaluationResult;
  production: ProductionComparison | null;
  status: ApprovalStatus;
  decision?: ApprovalDecision;
  expiredAt?: string;
}

/** What callers outside this module get: the record without its task token. */
export type ApprovalView = Omit<ApprovalRecord, 'taskToken'>;

export function approvalKey(id: string): string {
  if (!/^[0-9a-f]{32}$/.test(id)) throw new ApprovalLinkError(`"${id.slice(0, 80)}" is not an approval id.`, 'malformed');
  return `approvals/${id}.json`;
}

/**
 * approvals/<id>.notified.json marks that the email went out. A separate object, so that RequestApproval
 * never rewrites the request record after its links exist (a fast click could otherwise be overwritten).
 */
function notifiedKey(id: string): string {
  return approvalKey(id).replace(/\.json$/, '.notified.json');
}

function view(record: ApprovalRecord): ApprovalView {
  const { taskToken: _secret, ...rest } = record;
  return rest;
}

// ---------------------------------------------------------------------------------------------------
// S3 with ETags

interface Stored {
  record: ApprovalRecord;
  etag: string | undefined;
}

async function getText(key: string): Promise<{ text: string; etag: string | undefined } | undefined> {
  try {
    const out = await s3Client().send(new GetObjectCommand({ Bucket: artifactBucket(), Key: key }));
    return { text: out.Body ? await out.Body.transformToString('utf8') : '', etag: out.ETag };
  } catch (err) {
    if (err instanceof NoSuchKey || (err as { name?: string }).name === 'NoSuchKey') return undefined;
    throw new S3UnavailableError(`Reading s3://${artifactBucket()}/${key} failed: ${(err as Error).message}`);
  }
}

async function load(id: string): Promise<Stored | undefined> {
  const key = approvalKey(id);
  // S3 writes are atomic; s3rver (local mode) can serve an object mid-write, so a torn read is retried.
  for (let attempt = 1; ; attempt++) {
    const got = await getText(key);
    if (!got) return undefined;
    try {
      return { record: JSON.parse(got.text) as ApprovalRecord, etag: got.etag };
    } catch (err) {
      if (attempt >= 5) throw new S3UnavailableError(`Approval ${id} is not valid JSON: ${(err as Error).message}`);
      await new Promise((resolve) => setTimeout(resolve, 40 * attempt));
    }
  }
}

/** Writes the record; with `ifMatch`, only if nobody changed it since it was read. Returns false on a lost race. */
async function store(record: ApprovalRecord, ifMatch?: string): Promise<boolean> {
  try {
    await s3Client().send(
      new PutObjectCommand({
        Bucket: artifactBucket(),
        Key: approvalKey(record.id),
        Body: JSON.stringify(record, null, 2),
        ContentType: 'application/json',
        ...(ifMatch ? { IfMatch: ifMatch } : {}),
      }),
    );
    return true;
  } catch (err) {
    const status = (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
    if (status === 412 || status === 409) return false;
    throw new S3UnavailableError(`Writing approval ${record.id} failed: ${(err as Error).message}`);
  }
}

// ---------------------------------------------------------------------------------------------------
// Reads and the request side

export async function getApproval(id: string): Promise<ApprovalView | undefined> {
  const stored = await load(id);
  return stored ? view(stored.record) : undefined;
}

/**
 * Writes a pending approval for RequestApproval. Idempotent: a retried invocation with the same task token
 * keeps the existing record (and, if the email went out, says so, so it is not sent twice); a new token (a
 * new attempt of the task) replaces it.
 */
export async function openApproval(
  request: Omit<ApprovalRecord, 'id' | 'status' | 'decision' | 'expiredAt'>,
): Promise<{ record: ApprovalView; alreadyNotified: boolean }> {
  const id = approvalId(request.executionArn);
  const existing = await load(id);
  if (existing && existing.record.taskToken === request.taskToken) {
    const notified = await getText(notifiedKey(id));
    const marker = notified ? (JSON.parse(notified.text) as { token?: string }) : undefined;
    return { record: view(existing.record), alreadyNotified: marker?.token === tokenDigest(request.taskToken) };
  }
  const record: ApprovalRecord = { ...request, id, status: 'pending' };
  await store(record);
  return { record: view(record), alreadyNotified: false };
}

/** Identifies the task attempt a marker belongs to without storing the token twice. */
function tokenDigest(taskToken: string): string {
  return createHash('sha256').update(taskToken).digest('hex').slice(0, 16);
}

export async function markNotified(id: string, taskToken: string, messageId: string): Promise<void> {
  await putJson(artifactBucket(), notifiedKey(id), { id, messageId, token: tokenDigest(taskToken), at: new Date().toISOString() });
}

/** Marks a still-pending approval expired (the state machine timed it out). Returns the record, if any. */
export async function expireApproval(id: string, at = new Date()): Promise<ApprovalView | undefined> {
  const stored = await load(id);
  if (!stored) return undefined;
  if (stored.record.status !== 'pending') return view(stored.record);
  const record: ApprovalRecord = { ...stored.record, status: 'expired', expiredAt: at.toISOString() };
  if (!(await store(record, stored.etag))) return getApproval(id);
  return view(record);
}

// ---------------------------------------------------------------------------------------------------
// Deciding

const DecideInput = z.object({
  id: z.string().regex(/^[0-9a-f]{32}$/, 'id must be a 32-character hex approval id'),
  decision: z.enum(['approve', 'reject'], { message: 'decision must be "approve" or "reject"' }),
  by: z.string().trim().min(1, 'by must name who decides').max(256, 'by must be at most 256 characters'),
  from: z.string().trim().min(1, 'from must say where the decision came from').max(256, 'from must be at most 256 characters'),
  comment: z.string().trim().max(1000, 'comment must be at most 1000 characters').optional(),
});
export type DecideApprovalInput = z.input<typeof DecideInput>;

function alreadyDecided(record: ApprovalRecord): ApprovalLinkError {
  if (record.status === 'expired' || !record.decision) {
    return new ApprovalLinkError(`The approval request for ${record.modelName} ${record.version} has expired.`, 'expired');
  }
  const d = record.decision;
  return new ApprovalLinkError(
    `${record.modelName} ${record.version} was already ${d.decision === 'approve' ? 'approved' : 'rejected'} by ${d.by} at ${d.at}.`,
    'decided',
  );
}

/** Step Functions' answers that mean the token can no longer be used. */
const DEAD_TOKEN = new Set(['TaskTimedOut', 'TaskDoesNotExist', 'InvalidToken']);

/**
 * Approves or rejects: SendTaskSuccess (output = the ApprovalDecision) or SendTaskFailure (error
 * ApprovalRejected, cause = the decision as JSON), then records the decision. Throws ApprovalLinkError
 * 'unknown' | 'decided' | 'expired'; anything else (Step Functions or S3 unreachable) is transient.
 */
export async function decideApproval(input: DecideApprovalInput, now = new Date()): Promise<ApprovalView> {
  const parsed = DecideInput.safeParse(input);
  if (!parsed.success) {
    throw new InvalidInputError(`Invalid approval decision: ${parsed.error.issues.map((i) => i.message).join('; ')}.`);
  }
  const { id, decision, by, from, comment } = parsed.data;
  const stored = await load(id);
  if (!stored) throw new ApprovalLinkError(`No approval request ${id} exists.`, 'unknown');
  const { record, etag } = stored;
  if (record.status !== 'pending') throw alreadyDecided(record);
  if (now.getTime() > Date.parse(record.expiresAt)) {
    await expireApproval(id, now);
    throw new ApprovalLinkError(`The approval request for ${record.modelName} ${record.version} expired at ${record.expiresAt}.`, 'expired');
  }

  const made: ApprovalDecision = { decision, by, at: now.toISOString(), from, ...(comment ? { comment } : {}) };
  try {
    if (decision === 'approve') {
      await sfnClient().send(new SendTaskSuccessCommand({ taskToken: record.taskToken, output: JSON.stringify(made) }));
    } else {
      await sfnClient().send(
        new SendTaskFailureCommand({ taskToken: record.taskToken, error: 'ApprovalRejected', cause: JSON.stringify(made) }),
      );
    }
  } catch (err) {
    const name = (err as { name?: string }).name ?? '';
    if (!DEAD_TOKEN.has(name)) throw err;
    // Someone else may have just won the race for this token; otherwise the execution moved on without us.
    const now2 = await load(id);
    if (now2 && (now2.record.status === 'approved' || now2.record.status === 'rejected')) throw alreadyDecided(now2.record);
    await expireApproval(id, now);
    throw new ApprovalLinkError(
      `The pipeline is no longer waiting for a decision on ${record.modelName} ${record.version} (it timed out or was stopped).`,
      'expired',
    );
  }

  const decided: ApprovalRecord = { ...record, status: decision === 'approve' ? 'approved' : 'rejected', decision: made };
  // Step Functions accepted this decision, so it is the truth: if the record changed meanwhile, write anyway.
  if (!(await store(decided, etag))) await store(decided);
  return view(decided);
}
