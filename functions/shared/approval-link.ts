/**
 * Approval links (decision 9): `${baseUrl}/approvals/<id>?action=approve|reject&exp=<unix>&sig=<hex>`, where
 * sig = HMAC-SHA256(secret, "<id>.<action>.<exp>"). The link proves which action its holder may take and
 * until when; it grants nothing by itself (GET only shows a page; POST decides).
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { APPROVAL_SECRET, APPROVAL_SECRET_ARN, currentSetting } from './settings';
import { ApprovalLinkError, ConfigurationError } from './errors';

export type ApprovalAction = 'approve' | 'reject';

/** One approval per execution, derived so the CLI can find it from the execution ARN alone. */
export function approvalId(executionArn: string): string {
  return createHash('sha256').update(executionArn).digest('hex').slice(0, 32);
}

const ID = /^[0-9a-f]{32}$/;
const SIG = /^[0-9a-f]{64}$/;
const MIN_SECRET_LENGTH = 16;

/** HMAC-SHA256 of a link's payload, hex: what every signed link (approval, retry-link.ts) carries as `sig`. */
export function linkSignature(secret: string, payload: string): string {
  return createHmac('sha256', secret).update(payload).digest('hex');
}

/**
 * The checks every signed link shares once its own fields are well-formed: `exp` and `sig` well-formed
 * (malformed), the signature of `payload(exp)` in constant time (forged), then the clock (expired) — so
 * only genuine links ever learn that they expired. Returns the expiry (Unix seconds); `fail` makes the
 * link kind's own error.
 */
export function checkSignedLink(
  opts: { payload: (exp: number) => string; exp: string | undefined; sig: string | undefined; secret: string; now?: Date },
  fail: (message: string, reason: 'malformed' | 'forged' | 'expired') => Error,
): number {
  const { exp, sig } = opts;
  if (!exp || !/^\d{1,12}$/.test(exp)) throw fail('The link\'s "exp" must be a Unix time in seconds.', 'malformed');
  if (!sig || !SIG.test(sig)) throw fail('The link\'s "sig" must be 64 hex characters.', 'malformed');
  const expiresAt = Number(exp);
  const expected = Buffer.from(linkSignature(opts.secret, opts.payload(expiresAt)), 'hex');
  if (!timingSafeEqual(expected, Buffer.from(sig, 'hex'))) {
    throw fail('The link\'s signature does not match: it was altered or not issued by this pipeline.', 'forged');
  }
  const now = Math.floor((opts.now ?? new Date()).getTime() / 1000);
  if (now > expiresAt) throw fail(`The link expired at ${new Date(expiresAt * 1000).toISOString()}.`, 'expired');
  return expiresAt;
}

function signature(secret: string, id: string, action: ApprovalAction, exp: number): string {
  return linkSignature(secret, `${id}.${action}.${exp}`);
}

export interface LinkParts {
  baseUrl: string;
  id: string;
  action: ApprovalAction;
  /** Unix seconds; the link stops working after this. */
  expiresAt: number;
  secret: string;
}

export function signLink({ baseUrl, id, action, expiresAt, secret }: LinkParts): string {
  const exp = Math.floor(expiresAt);
  const sig = signature(secret, id, action, exp);
  const query = new URLSearchParams({ action, exp: String(exp), sig });
  return `${baseUrl.replace(/\/+$/, '')}/approvals/${encodeURIComponent(id)}?${query.toString()}`;
}

export interface VerifiedLink {
  id: string;
  action: ApprovalAction;
  expiresAt: number;
}

/**
 * Checks a link's query against its id. Shape first (malformed), then the signature in constant time
 * (forged), then the clock (expired) — so only genuine links ever learn that they expired.
 */
export function verifyLink(opts: {
  id: string | undefined;
  action: string | undefined;
  exp: string | undefined;
  sig: string | undefined;
  secret: string;
  now?: Date;
}): VerifiedLink {
  const { id, action, exp, sig } = opts;
  if (!id || !ID.test(id)) throw new ApprovalLinkError('The link names no valid approval id.', 'malformed');
  if (action !== 'approve' && action !== 'reject') {
    throw new ApprovalLinkError('The link\'s "action" must be approve or reject.', 'malformed');
  }
  const expiresAt = checkSignedLink({ payload: (e) => `${id}.${action}.${e}`, exp, sig, secret: opts.secret, now: opts.now }, (m, r) => new ApprovalLinkError(m, r));
  return { id, action, expiresAt };
}

let cachedSecret: Promise<string> | undefined;

/**
 * The HMAC key: APPROVAL_SECRET (local mode) or the Secrets Manager secret APPROVAL_SECRET_ARN (AWS),
 * fetched once per container. Never logged.
 */
export function approvalSecret(): Promise<string> {
  cachedSecret ??= loadSecret().catch((err: unknown) => {
    cachedSecret = undefined; // a transient Secrets Manager failure must not stick for the container's life
    throw err;
  });
  return cachedSecret;
}

/** Forget the cached secret (tests switch secrets). */
export function resetApprovalSecret(): void {
  cachedSecret = undefined;
}

async function loadSecret(): Promise<string> {
  const direct = currentSetting(APPROVAL_SECRET);
  const arn = currentSetting(APPROVAL_SECRET_ARN);
  let secret: string | undefined;
  if (direct !== undefined) {
    secret = direct;
  } else if (arn !== undefined) {
    const out = await new SecretsManagerClient({}).send(new GetSecretValueCommand({ SecretId: arn }));
    secret = out.SecretString ?? (out.SecretBinary ? Buffer.from(out.SecretBinary).toString('utf8') : undefined);
    if (secret === undefined) throw new ConfigurationError(`Secret APPROVAL_SECRET_ARN (${arn}) has no value.`);
  } else {
    throw new ConfigurationError('Missing required setting: set APPROVAL_SECRET_ARN (AWS) or APPROVAL_SECRET (local mode).');
  }
  if (secret.length < MIN_SECRET_LENGTH) {
    throw new ConfigurationError(`The approval secret must be at least ${MIN_SECRET_LENGTH} characters long.`);
  }
  return secret;
}
