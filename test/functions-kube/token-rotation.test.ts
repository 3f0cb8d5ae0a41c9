/**
 * Endpoint token rotation (functions/rotate-endpoint-token.ts) against the local Kubernetes API, a local S3
 * and the local Secrets Manager, with real example servers (examples/fashion-mnist/serve.ts) in staging
 * and production that mount the model's token Secret: RotateSecret on the local store runs the handler
 * through the four steps as Secrets Manager does, while callers keep sending predictions, one with the
 * token it cached before the rotation and one that fetches the current token for every request: not one
 * 401. Then the new and the replaced token work, an unknown one gets 401, and the next rotation retires
 * the oldest. The steps one by one: createSecret is idempotent, testSecret fails clearly (naming the pod)
 * while a serving pod has not loaded the new token, finishSecret moves the labels, and testSecret reads the
 * two namespaces' Secrets together. `mlpipe endpoint --rotate` (rotateToken) waits on the CLI's clock, in
 * virtual time here, against a RotateSecret that answers at once as AWS's does.
 */
import { randomUUID } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, request, type IncomingMessage, type ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DescribeSecretCommand, GetSecretValueCommand, PutSecretValueCommand, RotateSecretCommand, SecretsManagerClient, UpdateSecretVersionStageCommand } from '@aws-sdk/client-secrets-manager';
import * as k8s from '@kubernetes/client-node';
import { startLocalKube, type LocalKube } from '../../local/kube';
import { LOCAL_AWS_ENV, startLocalS3, type LocalS3 } from '../../local/s3';
import { bundleImages } from '../../local/images';
import { startLocalSecretsManager, type LocalSecretsManager, type RotationInvocation } from '../../local/secrets';
import { saveModelToS3, toTfjsModel } from '../../examples/fashion-mnist/model-io';
import { resetClients } from '../../functions/shared/clients';
import { resetEndpointAuth, secrets, versionWith } from '../../functions/shared/endpoint-auth';
import { tokenFingerprint } from '../../functions/shared/token-fingerprint';
import { resetKube } from '../../functions/shared/kube';
import { setPhaseClock } from '../../functions/shared/phase';
import { reloadSettings } from '../../functions/shared/settings';
import { rotateToken } from '../../cli/commands/endpoint';
import { main } from '../../cli/main';
import { writeLocalFile } from '../cli/local-file';
import { syncTokenSecret } from '../../functions/shared/workloads';
import { captureLogs, type CapturedLogs } from '../logging/capture';
import { rotationRbacYaml, tasksRbacYaml } from '../../lib/monitor-rbac';
import { asKubernetesGroup } from './env';

const REPO_ROOT = join(__dirname, '..', '..');
const NAMESPACES = { staging: 'mlpipe-staging', production: 'mlpipe-production' } as const;
const BUCKET = 'mlpipe-rotation-test';
const IMAGE = 'mlpipe/fashion-mnist-serve:rotation-test';
const MODEL = 'fm';
const ARN = 'arn:aws:secretsmanager:us-east-1:000000000000:secret:EndpointToken-local';
const FIRST = 'tok-first-0123456789abcdefghijklmnopqrstuvwxyzAB';

let dir: string;
let kube: LocalKube;
let s3: LocalS3;
let store: LocalSecretsManager;
let core: k8s.CoreV1Api;
let sm: SecretsManagerClient;
let handler: (event: RotationInvocation) => Promise<void>;
/** What RotateSecret on the local store invokes: the handler, unless a test stops it at a step. */
let logs: CapturedLogs;
let rotationHook: (event: RotationInvocation) => Promise<unknown> = (e) => handler(e);
const endpoints: Record<string, string> = {};
const savedEnv = { ...process.env };

/** A production or staging Deployment of the example server, as DeployStaging/DeployProduction write it (auth on). */
function deployment(stage: 'staging' | 'production', secretName = `${MODEL}-endpoint-token`, name = `${MODEL}-${stage}-v1`): k8s.V1Deployment {
  const labels = { 'app.kubernetes.io/name': MODEL, 'app.kubernetes.io/managed-by': 'mlpipe', 'mlpipe.dev/version': name, 'mlpipe.dev/stage': stage };
  return {
    metadata: { name },
    spec: {
      replicas: 1,
      selector: { matchLabels: labels },
      template: {
        metadata: { labels },
        spec: {
          volumes: [{ name: 'auth-token', secret: { secretName, defaultMode: 0o440 } }],
          containers: [
            {
              name: 'server',
              image: IMAGE,
              env: Object.entries({ MODEL_NAME: MODEL, MODEL_VERSION: 'v1', MODEL_URI: `s3://${BUCKET}/models/${MODEL}/v1/`, AUTH_TOKEN_FILE: '/var/run/mlpipe/auth/tokens', ADMIN_PORT: '8502' }).map(([n, value]) => ({ name: n, value })),
              ports: [
                { containerPort: 8501, name: 'http' },
                { containerPort: 8502, name: 'admin' },
              ],
              volumeMounts: [{ name: 'auth-token', mountPath: '/var/run/mlpipe/auth', readOnly: true }],
              readinessProbe: { httpGet: { path: `/v1/models/${MODEL}`, port: 'admin' }, periodSeconds: 1 },
            },
          ],
        },
      },
    },
  };
}

/** Polls (on the event loop and the API, not a sleep-and-hope) until `check` gives a value. */
async function until<T>(check: () => Promise<T | undefined>, what: string, tries = 600): Promise<T> {
  for (let i = 0; i < tries; i++) {
    const v = await check().catch(() => undefined);
    if (v !== undefined) return v;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`never: ${what}`);
}

/** testSecret polls the pods' /metrics every 50 ms instead of 5 s; its wait stays bounded by the real clock. → restore */
const fastPolls = () => setPhaseClock({ now: () => Date.now(), sleep: (ms) => new Promise((r) => setTimeout(r, Math.min(ms, 50))) });

