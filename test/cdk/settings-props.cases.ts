/**
 * Every setting fed by a prop is settable: each prop, set to a value other than its default, reaches the
 * Environment of every function whose schema reads that setting (one synth with all of them set). The
 * props come from the settings' definitions; a new prop-fed setting without a sample here fails the test.
 */
import { Duration } from 'aws-cdk-lib';
import { FUNCTION_SETTINGS } from '../../functions/shared/function-settings';
import { ALL_SETTINGS } from '../../functions/shared/settings';
import type { MlPipelineProps } from '../../lib/mlpipe-pipeline';
import { logicalId, resourcesOf, synthStack } from './helpers';

/** A non-default value per prop, and the environment text it must become. */
const SAMPLES: Record<string, [unknown, string]> = {
  clusterName: ['ml-cluster', 'ml-cluster'],
  modelName: ['shoes', 'shoes'],
  dataUri: ['s3://other-bucket/data/v2/', 's3://other-bucket/data/v2/'],
  evalDataUri: ['s3://other-bucket/eval/v2/', 's3://other-bucket/eval/v2/'],
  servingImage: ['registry.example.com/serve:2', 'registry.example.com/serve:2'],
  defaultHyperparameters: [{ epochs: 3 }, '{"epochs":3}'],
  stagingNamespace: ['ml-stage', 'ml-stage'],
  productionNamespace: ['ml-prod', 'ml-prod'],
  trainerServiceAccount: ['trainer', 'trainer'],
  serverServiceAccount: ['server', 'server'],
  approvalTimeout: [Duration.hours(2), '7200'],
  allowImageTags: [true, 'true'],
  trainingRepositoryName: ['team/shoes-train', 'team/shoes-train'],
  watchBudget: [Duration.seconds(100), '100'],
  trainingTimeout: [Duration.hours(1), '3600'],
  trainingCheckMaxWait: [Duration.minutes(10), '600'],
  trainingWatchLead: [Duration.seconds(90), '90'],
  rolloutTimeout: [Duration.minutes(10), '600'],
  endpointTimeout: [Duration.minutes(20), '1200'],
  trainingCpu: ['2', '2'],
  trainingMemory: ['4Gi', '4Gi'],
  trainingBackoffLimit: [3, '3'],
  trainingJobTtl: [Duration.hours(6), '21600'],
  trainingPlacement: [{ gpus: 1, tolerations: [{ key: 'nvidia.com/gpu', operator: 'Exists', effect: 'NoSchedule' }] }, '{"gpus":1,"tolerations":[{"key":"nvidia.com/gpu","operator":"Exists","effect":"NoSchedule"}]}'],
  servingPlacement: [{ nodeSelector: { pool: 'serving' }, priorityClassName: 'serving-high' }, '{"nodeSelector":{"pool":"serving"},"priorityClassName":"serving-high"}'],
  servingCpu: ['500m', '500m'],
  servingMemory: ['1Gi', '1Gi'],
  servingReplicas: [3, '3'],
  servingDrainSeconds: [20, '20'],
  serviceAnnotations: [{ 'example.com/team': 'ml' }, '{"example.com/team":"ml"}'],
  stagingServiceAnnotations: [{ 'example.com/stage': 'staging' }, '{"example.com/stage":"staging"}'],
  retentionHours: [24, '24'],
  rollout: [{ steps: [20, 100], bakeSeconds: 30 }, '{"steps":[20,100],"bakeSeconds":30}'],
  minAccuracy: [0.9, '0.9'],
  maxP95LatencyMs: [100, '100'],
  maxErrorRate: [0.02, '0.02'],
  maxAccuracyDrop: [0.05, '0.05'],
  evalSamples: [5000, '5000'],
  evalBatchSize: [50, '50'],
  evalConcurrency: [4, '4'],
  evalRequestTimeout: [Duration.seconds(10), '10000'],
  monitorSchedule: ['rate(5 minutes)', 'rate(5 minutes)'],
  maxPredictionDrift: [0.3, '0.3'],
  endpointAuth: [false, 'false'],
  endpointTokenRotationDays: [7, '7'],
  loadBalancerSourceRanges: [['203.0.113.0/24'], '["203.0.113.0/24"]'],
  productionServiceAnnotations: [{ 'example.com/stage': 'production' }, '{"example.com/stage":"production"}'],
};

const FED_BY_PROPS = ALL_SETTINGS.flatMap((d) => (d.source.kind === 'prop' ? [{ name: d.name, prop: d.source.prop }] : []));

describe('every prop-fed setting is settable', () => {
  const props = Object.fromEntries(Object.entries(SAMPLES).map(([prop, [value]]) => [prop, value])) as Partial<MlPipelineProps>;
  const { template } = synthStack({ props });
  // The token rotation exists only with endpoint auth on (the samples turn it off).
  const withAuth = synthStack({ props: { ...props, endpointAuth: true } }).template;
  const environmentOf = (fragment: string) =>
    (resourcesOf(fragment === 'EndpointTokenRotationFunction' ? withAuth : template, 'AWS::Lambda::Function')[logicalId(fragment === 'EndpointTokenRotationFunction' ? withAuth : template, 'AWS::Lambda::Function', fragment)]?.Properties?.Environment as { Variables: Record<string, unknown> }).Variables;

  it.each(FED_BY_PROPS.map((s) => [s.name, s.prop] as const))('%s from the "%s" prop', (name, prop) => {
    expect(SAMPLES[prop]).toBeDefined();
    const readers = Object.entries(FUNCTION_SETTINGS).filter(([, s]) => name in s.definitions).map(([fn]) => fn);
    expect(readers.length).toBeGreaterThan(0);
    for (const fn of readers) {
      const fragment = fn === 'ApprovalApi' ? 'ApprovalApiFunction' : fn === 'StartPipeline' ? 'TriggersStartPipeline' : fn === 'Monitor' ? 'ServingMonitorFunction' : fn === 'RotateEndpointToken' ? 'EndpointTokenRotationFunction' : `Functions${fn}`;
      if (fn === 'RotateEndpointToken' && name === 'ENDPOINT_AUTH') continue; // it exists only with 'true'
      expect({ function: fn, [name]: environmentOf(fragment)[name] }).toEqual({ function: fn, [name]: SAMPLES[prop]![1] });
    }
  });
});
