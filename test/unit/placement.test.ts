/**
 * Placement settings (TRAINING_PLACEMENT, SERVING_PLACEMENT: GPUs, node selector, tolerations, priority
 * class): each bad value is refused with the setting's name, the field and the API's rule, and the pod specs of the training Job and the serving
 * Deployments carry exactly what is set — nothing when nothing is (the defaults change no manifest).
 */
import { FUNCTION_SETTINGS } from '../../functions/shared/function-settings';
import { servingDeployment, trainingJob } from '../../functions/shared/manifests';
import * as S from '../../functions/shared/settings';
import type { RunContext } from '../../functions/shared/types';

const KUBE = { KUBECONFIG: '/dev/null' };
const training = (env: Record<string, string> = {}) => S.readSettings(FUNCTION_SETTINGS.SubmitTraining, { ...KUBE, ...env });
const serving = (env: Record<string, string> = {}) => S.readSettings(FUNCTION_SETTINGS.DeployStaging, { ...KUBE, ...env });

const run = {
  modelName: 'fashion',
  version: '20260301-100000-abc1234',
  image: 'registry.example.com/train@sha256:' + 'a'.repeat(64),
  servingImage: 'registry.example.com/serve:1',
  modelUri: 's3://bucket/models/fashion/20260301-100000-abc1234/',
  dataUri: 's3://bucket/datasets/fashion-mnist/v1/',
  hyperparameters: {},
  namespaces: { staging: 'mlpipe-staging', production: 'mlpipe-production' },
  names: { trainingJob: 'fashion-train', stagingDeployment: 'fashion-staging', productionDeployment: 'fashion-prod', stagingService: 'fashion-staging', productionService: 'fashion' },
} as unknown as RunContext;

describe('placement settings', () => {
  it.each([
    ['TRAINING_PLACEMENT', '{"gpus":1.5}', 'Setting TRAINING_PLACEMENT is invalid: gpus: must be a whole number'],
    ['SERVING_PLACEMENT', '{"gpus":-1}', 'Setting SERVING_PLACEMENT is invalid: gpus: must be >= 0'],
    ['TRAINING_PLACEMENT', '{"gpus":"1"}', 'Setting TRAINING_PLACEMENT is invalid: gpus: must be a whole number'],
    ['TRAINING_PLACEMENT', '{"nodeSelector":{"gpu nodes":"yes"}}', 'Setting TRAINING_PLACEMENT is invalid: nodeSelector.gpu nodes: invalid label key: name part must consist of alphanumeric characters'],
    ['SERVING_PLACEMENT', '{"nodeSelector":{"pool":"a b"}}', 'Setting SERVING_PLACEMENT is invalid: nodeSelector.pool: invalid label value "a b": a valid label must be an empty string'],
    ['TRAINING_PLACEMENT', '{"nodeSelector":["gpu"]}', 'Setting TRAINING_PLACEMENT is invalid: nodeSelector: '],
    ['TRAINING_PLACEMENT', '{"tolerations":[{"operator":"Equal","value":"x"}]}', 'Setting TRAINING_PLACEMENT is invalid: tolerations.0.operator: operator must be Exists when `key` is empty'],
    ['TRAINING_PLACEMENT', '{"tolerations":[{"key":"gpu","operator":"Exists","value":"x"}]}', "tolerations.0.value: value must be empty when `operator` is 'Exists'"],
    ['TRAINING_PLACEMENT', '{"tolerations":[{"key":"gpu","operator":"Gt","value":"1"}]}', 'tolerations.0.operator: Unsupported value: "Gt": supported values: "Equal", "Exists"'],
    ['SERVING_PLACEMENT', '{"tolerations":[{"key":"gpu","effect":"NoRun"}]}', 'Setting SERVING_PLACEMENT is invalid: tolerations.0.effect: Unsupported value: "NoRun": supported values: "NoSchedule", "PreferNoSchedule", "NoExecute"'],
    ['SERVING_PLACEMENT', '{"tolerations":[{"key":"gpu","operator":"Exists","effect":"NoSchedule","tolerationSeconds":30}]}', "tolerations.0.effect: effect must be 'NoExecute' when `tolerationSeconds` is set"],
    ['TRAINING_PLACEMENT', '{"tolerations":[{"key":"gpu","efect":"NoSchedule"}]}', 'Setting TRAINING_PLACEMENT is invalid: tolerations.0: Unrecognized key: "efect"'],
    ['TRAINING_PLACEMENT', '{"tolerations":{"key":"gpu"}}', 'tolerations: must be a list of tolerations'],
    ['TRAINING_PLACEMENT', '{"priorityClassName":"High_Priority"}', 'Setting TRAINING_PLACEMENT is invalid: priorityClassName: a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters'],
    ['SERVING_PLACEMENT', `{"priorityClassName":"${'a'.repeat(254)}"}`, 'Setting SERVING_PLACEMENT is invalid: priorityClassName: must be no more than 253 characters'],
    ['SERVING_PLACEMENT', '{"gpu":1}', 'Setting SERVING_PLACEMENT is invalid: Unrecognized key: "gpu"'],
    ['TRAINING_PLACEMENT', 'gpus=1', 'Setting TRAINING_PLACEMENT is invalid: must be JSON: an object like'],
  ])('%s: a bad value is refused, naming the setting and the field (case %#)', (name, value, message) => {
    const read = name.startsWith('TRAINING') ? training : serving;
    expect(() => read({ [name]: value })).toThrow(message);
  });

  it('accepts what the API accepts', () => {
    const s = training({
      TRAINING_PLACEMENT: JSON.stringify({
        gpus: 8,
        nodeSelector: { 'karpenter.sh/nodepool': 'gpu', 'node.kubernetes.io/instance-type': 'g5.xlarge' },
        tolerations: [{ key: 'nvidia.com/gpu', operator: 'Exists', effect: 'NoSchedule' }, { operator: 'Exists' }, { key: 'spot', value: 'true' }],
        priorityClassName: 'batch.example.com',
      }),
    });
    expect(s.TRAINING_PLACEMENT.gpus).toBe(8);
    expect(s.TRAINING_PLACEMENT.tolerations).toHaveLength(3);
    expect(s.TRAINING_PLACEMENT.priorityClassName).toBe('batch.example.com');
  });
});