/**
 * The CLI's clock (cli/command.ts Clock) in virtual time: it starts at 0 and moves only when `--rotate` pauses
 * between polls, by the pause; `onSleep` runs at each pause. Nothing waits for real.
 */
function cliClock(onSleep: (sleeps: number) => Promise<void> = async () => undefined) {
  const clock = {
    t: 0,
    sleeps: 0,
    now: () => new Date(clock.t),
    async sleep(ms: number) {
      clock.t += ms;
      await onSleep(++clock.sleeps);
    },
  };
  return clock;
}

/** A promise and what settles it. */
function deferred<T = void>() {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => ((resolve = res), (reject = rej)));
  return { promise, resolve, reject };
}

/**
 * A client of the local store whose RotateSecret answers as AWS's does: with the new version id as soon as the
 * rotation has started (AWSPENDING on it, the rotation function invoked), not when it is over as the local
 * store answers. The rotation itself goes on in `rotation` (its failure there, not in the caller). The
 * test's rotationHook must call `started` at its first step.
 */
function awsLikeRotateClient() {
  const client = new SecretsManagerClient({ endpoint: store.endpoint, region: LOCAL_AWS_ENV.AWS_REGION });
  const started = deferred();
  const state: { rotation?: Promise<unknown>; versionId?: string; started: () => void } = { started: () => started.resolve() };
  client.middlewareStack.add(
    (next, context) => async (args) => {
      if (context.commandName !== 'RotateSecretCommand') return next(args);
      const input = args.input as { SecretId: string; RotateImmediately?: boolean };
      state.versionId = `v-async-${randomUUID()}`;
      state.rotation = sm.send(new RotateSecretCommand({ ...input, ClientRequestToken: state.versionId }));
      state.rotation.catch(() => undefined); // awaited by the test
      await Promise.race([started.promise, state.rotation]);
      return { output: { $metadata: {}, ARN: input.SecretId, VersionId: state.versionId }, response: {} } as never;
    },
    { step: 'initialize' },
  );
  return { client, state };
}

/** A predict request to `stage`'s load balancer with `token` → HTTP status. */
async function predict(stage: keyof typeof NAMESPACES, token: string | undefined): Promise<number> {
  const res = await fetch(`${endpoints[stage]}/v1/models/${MODEL}:predict`, {
    method: 'POST',
    body: JSON.stringify({ instances: [new Array(784).fill(0.5)] }),
    headers: { 'content-type': 'application/json', ...(token === undefined ? {} : { authorization: `Bearer ${token}` }) },
  });
  await res.arrayBuffer();
  return res.status;
}

const current = async (): Promise<string> => (await sm.send(new GetSecretValueCommand({ SecretId: ARN }))).SecretString!;
const stagesOf = async (): Promise<Record<string, string[]>> => (await sm.send(new DescribeSecretCommand({ SecretId: ARN }))).VersionIdsToStages ?? {};
/** The versions' labels, each version's sorted: the store may list a version's labels in another order after the configuration test puts one back. */
const labelsOf = async (): Promise<Record<string, string[]>> => Object.fromEntries(Object.entries(await stagesOf()).map(([id, s]) => [id, [...s].sort()]));
/** Removes AWSPENDING from `versionId` unless the rotation to it finished: a stuck label makes the store refuse the other tests' rotations. */
async function dropUnfinished(versionId: string): Promise<void> {
  if ((await stagesOf())[versionId]?.includes('AWSCURRENT')) return;
  await sm.send(new UpdateSecretVersionStageCommand({ SecretId: ARN, VersionStage: 'AWSPENDING', RemoveFromVersionId: versionId })).catch(() => undefined);
}
const secretLines = async (namespace: string): Promise<string[]> => {
  const s = await core.readNamespacedSecret({ name: `${MODEL}-endpoint-token`, namespace });
  return Buffer.from(s.data!.tokens!, 'base64').toString('utf8').split('\n').filter(Boolean);
};

// A test that failed mid-rotation leaves AWSPENDING, which makes the store refuse every later rotation
// (as AWS does): each test starts from a store with no unfinished rotation and the real rotation function.
afterEach(async () => {
  rotationHook = (e) => handler(e);
  const unfinished = versionWith(await stagesOf(), 'AWSPENDING', 'AWSCURRENT');
  if (unfinished !== undefined) await dropUnfinished(unfinished);
});

