/**
 * Prepare: validates the execution input (RunRequest) and derives, once, everything the later states
 * use — version, Kubernetes names, model location, namespaces, settings. Deterministic in the execution
 * (start time + image digest), so a retried Prepare answers the same. Returns `{ run }` (ResultPath `$`).
 */
import { FUNCTION_SETTINGS } from './shared/function-settings';
import { InvalidInputError } from './shared/errors';
import { checkImageHyperparameters } from './shared/hyperparameters';
import { deriveVersion, runNames } from './shared/names';
import { artifactBucket, registryKeys, s3Uri } from './shared/registry';
import { appendRunKeys, logger, withLogContext } from './shared/logger';
import { mergeRollout } from './shared/rollout';
import { loadSettings } from './shared/settings';
import { PrepareRunInputSchema, parseInput, parseRunRequest } from './shared/state';
import { RunRolloutSchema } from './shared/rollout';
import type { PipelineState, PrepareRunInput, RunContext } from './shared/types';

/**
 * Read and validated once, at init: a bad value fails the Lambda's init naming the variable. MODEL_NAME
 * gets the same rule as a requested model name (k8s-names.ts: it names Services, so DNS-1035).
 */
const settings = loadSettings(FUNCTION_SETTINGS.PrepareRun);

const DIGEST = /@(sha256:[a-f0-9]{64})$/;

/** Request value, else the setting; neither is a clear input error naming both. */
function pick(value: string | undefined, setting: string | undefined, settingName: string, field: string): string {
  const v = value ?? setting;
  if (!v) throw new InvalidInputError(`${field}: required, because the ${settingName} setting gives no default.`);
  return v;
}

async function prepareRun(event: PrepareRunInput): Promise<PipelineState> {
  const ctx = parseInput(PrepareRunInputSchema, event, 'Prepare input');
  const req = parseRunRequest(ctx.input);
  const imageDigest = DIGEST.exec(req.image)?.[1] ?? null;
  // Tags are mutable: unless the stack allows them (the local run does), the image must be pinned by digest.
  if (!imageDigest && !settings.ALLOW_IMAGE_TAGS) {
    throw new InvalidInputError(`image: must be pinned by digest (<registry>/<repo>@sha256:<digest>), got "${req.image}"; tags are accepted only with ALLOW_IMAGE_TAGS=true.`);
  }
  const modelName = req.modelName ?? settings.MODEL_NAME;
  const version = deriveVersion(ctx.startTime, ctx.executionName, req.image, imageDigest);
  const startedAt = new Date(ctx.startTime).toISOString();
  const hyperparameters = { ...settings.DEFAULT_HYPERPARAMETERS, ...(req.hyperparameters ?? {}) };
  // Before any Job exists: against the schema the training image declares, if it declares one.
  const hyperparameterCheck = await checkImageHyperparameters(req.image, hyperparameters, {
    trainingRepository: settings.TRAINING_REPOSITORY,
    executionArn: ctx.executionArn,
    localRegistry: settings.AWS_ENDPOINT_URL_ECR !== undefined,
  });

  const run: RunContext = {
    modelName,
    version,
    image: req.image,
    imageDigest,
    servingImage: pick(req.servingImage, settings.SERVING_IMAGE, 'SERVING_IMAGE', 'servingImage'),
    dataUri: pick(req.dataUri, settings.DATA_URI, 'DATA_URI', 'dataUri'),
    evalDataUri: pick(req.evalDataUri, settings.EVAL_DATA_URI, 'EVAL_DATA_URI', 'evalDataUri'),
    hyperparameters,
    modelUri: s3Uri(registryKeys.versionPrefix(modelName, version), artifactBucket()),
    executionArn: ctx.executionArn,
    executionName: ctx.executionName,
    startedAt,
    approvalTimeoutSeconds: settings.APPROVAL_TIMEOUT_SECONDS,
    trigger: req.trigger ?? { source: 'manual' },
    namespaces: { staging: settings.STAGING_NAMESPACE, production: settings.PRODUCTION_NAMESPACE },
    names: runNames(modelName, version),
    // The stack's rollout with the request's fields over it, checked whole: an override of `steps` must still end at 100.
    rollout: parseInput(RunRolloutSchema, mergeRollout(settings.ROLLOUT, req.rollout, false), 'rollout (the ROLLOUT setting with the request\'s rollout over it)'),
  };
  appendRunKeys({ model: modelName, version });
  logger.info('run prepared', { image: run.image, trigger: run.trigger.source, modelUri: run.modelUri, hyperparameters: hyperparameterCheck });
  return { run };
}

export const handler = withLogContext('Prepare', prepareRun);
