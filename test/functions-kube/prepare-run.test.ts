/** Prepare: validates the execution input, derives a deterministic version and names from the execution. */
import { fitName } from '../../functions/shared/names';
import type { PrepareRunInput, PipelineState } from '../../functions/shared/types';

type Handler = (event: PrepareRunInput) => Promise<PipelineState>;

/** The handler as a Lambda would load it: a fresh module that reads `env` at load. */
function loadPrepare(env: Record<string, string | undefined>): Handler {
  process.env = { ...saved, ...env };
  let loaded: Handler | undefined;
  jest.isolateModules(() => {
    loaded = (require('../../functions/prepare-run') as { handler: Handler }).handler;
  });
  return loaded!;
}

const DIGEST = 'sha256:' + 'ab12cd'.padEnd(64, '0');
const IMAGE = `123456789012.dkr.ecr.us-east-1.amazonaws.com/fashion-train@${DIGEST}`;
const SETTINGS = {
  ARTIFACT_BUCKET: 'mlpipe-artifacts',
  MODEL_NAME: 'fashion',
  DATA_URI: 's3://mlpipe-artifacts/datasets/fashion-mnist/v1/',
  EVAL_DATA_URI: 's3://mlpipe-artifacts/datasets/fashion-mnist/v1/',
  SERVING_IMAGE: 'registry.local/fashion-serve:1',
  DEFAULT_HYPERPARAMETERS: '{"epochs": 1, "batchSize": 128}',
  STAGING_NAMESPACE: 'mlpipe-staging',
  PRODUCTION_NAMESPACE: 'mlpipe-production',
  APPROVAL_TIMEOUT_SECONDS: '3600',
};
const saved = { ...process.env };

function event(input: unknown) {
  return {
    input,
    executionArn: 'arn:aws:states:us-east-1:123456789012:execution:mlpipe:run-1',
    executionName: 'run-1',
    startTime: '2026-01-02T03:04:05.678Z',
  };
}

let handler: Handler;
beforeEach(() => {
  handler = loadPrepare({ ...SETTINGS, KUBECONFIG: undefined, ALLOW_IMAGE_TAGS: undefined });
});
afterAll(() => {
  process.env = saved;
});

