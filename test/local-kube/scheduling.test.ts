/**
 * A pod the one local node cannot take (a nodeSelector it does not satisfy) stays Pending and unbound,
 * as on a real cluster: PodScheduled=False/Unschedulable with the scheduler's message, a FailedScheduling
 * event, and pods/log answering 204 with no body and no Content-Type (transcript 10), which is what the
 * pipeline's log tail meets for a pod that never started.
 */
import { startHarness, waitFor, type Harness } from './helpers';

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
  await h.core.createNamespace({ body: { metadata: { name: 'sched' } } });
});
afterAll(async () => {
  await h.close();
});

it('keeps an unschedulable pod Pending without a node, and its log is 204 No Content', async () => {
  await h.core.createNamespacedPod({
    namespace: 'sched',
    body: { metadata: { name: 'gpu-pod' }, spec: { nodeSelector: { 'mlpipe.example.com/pool': 'gpu' }, containers: [{ name: 'main', image: 'example.com/sleeper:1' }] } },
  });
  const pod = await waitFor(
    h.kube,
    () => h.core.readNamespacedPod({ namespace: 'sched', name: 'gpu-pod' }),
    (p) => p.status?.conditions?.some((c) => c.type === 'PodScheduled') ?? false,
  );
  expect(pod.spec?.nodeName).toBeUndefined();
  expect(pod.status?.phase).toBe('Pending');
  expect(pod.status?.conditions).toEqual([
    expect.objectContaining({
      type: 'PodScheduled',
      status: 'False',
      reason: 'Unschedulable',
      message: "0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector. preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling.",
    }),
  ]);

  const log = await fetch(`${h.kube.url}/api/v1/namespaces/sched/pods/gpu-pod/log?tailLines=20`, { headers: { Authorization: `Bearer ${h.kube.token}` } });
  expect(log.status).toBe(204);
  expect(log.headers.get('content-type')).toBeNull();
  expect(await log.text()).toBe('');

  const events = await h.core.listNamespacedEvent({ namespace: 'sched', fieldSelector: 'involvedObject.name=gpu-pod,reason=FailedScheduling' });
  expect(events.items.map((e) => [e.type, e.source?.component])).toEqual([['Warning', 'default-scheduler']]);
});
