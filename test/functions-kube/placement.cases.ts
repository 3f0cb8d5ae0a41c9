/**
 * Spot tolerance and placement of training, against the local Kubernetes API over HTTP: the Job
 * SubmitTraining applies carries a podFailurePolicy, so an evicted (disruption-marked) training pod is
 * replaced without spending backoffLimit and an invalid environment (exit 2) fails the Job at once; the
 * placement settings reach the stored pod specs, and what the API refuses is refused as a real one does.
 */
import * as k8s from '@kubernetes/client-node';
import type { V1Deployment, V1Job, V1Pod } from '@kubernetes/client-node';
import { handler as submitTraining } from '../../functions/submit-training';
import { handler as awaitTraining } from '../../functions/await-training';
import { handler as deployStaging } from '../../functions/deploy-staging';
import { kubeApis, listObjects } from '../../functions/shared/kube';
import { labelSelector, workloadLabels } from '../../functions/shared/names';
import type { PipelineState, RunContext, TrainingResult } from '../../functions/shared/types';
import { waitFor } from '../local-kube/helpers';
import { IMAGES, startTestEnv, withSettings, type TestEnv } from './env';

describe('placement', () => {
  const NS = 'mlpipe-staging';
  let env: TestEnv;

  beforeAll(async () => {
    env = await startTestEnv({ TRAINING_BACKOFF_LIMIT: '0' });
  });
  afterAll(async () => {
    await env?.stop();
  });

  async function awaitDone(run: RunContext, training: TrainingResult): Promise<TrainingResult> {
    let result = training;
    for (let i = 0; i < 4 && result.status === 'pending'; i++) result = await awaitTraining({ run, training: result } as PipelineState);
    return result;
  }

  async function trainingPods(run: RunContext): Promise<V1Pod[]> {
    return (await listObjects<V1Pod>('Pod', NS, { labelSelector: labelSelector(workloadLabels(run.modelName, run.version, 'training')) })).items;
  }

  /** Follows a pod's log (pods/log?follow=true) until it contains `text`. */
  async function logReaches(pod: string, text: string): Promise<void> {
    const res = await fetch(`${env.kube.url}/api/v1/namespaces/${NS}/pods/${pod}/log?follow=true`, { headers: { Authorization: `Bearer ${env.kube.token}` } });
    const decoder = new TextDecoder();
    let log = '';
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      log += decoder.decode(chunk, { stream: true });
      if (log.includes(text)) return;
    }
    throw new Error(`the log of ${pod} ended without "${text}": ${log}`);
  }

  describe('spot-tolerant training (podFailurePolicy)', () => {
    it('replaces an evicted training pod without spending backoffLimit 0: the Job still succeeds', async () => {
      // Prepare: a first pod that runs until it is evicted (a drain or spot reclaim), placed by every setting
      // the local node can satisfy, so the rendered placement is also accepted and scheduled by the API.
      const placement = {
        nodeSelector: { 'kubernetes.io/os': 'linux' },
        tolerations: [{ key: 'nvidia.com/gpu', operator: 'Exists', effect: 'NoSchedule' }, { key: 'karpenter.sh/disruption', operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 60 }],
        priorityClassName: 'mlpipe-training',
      };
      const run = await env.prepare('2026-03-01T10:00:00Z', { image: IMAGES.trainerUntilEvicted });
      const submitted = await withSettings({ TRAINING_PLACEMENT: JSON.stringify(placement) }, () => submitTraining({ run }));
      const [first] = await waitFor(env.kube, () => trainingPods(run), (pods) => pods[0]?.status?.phase === 'Running');
      await logReaches(first!.metadata!.name!, 'running until evicted');
      // Act: evict it as `kubectl drain` does, with the pipeline's own (namespace-scoped, edit-like) access.
      const scoped = new k8s.KubeConfig();
      scoped.loadFromFile(env.kube.mintScopedKubeconfig([NS]).kubeconfigPath);
      const evicted = await scoped.makeApiClient(k8s.CoreV1Api).createNamespacedPodEviction({
        name: first!.metadata!.name!,
        namespace: NS,
        body: { apiVersion: 'policy/v1', kind: 'Eviction', metadata: { name: first!.metadata!.name!, namespace: NS } },
      });
      const done = await awaitDone(run, submitted);
      // Assess
      expect(evicted).toMatchObject({ kind: 'Status' }); // 201 with a Success Status (client-node reads it as a V1Eviction)
      expect(done.status).toBe('succeeded');
      const job = (await listObjects<V1Job>('Job', NS)).items.find((j) => j.metadata?.name === run.names.trainingJob)!;
      expect(job.spec?.backoffLimit).toBe(0);
      expect(job.status).toMatchObject({ succeeded: 1 });
      expect(job.status?.failed).toBeUndefined(); // the disruption was not counted
      const pods = await trainingPods(run);
      expect(pods.map((p) => p.metadata?.name)).not.toContain(first!.metadata!.name);
      expect(pods.map((p) => p.status?.phase)).toEqual(['Succeeded']);
      // The placement as stored by the API server, and the pods it made.
      const spec = job.spec!.template.spec!;
      expect(spec.nodeSelector).toEqual({ 'kubernetes.io/os': 'linux' });
      expect(spec.tolerations).toEqual(placement.tolerations);
      expect(spec.priorityClassName).toBe('mlpipe-training');
      expect(job.spec?.podFailurePolicy?.rules.map((r) => r.action)).toEqual(['Ignore', 'FailJob']);
      expect(job.spec?.podReplacementPolicy).toBe('Failed');
    });

    it('fails the Job at once when the trainer exits 2 (invalid environment), with backoffLimit left', async () => {
      const run = await env.prepare('2026-03-01T10:01:00Z', { image: IMAGES.trainerInvalidEnv });
      const err = await withSettings({ TRAINING_BACKOFF_LIMIT: '3' }, async () => awaitDone(run, await submitTraining({ run })).catch((e: unknown) => e as Error));
      expect(err).toMatchObject({ name: 'TrainingFailedError' });
      expect((err as Error).message).toContain('PodFailurePolicy');
      expect((err as Error).message).toMatch(/Container trainer for pod mlpipe-staging\/\S+ failed with exit code 2 matching FailJob rule at index 1/);
      expect((err as Error).message).toContain('invalid environment: HYPERPARAMETERS.epochs must be a whole number');
      const job = (await listObjects<V1Job>('Job', NS)).items.find((j) => j.metadata?.name === run.names.trainingJob)!;
      expect(job.spec?.backoffLimit).toBe(3);
      expect(job.status?.failed).toBe(1); // one pod, no retries
      expect(job.status?.conditions?.find((c) => c.type === 'Failed')).toMatchObject({ status: 'True', reason: 'PodFailurePolicy' });
    });
  });

  describe('placement on the local API', () => {
    it('a GPU training pod is accepted and waits for a GPU node (the local node has none)', async () => {
      const run = await env.prepare('2026-03-01T10:02:00Z');
      const submitted = await withSettings({ TRAINING_PLACEMENT: '{"gpus":1}' }, () => submitTraining({ run }));
      // What the pod requests goes into $.training too: the run's cost estimate prices its CPU and GPU-seconds.
      expect(submitted.request).toEqual({ cpu: '1', gpus: 1 });
      const [pod] = await waitFor(env.kube, () => trainingPods(run), (pods) => pods[0]?.status?.conditions?.some((c) => c.type === 'PodScheduled') ?? false);
      expect(pod!.spec?.containers[0]?.resources).toEqual({ requests: { cpu: '1', memory: '2Gi', 'nvidia.com/gpu': '1' }, limits: { memory: '2Gi', 'nvidia.com/gpu': '1' } });
      expect(pod!.status?.phase).toBe('Pending');
      expect(pod!.status?.conditions?.find((c) => c.type === 'PodScheduled')).toMatchObject({ status: 'False', reason: 'Unschedulable', message: expect.stringContaining('Insufficient nvidia.com/gpu') });
    });

    it('a serving Deployment carries its placement, as stored by the API server', async () => {
      const run = await env.prepare('2026-03-01T10:03:00Z');
      const placement = { gpus: 1, nodeSelector: { 'kubernetes.io/os': 'linux' }, tolerations: [{ key: 'dedicated', value: 'serving', effect: 'NoSchedule' }], priorityClassName: 'serving-critical' };
      await withSettings({ SERVING_PLACEMENT: JSON.stringify(placement) }, () => deployStaging({ run }));
      const deployment = (await listObjects<V1Deployment>('Deployment', NS)).items.find((d) => d.metadata?.name === run.names.stagingDeployment)!;
      const spec = deployment.spec!.template.spec!;
      expect(spec).toMatchObject({ nodeSelector: placement.nodeSelector, tolerations: placement.tolerations, priorityClassName: 'serving-critical' });
      expect(spec.containers[0]?.resources?.limits).toEqual({ memory: '512Mi', 'nvidia.com/gpu': '1' });
    });

    it.each([
      ['an empty toleration key without Exists', { tolerations: [{ operator: 'Equal', value: 'x' }] }, 'spec.template.spec.tolerations[0].operator: Invalid value: "Equal": operator must be Exists when `key` is empty'],
      ['an unknown taint effect', { tolerations: [{ key: 'gpu', operator: 'Exists', effect: 'NoRun' }] }, 'spec.template.spec.tolerations[0].effect: Unsupported value: "NoRun": supported values: "NoSchedule", "PreferNoSchedule", "NoExecute"'],
      ['tolerationSeconds without NoExecute', { tolerations: [{ key: 'gpu', operator: 'Exists', effect: 'NoSchedule', tolerationSeconds: 5 }] }, "spec.template.spec.tolerations[0].effect: Invalid value: \"NoSchedule\": effect must be 'NoExecute' when `tolerationSeconds` is set"],
      ['a priority class that is not a subdomain', { priorityClassName: 'High_Priority' }, 'spec.template.spec.priorityClassName: Invalid value: "High_Priority": a lowercase RFC 1123 subdomain'],
      ['a node selector value that is not a label value', { nodeSelector: { pool: 'gpu nodes' } }, 'spec.template.spec.nodeSelector: Invalid value: "gpu nodes": a valid label must be an empty string'],
      ['a GPU request above its limit', { gpuRequest: '2' }, 'spec.template.spec.containers[0].resources.requests: Invalid value: "2": must be equal to nvidia.com/gpu limit of 1'],
    ])('refuses %s with 422 naming the field', async (_what, change, message) => {
      const { batch } = await kubeApis();
      const { gpuRequest, ...spec } = change as { gpuRequest?: string } & Record<string, unknown>;
      const body: V1Job = {
        metadata: { name: 'bad-placement', namespace: NS },
        spec: {
          template: {
            spec: {
              restartPolicy: 'Never',
              containers: [{ name: 'trainer', image: IMAGES.trainerOk, resources: { limits: { 'nvidia.com/gpu': '1' }, ...(gpuRequest ? { requests: { 'nvidia.com/gpu': gpuRequest } } : {}) } }],
              ...spec,
            },
          },
        },
      };
      const err = (await batch.createNamespacedJob({ namespace: NS, body }).catch((e: unknown) => e)) as k8s.ApiException<string>;
      expect(err.code).toBe(422);
      expect((JSON.parse(err.body) as { message: string }).message).toContain(message);
    });

    it.each([
      ['restartPolicy OnFailure', { restartPolicy: 'OnFailure', rules: [{ action: 'Ignore', onPodConditions: [{ type: 'DisruptionTarget' }] }] }, 'spec.template.spec.restartPolicy: Invalid value: "OnFailure": only "Never" is supported when podFailurePolicy is specified'],
      ['an unknown action', { rules: [{ action: 'Retry', onPodConditions: [{ type: 'DisruptionTarget' }] }] }, 'spec.podFailurePolicy.rules[0].action: Unsupported value: "Retry"'],
      ['exit code 0 with In', { rules: [{ action: 'FailJob', onExitCodes: { operator: 'In', values: [0] } }] }, 'spec.podFailurePolicy.rules[0].onExitCodes.values[0]: Invalid value: 0: must not be 0 for the In operator'],
      ['an unknown container', { rules: [{ action: 'FailJob', onExitCodes: { containerName: 'main', operator: 'In', values: [2] } }] }, 'spec.podFailurePolicy.rules[0].onExitCodes.containerName: Invalid value: "main": must be one of the container or initContainer names in the pod template'],
      ['a rule with neither requirement', { rules: [{ action: 'Ignore' }] }, 'spec.podFailurePolicy.rules[0]: Invalid value: "null": specifying one of OnExitCodes and OnPodConditions is required'],
    ])('refuses a podFailurePolicy with %s', async (_what, policy, message) => {
      const { batch } = await kubeApis();
      const { restartPolicy = 'Never', rules } = policy as { restartPolicy?: string; rules: unknown };
      const body = {
        metadata: { name: 'bad-policy', namespace: NS },
        spec: { podFailurePolicy: { rules }, template: { spec: { restartPolicy, containers: [{ name: 'trainer', image: IMAGES.trainerOk }] } } },
      } as unknown as V1Job;
      const err = (await batch.createNamespacedJob({ namespace: NS, body }).catch((e: unknown) => e)) as k8s.ApiException<string>;
      expect(err.code).toBe(422);
      expect((JSON.parse(err.body) as { message: string }).message).toContain(message);
    });
  });
});