describe('prepare-run', () => {
  it('derives version, names, model URI and merged hyperparameters', async () => {
    // Act
    const { run } = await handler(event({ image: IMAGE, hyperparameters: { epochs: 5 }, trigger: { source: 'ecr-push' } }));
    // Assess
    expect(run.version).toMatch(/^20260102-030405-[0-9a-f]{7}$/);
    const v = run.version;
    expect(run.imageDigest).toBe(DIGEST);
    expect(run.modelName).toBe('fashion');
    expect(run.modelUri).toBe(`s3://mlpipe-artifacts/models/fashion/${v}/`);
    expect(run.checkpointUri).toBe(`s3://mlpipe-artifacts/checkpoints/fashion/${v}/`);
    expect(run.hyperparameters).toEqual({ epochs: 5, batchSize: 128 });
    expect(run.names).toEqual({
      trainingJob: `fashion-${v}-train`,
      stagingDeployment: `fashion-${v}-staging`,
      stagingService: `fashion-${v}-staging`,
      productionDeployment: `fashion-${v}`,
      productionService: 'fashion',
    });
    expect(run.namespaces).toEqual({ staging: 'mlpipe-staging', production: 'mlpipe-production' });
    expect(run.approvalTimeoutSeconds).toBe(3600);
    expect(run.trigger).toEqual({ source: 'ecr-push' });
    expect(run.startedAt).toBe('2026-01-02T03:04:05.678Z');
  });

  it('answers the same when retried', async () => {
    const a = await handler(event({ image: IMAGE }));
    const b = await handler(event({ image: IMAGE }));
    expect(b).toEqual(a);
  });

  it('gives two runs of one image started in the same second different versions', async () => {
    const a = await handler(event({ image: IMAGE }));
    const b = await handler({ ...event({ image: IMAGE }), executionName: 'run-2', executionArn: 'arn:aws:states:us-east-1:123456789012:execution:mlpipe:run-2' });
    expect(b.run.version).not.toBe(a.run.version);
    expect(b.run.names.trainingJob).not.toBe(a.run.names.trainingJob);
  });

  it('keeps long names within 63 characters, distinct per model', async () => {
    const long = 'a'.repeat(50);
    const { run } = await handler(event({ image: IMAGE, modelName: long }));
    for (const name of Object.values(run.names)) expect(name.length).toBeLessThanOrEqual(63);
    expect(run.names.stagingDeployment).toMatch(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/);
    expect(fitName(`${long}-x`)).not.toBe(fitName(`${long}-y`));
  });

  it('accepts a tag only with ALLOW_IMAGE_TAGS=true', async () => {
    await expect(handler(event({ image: 'mlpipe/fashion-train:local' }))).rejects.toThrow(/image: must be pinned by digest/);
    const { run } = await loadPrepare({ ...SETTINGS, ALLOW_IMAGE_TAGS: 'true' })(event({ image: 'mlpipe/fashion-train:local' }));
    expect(run.imageDigest).toBeNull();
    expect(run.version).toMatch(/^20260102-030405-[0-9a-f]{7}$/);
  });

  it.each([
    ['image', { image: 'not an image!' }, /image: must be a container image reference like <registry>\/<repo>@sha256:<digest>/],
    ['image (missing)', {}, /image: must be a container image reference/],
    ['modelName', { image: IMAGE, modelName: 'Fashion_MNIST' }, /modelName: must be a valid Service name, because it names the model's Services: a DNS-1035 label must consist of/],
    ['dataUri', { image: IMAGE, dataUri: 'https://example.com/data' }, /dataUri: must be an S3 URI/],
    ['evalDataUri', { image: IMAGE, evalDataUri: 's3:/x' }, /evalDataUri: must be an S3 URI/],
    ['hyperparameters', { image: IMAGE, hyperparameters: { epochs: [1] } }, /hyperparameters(\.epochs)?: /],
    ['servingImage', { image: IMAGE, servingImage: 'fashion-serve@sha256:1234' }, /servingImage: must be a container image reference/],
    ['trigger.source', { image: IMAGE, trigger: { source: '' } }, /trigger\.source: must not be empty/],
  ])('rejects a bad %s with InvalidInputError naming the field', async (_field, input, message) => {
    const err = await handler(event(input)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).name).toBe('InvalidInputError');
    expect((err as Error).message).toMatch(message);
  });

  it('names the setting when a default is missing', async () => {
    await expect(loadPrepare({ ...SETTINGS, DATA_URI: undefined })(event({ image: IMAGE }))).rejects.toThrow(/dataUri: required, because the DATA_URI setting/);
  });

  it.each([
    ['a missing required setting', { ARTIFACT_BUCKET: undefined }, /Missing required setting: environment variable ARTIFACT_BUCKET is not set/],
    ['a namespace that is not a DNS-1123 label', { STAGING_NAMESPACE: 'Staging' }, /Setting STAGING_NAMESPACE is invalid: a lowercase RFC 1123 label must consist of .*; got "Staging"/],
    ['a model name with a leading digit', { MODEL_NAME: '3d-model' }, /Setting MODEL_NAME is invalid: must be a valid Service name, .*start with an alphabetic character.*; got "3d-model"/],
    ['hyperparameters that are not JSON', { DEFAULT_HYPERPARAMETERS: '{epochs: 1}' }, /Setting DEFAULT_HYPERPARAMETERS is invalid: must be JSON/],
    ['an approval timeout below a minute', { APPROVAL_TIMEOUT_SECONDS: '5' }, /Setting APPROVAL_TIMEOUT_SECONDS is invalid: must be a number >= 60 and <= 31536000; got "5"/],
    ['ALLOW_IMAGE_TAGS that is not a boolean', { ALLOW_IMAGE_TAGS: 'yes' }, /Setting ALLOW_IMAGE_TAGS is invalid: must be "true" or "false"/],
  ])('fails at init on %s, naming the variable and the rule', (_what, env, message) => {
    expect(() => loadPrepare({ ...SETTINGS, ...env })).toThrow(message);
  });

  // Service names are DNS-1035 labels (test/fixtures/k8s-validation: a real kube-apiserver refused `3d-model-staging`).
  it.each(['3d-model', 'Model-A', 'model.v2', 'a'.repeat(64)])('refuses model name %s in the request, before anything is created', async (modelName) => {
    await expect(handler(event({ image: IMAGE, modelName }))).rejects.toMatchObject({ name: 'InvalidInputError', message: expect.stringMatching(/^Execution input is invalid: modelName: must be a valid Service name/) });
  });
});
