/**
 * Endpoint tokens: each model's bearer token lives in Secrets Manager (one secret per configured model,
 * ENDPOINT_TOKEN_SECRETS); the Deploy steps copy it into a Kubernetes Secret in the serving namespace, which
 * the pods mount as the file AUTH_TOKEN_FILE (no AWS credentials in the pods for it), and the pipeline's own
 * callers (endpoint probes, the evaluation) present it. The Kubernetes Secret holds the versions labelled
 * AWSCURRENT (first: callers present it), AWSPENDING (while a rotation runs) and AWSPREVIOUS (the token the
 * last rotation replaced), so a caller that cached the old token keeps working until the NEXT rotation
 * (endpoint-token-rotation.ts; docs/deploy.md, Endpoint authentication). Tokens are never logged: nothing here logs, and errors name
 * the secret's ARN, never its value. No Kubernetes client here (the evaluation bundles this): the Secret
 * is written by workloads.ts syncTokenSecret.
 */
import { DescribeSecretCommand, GetSecretValueCommand, ResourceNotFoundException, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { ConfigurationError } from './errors';
import { ENDPOINT_AUTH, ENDPOINT_TOKEN_SECRETS, currentSetting } from './settings';

let client: SecretsManagerClient | undefined;
/** One Secrets Manager client per container (the local run's store when AWS_ENDPOINT_URL_SECRETS_MANAGER is set). */
export const secrets = (): SecretsManagerClient => (client ??= new SecretsManagerClient({}));

/** The staging labels of a token secret's versions that the servers accept. */
export type TokenStage = 'AWSCURRENT' | 'AWSPENDING' | 'AWSPREVIOUS';

/** A secret's versions by id, each with its staging labels: DescribeSecret's VersionIdsToStages. */
export type VersionStages = Record<string, string[]>;

/**
 * The id of the version labelled `stage`, if any (a label is on one version at most); with `unless`, only a
 * version not also labelled that: AWSPENDING unless AWSCURRENT is a rotation that has not finished.
 */
export function versionWith(stages: VersionStages, stage: TokenStage, unless?: TokenStage): string | undefined {
  return Object.entries(stages).find(([, s]) => s.includes(stage) && (unless === undefined || !s.includes(unless)))?.[0];
}

/** Forget the client (tests change endpoints between suites). */
export function resetEndpointAuth(): void {
  client = undefined;
}

/** Whether model endpoints require a token (ENDPOINT_AUTH). */
export function endpointAuthOn(): boolean {
  return currentSetting(ENDPOINT_AUTH);
}

/** The ARN of `model`'s token secret; a ConfigurationError naming the fix when the stack has none for it. */
export function tokenSecretArn(model: string): string {
  const arn = currentSetting(ENDPOINT_TOKEN_SECRETS)[model];
  if (arn === undefined) {
    throw new ConfigurationError(
      `Model "${model}" has no endpoint token secret (ENDPOINT_TOKEN_SECRETS names ${Object.keys(currentSetting(ENDPOINT_TOKEN_SECRETS)).join(', ') || 'none'}); ` +
        'with endpoint auth on, only the models the stack was deployed for can be served: deploy the stack with this model, or set endpointAuth: false.',
    );
  }
  return arn;
}

/** A version of the secret (by id and/or staging label), trimmed; undefined when there is no such version or it is empty. */
export async function secretVersionValue(secretId: string, version: { VersionId?: string; VersionStage?: TokenStage }): Promise<string | undefined> {
  try {
    const out = await secrets().send(new GetSecretValueCommand({ SecretId: secretId, ...version }));
    return out.SecretString?.trim() || undefined;
  } catch (err) {
    if (err instanceof ResourceNotFoundException || (err as Error).name === 'ResourceNotFoundException') return undefined;
    throw err;
  }
}

/** The current token: a ConfigurationError naming the secret when it has none. */
async function currentToken(arn: string): Promise<string> {
  const value = await secretVersionValue(arn, { VersionStage: 'AWSCURRENT' });
  if (!value) throw new ConfigurationError(`Endpoint token secret ${arn} has no string value.`);
  return value;
}

/**
 * The tokens a server of `model` must accept now: the current one first (callers present the first), the
 * pending one while a rotation runs, and the previous one (what the last rotation replaced).
 */
export async function endpointTokens(model: string): Promise<string[]> {
  const arn = tokenSecretArn(model);
  const [current, pending, previous] = await Promise.all([
    currentToken(arn),
    secretVersionValue(arn, { VersionStage: 'AWSPENDING' }),
    secretVersionValue(arn, { VersionStage: 'AWSPREVIOUS' }),
  ]);
  return acceptedTokens(current, pending, previous);
}

/** Which version carries which staging label, as one comparable string: a rotation step that moves a label changes it. */
export async function tokenLabels(model: string): Promise<string> {
  const out = await secrets().send(new DescribeSecretCommand({ SecretId: tokenSecretArn(model) }));
  return JSON.stringify(Object.entries(out.VersionIdsToStages ?? {}).map(([id, stages]) => [id, [...stages].sort()]).sort());
}

/** The Kubernetes Secret's lines: current first, then pending and previous when there are, without repeats. */
export function acceptedTokens(current: string, pending: string | undefined, previous: string | undefined): string[] {
  return [...new Set([current, pending, previous].filter((t): t is string => t !== undefined && t !== ''))];
}

/** The token the pipeline presents to `model`'s endpoints, or undefined when auth is off. */
export async function presentedToken(model: string): Promise<string | undefined> {
  if (!endpointAuthOn()) return undefined;
  // Only the current one: callers present it (one read, not the three the Secret's contents take).
  return currentToken(tokenSecretArn(model));
}

/** `Authorization: Bearer <token>` when there is a token. */
export function authorizationHeader(token: string | undefined): Record<string, string> {
  return token === undefined ? {} : { authorization: `Bearer ${token}` };
}
