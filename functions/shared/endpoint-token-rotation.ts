/**
 * Rotating a model's endpoint token without downtime: the four steps Secrets Manager asks a rotation
 * function for (functions/rotate-endpoint-token.ts is the thin handler), for the token secrets of
 * ENDPOINT_TOKEN_SECRETS.
 * - createSecret: a new random token as the version AWSPENDING (ClientRequestToken = its version id);
 *   a retried step finds it and changes nothing.
 * - setSecret: the model's Kubernetes Secret in BOTH namespaces gets AWSCURRENT, AWSPENDING, AWSPREVIOUS.
 * - testSecret: waits (bounded, ENDPOINT_TOKEN_LOAD_WAIT_SECONDS) until every serving pod of the model in
 *   both namespaces lists the pending token's fingerprint in `serving_auth_token_loaded` (its /metrics on
 *   the admin port, through the pod proxy); else it fails, naming the pods (the rotation fails; Secrets
 *   Manager retries the whole rotation a few times, then AWSPENDING stays until removed: docs/deploy.md).
 *   Only then may callers get the new token. Pods whose server never started are not waited for (they
 *   mount the Secret, which already holds the pending token, when they start). A pending version that no
 *   Kubernetes Secret holds is Secrets Manager's configuration test (testSecret alone, at deploy): it checks
 *   the function's Kubernetes access and returns.
 * - finishSecret: AWSCURRENT moves to the new version (Secrets Manager moves AWSPREVIOUS to the old one),
 *   and the Kubernetes Secrets are written again: new, old. The token of two rotations ago stops working.
 * So a caller that cached a token keeps working until the next rotation (docs/deploy.md, Endpoint
 * authentication). Tokens never reach a log: only version ids and 48-bit fingerprints do.
 */
import {
  DescribeSecretCommand,
  GetRandomPasswordCommand,
  PutSecretValueCommand,
  UpdateSecretVersionStageCommand,
} from '@aws-sdk/client-secrets-manager';
import type { KubernetesObject } from '@kubernetes/client-node';
import { acceptedTokens, secrets, secretVersionValue, versionWith, type VersionStages } from './endpoint-auth';
import { ConfigurationError, KubernetesRequestError } from './errors';
import { listObjects, PodProxyError, proxyGet, readObject } from './kube';
import { logger } from './logger';
import { ADMIN_PORT_NAME, AUTH_TOKEN_KEY, endpointTokenSecretName } from './manifests';
import { LABELS } from './names';
import { phaseClock } from './phase';
import { tokenFingerprint } from './token-fingerprint';
import { syncTokenSecret } from './workloads';

export const ROTATION_STEPS = ['createSecret', 'setSecret', 'testSecret', 'finishSecret'] as const;
export type RotationStep = (typeof ROTATION_STEPS)[number];

/** What Secrets Manager invokes a rotation function with. */
export interface RotationEvent {
  Step: RotationStep;
  SecretId: string;
  ClientRequestToken: string;
  RotationToken?: string;
}

export interface RotationSettings {
  /** model → ARN of its token secret (ENDPOINT_TOKEN_SECRETS). */
  tokenSecrets: Record<string, string>;
  namespaces: { staging: string; production: string };
  /** How long testSecret waits for the pods (ENDPOINT_TOKEN_LOAD_WAIT_SECONDS). */
  loadWaitSeconds: number;
  /** Days between scheduled rotations (ENDPOINT_TOKEN_ROTATION_DAYS): how long the replaced token stays valid. */
  rotationDays?: number;
  /** Between two reads of the pods' /metrics. @default 5000 */
  pollMs?: number;
}

/** The step cannot go on now (a pod has not loaded the token): the rotation fails (Secrets Manager retries it a few times). */
export class TokenNotLoadedError extends Error {
  override readonly name = 'TokenNotLoadedError';
}

/** The event does not fit the secret's versions (a rotation Secrets Manager did not start, or one already replaced). */
export class RotationStateError extends Error {
  override readonly name = 'RotationStateError';
}

/** Length and alphabet of a token: as the stack's GenerateSecretString (48 alphanumerics). */
const TOKEN_LENGTH = 48;

