/**
 * Deterministic execution names, so a redelivered trigger collapses into the run it already started
 * (StartExecution refuses a name twice). Names are 1..80 of [A-Za-z0-9_-]: the repository name, made
 * safe and cut to fit, then what identifies the trigger: the image digest for a push, a hash of the
 * object's bucket/key/etag for new data, the scheduled time for a schedule. When the repository name had
 * to be changed to fit, a hash of the original keeps names of different repositories apart.
 */
import { createHash } from 'node:crypto';

const MAX = 80;

/** StartExecution's rule for names: no whitespace, brackets, wildcards, these specials or control characters. */
// eslint-disable-next-line no-control-regex
const INVALID_NAME_CHARACTER = /[\s<>{}[\]?*"#%\\^|~`$&,;:/\u0000-\u001f\u007f-\u009f]/;

/** Why Step Functions would refuse `name` as an execution name, or undefined when it would take it. */
export function executionNameProblem(name: string): string | undefined {
  if (name.length < 1 || name.length > MAX) return `must be 1 to ${MAX} characters, got ${name.length}`;
  const bad = INVALID_NAME_CHARACTER.exec(name)?.[0];
  if (bad !== undefined) return `must not contain ${JSON.stringify(bad)} (no spaces, brackets, wildcards or any of " # % \\ ^ | ~ \` $ & , ; : /)`;
  return undefined;
}

function sha256Hex(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

/** `<repository, made safe>-<suffix>`, at most 80 characters; `suffix` must already be safe. */
export function executionName(repositoryName: string, suffix: string): string {
  const safe = repositoryName.replace(/[^A-Za-z0-9_-]+/g, '-').replace(/^-+|-+$/g, '') || 'repo';
  const budget = MAX - suffix.length - 1;
  if (safe === repositoryName && safe.length <= budget) return `${safe}-${suffix}`;
  const tag = sha256Hex(repositoryName).slice(0, 8);
  return `${safe.slice(0, budget - tag.length - 1).replace(/-+$/, '')}-${tag}-${suffix}`;
}

/** A push of `sha256:<hex>`: the first 32 hex digits (128 bits) of the digest. */
export function pushExecutionName(repositoryName: string, imageDigest: string): string {
  return executionName(repositoryName, imageDigest.replace(/^sha256:/, '').slice(0, 32));
}

export function dataExecutionName(repositoryName: string, object: { bucket: string; key: string; etag: string }): string {
  return executionName(repositoryName, `data-${sha256Hex(`${object.bucket}/${object.key}#${object.etag}`).slice(0, 24)}`);
}

export function scheduleExecutionName(repositoryName: string, scheduledTime: string): string {
  const t = new Date(scheduledTime).toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
  return executionName(repositoryName, `sched-${t}`);
}