beforeAll(async () => {
  logs = captureLogs(); // the handler's lines stay out of the output; the tests search them for tokens
  dir = mkdtempSync(join(tmpdir(), 'mlpipe-rotation-'));
  s3 = await startLocalS3({ dir: join(dir, 's3'), buckets: [BUCKET] });
  Object.assign(process.env, LOCAL_AWS_ENV, { AWS_ENDPOINT_URL_S3: s3.endpoint });
  resetClients();
  const shape = { inputs: 784, hidden: 10, classes: 10 };
  const [images] = await Promise.all([
    bundleImages({ [IMAGE]: join(REPO_ROOT, 'examples/fashion-mnist/serve.ts') }, [], join(dir, 'images'), REPO_ROOT),
    saveModelToS3(toTfjsModel(shape, { w1: new Float32Array(7840), b1: new Float32Array(10), w2: new Float32Array(100), b2: new Float32Array(10) }), `s3://${BUCKET}/models/${MODEL}/v1/`),
  ]);
  writeFileSync(join(dir, 'secrets.json'), JSON.stringify({ [ARN]: FIRST }));
  store = await startLocalSecretsManager({ secrets: [{ arn: ARN, name: 'EndpointToken' }], file: join(dir, 'secrets.json'), rotation: { [ARN]: (e) => rotationHook(e) } });
  kube = await startLocalKube({ stateDir: join(dir, 'kube'), images, namespaces: Object.values(NAMESPACES), env: { ...LOCAL_AWS_ENV, AWS_ENDPOINT_URL_S3: s3.endpoint } });
  const kc = new k8s.KubeConfig();
  kc.loadFromFile(kube.kubeconfigPath);
  core = kc.makeApiClient(k8s.CoreV1Api);
  const apps = kc.makeApiClient(k8s.AppsV1Api);
  // The rotation function's access: its entry covers the two namespaces only.
  Object.assign(process.env, {
    KUBECONFIG: kube.mintScopedKubeconfig(Object.values(NAMESPACES), { username: 'mlpipe:token-rotation' }).kubeconfigPath,
    AWS_ENDPOINT_URL_SECRETS_MANAGER: store.endpoint,
    ENDPOINT_AUTH: 'true',
    ENDPOINT_TOKEN_SECRETS: JSON.stringify({ [MODEL]: ARN }),
    STAGING_NAMESPACE: NAMESPACES.staging,
    PRODUCTION_NAMESPACE: NAMESPACES.production,
    ENDPOINT_TOKEN_LOAD_WAIT_SECONDS: '30',
  });
  reloadSettings();
  resetKube();
  resetEndpointAuth();
  sm = new SecretsManagerClient({ endpoint: store.endpoint, region: LOCAL_AWS_ENV.AWS_REGION });
  // Loaded now: the handler reads its settings when its module loads.
  handler = (require('../../functions/rotate-endpoint-token') as typeof import('../../functions/rotate-endpoint-token')).handler; // eslint-disable-line @typescript-eslint/no-require-imports
  for (const [stage, namespace] of Object.entries(NAMESPACES) as Array<[keyof typeof NAMESPACES, string]>) {
    await syncTokenSecret(MODEL, namespace);
    await apps.createNamespacedDeployment({ namespace, body: deployment(stage) });
    await core.createNamespacedService({
      namespace,
      body: { metadata: { name: MODEL }, spec: { type: 'LoadBalancer', selector: { 'app.kubernetes.io/name': MODEL, 'mlpipe.dev/stage': stage, 'mlpipe.dev/version': `${MODEL}-${stage}-v1` }, ports: [{ port: 80, targetPort: 'http' as never }] } },
    });
  }
  for (const [stage, namespace] of Object.entries(NAMESPACES)) {
    const svc = await until(async () => {
      const s = await core.readNamespacedService({ name: MODEL, namespace });
      const ingress = s.status?.loadBalancer?.ingress?.[0];
      return ingress ? `http://${ingress.ip ?? ingress.hostname}:${ingress.ports?.[0]?.port ?? 80}` : undefined;
    }, `a load balancer for ${stage}`);
    endpoints[stage] = svc;
    await until(async () => ((await predict(stage as keyof typeof NAMESPACES, FIRST)) === 200 ? true : undefined), `${stage} serving`);
  }
}, 120_000);

afterAll(async () => {
  logs?.restore();
  await kube?.stop();
  await store?.stop();
  await s3?.stop();
  process.env = savedEnv;
  reloadSettings();
  resetClients();
  resetKube();
  resetEndpointAuth();
  rmSync(dir, { recursive: true, force: true });
});

it('a rotation under continuous traffic: zero 401s for callers with the cached old token and with the fetched current one; then new and old work, unknown is 401, and the next rotation retires the oldest', async () => {
  // Arrange: callers in both stages, one holding the token it had before the rotation, one fetching the current one per request
  const old = await current();
  const statuses: number[] = [];
  let stop = false;
  let sent = 0;
  const caller = async (stage: keyof typeof NAMESPACES, token: () => Promise<string>) => {
    while (!stop) {
      statuses.push(await predict(stage, await token()));
      sent++;
    }
  };
  const traffic = Promise.all([caller('staging', async () => old), caller('production', async () => old), caller('staging', current), caller('production', current)]);
  await until(async () => (sent >= 20 ? true : undefined), 'traffic before the rotation');

  // Act: `mlpipe endpoint fm --rotate` (RotateSecret; the local store runs the four steps), traffic on throughout
  const restore = fastPolls();
  let lines: string[];
  try {
    const atStart = sent;
    lines = await rotateToken(sm, MODEL, ARN, cliClock()).finally(restore);
    const during = sent;
    expect(during).toBeGreaterThan(atStart); // requests were answered while the four steps ran
    await until(async () => (sent >= during + 20 ? true : undefined), 'traffic after the rotation');
  } finally {
    // The callers stop whatever happened, so a failure here is reported here and not by the suite's end.
    stop = true;
    await traffic;
  }

  // Assess: not one refusal, from either caller
  expect(statuses.filter((s) => s !== 200)).toEqual([]);
  const next = await current();
  expect(next).not.toBe(old);
  expect(lines.join('\n')).toMatch(/is current, and every serving pod/);
  expect(lines.join('\n')).not.toContain(next);
  expect(logs.lines.filter((l) => l.message === 'pending token created')).not.toHaveLength(0);
  for (const token of [old, next]) expect(logs.text()).not.toContain(token); // fingerprints and version ids only
  const stages = await stagesOf();
  expect(Object.values(stages).map((s) => [...s].sort()).sort()).toEqual([['AWSCURRENT'], ['AWSPREVIOUS']]);
  for (const ns of Object.values(NAMESPACES)) expect(await secretLines(ns)).toEqual([next, old]);
  for (const stage of ['staging', 'production'] as const) {
    expect(await predict(stage, next)).toBe(200);
    expect(await predict(stage, old)).toBe(200); // the replaced token stays valid until the next rotation
    expect(await predict(stage, 'tok-unknown-0123456789abcdefghijklmnopqrstuvwxyz')).toBe(401);
    expect(await predict(stage, undefined)).toBe(401);
  }

  // Act: the next rotation
  const restoreAgain = fastPolls();
  await rotateToken(sm, MODEL, ARN, cliClock()).finally(restoreAgain);
  const newest = await current();
  // Assess: the newest and the one it replaced work; the oldest is refused once the pods have reread the file
  for (const ns of Object.values(NAMESPACES)) expect(await secretLines(ns)).toEqual([newest, next]);
  for (const stage of ['staging', 'production'] as const) {
    await until(async () => ((await predict(stage, old)) === 401 ? true : undefined), `${stage} refusing the oldest token`);
    expect(await predict(stage, newest)).toBe(200);
    expect(await predict(stage, next)).toBe(200);
  }
}, 90_000);