describe('placement in the manifests', () => {
  it('the defaults add nothing to the pod specs (only the training podFailurePolicy is always there)', () => {
    const job = trainingJob(run, training());
    const deployment = servingDeployment(run, 'staging', serving());
    for (const spec of [job.spec!.template.spec!, deployment.spec!.template.spec!]) {
      expect(spec).not.toHaveProperty('nodeSelector');
      expect(spec).not.toHaveProperty('tolerations');
      expect(spec).not.toHaveProperty('priorityClassName');
      expect(spec.containers[0]!.resources!.limits).toEqual({ memory: expect.any(String) });
    }
    expect(job.spec!.podFailurePolicy).toEqual({
      rules: [
        { action: 'Ignore', onPodConditions: [{ type: 'DisruptionTarget', status: 'True' }] },
        { action: 'FailJob', onExitCodes: { containerName: 'trainer', operator: 'In', values: [2] } },
      ],
    });
    expect(job.spec!.template.spec!.restartPolicy).toBe('Never');
  });

  it('renders training and serving placement separately, each where it is set', () => {
    const t = training({ TRAINING_PLACEMENT: '{"gpus":2,"nodeSelector":{"karpenter.sh/nodepool":"gpu"},"tolerations":[{"key":"nvidia.com/gpu","operator":"Exists","effect":"NoSchedule"}],"priorityClassName":"training"}' });
    const s = serving({ SERVING_PLACEMENT: '{"gpus":1,"tolerations":[{"key":"dedicated","value":"serving","effect":"NoSchedule"}],"priorityClassName":"serving-critical"}' });
    const jobSpec = trainingJob(run, t).spec!.template.spec!;
    const serveSpec = servingDeployment(run, 'production', s).spec!.template.spec!;
    expect(jobSpec).toMatchObject({
      nodeSelector: { 'karpenter.sh/nodepool': 'gpu' },
      tolerations: [{ key: 'nvidia.com/gpu', operator: 'Exists', effect: 'NoSchedule' }],
      priorityClassName: 'training',
    });
    expect(jobSpec.containers[0]!.resources).toEqual({ requests: { cpu: '1', memory: '2Gi' }, limits: { memory: '2Gi', 'nvidia.com/gpu': '2' } });
    expect(serveSpec).not.toHaveProperty('nodeSelector');
    expect(serveSpec).toMatchObject({ tolerations: [{ key: 'dedicated', value: 'serving', effect: 'NoSchedule' }], priorityClassName: 'serving-critical' });
    expect(serveSpec.containers[0]!.resources!.limits).toEqual({ memory: '512Mi', 'nvidia.com/gpu': '1' });
  });
});
