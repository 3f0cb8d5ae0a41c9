/**
 * Prepare: validates the execution input (RunRequest) and derives, once, everything the later states
 * use — version, Kubernetes names, model location, namespaces, settings. Deterministic in the execution
 * (start time + image digest), so a retried Prepare answers the same. Returns `{ run }` (ResultPath `$`).
 * A retry (`retryOf`, from `mlpipe retry`) keeps the failed run's version, model and training inputs and
 * also returns what it reuses (`training`, a passed `evaluation`); `run.retry.from` tells the ResumeRun
 * Choice where to continue (functions/shared/resume.ts).
 */
import { FUNCTION_SETTINGS } from './shared/function-settings';
import { InvalidInputError } from './shared/errors';
import { checkImageHyperparameters } from './shared/hyperparameters';
import { deriveVersion, runNames } from './shared/names';
import { artifactBucket, registryKeys, s3Uri } from './shared/registry';
import { loadResume } from './shared/resume';
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
  if (req.retryOf && req.modelName !== undefined && req.modelName !== req.retryOf.modelName) {
    throw new InvalidInputError(`modelName: "${req.modelName}" differs from retryOf.modelName "${req.retryOf.modelName}"; a retry continues that model's run.`);
  }
  // A retry continues the failed run's model: its record, not this request or today's defaults, says how it was trained.
  const resume = req.retryOf ? await loadResume(req.retryOf, req.image) : undefined;
  const trained = resume?.manifest;
  const modelName = req.retryOf?.modelName ?? req.modelName ?? settings.MODEL_NAME;
  const version = req.retryOf?.version ?? deriveVersion(ctx.startTime, ctx.executionName, req.image, imageDigest);
  const startedAt = new Date(ctx.startTime).toISOString();
  const hyperparameters = trained?.hyperparameters ?? { ...settings.DEFAULT_HYPERPARAMETERS, ...(req.hyperparameters ?? {}) };
  // Before any Job exists: against the schema the training image declares, if it declares one (a retry trains nothing).
  const hyperparameterCheck = trained
    ? 'reused from the failed run'
    : await checkImageHyperparameters(req.image, hyperparameters, {
        trainingRepository: settings.TRAINING_REPOSITORY,
        executionArn: ctx.executionArn,
        localRegistry: settings.AWS_ENDPOINT_URL_ECR !== undefined,
      });

  const run: RunContext = {
    modelName,
    version,
    image: req.image,
    imageDigest,
    servingImage: trained?.servingImage ?? pick(req.servingImage, settings.SERVING_IMAGE, 'SERVING_IMAGE', 'servingImage'),
    dataUri: trained?.data.uri ?? pick(req.dataUri, settings.DATA_URI, 'DATA_URI', 'dataUri'),
    evalDataUri: trained?.data.evalUri ?? pick(req.evalDataUri, settings.EVAL_DATA_URI, 'EVAL_DATA_URI', 'evalDataUri'),
    hyperparameters,
    modelUri: s3Uri(registryKeys.versionPrefix(modelName, version), artifactBucket()),
    checkpointUri: s3Uri(registryKeys.checkpointPrefix(modelName, version), artifactBucket()),
    executionArn: ctx.executionArn,
    executionName: ctx.executionName,
    startedAt,
    approvalTimeoutSeconds: settings.APPROVAL_TIMEOUT_SECONDS,
    trigger: req.trigger ?? { source: 'manual' },
    namespaces: { staging: settings.STAGING_NAMESPACE, production: settings.PRODUCTION_NAMESPACE },
    names: runNames(modelName, version),
    // The stack's rollout with the request's fields over it, checked whole: an override of `steps` must still end at 100.
    rollout: parseInput(RunRolloutSchema, mergeRollout(settings.ROLLOUT, req.rollout, false), 'rollout (the ROLLOUT setting with the request\'s rollout over it)'),
    ...(resume && req.retryOf ? { retry: { of: req.retryOf.executionArn, from: resume.plan.from } } : {}),
  };
  appendRunKeys({ model: modelName, version });
  logger.info('run prepared', { image: run.image, trigger: run.trigger.source, modelUri: run.modelUri, hyperparameters: hyperparameterCheck, ...(run.retry ? { retry: run.retry } : {}) });
  if (!resume) return { run };
  // What the failed run finished is carried over as it was recorded, so later states see it as they would have.
  return { run, training: resume.plan.training, ...(resume.plan.evaluation ? { evaluation: resume.plan.evaluation } : {}) };
}

export const handler = withLogContext('Prepare', prepareRun);