it('the steps one by one: createSecret is idempotent; testSecret fails naming a pod that has not loaded the new token, then passes; finishSecret moves AWSCURRENT', async () => {
  // Arrange: a rotation Secrets Manager started (AWSPENDING on a version without a value): stop it before createSecret
  const before = await current();
  rotationHook = async () => {
    throw new Error('held by the test');
  };
  await expect(sm.send(new RotateSecretCommand({ SecretId: ARN, ClientRequestToken: 'v-by-hand-0001-0001-000000000001', RotateImmediately: true }))).rejects.toThrow(/failed at createSecret: held by the test/);
  rotationHook = (e) => handler(e);
  const step = (Step: RotationInvocation['Step']) => handler({ Step, SecretId: ARN, ClientRequestToken: 'v-by-hand-0001-0001-000000000001' });
  // A production pod of the model whose Secret never changes (a kubelet that has not synced it yet)
  const admin = new k8s.KubeConfig();
  admin.loadFromFile(kube.kubeconfigPath);
  const adminApps = admin.makeApiClient(k8s.AppsV1Api);
  await core.createNamespacedSecret({ namespace: NAMESPACES.production, body: { metadata: { name: 'stale-token' }, data: { tokens: Buffer.from(`${before}\n`).toString('base64') } } });
  await adminApps.createNamespacedDeployment({ namespace: NAMESPACES.production, body: deployment('production', 'stale-token', `${MODEL}-stale`) });
  const stalePod = await until(async () => {
    const pods = await core.listNamespacedPod({ namespace: NAMESPACES.production, labelSelector: `mlpipe.dev/version=${MODEL}-stale` });
    return pods.items.find((p) => p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'))?.metadata?.name;
  }, 'the stale pod ready');

  try {
    // Act: createSecret twice (a retried step)
    await step('createSecret');
    const pending = (await sm.send(new GetSecretValueCommand({ SecretId: ARN, VersionStage: 'AWSPENDING' }))).SecretString!;
    await step('createSecret');
    // Assess: one pending token, the same; current unchanged
    expect((await sm.send(new GetSecretValueCommand({ SecretId: ARN, VersionId: 'v-by-hand-0001-0001-000000000001' }))).SecretString).toBe(pending);
    expect(Object.entries(await stagesOf()).filter(([, s]) => s.includes('AWSPENDING')).map(([id]) => id)).toEqual(['v-by-hand-0001-0001-000000000001']);
    expect(await current()).toBe(before);
    expect(pending).toMatch(/^[A-Za-z0-9]{48}$/);

    // Act: setSecret writes current, pending (and previous) to both namespaces
    await step('setSecret');
    for (const ns of Object.values(NAMESPACES)) expect((await secretLines(ns)).slice(0, 2)).toEqual([before, pending]);

    // Act: testSecret while the stale pod lacks the token, on a clock that runs the 30 s wait at once
    let now = 0;
    const restore = setPhaseClock({ now: () => now, sleep: async (ms) => void (now += ms) });
    try {
      const failure = (await step('testSecret').catch((e: unknown) => e)) as Error;
      expect(failure.name).toBe('TokenNotLoadedError');
      expect(failure.message).toContain(`(fingerprint ${tokenFingerprint(pending)}) is not loaded yet by 1 serving pod(s) after 30 s: ${NAMESPACES.production}/${stalePod}.`);
      expect(failure.message).toMatch(/The rotation fails \(Secrets Manager retries it a few times\); if it keeps failing, AWSPENDING stays/);
      expect(failure.message).not.toContain(pending);
    } finally {
      restore();
    }
    expect(await current()).toBe(before); // nothing changed for callers

    // Act: the stale pod goes; testSecret passes; finishSecret (twice) makes it current
    await adminApps.deleteNamespacedDeployment({ namespace: NAMESPACES.production, name: `${MODEL}-stale` });
    await until(async () => ((await core.listNamespacedPod({ namespace: NAMESPACES.production, labelSelector: `mlpipe.dev/version=${MODEL}-stale` })).items.length === 0 ? true : undefined), 'the stale pod gone');
    const restoreFast = fastPolls();
    await step('testSecret').finally(restoreFast);
    await step('finishSecret');
    await step('finishSecret');
    // Assess
    expect(await current()).toBe(pending);
    const stages = await stagesOf();
    expect(stages['v-by-hand-0001-0001-000000000001']).toContain('AWSCURRENT');
    // AWSPREVIOUS is on the version that was current: the token it replaced.
    const previousIds = Object.entries(stages).filter(([, s]) => s.includes('AWSPREVIOUS')).map(([id]) => id);
    expect(previousIds).toHaveLength(1);
    expect((await sm.send(new GetSecretValueCommand({ SecretId: ARN, VersionId: previousIds[0] }))).SecretString).toBe(before);
    for (const ns of Object.values(NAMESPACES)) expect(await secretLines(ns)).toEqual([pending, before]);
  } finally {
    rotationHook = (e) => handler(e);
    // A failure above must not leave AWSPENDING behind for the other tests (the store would refuse them).
    await dropUnfinished('v-by-hand-0001-0001-000000000001');
    await adminApps.deleteNamespacedDeployment({ namespace: NAMESPACES.production, name: `${MODEL}-stale` }).catch(() => undefined);
    await until(async () => ((await core.listNamespacedPod({ namespace: NAMESPACES.production, labelSelector: `mlpipe.dev/version=${MODEL}-stale` })).items.length === 0 ? true : undefined), 'the stale pod gone');
  }
}, 90_000);

it('RotateSecret without rotating (the configuration test Secrets Manager runs at deploy) runs testSecret alone: no wait, nothing changes, the throwaway AWSPENDING is gone; without Kubernetes access to a namespace it fails naming it', async () => {
  // Arrange
  const before = await current();
  const stagesBefore = await labelsOf();
  const secretsBefore = await Promise.all(Object.values(NAMESPACES).map(secretLines));
  let now = 0;
  const restore = setPhaseClock({ now: () => now, sleep: async (ms) => void (now += ms) });
  try {
    // Act
    await sm.send(new RotateSecretCommand({ SecretId: ARN, RotateImmediately: false }));
  } finally {
    restore();
  }
  // Assess: testSecret waited for no pod, and nothing moved
  expect(now).toBe(0);
  expect(await current()).toBe(before);
  expect(await labelsOf()).toEqual(stagesBefore);
  expect(await Promise.all(Object.values(NAMESPACES).map(secretLines))).toEqual(secretsBefore);
  expect(logs.lines.some((l) => /^configuration test/.test(l.message))).toBe(true);

  // Act: the function's Kubernetes access covers staging only
  const saved = process.env.KUBECONFIG;
  process.env.KUBECONFIG = kube.mintScopedKubeconfig([NAMESPACES.staging], { username: 'mlpipe:token-rotation-staging-only' }).kubeconfigPath;
  reloadSettings();
  resetKube();
  try {
    // Assess: a clear failure naming the namespace, and the throwaway version gone again
    await expect(sm.send(new RotateSecretCommand({ SecretId: ARN, RotateImmediately: false }))).rejects.toThrow(
      /configuration test of EndpointToken failed at testSecret: Rotation configuration test: the rotation function may not list the pods of fm in namespace mlpipe-production/,
    );
  } finally {
    process.env.KUBECONFIG = saved;
    reloadSettings();
    resetKube();
  }
  expect(await labelsOf()).toEqual(stagesBefore);
}, 30_000);

it('a failed rotation leaves AWSPENDING: RotateSecret is refused as on AWS, and --rotate prints the command that clears it, with the real ids', async () => {
  // Arrange: a rotation that fails at createSecret
  const before = await current();
  rotationHook = async () => {
    throw new Error('held by the test');
  };
  try {
    await expect(sm.send(new RotateSecretCommand({ SecretId: ARN, ClientRequestToken: 'v-stuck-0001-0001-0001-000000000001' }))).rejects.toThrow(/failed at createSecret/);
    rotationHook = (e) => handler(e);
    // Act
    const refused = (await sm.send(new RotateSecretCommand({ SecretId: ARN })).catch((e: unknown) => e)) as Error;
    const cli = (await rotateToken(sm, MODEL, ARN, cliClock()).catch((e: unknown) => e)) as Error;
    // Assess
    expect(refused.name).toBe('InvalidRequestException');
    expect(refused.message).toBe("A previous rotation isn't complete. That rotation will be reattempted.");
    expect(cli.name).toBe('CliError');
    expect(cli.message).toContain('version v-stuck-0001-0001-0001-000000000001 still carries AWSPENDING');
    expect(cli.message).toContain(`aws secretsmanager update-secret-version-stage --secret-id ${ARN} --version-stage AWSPENDING --remove-from-version-id v-stuck-0001-0001-0001-000000000001`);
    expect(await current()).toBe(before);
  } finally {
    rotationHook = (e) => handler(e);
    await sm.send(new UpdateSecretVersionStageCommand({ SecretId: ARN, VersionStage: 'AWSPENDING', RemoveFromVersionId: 'v-stuck-0001-0001-0001-000000000001' }));
  }
  // Assess: once cleared, a rotation runs
  const restore = fastPolls();
  await rotateToken(sm, MODEL, ARN, cliClock()).finally(restore);
  expect(await current()).not.toBe(before);
}, 60_000);

it('testSecret does not wait for a serving pod that never started (ImagePullBackOff): it will mount the Secret, pending token included, when it starts', async () => {
  // Arrange: a production pod of the model whose image cannot be pulled
  const admin = new k8s.KubeConfig();
  admin.loadFromFile(kube.kubeconfigPath);
  const adminApps = admin.makeApiClient(k8s.AppsV1Api);
  const broken = deployment('production', `${MODEL}-endpoint-token`, `${MODEL}-unpullable`);
  broken.spec!.template.spec!.containers[0]!.image = 'mlpipe/no-such-image:0';
  await adminApps.createNamespacedDeployment({ namespace: NAMESPACES.production, body: broken });
  const selector = `mlpipe.dev/version=${MODEL}-unpullable`;
  try {
    await until(async () => {
      const pods = await core.listNamespacedPod({ namespace: NAMESPACES.production, labelSelector: selector });
      return pods.items.some((p) => /ErrImagePull|ImagePullBackOff/.test(p.status?.containerStatuses?.[0]?.state?.waiting?.reason ?? '')) ? true : undefined;
    }, 'the unpullable pod waiting for its image');
    const before = await current();
    // Act
    const restore = fastPolls();
    await rotateToken(sm, MODEL, ARN, cliClock()).finally(restore);
    // Assess: rotated, and the Secret the pod will mount holds the new token
    const now = await current();
    expect(now).not.toBe(before);
    expect((await secretLines(NAMESPACES.production))[0]).toBe(now);
  } finally {
    await adminApps.deleteNamespacedDeployment({ namespace: NAMESPACES.production, name: `${MODEL}-unpullable` }).catch(() => undefined);
    await until(async () => ((await core.listNamespacedPod({ namespace: NAMESPACES.production, labelSelector: selector })).items.length === 0 ? true : undefined), 'the unpullable pod gone');
  }
}, 60_000);

it('a secret whose DescribeSecret has no RotationEnabled (never configured for rotation) is refused, as AWS templates refuse it', async () => {
  // Arrange: a store that knows the secret but has no rotation for it (DescribeSecret omits RotationEnabled)
  const plain = await startLocalSecretsManager({ secrets: [{ arn: ARN, name: 'EndpointToken' }], file: join(dir, 'plain-secrets.json') });
  const saved = process.env.AWS_ENDPOINT_URL_SECRETS_MANAGER;
  process.env.AWS_ENDPOINT_URL_SECRETS_MANAGER = plain.endpoint;
  resetEndpointAuth();
  try {
    expect((await new SecretsManagerClient({ endpoint: plain.endpoint, region: LOCAL_AWS_ENV.AWS_REGION }).send(new DescribeSecretCommand({ SecretId: ARN }))).RotationEnabled).toBeUndefined();
    const versionId = Object.keys((await new SecretsManagerClient({ endpoint: plain.endpoint, region: LOCAL_AWS_ENV.AWS_REGION }).send(new DescribeSecretCommand({ SecretId: ARN }))).VersionIdsToStages ?? {})[0]!;
    // Act + Assess
    await expect(handler({ Step: 'createSecret', SecretId: ARN, ClientRequestToken: versionId })).rejects.toThrow(`Secret ${ARN} does not have rotation enabled.`);
  } finally {
    process.env.AWS_ENDPOINT_URL_SECRETS_MANAGER = saved;
    resetEndpointAuth();
    await plain.stop();
  }
});

it('--rotate: a DescribeSecret the caller may not send fails with a message naming the permission', async () => {
  // Arrange: a client whose DescribeSecret is denied, as IAM would deny it
  const client = new SecretsManagerClient({ endpoint: store.endpoint, region: LOCAL_AWS_ENV.AWS_REGION });
  client.middlewareStack.add(
    (next, context) => async (args) => {
      if (context.commandName === 'DescribeSecretCommand') throw Object.assign(new Error('User: arn:aws:iam::000000000000:user/dev is not authorized to perform: secretsmanager:DescribeSecret'), { name: 'AccessDeniedException' });
      return next(args);
    },
    { step: 'initialize' },
  );
  // Act
  const restore = fastPolls();
  const failure = (await rotateToken(client, MODEL, ARN, cliClock()).finally(restore).catch((e: unknown) => e)) as Error;
  // Assess
  expect(failure.name).toBe('CliError');
  expect(failure.message).toBe(`You may not read the rotation state of fm's endpoint token: DescribeSecret on ${ARN} was denied (AccessDeniedException). Ask for secretsmanager:DescribeSecret on that secret.`);
}, 30_000);

it('a release writing the token Secret while a rotation step moves the labels writes again: the pending token is not lost', async () => {
  // Arrange: the release's reads of the token values, the first held until createSecret and setSecret of a rotation have run
  const versionId = 'v-race-0001-0001-0001-000000000001';
  const step = (Step: RotationInvocation['Step']) => handler({ Step, SecretId: ARN, ClientRequestToken: versionId });
  let armed = true;
  const client = secrets();
  client.middlewareStack.add(
    (next, context) => async (args) => {
      if (armed && context.commandName === 'GetSecretValueCommand') {
        armed = false;
        // A rotation started (RotateSecret, held before its steps), then its first two steps
        rotationHook = async () => {
          throw new Error('held by the test');
        };
        await sm.send(new RotateSecretCommand({ SecretId: ARN, ClientRequestToken: versionId })).catch(() => undefined);
        rotationHook = (e) => handler(e);
        await step('createSecret');
        await step('setSecret');
      }
      return next(args);
    },
    { step: 'initialize', name: 'raceWithRotation' },
  );
  try {
    // Act: the release's write of the production Secret
    await syncTokenSecret(MODEL, NAMESPACES.production);
    // Assess: the Secret holds the pending token (testSecret would wait for it in vain otherwise)
    const pending = (await sm.send(new GetSecretValueCommand({ SecretId: ARN, VersionId: versionId }))).SecretString!;
    expect(armed).toBe(false);
    expect(await secretLines(NAMESPACES.production)).toContain(pending);
  } finally {
    client.middlewareStack.remove('raceWithRotation');
    await dropUnfinished(versionId);
    await syncTokenSecret(MODEL, NAMESPACES.production);
  }
}, 30_000);

it('--rotate waits on the CLI clock it is given: it polls while the rotation runs, then names the new current version and the replaced one (AWSPREVIOUS)', async () => {
  // Arrange: RotateSecret answers at once (as on AWS); the rotation's steps wait until --rotate has paused once
  const before = await current();
  const beforeId = Object.entries(await stagesOf()).find(([, s]) => s.includes('AWSCURRENT'))![0];
  const { client, state } = awsLikeRotateClient();
  const go = deferred();
  rotationHook = async (e) => {
    state.started();
    await go.promise;
    return handler(e);
  };
  const clock = cliClock(async () => {
    go.resolve();
    await state.rotation; // the steps have run: the next poll finds the version current
  });
  const restore = fastPolls();
  try {
    // Act
    const lines = await rotateToken(client, MODEL, ARN, clock);
    // Assess: one pause of 5 s on the given clock, then the new version is current and the replaced one named
    expect(clock.sleeps).toBe(1);
    expect(clock.t).toBe(5000);
    expect(await current()).not.toBe(before);
    expect(lines[0]).toContain(`version ${state.versionId} is current`);
    expect(lines[1]).toContain(`(version ${beforeId}, AWSPREVIOUS)`);
  } finally {
    restore();
    rotationHook = (e) => handler(e);
    go.resolve();
    await state.rotation?.catch(() => undefined);
  }
}, 30_000);

it('--rotate gives up after 10 minutes of the CLI clock while the new version stays AWSPENDING, saying where the reason is; the current token stays', async () => {
  // Arrange: a rotation whose first step never ends while --rotate waits
  const before = await current();
  const { client, state } = awsLikeRotateClient();
  const hold = deferred();
  rotationHook = async () => {
    state.started();
    await hold.promise;
  };
  // Past 10 minutes of polls (every 5 s) it should have given up: a CLI that reads another clock fails here, not after 10 real minutes.
  const clock = cliClock(async (sleeps) => {
    if (sleeps > 120) throw new Error(`--rotate paused ${sleeps} times (5 s each) on the clock it was given and has not given up`);
  });
  try {
    // Act
    const failure = (await rotateToken(client, MODEL, ARN, clock).catch((e: unknown) => e)) as Error;
    // Assess: 10 minutes of polls every 5 s on the given clock, none on the wall clock
    expect(failure.message).not.toMatch(/has not given up/);
    expect(failure.name).toBe('CliError');
    expect(failure.message).toContain(`The rotation of fm's token (version ${state.versionId}) is not finished after 10 minutes: the current token stays current.`);
    expect(failure.message).toContain("the rotation function's log (and its Errors alarm) says why");
    expect(clock.sleeps).toBe(120);
    expect(clock.t).toBe(600_000);
    expect((await stagesOf())[state.versionId!]).toEqual(['AWSPENDING']);
    expect(await current()).toBe(before);
  } finally {
    // The held rotation fails; its AWSPENDING must not block the other tests.
    hold.reject(new Error('released by the test'));
    await state.rotation?.catch(() => undefined);
    rotationHook = (e) => handler(e);
    if (state.versionId !== undefined) await dropUnfinished(state.versionId);
  }
}, 30_000);

it('testSecret reads the token Secrets of staging and production together: the second read is sent while the first is unanswered', async () => {
  // Arrange: a rotation stopped before its steps, then createSecret and setSecret (both Secrets hold the pending token)
  const versionId = 'v-together-0001-0001-0001-000000000001';
  const step = (Step: RotationInvocation['Step']) => handler({ Step, SecretId: ARN, ClientRequestToken: versionId });
  rotationHook = async () => {
    throw new Error('held by the test');
  };
  await sm.send(new RotateSecretCommand({ SecretId: ARN, ClientRequestToken: versionId })).catch(() => undefined);
  rotationHook = (e) => handler(e);
  // The rotation function's API traffic through a proxy that holds a read of the token Secret until a second
  // one arrives. Sequential reads would wait forever for each other: a timer lets them through after 10 s
  // then (under the client's 20 s answer timeout), so that case fails on the assertion below instead of
  // hanging; the passing case never waits for it (the second read is sent in the same turn as the first).
  const held: Array<() => void> = [];
  const reads: Array<{ namespace: string; whileHeld: number }> = [];
  let fallback: NodeJS.Timeout | undefined;
  let holding = true;
  const releaseAll = () => {
    holding = false;
    clearTimeout(fallback);
    for (const forward of held.splice(0)) forward();
  };
  const target = new URL(kube.url);
  const proxy = createServer((req: IncomingMessage, res: ServerResponse) => {
    const forward = () => {
      const upstream = request({ host: target.hostname, port: target.port, path: req.url, method: req.method, headers: req.headers }, (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      });
      upstream.on('error', (err) => res.destroy(err));
      req.pipe(upstream);
    };
    const secretRead = req.method === 'GET' ? /^\/api\/v1\/namespaces\/([^/]+)\/secrets\/fm-endpoint-token(\?|$)/.exec(req.url ?? '') : null;
    if (!secretRead) return forward();
    reads.push({ namespace: secretRead[1]!, whileHeld: held.length });
    if (!holding) return forward();
    held.push(forward);
    if (held.length === 2) releaseAll();
    else fallback ??= setTimeout(releaseAll, 10_000);
  });
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  const kubeconfig = JSON.parse(readFileSync(process.env.KUBECONFIG!, 'utf8')) as { clusters: Array<{ cluster: { server: string } }> };
  kubeconfig.clusters[0]!.cluster.server = `http://127.0.0.1:${(proxy.address() as { port: number }).port}`;
  writeFileSync(join(dir, 'kubeconfig-through-proxy.yaml'), JSON.stringify(kubeconfig), { mode: 0o600 });
  const saved = process.env.KUBECONFIG;
  const restore = fastPolls();
  try {
    await step('createSecret');
    await step('setSecret');
    process.env.KUBECONFIG = join(dir, 'kubeconfig-through-proxy.yaml');
    reloadSettings();
    resetKube();
    // Act
    await step('testSecret');
    // Assess: both namespaces read, the second while the first was held; the step then waited for the pods and passed
    expect(reads.map((r) => r.namespace).sort()).toEqual(Object.values(NAMESPACES).sort());
    expect(reads.map((r) => r.whileHeld)).toEqual([0, 1]);
    expect(logs.lines.some((l) => l.message === 'every serving pod accepts the pending token' && l.versionId === versionId)).toBe(true);
  } finally {
    restore();
    releaseAll();
    process.env.KUBECONFIG = saved;
    reloadSettings();
    resetKube();
    const closed = new Promise((resolve) => proxy.close(resolve));
    proxy.closeAllConnections();
    await closed;
    // No AWSPENDING left for the other tests: the rotation completes, or its label goes.
    await step('finishSecret').catch(() => undefined);
    await dropUnfinished(versionId);
  }
  expect(await current()).toBe((await sm.send(new GetSecretValueCommand({ SecretId: ARN, VersionId: versionId }))).SecretString);
}, 30_000);

it('mlpipe endpoint fm --rotate, then --show-token, against the local run: exit 0, the rotate lines without the token, then the new current token alone', async () => {
  // Arrange: the local.json `npm start` leaves, naming this store and the model's token secret
  const stateDir = join(dir, 'cli-state');
  mkdirSync(stateDir, { recursive: true });
  writeLocalFile(stateDir, {
    sfnEndpoint: 'http://127.0.0.1:9',
    stateMachineArn: 'arn:aws:states:us-east-1:000000000000:stateMachine:unused',
    region: LOCAL_AWS_ENV.AWS_REGION,
    kubeconfig: process.env.KUBECONFIG!,
    namespaces: NAMESPACES,
    modelName: MODEL,
    secretsEndpoint: store.endpoint,
    endpointTokenSecrets: { [MODEL]: ARN },
  });
  const before = await current();
  const env = { ...process.env };
  const clock = cliClock();
  const run = async (...argv: string[]) => {
    const out: string[] = [];
    const err: string[] = [];
    const code = await main([...argv, '--local', '--state-dir', stateDir], { out: (l) => out.push(l), err: (l) => err.push(l) }, clock);
    return { code, out, err };
  };
  const restore = fastPolls();
  let rotated, shown;
  try {
    // Act
    rotated = await run('endpoint', MODEL, '--rotate');
    shown = await run('endpoint', MODEL, '--show-token');
  } finally {
    restore();
    // The CLI points process.env at the local run it resolved: back to the suite's.
    process.env = env;
    reloadSettings();
    resetClients();
    resetKube();
  }
  // Assess
  const now = await current();
  expect(now).not.toBe(before);
  expect(rotated).toEqual({ code: 0, out: [expect.stringMatching(/^rotated {3}the endpoint token of fm: version \S+ is current/), expect.stringMatching(/^still ok/), expect.stringMatching(/^callers/)], err: [] });
  expect(rotated.out.join('\n')).not.toContain(now);
  expect(shown).toEqual({ code: 0, out: [now], err: [] });
}, 30_000);

it('rotationKubernetesGroup: with only the Roles `mlpipe monitor-rbac --rotation --model fm` prints, bound to its group (no access policy), a rotation completes; before they are applied its configuration test fails naming what RBAC refused', async () => {
  // Arrange: an access entry with kubernetesGroups [mlpipe-token-rotation] and no access policy
  const user = 'arn:aws:sts::000000000000:assumed-role/mlpipe-TokenRotationRole/rotation';
  const admin = new k8s.KubeConfig();
  admin.loadFromFile(kube.kubeconfigPath);
  const objects = k8s.KubernetesObjectApi.makeApiClient(admin);
  const roles = k8s.loadAllYaml(rotationRbacYaml(Object.values(NAMESPACES), 'mlpipe-token-rotation', [MODEL])) as k8s.KubernetesObject[];
  const before = await current();
  try {
    await asKubernetesGroup(kube, { user, group: 'mlpipe-token-rotation' }, async () => {
      // Act + assess: before the cluster admin applies the Roles, the deploy-time configuration test fails
      // naming the namespace and the API server's refusal (staging: the configuration test checks it first)
      const refused = await sm.send(new RotateSecretCommand({ SecretId: ARN, RotateImmediately: false })).then(() => '', (e: Error) => e.message);
      const ns = /may not list the pods of fm in namespace (\S+) /.exec(refused)?.[1];
      expect(ns).toBe(NAMESPACES.staging);
      expect(refused).toContain(`HTTP 403 Forbidden: pods is forbidden: User "${user}" cannot list resource "pods" in API group "" in the namespace "${ns}"`);
      // Act: the Roles as printed, then `mlpipe endpoint fm --rotate`
      for (const doc of roles) await objects.create(doc);
      const restore = fastPolls();
      const lines = await rotateToken(sm, MODEL, ARN, cliClock()).finally(restore);
      // Assess: rotated with those rules alone, both namespaces' Secrets written
      expect(lines.join('\n')).toMatch(/is current, and every serving pod/);
      const next = await current();
      expect(next).not.toBe(before);
      for (const ns of Object.values(NAMESPACES)) expect(await secretLines(ns)).toEqual([next, before]);
    });
  } finally {
    await Promise.all(roles.map((o) => objects.delete(o).catch(() => undefined)));
  }
}, 30_000);

it('tasksKubernetesGroup: with only the Roles `mlpipe monitor-rbac --tasks --model fm` prints, the Deploy steps\' token Secret write (server-side apply, creating it) works in both namespaces; another model\'s Secret is refused', async () => {
  // Arrange: the tasks' access entry with kubernetesGroups [mlpipe-tasks] and no access policy; fm's Secrets gone
  const user = 'arn:aws:sts::000000000000:assumed-role/mlpipe-KubernetesTaskRole/tasks';
  const admin = new k8s.KubeConfig();
  admin.loadFromFile(kube.kubeconfigPath);
  const objects = k8s.KubernetesObjectApi.makeApiClient(admin);
  const roles = k8s.loadAllYaml(tasksRbacYaml(Object.values(NAMESPACES), 'mlpipe-tasks', [MODEL])) as k8s.KubernetesObject[];
  try {
    for (const namespace of Object.values(NAMESPACES)) await core.deleteNamespacedSecret({ name: `${MODEL}-endpoint-token`, namespace });
    for (const doc of roles) await objects.create(doc);
    await asKubernetesGroup(kube, { user, group: 'mlpipe-tasks' }, async () => {
      // Act: what DeployStaging and DeployProduction do first (workloads.ts deployServing)
      for (const namespace of Object.values(NAMESPACES)) await syncTokenSecret(MODEL, namespace);
      // Assess: written with the current token, in both; another model's token Secret is refused
      const token = await current();
      for (const namespace of Object.values(NAMESPACES)) expect(await secretLines(namespace)).toContain(token);
      await expect(syncTokenSecret('other', NAMESPACES.production, ['x'])).rejects.toThrow(
        `secrets "other-endpoint-token" is forbidden: User "${user}" cannot patch resource "secrets" in API group "" in the namespace "${NAMESPACES.production}"`,
      );
    });
  } finally {
    await Promise.all(roles.map((o) => objects.delete(o).catch(() => undefined)));
    for (const namespace of Object.values(NAMESPACES)) await syncTokenSecret(MODEL, namespace);
  }
}, 30_000);

it('the local store answers a repeated PutSecretValue (same ClientRequestToken, same value) as AWS does: it succeeds and changes nothing, labels included', async () => {
  const before = await current();
  const versionId = randomUUID();
  await sm.send(new PutSecretValueCommand({ SecretId: ARN, ClientRequestToken: versionId, SecretString: 'a-retried-put-0001', VersionStages: ['MLPIPE_TEST'] }));
  try {
    // Retried without VersionStages (which would mean AWSCURRENT on a new request)
    const again = await sm.send(new PutSecretValueCommand({ SecretId: ARN, ClientRequestToken: versionId, SecretString: 'a-retried-put-0001' }));
    expect(again.VersionStages).toEqual(['MLPIPE_TEST']);
    expect(await current()).toBe(before);
  } finally {
    await sm.send(new UpdateSecretVersionStageCommand({ SecretId: ARN, VersionStage: 'MLPIPE_TEST', RemoveFromVersionId: versionId }));
  }
});
