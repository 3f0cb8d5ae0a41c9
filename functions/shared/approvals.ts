/**
 * The approval store, approvals/<id>.json: one record per execution holding the Step Functions task token
 * (never logged, never shown), the evaluation the approver is asked about, and the decision once made.
 * `decideApproval` is the one way a decision is made — by the approval page and by `mlpipe approve`.
 *
 * Concurrency: the record is the lock. A decider first claims the pending record with a conditional write
 * (If-Match on the ETag it read; S3 and the local S3 both enforce it), and only the one whose write lands
 * calls SendTaskSuccess/Failure; every other decider loses the write, reads the winner's claim and is told
 * who decided (409), without touching Step Functions. Deciding the other way round — the token first —
 * left a window between Step Functions accepting the winner and the winner's record write, in which a
 * loser saw a dead token and a still-pending record and called the request expired.
 * Reads are retried when they come back torn (a body cut off mid-transfer, or not JSON), so a racer gets
 * the record, not a 502.
 */
import { createHash } from 'node:crypto';
import { GetObjectCommand, NoSuchKey, PutObjectCommand } from '@aws-sdk/client-s3';
import { SendTaskFailureCommand, SendTaskSuccessCommand } from '@aws-sdk/client-sfn';
import * as z from 'zod';
import { approvalId } from './approval-link';
import { putJson, s3Client, sfnClient } from './clients';
import { ApprovalLinkError, InvalidInputError, S3UnavailableError } from './errors';
import type { RunFacts } from './approval-facts';
import { artifactBucket, type ProductionComparison } from './registry';
import type { ApprovalDecision, EvaluationResult } from './types';

export { approvalId };
export type { ProductionComparison };

/** `deciding`: a decider holds the claim and is telling Step Functions; `decision` is what it sends. */
export type ApprovalStatus = 'pending' | 'deciding' | 'approved' | 'rejected' | 'expired';

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
  /** What else the approver weighs: trigger, data and its digest, hyperparameters, training time (absent on records made before). */
  facts?: RunFacts;
  status: ApprovalStatus;
  decision?: ApprovalDecision;
  /** When the current `deciding` claim was taken; a claim older than CLAIM_TTL_MS may be taken over. */
  claimedAt?: string;
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

/** A read that came back incomplete: its body was cut off, or is not the JSON a whole object would be. */
class TornReadError extends Error {
  override readonly name = 'TornReadError';
}

async function getText(key: string): Promise<{ text: string; etag: string | undefined } | undefined> {
  let out;
  try {
    out = await s3Client().send(new GetObjectCommand({ Bucket: artifactBucket(), Key: key }));
  } catch (err) {
    if (err instanceof NoSuchKey || (err as { name?: string }).name === 'NoSuchKey') return undefined;
    // The SDK has already retried what it deems transient (5xx, throttling, a refused connection).
    throw new S3UnavailableError(`Reading s3://${artifactBucket()}/${key} failed: ${(err as Error).message}`);
  }
  try {
    return { text: out.Body ? await out.Body.transformToString('utf8') : '', etag: out.ETag };
  } catch (err) {
    // The response started but its body did not arrive whole (connection cut, Content-Length short): the
    // SDK's retries are over by then, and the next GET gets the whole object.
    throw new TornReadError(`Reading s3://${artifactBucket()}/${key} was cut off: ${(err as Error).message}`);
  }
}

/** Attempts at a whole read of one record before giving up as S3 being unavailable. */
const READ_ATTEMPTS = 5;

async function load(id: string): Promise<Stored | undefined> {
  const key = approvalKey(id);
  for (let attempt = 1; ; attempt++) {
    try {
      const got = await getText(key);
      if (!got) return undefined;
      try {
        return { record: JSON.parse(got.text) as ApprovalRecord, etag: got.etag };
      } catch (err) {
        throw new TornReadError(`Approval ${id} is not valid JSON: ${(err as Error).message}`);
      }
    } catch (err) {
      if (!(err instanceof TornReadError)) throw err;
      if (attempt >= READ_ATTEMPTS) throw new S3UnavailableError(`${err.message} (${READ_ATTEMPTS} attempts)`);
      await new Promise((resolve) => setTimeout(resolve, 40 * attempt));
    }
  }
}

/**
 * Writes the record; with `ifMatch`, only if nobody changed it since it was read. Returns the new ETag, or
 * undefined when the condition did not hold (a lost race: 412, or 409 when another write landed meanwhile).
 */
