/**
 * Prepare: validates the execution input (RunRequest) and derives, once, everything the later states
 * use — version, Kubernetes names, model location, namespaces, settings. Deterministic in the execution
 * (start time + image digest), so a retried Prepare answers the same. Returns `{ run }` (ResultPath `$`).
 */
import * as z from 'zod';
import { artifactBucket, registryKeys, s3Uri } from './shared/registry';
import { S3_URI } from './shared/clients';
import { numberEnv, optionalEnv, requireEnv } from './shared/config';
import { ConfigurationError, InvalidInputError } from './shared/errors';
import { appendRunKeys, logger, withLogContext } from './shared/logger';
import { DNS1123_LABEL, deriveVersion, runNames } from './shared/names';
import { parseInput } from './shared/state';
import type { PipelineState, PrepareRunInput, RunContext } from './shared/types';

/** `[registry[:port]/]repo[/more][:tag][@sha256:<64 hex>]`, lowercase repository path as OCI requires. */
const IMAGE_REF = /^(?:[a-zA-Z0-9.-]+(?::[0-9]+)?\/)?[a-z0-9]+(?:[._-][a-z0-9]+)*(?:\/[a-z0-9]+(?:[._-][a-z0-9]+)*)*(?::[\w][\w.-]{0,127})?(?:@sha256:[a-f0-9]{64})?$/;
const DIGEST = /@(sha256:[a-f0-9]{64})$/;
const IMAGE_HINT = 'must be a container image reference like <registry>/<repo>@sha256:<digest>';
const s3Uri_ = z.string().regex(S3_URI, 'must be an S3 URI like s3://bucket/prefix/');

const RunRequestSchema = z.object({
  image: z.string(IMAGE_HINT).regex(IMAGE_REF, IMAGE_HINT),
  modelName: z.string().regex(DNS1123_LABEL, 'must be a DNS-1123 label: lowercase letters, digits and "-", at most 63 characters').optional(),
  dataUri: s3Uri_.optional(),
  evalDataUri: s3Uri_.optional(),
  hyperparameters: z.record(z.string(), z.union([z.string(), z.number(), z.boolean()]), 'must be an object of strings, numbers or booleans').optional(),
  servingImage: z.string().regex(IMAGE_REF, IMAGE_HINT).optional(),
  trigger: z.object({ source: z.string().min(1, 'must not be empty'), detail: z.record(z.string(), z.unknown()).optional() }).optional(),
});

const PrepareInputSchema = z.object({
  input: z.unknown(),
  executionArn: z.string().min(1),
  executionName: z.string().min(1),
  startTime: z.string().refine((s) => !Number.isNaN(Date.parse(s)), 'must be an ISO timestamp'),
});

function defaultHyperparameters(): Record<string, string | number | boolean> {
  const raw = optionalEnv('DEFAULT_HYPERPARAMETERS');
  if (!raw) return {};
  const parsed = RunRequestSchema.shape.hyperparameters.safeParse(safeJson(raw));
  if (!parsed.success || !parsed.data) throw new ConfigurationError('Setting DEFAULT_HYPERPARAMETERS must be a JSON object of strings, numbers or booleans.');
  return parsed.data;
}

function safeJson(raw: string): unknown {
  try {
    return JSON.parse(raw);
  } catch {
    return undefined;
  }
}

/** Request value, else the setting; neither is a clear input error naming both. */
function pick(value: string | undefined, setting: string, field: string): string {
  const v = value ?? optionalEnv(setting);
  if (!v) throw new InvalidInputError(`${field}: required, because the ${setting} setting gives no default.`);
  return v;
}

function namespaceSetting(name: string): string {
  const value = requireEnv(name);
  if (!DNS1123_LABEL.test(value)) throw new ConfigurationError(`Setting ${name} must be a Kubernetes namespace name, got "${value}".`);
  return value;
}

async function prepareRun(event: PrepareRunInput): Promise<PipelineState> {
  const ctx = parseInput(PrepareInputSchema, event, 'Prepare input');
  const req = parseInput(RunRequestSchema, ctx.input ?? {}, 'Execution input');
  const imageDigest = DIGEST.exec(req.image)?.[1] ?? null;
  // Tags are mutable: outside a kubeconfig (local, kind) the image must be pinned by digest.
  const allowTags = (optionalEnv('ALLOW_IMAGE_TAGS') ?? (optionalEnv('KUBECONFIG') ? 'true' : 'false')) === 'true';
  if (!imageDigest && !allowTags) {
    throw new InvalidInputError(`image: must be pinned by digest (<registry>/<repo>@sha256:<digest>), got "${req.image}"; tags are accepted only with ALLOW_IMAGE_TAGS=true.`);
  }
  const modelName = pick(req.modelName, 'MODEL_NAME', 'modelName');
  if (!DNS1123_LABEL.test(modelName)) throw new ConfigurationError(`Setting MODEL_NAME must be a DNS-1123 label, got "${modelName}".`);
  const version = deriveVersion(ctx.startTime, ctx.executionName, req.image, imageDigest);
  const startedAt = new Date(ctx.startTime).toISOString();

  const run: RunContext = {
    modelName,
    version,
    image: req.image,
    imageDigest,
    servingImage: pick(req.servingImage, 'SERVING_IMAGE', 'servingImage'),
    dataUri: pick(req.dataUri, 'DATA_URI', 'dataUri'),
    evalDataUri: pick(req.evalDataUri, 'EVAL_DATA_URI', 'evalDataUri'),
    hyperparameters: { ...defaultHyperparameters(), ...(req.hyperparameters ?? {}) },
    modelUri: s3Uri(registryKeys.versionPrefix(modelName, version), artifactBucket()),
    executionArn: ctx.executionArn,
    executionName: ctx.executionName,
    startedAt,
    approvalTimeoutSeconds: numberEnv('APPROVAL_TIMEOUT_SECONDS', 86_400, { min: 60, max: 31_536_000 }),
    trigger: req.trigger ?? { source: 'manual' },
    namespaces: { staging: namespaceSetting('STAGING_NAMESPACE'), production: namespaceSetting('PRODUCTION_NAMESPACE') },
    names: runNames(modelName, version),
  };
  appendRunKeys({ model: modelName, version });
  logger.info('run prepared', { image: run.image, trigger: run.trigger.source, modelUri: run.modelUri });
  return { run };
}

export const handler = withLogContext('Prepare', prepareRun);