/** The model whose token secret `secretId` is; a ConfigurationError when the stack rotates no such secret. */
function modelOf(secretId: string, tokenSecrets: Record<string, string>): string {
  const found = Object.entries(tokenSecrets).find(([, arn]) => arn === secretId);
  if (!found) throw new ConfigurationError(`Secret ${secretId} is not an endpoint token secret of this stack (ENDPOINT_TOKEN_SECRETS names ${Object.values(tokenSecrets).join(', ') || 'none'}).`);
  return found[0];
}

/** The secret's versions by staging label, checked as Secrets Manager's own rotation templates check them. */
async function versions(secretId: string, token: string): Promise<{ stages: VersionStages; alreadyCurrent: boolean }> {
  const described = await secrets().send(new DescribeSecretCommand({ SecretId: secretId }));
  if (described.RotationEnabled !== true) throw new RotationStateError(`Secret ${secretId} does not have rotation enabled.`);
  const stages = described.VersionIdsToStages ?? {};
  const ofToken = stages[token];
  if (ofToken === undefined) throw new RotationStateError(`Secret ${secretId} has no version ${token} to rotate to.`);
  if (ofToken.includes('AWSCURRENT')) return { stages, alreadyCurrent: true };
  if (!ofToken.includes('AWSPENDING')) throw new RotationStateError(`Version ${token} of secret ${secretId} is not labelled AWSPENDING: this rotation was replaced by another.`);
  return { stages, alreadyCurrent: false };
}

export async function rotateStep(event: RotationEvent, settings: RotationSettings): Promise<void> {
  const { SecretId: secretId, ClientRequestToken: token, Step: step } = event;
  if (!ROTATION_STEPS.includes(step)) throw new RotationStateError(`Unknown rotation step "${String(step).slice(0, 40)}": expected one of ${ROTATION_STEPS.join(', ')}.`);
  const model = modelOf(secretId, settings.tokenSecrets);
  const log: Log = (message, fields = {}) => logger.info(message, { model, step, versionId: token, ...fields });
  const { stages, alreadyCurrent } = await versions(secretId, token);
  if (alreadyCurrent && step !== 'finishSecret') {
    log('version is already AWSCURRENT: nothing to do');
    return;
  }
  switch (step) {
    case 'createSecret':
      return createSecret(secretId, token, event.RotationToken, log);
    case 'setSecret':
      return writeKubernetesSecrets(model, settings, await tokensDuringRotation(secretId, token), log);
    case 'testSecret':
      return testSecret(model, secretId, token, settings, log);
    case 'finishSecret':
      return finishSecret(model, secretId, token, stages, settings, log);
  }
}

type Log = (message: string, fields?: Record<string, unknown>) => void;

async function createSecret(secretId: string, token: string, rotationToken: string | undefined, log: Log): Promise<void> {
  if ((await secretVersionValue(secretId, { VersionStage: 'AWSCURRENT' })) === undefined) throw new RotationStateError(`Secret ${secretId} has no current token to rotate from.`);
  // Idempotent: a retried step (same ClientRequestToken) finds the token it made.
  if ((await secretVersionValue(secretId, { VersionId: token, VersionStage: 'AWSPENDING' })) !== undefined) {
    log('pending token already created');
    return;
  }
  const random = await secrets().send(new GetRandomPasswordCommand({ PasswordLength: TOKEN_LENGTH, ExcludePunctuation: true, IncludeSpace: false }));
  if (!random.RandomPassword) throw new Error('GetRandomPassword returned no password.');
  await secrets().send(
    new PutSecretValueCommand({ SecretId: secretId, ClientRequestToken: token, SecretString: random.RandomPassword, VersionStages: ['AWSPENDING'], ...(rotationToken ? { RotationToken: rotationToken } : {}) }),
  );
  log('pending token created', { fingerprint: tokenFingerprint(random.RandomPassword) });
}

/** AWSCURRENT first (what callers get until finishSecret), then the pending token, then AWSPREVIOUS. */
async function tokensDuringRotation(secretId: string, token: string): Promise<string[]> {
  const [current, pending, previous] = await Promise.all([
    secretVersionValue(secretId, { VersionStage: 'AWSCURRENT' }),
    secretVersionValue(secretId, { VersionId: token, VersionStage: 'AWSPENDING' }),
    secretVersionValue(secretId, { VersionStage: 'AWSPREVIOUS' }),
  ]);
  if (current === undefined) throw new RotationStateError(`Secret ${secretId} has no current token.`);
  if (pending === undefined) throw new RotationStateError(`Version ${token} of secret ${secretId} has no value: createSecret has not run.`);
  return acceptedTokens(current, pending, previous);
}

