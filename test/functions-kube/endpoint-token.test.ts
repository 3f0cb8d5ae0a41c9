/**
 * Endpoint token delivery with auth on, through the DeployStaging handler against the local Kubernetes
 * API and a local Secrets Manager: the token Secret is applied before the Deployment (and again on a
 * re-run, without a 409), the Deployment mounts it and probes the admin port, and the pod's
 * AUTH_TOKEN_FILE holds the token; a rewrite of the Secret (a rotation's two tokens) reaches the running
 * pod's file in place, without a restart.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { V1Deployment, V1Pod, V1Secret } from '@kubernetes/client-node';
import { handler as deployStaging } from '../../functions/deploy-staging';
import { resetEndpointAuth } from '../../functions/shared/endpoint-auth';
import { kubeApis, listObjects, readObject } from '../../functions/shared/kube';
import { endpointTokenSecretName } from '../../functions/shared/manifests';
import { labelSelector, workloadLabels } from '../../functions/shared/names';
import { syncTokenSecret } from '../../functions/shared/workloads';
import type { PipelineState } from '../../functions/shared/types';
import { startLocalSecretsManager, type LocalSecretsManager } from '../../local/secrets';
import { startTestEnv, type TestEnv } from './env';

const TOKEN = 'tok-current-0123456789abcdefghijklmnopqrstuv';
const ARN = 'arn:aws:secretsmanager:us-east-1:000000000000:secret:EndpointToken-local';
let env: TestEnv;
let secrets: LocalSecretsManager;
let dir: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'mlpipe-token-'));
  writeFileSync(join(dir, 'secrets.json'), JSON.stringify({ [ARN]: TOKEN }));
  secrets = await startLocalSecretsManager({ secrets: [{ arn: ARN, name: 'EndpointToken' }], file: join(dir, 'secrets.json') });
  env = await startTestEnv({ ENDPOINT_AUTH: 'true', ENDPOINT_TOKEN_SECRETS: JSON.stringify({ fashion: ARN }), AWS_ENDPOINT_URL_SECRETS_MANAGER: secrets.endpoint });
  resetEndpointAuth();
});

afterAll(async () => {
  await env?.stop();
  await secrets?.stop();
  resetEndpointAuth();
  rmSync(dir, { recursive: true, force: true });
});

/** What a running pod's process sees at AUTH_TOKEN_FILE (the local kubelet's pid is in the containerID). */
function tokenFileOf(pod: V1Pod): string {
  const pid = /^local:\/\/(\d+)$/.exec(pod.status?.containerStatuses?.[0]?.containerID ?? '')?.[1];
  if (!pid) throw new Error('pod not running');
  const environ = readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0');
  const file = environ.find((e) => e.startsWith('AUTH_TOKEN_FILE='))?.slice('AUTH_TOKEN_FILE='.length);
  if (!file) throw new Error('no AUTH_TOKEN_FILE in the pod');
  return file;
}

/** Waits (on the event loop, not the clock) until `check` holds, for at most `turns` turns. */
async function until<T>(check: () => Promise<T | undefined>, turns = 20_000): Promise<T> {
  for (let i = 0; i < turns; i++) {
    const v = await check().catch(() => undefined);
    if (v !== undefined) return v;
    await new Promise((r) => setImmediate(r));
  }
  throw new Error('condition never held');
}

it('DeployStaging writes the token Secret before the Deployment, idempotently; the pod reads it as a file that a rotation rewrites in place', async () => {
  // Arrange
  const run = await env.prepare('2026-11-29T10:00:00.000Z');
  const ns = run.namespaces.staging;
  // Act: twice, as a retried step would (a create would be 409 the second time; apply is not)
  await deployStaging({ run } as PipelineState);
  await deployStaging({ run } as PipelineState);
  // Assess: the Secret holds the token, the Deployment mounts it and probes the admin port
  const { core } = await kubeApis();
  const secret: V1Secret = await core.readNamespacedSecret({ name: endpointTokenSecretName('fashion'), namespace: ns });
  expect(Buffer.from(secret.data!.tokens!, 'base64').toString('utf8')).toBe(`${TOKEN}\n`);
  const d = await readObject<V1Deployment>({ kind: 'Deployment', namespace: ns, name: run.names.stagingDeployment });
  const pod = d!.spec!.template.spec!;
  expect(pod.volumes).toContainEqual({ name: 'auth-token', secret: { secretName: endpointTokenSecretName('fashion'), defaultMode: 0o440 } });
  expect(pod.containers[0]!.env).toContainEqual({ name: 'AUTH_TOKEN_FILE', value: '/var/run/mlpipe/auth/tokens' });
  expect(pod.containers[0]!.readinessProbe!.httpGet!.port).toBe('admin');
  expect(JSON.stringify(d)).not.toContain(TOKEN); // the token is in the Secret only
  // The pod's file (the local kubelet mounts the Secret where AUTH_TOKEN_FILE points)
  const labels = labelSelector(workloadLabels(run.modelName, run.version, 'staging'));
  const running = await until(async () => (await listObjects<V1Pod>('Pod', ns, { labelSelector: labels })).items.find((p) => p.status?.containerStatuses?.[0]?.containerID));
  const file = tokenFileOf(running);
  expect(readFileSync(file, 'utf8')).toBe(`${TOKEN}\n`);
  // A rotation's Secret: both tokens; the running pod's file follows, the process unchanged
  await syncTokenSecret('fashion', ns, ['tok-next-0123456789', TOKEN]);
  await until(async () => (readFileSync(file, 'utf8') === `tok-next-0123456789\n${TOKEN}\n` ? true : undefined));
  const after = await listObjects<V1Pod>('Pod', ns, { labelSelector: labels });
  expect(after.items.find((p) => p.metadata?.name === running.metadata?.name)?.status?.containerStatuses?.[0]?.containerID).toBe(running.status?.containerStatuses?.[0]?.containerID);
});