async function store(record: ApprovalRecord, ifMatch?: string): Promise<{ etag: string | undefined } | undefined> {
  try {
    const out = await s3Client().send(
      new PutObjectCommand({
        Bucket: artifactBucket(),
        Key: approvalKey(record.id),
        Body: JSON.stringify(record, null, 2),
        ContentType: 'application/json',
        ...(ifMatch ? { IfMatch: ifMatch } : {}),
      }),
    );
    return { etag: out.ETag };
  } catch (err) {
    const status = (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
    if (ifMatch && (status === 412 || status === 409)) return undefined;
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

/**
 * Marks an undecided approval expired (the state machine timed it out, or Step Functions no longer knows the
 * token). A claim in flight is expired too: its decider's SendTask call then fails on the dead token.
 * Returns the record, if any.
 */
export async function expireApproval(id: string, at = new Date()): Promise<ApprovalView | undefined> {
  for (let attempt = 1; attempt <= WRITE_ATTEMPTS; attempt++) {
    const stored = await load(id);
    if (!stored) return undefined;
    if (stored.record.status !== 'pending' && stored.record.status !== 'deciding') return view(stored.record);
    const { decision: _inFlight, claimedAt: _claimed, ...undecided } = stored.record;
    const record: ApprovalRecord = { ...undecided, status: 'expired', expiredAt: at.toISOString() };
    if (await store(record, stored.etag)) return view(record);
    // Someone wrote first (a decision landed): look again.
  }
  return getApproval(id);
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

/** Conditional writes of one record tried before the last reading stands (each loss means another writer moved it on). */
const WRITE_ATTEMPTS = 3;

/**
 * How long a decider's claim holds. Past it the decider is presumed gone (its Lambda timed out between the
 * claim and Step Functions' answer) and another may decide: the token settles which of them counts.
 */
export const CLAIM_TTL_MS = 2 * 60_000;

function claimHeld(record: ApprovalRecord, now: Date): boolean {
  return record.status === 'deciding' && now.getTime() - Date.parse(record.claimedAt ?? '') < CLAIM_TTL_MS;
}

function alreadyDecided(record: ApprovalRecord): ApprovalLinkError {
  if (record.status === 'expired' || !record.decision) {
    return new ApprovalLinkError(`The approval request for ${record.modelName} ${record.version} has expired.`, 'expired');
  }
  const d = record.decision;
  const verb = d.decision === 'approve' ? 'approved' : 'rejected';
  return new ApprovalLinkError(
    record.status === 'deciding'
      ? `${record.modelName} ${record.version} is being ${verb} by ${d.by} (since ${d.at}).`
      : `${record.modelName} ${record.version} was already ${verb} by ${d.by} at ${d.at}.`,
    'decided',
  );
}

/** Step Functions' answers that mean the token can no longer be used. */
const DEAD_TOKEN = new Set(['TaskTimedOut', 'TaskDoesNotExist', 'InvalidToken']);

/**
 * Claims the pending record for `made`: returns the claimed record and its ETag, or throws what the record
 * says when someone else holds or has made the decision (ApprovalLinkError 'decided' | 'expired').
 */
async function claim(id: string, made: ApprovalDecision, now: Date): Promise<Stored & { record: ApprovalRecord }> {
  for (let attempt = 1; ; attempt++) {
    const stored = await load(id);
    if (!stored) throw new ApprovalLinkError(`No approval request ${id} exists.`, 'unknown');
    const { record } = stored;
    const open = record.status === 'pending' || (record.status === 'deciding' && !claimHeld(record, now));
    if (!open) throw alreadyDecided(record);
    if (now.getTime() > Date.parse(record.expiresAt)) {
      await expireApproval(id, now);
      throw new ApprovalLinkError(`The approval request for ${record.modelName} ${record.version} expired at ${record.expiresAt}.`, 'expired');
    }
    const claimed: ApprovalRecord = { ...record, status: 'deciding', decision: made, claimedAt: now.toISOString() };
    const written = await store(claimed, stored.etag);
    if (written) return { record: claimed, etag: written.etag };
    // Lost the conditional write: another decider (or the timeout) got there first; the next read says who.
    if (attempt >= WRITE_ATTEMPTS) throw new S3UnavailableError(`Approval ${id} kept changing while it was being decided.`);
  }
}

/**
 * Approves or rejects: claims the record (conditional write), then SendTaskSuccess (output = the
 * ApprovalDecision) or SendTaskFailure (error ApprovalRejected, cause = the decision as JSON), then records
 * the decision. Throws ApprovalLinkError 'unknown' | 'decided' | 'expired'; anything else (Step Functions or
 * S3 unreachable) is transient, and the claim is released so the same link works again.
 */
export async function decideApproval(input: DecideApprovalInput, now = new Date()): Promise<ApprovalView> {
  const parsed = DecideInput.safeParse(input);
  if (!parsed.success) {
    throw new InvalidInputError(`Invalid approval decision: ${parsed.error.issues.map((i) => i.message).join('; ')}.`);
  }
  const { id, decision, by, from, comment } = parsed.data;
  const made: ApprovalDecision = { decision, by, at: now.toISOString(), from, ...(comment ? { comment } : {}) };
  const { record, etag } = await claim(id, made, now);

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
    if (!DEAD_TOKEN.has(name)) {
      // Nothing was decided: give the request back (unless something else was written meanwhile) and let the caller retry.
      const { decision: _made, claimedAt: _claimed, ...pending } = record;
      await store({ ...pending, status: 'pending' }, etag).catch(() => undefined);
      throw err;
    }
    // We held the claim, so no other decider used the token: the execution moved on (timed out or stopped),
    // unless we took over a stale claim whose holder did get through, and then its record says so.
    const after = await expireApproval(id, now);
    if (after?.decision && (after.status === 'approved' || after.status === 'rejected')) throw alreadyDecided({ ...record, ...after });
    throw new ApprovalLinkError(
      `The pipeline is no longer waiting for a decision on ${record.modelName} ${record.version} (it timed out or was stopped).`,
      'expired',
    );
  }

  const { claimedAt: _claimed, ...claimed } = record;
  const decided: ApprovalRecord = { ...claimed, status: decision === 'approve' ? 'approved' : 'rejected', decision: made };
  // Step Functions accepted this decision, so it is the truth: if the record changed meanwhile, write anyway.
  if (!(await store(decided, etag))) await store(decided);
  return view(decided);
}
