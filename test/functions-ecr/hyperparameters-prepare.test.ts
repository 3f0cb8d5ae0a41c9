/**
 * Prepare refuses hyperparameters the training image's declared schema does not accept, before any Job
 * exists, reading the label through ECR's API: here the local ECR (local/ecr.ts) on loopback, serving the
 * example image built from its Dockerfile's labels, as `npm start` does. Images without a schema, and images
 * outside the training repository, keep the old behaviour.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { BatchGetImageCommand, ECRClient } from '@aws-sdk/client-ecr';
import { HYPERPARAMETERS_LABEL } from '../../functions/shared/hyperparameters';
import type { PipelineState, PrepareRunInput } from '../../functions/shared/types';
import { dockerfileLabels, startLocalEcr, type LocalEcr } from '../../local/ecr';
import { LOCAL_AWS_ENV } from '../../local/s3';

type Handler = (event: PrepareRunInput) => Promise<PipelineState>;

const REPO = join(__dirname, '../..');
const ACCOUNT = '000000000000';
const REGION = LOCAL_AWS_ENV.AWS_REGION;
const TRAINING = 'mlpipe/fashion-mnist-train';
const SETTINGS = {
  ARTIFACT_BUCKET: 'mlpipe-artifacts',
  MODEL_NAME: 'fashion-mnist',
  DATA_URI: 's3://mlpipe-artifacts/datasets/fashion-mnist/v1/',
  EVAL_DATA_URI: 's3://mlpipe-artifacts/datasets/fashion-mnist/v1/',
  SERVING_IMAGE: 'mlpipe/fashion-mnist-serve:local',
  DEFAULT_HYPERPARAMETERS: '{"epochs": "1"}',
  ...LOCAL_AWS_ENV,
};
const saved = { ...process.env };

let ecr: LocalEcr;
beforeAll(async () => {
  ecr = await startLocalEcr({
    images: {
      [`${TRAINING}:local`]: { dockerfile: join(REPO, 'examples/fashion-mnist/Dockerfile.train') },
      // As `docker buildx` pushes: an index of an attestation, linux/arm64 and linux/amd64.
      [`${TRAINING}:multi`]: { labels: dockerfileLabels(readFileSync(join(REPO, 'examples/fashion-mnist/Dockerfile.train'), 'utf8')), multiPlatform: true },
      [`${TRAINING}:unlabelled`]: { labels: { 'org.opencontainers.image.title': 'no schema here' } },
      [`${TRAINING}:broken`]: { labels: { [HYPERPARAMETERS_LABEL]: '{"properties": {"epochs": {"oneOf": []}}}' } },
    },
  });
});
afterAll(async () => {
  process.env = saved;
  await ecr.stop();
});

/** The handler as a Lambda would load it: a fresh module that reads `env` at load. */
function loadPrepare(env: Record<string, string | undefined>): Handler {
  process.env = { ...saved, ...SETTINGS, KUBECONFIG: undefined, ...env };
  let loaded: Handler | undefined;
  jest.isolateModules(() => {
    loaded = (require('../../functions/prepare-run') as { handler: Handler }).handler;
  });
  return loaded!;
}

/** The local run's configuration (a local ECR, tags allowed), loaded once: its settings are read at load. */
let localHandler: Handler | undefined;
const local = (): Handler => (localHandler ??= loadPrepare({ AWS_ENDPOINT_URL_ECR: ecr.endpoint, ALLOW_IMAGE_TAGS: 'true' }));

function event(input: unknown): PrepareRunInput {
  return {
    input,
    executionArn: `arn:aws:states:${REGION}:${ACCOUNT}:execution:mlpipe:run-1`,
    executionName: 'run-1',
    startTime: '2026-01-02T03:04:05.678Z',
  };
}

async function refusal(handler: Handler, input: unknown): Promise<Error> {
  const err = await handler(event(input)).then(
    () => undefined,
    (e: unknown) => e as Error,
  );
  if (!err) throw new Error(`Prepare accepted ${JSON.stringify(input)}`);
  return err;
}

