/**
 * SERVING_DRAIN_SECONDS: a serving pod that is being stopped (a canary's scale-down, a retired version)
 * keeps serving through a `preStop` sleep while kube-proxy and the load balancer stop sending it new
 * connections, within a grace period long enough for the sleep and the server's own shutdown. What the local
 * kubelet does with it is test/local-kube/workloads.test.ts's.
 */
import { FUNCTION_SETTINGS } from '../../functions/shared/function-settings';
import { servingDeployment } from '../../functions/shared/manifests';
import * as S from '../../functions/shared/settings';
import type { RunContext } from '../../functions/shared/types';

const serving = (env: Record<string, string> = {}) => S.readSettings(FUNCTION_SETTINGS.DeployProduction, { KUBECONFIG: '/dev/null', ...env });
const run = {
  modelName: 'fm',
  version: 'v1',
  servingImage: 'registry.example.com/serve:1',
  modelUri: 's3://b/models/fm/v1/',
  names: { stagingDeployment: 'fm-v1-staging', productionDeployment: 'fm-v1' },
  namespaces: { staging: 'mlpipe-staging', production: 'mlpipe-production' },
} as unknown as RunContext;

it('by default a stopped server drains 10 s (preStop sleep) inside a grace period with 30 s more for its shutdown', () => {
  const pod = servingDeployment(run, 'production', serving()).spec!.template.spec!;
  expect(pod.containers[0]!.lifecycle).toEqual({ preStop: { sleep: { seconds: 10 } } });
  // The API server refuses a sleep not shorter than the grace period; the server needs up to 10 s after SIGTERM.
  expect(pod.terminationGracePeriodSeconds).toBe(40);
});

it('SERVING_DRAIN_SECONDS=0 sets no hook and keeps the default grace period; a value out of range names the setting', () => {
  const pod = servingDeployment(run, 'staging', serving({ SERVING_DRAIN_SECONDS: '0' })).spec!.template.spec!;
  expect(pod.containers[0]!.lifecycle).toBeUndefined();
  expect(pod.terminationGracePeriodSeconds).toBeUndefined();
  expect(servingDeployment(run, 'staging', serving({ SERVING_DRAIN_SECONDS: '45' })).spec!.template.spec!.terminationGracePeriodSeconds).toBe(75);
  expect(() => serving({ SERVING_DRAIN_SECONDS: '301' })).toThrow(/SERVING_DRAIN_SECONDS/);
  expect(() => serving({ SERVING_DRAIN_SECONDS: '1.5' })).toThrow(/SERVING_DRAIN_SECONDS/);
});
