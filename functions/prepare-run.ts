/**
 * Prepare: validates the execution input (RunRequest) and derives, once, everything the later states
 * use — version, Kubernetes names, model location, namespaces, settings. Deterministic in the execution
 * (start time + image digest), so a retried Prepare answers the same. Returns `{ run }` (ResultPath `$`).
 */
import { z } from 'zod';
import { FUNCTION_SETTINGS } from './shared/function-settings';
import { InvalidInputError } from './shared/errors';
import { deriveVersion, runNames } from './shared/names';
import { artifactBucket, registryKeys, s3Uri } from './shared/registry';
import { HyperparametersSchema, ModelNameSchema, S3_URI, loadSettings } from './shared/settings';
import { parseInput } from './shared/state';
import type { PipelineState, PrepareRunInput, RunContext } from './shared/types';

/**
 * Read and validated once, at init: a bad value fails the Lambda's init naming the variable. MODEL_NAME
 * gets the same rule as a requested model name (k8s-names.ts: it names Services, so DNS-1035).
 */
const settings = loadSettings(FUNCTION_SETTINGS.PrepareRun);

/** `[registry[:port]/]repo[/more][:tag][@sha256:<64 hex>]`, lowercase repository path as OCI requires. */
const IMAGE_REF = /^(?:[a-zA-Z0-9.-]+(?::[0-9]+)?\/)?[a-z0-9]+(?:[._-][a-z0-9]+)*(?:\/[a-z0-9]+(?:[._-][a-z0-9]+)*)*(?::[\w][\w.-]{0,127})?(?:@sha256:[a-f0-9]{64})?$/;
const DIGEST = /@(sha256:[a-f0-9]{64})$/;
const IMAGE_HINT = 'must be a container image reference like <registry>/<repo>@sha256:<digest>';
const s3Uri_ = z.string().regex(S3_URI, 'must be an S3 URI like s3://bucket/prefix/');

const RunRequestSchema = z.object({
  image: z.string(IMAGE_HINT).regex(IMAGE_REF, IMAGE_HINT),
  modelName: ModelNameSchema.optional(),
  dataUri: s3Uri_.optional(),
  evalDataUri: s3Uri_.optional(),
  hyperparameters: HyperparametersSchema.optional(),
  servingImage: z.string().regex(IMAGE_REF, IMAGE_HINT).optional(),
  trigger: z.object({ source: z.string().min(1, 'must not be empty'), detail: z.record(z.string(), z.unknown()).optional() }).optional(),
});

const PrepareInputSchema = z.object({
  input: z.unknown(),
  executionArn: z.string().min(1),
  executionName: z.string().min(1),
  startTime: z.string().refine((s) => !Number.isNaN(Date.parse(s)), 'must be an ISO timestamp'),
});

/** Request value, else the setting; neither is a clear input error naming both. */
function pick(value: string | undefined, setting: string | undefined, settingName: string, field: string): string {
  const v = value ?? setting;
  if (!v) throw new InvalidInputError(`${field}: required, because the ${settingName} setting gives no default.`);
  return v;
}

export async function handler(event: PrepareRunInput): Promise<PipelineState> {
  const ctx = parseInput(PrepareInputSchema, event, 'Prepare input');
  const req = parseInput(RunRequestSchema, ctx.input ?? {}, 'Execution input');
  const imageDigest = DIGEST.exec(req.image)?.[1] ?? null;
  // Tags are mutable: unless the stack allows them (the local run does), the image must be pinned by digest.
  if (!imageDigest && !settings.ALLOW_IMAGE_TAGS) {
    throw new InvalidInputError(`image: must be pinned by digest (<registry>/<repo>@sha256:<digest>), got "${req.image}"; tags are accepted only with ALLOW_IMAGE_TAGS=true.`);
  }
  const modelName = req.modelName ?? settings.MODEL_NAME;
  const version = deriveVersion(ctx.startTime, ctx.executionName, req.image, imageDigest);
  const startedAt = new Date(ctx.startTime).toISOString();

  const run: RunContext = {
    modelName,
    version,
    image: req.image,
    imageDigest,
    servingImage: pick(req.servingImage, settings.SERVING_IMAGE, 'SERVING_IMAGE', 'servingImage'),
    dataUri: pick(req.dataUri, settings.DATA_URI, 'DATA_URI', 'dataUri'),
    evalDataUri: pick(req.evalDataUri, settings.EVAL_DATA_URI, 'EVAL_DATA_URI', 'evalDataUri'),
    hyperparameters: { ...settings.DEFAULT_HYPERPARAMETERS, ...(req.hyperparameters ?? {}) },
    modelUri: s3Uri(registryKeys.versionPrefix(modelName, version), artifactBucket()),
    executionArn: ctx.executionArn,
    executionName: ctx.executionName,
    startedAt,
    approvalTimeoutSeconds: settings.APPROVAL_TIMEOUT_SECONDS,
    trigger: req.trigger ?? { source: 'manual' },
    namespaces: { staging: settings.STAGING_NAMESPACE, production: settings.PRODUCTION_NAMESPACE },
    names: runNames(modelName, version),
  };
  return { run };
}
