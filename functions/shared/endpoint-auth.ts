/**
 * Endpoint tokens: each model's bearer token lives in Secrets Manager (one secret per configured model,
 * ENDPOINT_TOKEN_SECRETS); the Deploy steps copy it into a Kubernetes Secret in the serving namespace, which
 * the pods mount as the file AUTH_TOKEN_FILE (no AWS credentials in the pods for it), and the pipeline's own
 * callers (endpoint probes, the evaluation) present it. During a rotation the secret has an AWSPENDING
 * version too: both tokens go into the Kubernetes Secret, so both are accepted until the rotation ends
 * (docs/deploy.md, Endpoint authentication). Tokens are never logged: nothing here logs, and errors name
 * the secret's ARN, never its value. No Kubernetes client here (the evaluation bundles this): the Secret
 * is written by workloads.ts syncTokenSecret.
 */
import { GetSecretValueCommand, ResourceNotFoundException, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { ConfigurationError } from './errors';
import { ENDPOINT_AUTH, ENDPOINT_TOKEN_SECRETS, currentSetting } from './settings';

let client: SecretsManagerClient | undefined;
const secrets = (): SecretsManagerClient => (client ??= new SecretsManagerClient({}));

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

/** A version of the secret by its staging label; undefined when no version has that label. */
async function versionValue(arn: string, stage: 'AWSCURRENT' | 'AWSPENDING'): Promise<string | undefined> {
  try {
    const out = await secrets().send(new GetSecretValueCommand({ SecretId: arn, VersionStage: stage }));
    const value = out.SecretString?.trim();
    if (stage === 'AWSCURRENT' && !value) throw new ConfigurationError(`Endpoint token secret ${arn} has no string value.`);
    return value || undefined;
  } catch (err) {
    if (stage === 'AWSPENDING' && (err instanceof ResourceNotFoundException || (err as Error).name === 'ResourceNotFoundException')) return undefined;
    throw err;
  }
}

/**
 * The tokens a server of `model` must accept now: the current one first, then the pending one while a
 * rotation runs. Callers present the first.
 */
export async function endpointTokens(model: string): Promise<string[]> {
  const arn = tokenSecretArn(model);
  const [current, pending] = await Promise.all([versionValue(arn, 'AWSCURRENT'), versionValue(arn, 'AWSPENDING')]);
  return [...new Set([current!, ...(pending ? [pending] : [])])];
}

/** The token the pipeline presents to `model`'s endpoints, or undefined when auth is off. */
export async function presentedToken(model: string): Promise<string | undefined> {
  if (!endpointAuthOn()) return undefined;
  return (await endpointTokens(model))[0];
}

/** `Authorization: Bearer <token>` when there is a token. */
export function authorizationHeader(token: string | undefined): Record<string, string> {
  return token === undefined ? {} : { authorization: `Bearer ${token}` };
}