async function writeKubernetesSecrets(model: string, settings: RotationSettings, tokens: string[], log: Log): Promise<void> {
  const namespaces = [settings.namespaces.staging, settings.namespaces.production];
  await Promise.all(namespaces.map((namespace) => syncTokenSecret(model, namespace, tokens)));
  log('token Secrets written', { namespaces, fingerprints: tokens.map(tokenFingerprint) });
}

interface PodLike extends KubernetesObject {
  metadata?: KubernetesObject['metadata'] & { deletionTimestamp?: unknown };
  spec?: { containers?: Array<{ name: string; env?: Array<{ name: string; value?: string }>; ports?: Array<{ name?: string; containerPort: number }> }> };
  status?: { phase?: string; containerStatuses?: Array<{ name: string; restartCount?: number; state?: Record<string, unknown>; lastState?: Record<string, unknown> }> };
}

/** Whether the pod's container `name` has never started (Pending, ErrImagePull/ImagePullBackOff, not scheduled). */
function neverStarted(pod: PodLike, name: string): boolean {
  const status = pod.status?.containerStatuses?.find((c) => c.name === name);
  if (!status) return true;
  const ran = (s: Record<string, unknown> | undefined) => s?.running !== undefined || s?.terminated !== undefined;
  return !ran(status.state) && !ran(status.lastState) && (status.restartCount ?? 0) === 0;
}

/** Pods that enforce a token (AUTH_TOKEN_FILE) and have no fingerprint `fingerprint` loaded yet, as `namespace/pod (why)`. */
async function podsWithout(model: string, namespace: string, stage: 'staging' | 'production', fingerprint: string): Promise<string[]> {
  const list = await listObjects<PodLike>('Pod', namespace, { labelSelector: `${LABELS.name}=${model},${LABELS.stage}=${stage}` });
  const missing: string[] = [];
  await Promise.all(
    list.items.map(async (pod) => {
      const name = pod.metadata?.name;
      const container = pod.spec?.containers?.find((c) => c.env?.some((e) => e.name === 'AUTH_TOKEN_FILE'));
      // A pod going away, or one that takes no token (deployed with auth off), cannot refuse the new token.
      if (!name || !container || pod.metadata?.deletionTimestamp !== undefined || ['Succeeded', 'Failed'].includes(pod.status?.phase ?? '')) return;
      // A server that has never started (Pending, ErrImagePull, ImagePullBackOff) cannot be waited for, and
      // need not be: when it starts it mounts the Secret as it is then, which holds the pending token since setSecret.
      if (neverStarted(pod, container.name)) return;
      if (pod.status?.phase !== 'Running') return void missing.push(`${namespace}/${name} (${pod.status?.phase ?? 'no phase'})`);
      const admin = container.ports?.find((p) => p.name === ADMIN_PORT_NAME)?.containerPort;
      if (admin === undefined) return void missing.push(`${namespace}/${name} (no admin port to read /metrics on)`);
      try {
        const text = await proxyGet(namespace, name, admin, 'metrics');
        if (!text.includes(`serving_auth_token_loaded{fingerprint="${fingerprint}"}`)) missing.push(`${namespace}/${name}`);
      } catch (err) {
        if (!(err instanceof PodProxyError)) throw err;
        missing.push(`${namespace}/${name} (/metrics: ${err.message})`);
      }
    }),
  );
  return missing.sort();
}

/** Whether `token` is a line of the model's Kubernetes Secret in `namespace` (what setSecret writes). */
async function inKubernetesSecret(model: string, namespace: string, token: string): Promise<boolean> {
  const secret = await readObject<KubernetesObject & { data?: Record<string, string> }>({ kind: 'Secret', namespace, name: endpointTokenSecretName(model) });
  const lines = Buffer.from(secret?.data?.[AUTH_TOKEN_KEY] ?? '', 'base64').toString('utf8').split('\n');
  return lines.some((l) => l.trim() === token);
}

/**
 * Secrets Manager's configuration test: when a rotation schedule is created or changed without rotating
 * (rotateImmediatelyOnUpdate: false, as the stack sets it), it runs testSecret alone on an AWSPENDING
 * version it then removes; createSecret and setSecret never ran, so no pod can have that token. What can
 * be tested is the function's Kubernetes access: it lists the pods of both namespaces (a refusal fails the
 * deploy with the reason), and waits for nothing.
 */
