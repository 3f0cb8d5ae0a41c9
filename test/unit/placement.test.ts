/**
 * Placement settings (GPUs, node selector, tolerations, priority class): each bad value is refused with
 * the setting's name and the API's rule, and the pod specs of the training Job and the serving
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
    ['TRAINING_GPUS', '1.5', 'Setting TRAINING_GPUS is invalid: must be a whole number >= 0 and <= 64; got "1.5"'],
    ['SERVING_GPUS', '-1', 'Setting SERVING_GPUS is invalid: must be a whole number >= 0 and <= 64'],
    ['TRAINING_NODE_SELECTOR', '{"gpu nodes":"yes"}', 'Setting TRAINING_NODE_SELECTOR is invalid: gpu nodes: invalid label key: name part must consist of alphanumeric characters'],
    ['SERVING_NODE_SELECTOR', '{"pool":"a b"}', 'Setting SERVING_NODE_SELECTOR is invalid: pool: invalid label value "a b": a valid label must be an empty string'],
    ['TRAINING_NODE_SELECTOR', '["gpu"]', 'Setting TRAINING_NODE_SELECTOR is invalid: '],
    ['TRAINING_TOLERATIONS', '[{"operator":"Equal","value":"x"}]', 'Setting TRAINING_TOLERATIONS is invalid: 0.operator: operator must be Exists when `key` is empty'],
    ['TRAINING_TOLERATIONS', '[{"key":"gpu","operator":"Exists","value":"x"}]', "0.value: value must be empty when `operator` is 'Exists'"],
    ['TRAINING_TOLERATIONS', '[{"key":"gpu","operator":"Gt","value":"1"}]', '0.operator: Unsupported value: "Gt": supported values: "Equal", "Exists"'],
    ['SERVING_TOLERATIONS', '[{"key":"gpu","effect":"NoRun"}]', 'Setting SERVING_TOLERATIONS is invalid: 0.effect: Unsupported value: "NoRun": supported values: "NoExecute", "NoSchedule", "PreferNoSchedule"'],
    ['SERVING_TOLERATIONS', '[{"key":"gpu","operator":"Exists","effect":"NoSchedule","tolerationSeconds":30}]', "0.effect: effect must be 'NoExecute' when `tolerationSeconds` is set"],
    ['TRAINING_TOLERATIONS', '[{"key":"gpu","efect":"NoSchedule"}]', 'Setting TRAINING_TOLERATIONS is invalid: '],
    ['TRAINING_TOLERATIONS', '{"key":"gpu"}', 'must be a list of tolerations'],
    ['TRAINING_PRIORITY_CLASS', 'High_Priority', 'Setting TRAINING_PRIORITY_CLASS is invalid: a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters'],
    ['SERVING_PRIORITY_CLASS', `${'a'.repeat(254)}`, 'Setting SERVING_PRIORITY_CLASS is invalid: must be no more than 253 characters'],
  ])('%s: a bad value is refused, naming the setting and the rule (case %#)', (name, value, message) => {
    const read = name.startsWith('TRAINING') ? training : serving;
    expect(() => read({ [name]: value })).toThrow(message);
  });

  it('accepts what the API accepts', () => {
    const s = training({
      TRAINING_GPUS: '8',
      TRAINING_NODE_SELECTOR: '{"karpenter.sh/nodepool":"gpu","node.kubernetes.io/instance-type":"g5.xlarge"}',
      TRAINING_TOLERATIONS: '[{"key":"nvidia.com/gpu","operator":"Exists","effect":"NoSchedule"},{"operator":"Exists"},{"key":"spot","value":"true"}]',
      TRAINING_PRIORITY_CLASS: 'batch.example.com',
    });
    expect(s.TRAINING_GPUS).toBe(8);
    expect(s.TRAINING_TOLERATIONS).toHaveLength(3);
    expect(s.TRAINING_PRIORITY_CLASS).toBe('batch.example.com');
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
    const t = training({ TRAINING_GPUS: '2', TRAINING_NODE_SELECTOR: '{"karpenter.sh/nodepool":"gpu"}', TRAINING_TOLERATIONS: '[{"key":"nvidia.com/gpu","operator":"Exists","effect":"NoSchedule"}]', TRAINING_PRIORITY_CLASS: 'training' });
    const s = serving({ SERVING_GPUS: '1', SERVING_TOLERATIONS: '[{"key":"dedicated","value":"serving","effect":"NoSchedule"}]', SERVING_PRIORITY_CLASS: 'serving-critical' });
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
