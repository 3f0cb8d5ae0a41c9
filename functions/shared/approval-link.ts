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

function signature(secret: string, id: string, action: ApprovalAction, exp: number): string {
  return createHmac('sha256', secret).update(`${id}.${action}.${exp}`).digest('hex');
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
  if (!exp || !/^\d{1,12}$/.test(exp)) throw new ApprovalLinkError('The link\'s "exp" must be a Unix time in seconds.', 'malformed');
  if (!sig || !SIG.test(sig)) throw new ApprovalLinkError('The link\'s "sig" must be 64 hex characters.', 'malformed');
  const expiresAt = Number(exp);
  const expected = Buffer.from(signature(opts.secret, id, action, expiresAt), 'hex');
  if (!timingSafeEqual(expected, Buffer.from(sig, 'hex'))) {
    throw new ApprovalLinkError('The link\'s signature does not match: it was altered or not issued by this pipeline.', 'forged');
  }
  const now = Math.floor((opts.now ?? new Date()).getTime() / 1000);
  if (now > expiresAt) {
    throw new ApprovalLinkError(`The link expired at ${new Date(expiresAt * 1000).toISOString()}.`, 'expired');
  }
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
