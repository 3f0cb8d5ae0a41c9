/**
 * Retry links (issue 9 item 6): the failure email's "retry this run" link,
 * `${baseUrl}/retries/<run>?execution=<arn>&model=<name>&version=<v>&exp=<unix>&sig=<hex>`, where
 * sig = HMAC-SHA256(secret, "retry.<executionArn>.<model>.<version>.<exp>") with the approval links' key
 * (approval-link.ts approvalSecret). The "retry." prefix keeps the two kinds apart: an approval link signs
 * "<32 hex id>.<action>.<exp>", so no signature of one is valid for the other. The link names the failed
 * run (its path shows the run's name, which the access log keeps; the query, which it does not, holds the
 * rest) and grants nothing by itself: GET shows a page, POST starts the retry (functions/approval-api.ts).
 */
import { checkSignedLink, linkSignature } from './approval-link';
import { RetryLinkError } from './errors';
import { modelNameProblem } from './k8s-names';

/** How long a failure email's retry link works. A week: long enough for a weekend, short enough that the model files are likely still there (loadResume checks anyway). */
export const RETRY_LINK_TTL_SECONDS = 7 * 24 * 3600;

const EXECUTION_ARN = /^arn:aws[\w-]*:states:[a-z0-9-]+:\d{12}:execution:[A-Za-z0-9_-]{1,80}:([A-Za-z0-9_-]{1,80})$/;
const VERSION = /^[A-Za-z0-9._-]{1,128}$/;

export interface RetryLinkTarget {
  /** The failed run's execution ARN: the link retries this run and no other. */
  executionArn: string;
  modelName: string;
  version: string;
}

const payload = (t: RetryLinkTarget, exp: number): string => `retry.${t.executionArn}.${t.modelName}.${t.version}.${exp}`;

export function signRetryLink(opts: RetryLinkTarget & { baseUrl: string; expiresAt: number; secret: string }): string {
  const exp = Math.floor(opts.expiresAt);
  const name = EXECUTION_ARN.exec(opts.executionArn)?.[1];
  if (!name) throw new Error(`signRetryLink: "${opts.executionArn}" is not an execution ARN.`);
  const query = new URLSearchParams({ execution: opts.executionArn, model: opts.modelName, version: opts.version, exp: String(exp), sig: linkSignature(opts.secret, payload(opts, exp)) });
  return `${opts.baseUrl.replace(/\/+$/, '')}/retries/${name}?${query.toString()}`;
}

export interface VerifiedRetryLink extends RetryLinkTarget {
  /** The run's execution name (the path's). */
  run: string;
  expiresAt: number;
}

/**
 * Checks a retry link: shape first (malformed), then the signature in constant time (forged), then the
 * clock (expired), so only genuine links learn that they expired.
 */
export function verifyRetryLink(opts: {
  run: string | undefined;
  execution: string | undefined;
  model: string | undefined;
  version: string | undefined;
  exp: string | undefined;
  sig: string | undefined;
  secret: string;
  now?: Date;
}): VerifiedRetryLink {
  const { run, execution, model, version, exp, sig } = opts;
  const name = execution === undefined ? undefined : EXECUTION_ARN.exec(execution)?.[1];
  if (!name) throw new RetryLinkError('The link\'s "execution" must be a Step Functions execution ARN.', 'malformed');
  if (run !== name) throw new RetryLinkError(`The link's path names run "${String(run).slice(0, 80)}" but its "execution" is ${name}.`, 'malformed');
  if (!model || modelNameProblem(model) !== undefined) throw new RetryLinkError('The link\'s "model" is not a model name.', 'malformed');
  if (!version || !VERSION.test(version)) throw new RetryLinkError('The link\'s "version" is not a model version.', 'malformed');
  const target = { executionArn: execution!, modelName: model, version };
  const expiresAt = checkSignedLink({ payload: (e) => payload(target, e), exp, sig, secret: opts.secret, now: opts.now }, (m, r) => new RetryLinkError(m, r));
  return { ...target, run: name, expiresAt };
}