async function configurationTest(model: string, settings: RotationSettings, log: Log): Promise<void> {
  for (const namespace of [settings.namespaces.staging, settings.namespaces.production]) {
    try {
      await listObjects('Pod', namespace, { labelSelector: `${LABELS.name}=${model}` });
    } catch (err) {
      if (!(err instanceof KubernetesRequestError)) throw err;
      throw new ConfigurationError(
        `Rotation configuration test: the rotation function may not list the pods of ${model} in namespace ${namespace} (${err.message}). ` +
          'Its role needs the Kubernetes access entry of the stack (cluster-access.ts, the rotation role) on both serving namespaces; ' +
          'with rotationKubernetesGroup, its group bound in both to the Role `mlpipe monitor-rbac --rotation` prints (docs/deploy.md).',
      );
    }
  }
  log('configuration test: the pending version was never set (no Kubernetes Secret holds it); Kubernetes access checked in both namespaces');
}

async function testSecret(model: string, secretId: string, token: string, settings: RotationSettings, log: Log): Promise<void> {
  const [pending, current] = await Promise.all([secretVersionValue(secretId, { VersionId: token, VersionStage: 'AWSPENDING' }), secretVersionValue(secretId, { VersionStage: 'AWSCURRENT' })]);
  const { staging, production } = settings.namespaces;
  // A pending version setSecret never wrote: Secrets Manager testing the configuration, not a rotation.
  // The two namespaces' Secrets are read together (one round trip of waiting, not two).
  const written = pending !== undefined && pending !== current && (await Promise.all([staging, production].map((ns) => inKubernetesSecret(model, ns, pending)))).every(Boolean);
  if (!written) return configurationTest(model, settings, log);
  const fingerprint = tokenFingerprint(pending);
  const clock = phaseClock();
  const deadline = clock.now() + settings.loadWaitSeconds * 1000;
  for (;;) {
    const missing = (await Promise.all([podsWithout(model, staging, 'staging', fingerprint), podsWithout(model, production, 'production', fingerprint)])).flat();
    if (missing.length === 0) {
      log('every serving pod accepts the pending token', { fingerprint });
      return;
    }
    const left = deadline - clock.now();
    if (left <= 0) {
      throw new TokenNotLoadedError(
        `The new endpoint token of ${model} (fingerprint ${fingerprint}) is not loaded yet by ${missing.length} serving pod(s) after ${settings.loadWaitSeconds} s: ${missing.slice(0, 10).join(', ')}${missing.length > 10 ? ', ...' : ''}. ` +
          'Nothing changed for callers (the current token stays current). The rotation fails (Secrets Manager retries it a few times); if it keeps failing, AWSPENDING stays on its version ' +
          'and the next rotation is refused until it is removed (mlpipe endpoint --rotate prints the command; docs/deploy.md). A pod that never loads it: check that it mounts the Secret ' +
          `${endpointTokenSecretName(model)} and reports serving_auth_token_loaded on its admin port.`,
      );
    }
    await clock.sleep(Math.min(settings.pollMs ?? 5000, left));
  }
}

async function finishSecret(model: string, secretId: string, token: string, stages: VersionStages, settings: RotationSettings, log: Log): Promise<void> {
  const current = versionWith(stages, 'AWSCURRENT');
  if (current !== token) {
    // Secrets Manager moves AWSPREVIOUS to the version that loses AWSCURRENT.
    await secrets().send(new UpdateSecretVersionStageCommand({ SecretId: secretId, VersionStage: 'AWSCURRENT', MoveToVersionId: token, ...(current ? { RemoveFromVersionId: current } : {}) }));
    log('AWSCURRENT moved to the new token', { previousVersionId: current });
  }
  // Always (a retried finish too): the new token and the one it replaced, nothing older.
  const [now, previous] = await Promise.all([secretVersionValue(secretId, { VersionId: token }), secretVersionValue(secretId, { VersionStage: 'AWSPREVIOUS' })]);
  if (now === undefined) throw new RotationStateError(`Version ${token} of secret ${secretId} has no value.`);
  await writeKubernetesSecrets(model, settings, acceptedTokens(now, undefined, previous), log);
  log('rotation finished: the replaced token stays valid until the next rotation', { nextRotationInDays: settings.rotationDays });
}
