/**
 * The local run with credentials bound to the pipeline's two namespaces, as mlpipe's EKS access entry
 * gives them (`npm start -- --kubeconfig <file>` with such a token): the namespace setup uses the
 * namespaces as they are instead of crashing on "403 namespaces is forbidden … at the cluster scope", a
 * missing namespace is a clear error, and the training handlers work with that token alone.
 */
import { handler as submitTraining } from '../../functions/submit-training';
import { handler as awaitTraining } from '../../functions/await-training';
import { resetKube } from '../../functions/shared/kube';
import { KubeConfig, KubernetesObjectApi, loadAllYaml, type KubernetesObject } from '@kubernetes/client-node';
import { tasksRbacYaml } from '../../lib/monitor-rbac';
import { ensureNamespaces, NamespaceSetupError } from '../../local/namespaces';
import { asKubernetesGroup, startTestEnv, type TestEnv } from './env';

describe('training-scoped', () => {
  let env: TestEnv;
  let adminKubeconfig: string;

  beforeAll(async () => {
    env = await startTestEnv();
    adminKubeconfig = process.env.KUBECONFIG!;
  });
  afterAll(async () => {
    await env?.stop();
  });

  const failure = (p: Promise<unknown>) => p.then(() => { throw new Error('expected a failure'); }, (e: unknown) => e as Error);

  /** A run's training, submitted and awaited with the handlers' current Kubernetes identity: its last status. */
  const trainedStatus = async (at: string): Promise<string> => {
    const run = await env.prepare(at);
    let training = await submitTraining({ run });
    for (let i = 0; i < 4 && training.status === 'pending'; i++) training = await awaitTraining({ run, training });
    return training.status;
  };

  it('uses existing namespaces with a namespace-bound token, and trains with it', async () => {
    const scoped = env.kube.mintScopedKubeconfig(['mlpipe-staging', 'mlpipe-production']).kubeconfigPath;
    const setup = await ensureNamespaces(scoped, ['mlpipe-staging', 'mlpipe-production'], ['mlpipe-trainer', 'mlpipe-server']);
    expect(setup).toEqual({ existing: ['mlpipe-staging', 'mlpipe-production'], created: [], createdServiceAccounts: [] });

    process.env.KUBECONFIG = scoped;
    resetKube();
    try {
      expect(await trainedStatus('2026-04-01T00:00:00Z')).toBe('succeeded');
    } finally {
      process.env.KUBECONFIG = adminKubeconfig;
      resetKube();
    }
  }, 60_000);

  it('tasksKubernetesGroup: with only the Roles `mlpipe monitor-rbac --tasks` prints bound to its group (no access policy), it trains', async () => {
    const roles = loadAllYaml(tasksRbacYaml(['mlpipe-staging', 'mlpipe-production'], 'mlpipe-tasks')) as KubernetesObject[];
    const admin = new KubeConfig();
    admin.loadFromFile(adminKubeconfig);
    const client = KubernetesObjectApi.makeApiClient(admin);
    try {
      for (const doc of roles) await client.create(doc);
      const user = 'arn:aws:sts::123456789012:assumed-role/mlpipe-KubernetesTaskRole/tasks';
      expect(await asKubernetesGroup(env.kube, { user, group: 'mlpipe-tasks' }, () => trainedStatus('2026-04-01T00:05:00Z'))).toBe('succeeded');
    } finally {
      await Promise.all(roles.map((doc) => client.delete(doc).catch(() => undefined)));
    }
  }, 60_000);

  it('creates what is missing only when allowed, and otherwise says what to do', async () => {
    const scoped = env.kube.mintScopedKubeconfig(['mlpipe-staging', 'mlpipe-elsewhere']).kubeconfigPath;
    const err = await failure(ensureNamespaces(scoped, ['mlpipe-staging', 'mlpipe-elsewhere'], ['mlpipe-trainer']));
    expect(err).toBeInstanceOf(NamespaceSetupError);
    expect(err.message).toBe(
      'Namespace mlpipe-elsewhere does not exist and the kubeconfig\'s credentials may not create it (namespaces is forbidden: User "mlpipe:pipeline-handlers" cannot create resource "namespaces" in API group "" at the cluster scope). Create it as a cluster admin (kubectl create namespace mlpipe-elsewhere), or use credentials that may.',
    );
    const outside = await failure(ensureNamespaces(scoped, ['mlpipe-production'], []));
    expect(outside.message).toMatch(/^Cannot use namespace mlpipe-production: .*cannot list resource "serviceaccounts" in API group "" in the namespace "mlpipe-production"/);

    const created = await ensureNamespaces(adminKubeconfig, ['mlpipe-elsewhere'], ['mlpipe-trainer']);
    expect(created).toEqual({ existing: [], created: ['mlpipe-elsewhere'], createdServiceAccounts: ['mlpipe-elsewhere/mlpipe-trainer'] });
    expect(await ensureNamespaces(scoped, ['mlpipe-elsewhere'], ['mlpipe-trainer'])).toEqual({ existing: ['mlpipe-elsewhere'], created: [], createdServiceAccounts: [] });
  });
});