describe('Prepare checks hyperparameters against the training image', () => {
  // The values of the issue: each passed Prepare before and failed in the pod.
  it.each([
    [{ epochs: 1e9 }, 'epochs: 1000000000 is above the maximum 1000'],
    [{ epochs: -1 }, 'epochs: -1 is below the minimum 1'],
    [{ epochs: 'abc' }, 'epochs: "abc" is not an integer'],
    [{ batchSize: 0 }, 'batchSize: 0 is below the minimum 1'],
    [{ epoch: 3 }, 'epoch: unknown hyperparameter (the image accepts batchSize, epochs,'],
  ])('refuses %j in one line naming the key and the rule', async (hyperparameters, expected) => {
    // Act
    const err = await refusal(local(), { image: `${TRAINING}:local`, hyperparameters });
    // Assess
    expect(err.name).toBe('InvalidInputError');
    expect(err.message).toContain(expected);
    expect(err.message).toContain(`(schema of ${TRAINING}:local, label ${HYPERPARAMETERS_LABEL})`);
    expect(err.message).not.toContain('\n');
  });

  it('accepts what the image accepts, the stack defaults merged under the request', async () => {
    const { run } = await local()(event({ image: `${TRAINING}:local`, hyperparameters: { batchSize: 128, learningRateSchedule: 'constant' } }));
    expect(run.hyperparameters).toEqual({ epochs: '1', batchSize: 128, learningRateSchedule: 'constant' });
  });

  it('checks the stack defaults too', async () => {
    const handler = loadPrepare({ AWS_ENDPOINT_URL_ECR: ecr.endpoint, ALLOW_IMAGE_TAGS: 'true', DEFAULT_HYPERPARAMETERS: '{"epochs": "0"}' });
    const err = await refusal(handler, { image: `${TRAINING}:local` });
    expect(err.message).toContain('epochs: "0" is below the minimum 1');
  });

  it('reads an image pinned by digest in this account\'s ECR registry, as on AWS', async () => {
    // Arrange: the digest the registry gives the example image.
    const client = new ECRClient({ region: REGION, endpoint: ecr.endpoint, credentials: { accessKeyId: 'local', secretAccessKey: 'local' } });
    const out = await client.send(new BatchGetImageCommand({ repositoryName: TRAINING, imageIds: [{ imageTag: 'local' }] }));
    const digest = out.images?.[0]?.imageId?.imageDigest;
    expect(digest).toMatch(/^sha256:[a-f0-9]{64}$/);
    const image = `${ACCOUNT}.dkr.ecr.${REGION}.amazonaws.com/${TRAINING}@${digest}`;
    // The AWS configuration: digests only, no local registry for host-less names.
    const handler = loadPrepare({ AWS_ENDPOINT_URL_ECR: ecr.endpoint, ALLOW_IMAGE_TAGS: undefined });
    // Act
    const err = await refusal(handler, { image, hyperparameters: { epochs: 1e9 } });
    const { run } = await handler(event({ image, hyperparameters: { epochs: 3 } }));
    // Assess
    expect(err.message).toBe(`hyperparameters: epochs: 1000000000 is above the maximum 1000 (schema of ${image}, label ${HYPERPARAMETERS_LABEL}).`);
    expect(run.hyperparameters).toEqual({ epochs: 3 });
  });

  it('reads a multi-platform image through its index', async () => {
    const err = await refusal(local(), { image: `${TRAINING}:multi`, hyperparameters: { batchSize: 0 } });
    expect(err.message).toBe(`hyperparameters: batchSize: 0 is below the minimum 1 (schema of ${TRAINING}:multi, label ${HYPERPARAMETERS_LABEL}).`);
    const { run } = await local()(event({ image: `${TRAINING}:multi`, hyperparameters: { batchSize: 32 } }));
    expect(run.hyperparameters.batchSize).toBe(32);
  });

  it('refuses an image ECR does not have, before any Job could fail to pull it', async () => {
    const err = await refusal(local(), { image: `${TRAINING}:v404` });
    expect(err.name).toBe('InvalidInputError');
    expect(err.message).toBe(`image: ${TRAINING}:v404 is not in ECR repository ${TRAINING} (ImageNotFound: Requested image not found).`);
  });

  it('refuses a schema it cannot enforce, naming the keyword', async () => {
    const err = await refusal(local(), { image: `${TRAINING}:broken`, hyperparameters: { epochs: 2 } });
    expect(err.name).toBe('InvalidInputError');
    expect(err.message).toContain(`image: ${TRAINING}:broken declares an invalid hyperparameter schema (label ${HYPERPARAMETERS_LABEL}): property "epochs": keyword "oneOf" is not supported`);
  });

  describe('keeps the old behaviour', () => {
    it('for an image that declares no schema', async () => {
      const { run } = await local()(event({ image: `${TRAINING}:unlabelled`, hyperparameters: { epochs: 1e9, epoch: 'x' } }));
      expect(run.hyperparameters).toEqual({ epochs: 1e9, epoch: 'x' });
    });

    it('for an image outside the training repository (Prepare may not read it)', async () => {
      const { run } = await local()(event({ image: 'team/other-trainer:1', hyperparameters: { epochs: 1e9 } }));
      expect(run.hyperparameters.epochs).toBe(1e9);
    });

    it("for an image in another account's registry", async () => {
      const image = `111122223333.dkr.ecr.${REGION}.amazonaws.com/${TRAINING}@sha256:${'a'.repeat(64)}`;
      const { run } = await loadPrepare({ AWS_ENDPOINT_URL_ECR: ecr.endpoint })(event({ image, hyperparameters: { epochs: 1e9 } }));
      expect(run.hyperparameters.epochs).toBe(1e9);
    });
  });
});

describe('the refusal comes before any Job exists', () => {
  it('Prepare is the first state, before SubmitTraining, and its failures go to Cleanup and the failure email', () => {
    const asl = JSON.parse(readFileSync(join(REPO, 'statemachine/pipeline.asl.json'), 'utf8')) as {
      StartAt: string;
      States: Record<string, { Next?: string; Catch?: Array<{ ErrorEquals: string[]; Next: string }>; Choices?: Array<{ Next: string }> }>;
    };
    expect(asl.StartAt).toBe('Prepare');
    // Through the ResumeRun Choice, whose first rule sends every run that is not a retry to SubmitTraining.
    expect(asl.States.Prepare?.Next).toBe('ResumeRun');
    expect(asl.States.ResumeRun?.Choices?.[0]?.Next).toBe('SubmitTraining');
    // Its Catch goes through FailPrepare (which shapes any input, array and null included, into {error}) to Cleanup.
    expect(asl.States.Prepare?.Catch).toEqual([expect.objectContaining({ ErrorEquals: ['States.ALL'], Next: 'FailPrepare' })]);
    expect(asl.States.FailPrepare?.Next).toBe('Cleanup');
  });
});
