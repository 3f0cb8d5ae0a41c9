/**
 * Zod schemas for the parts of the pipeline state (functions/shared/types.ts) that the Kubernetes task
 * handlers read. The state is ours, but it crosses a boundary (Step Functions, or a hand-made input to a
 * redriven execution), so each handler checks what it relies on and names the field when it is wrong.
 */
import * as z from 'zod';
import { InvalidInputError } from './errors';
import { DNS1123_LABEL } from './names';
import type { RunContext, StageResult, TrainingResult } from './types';

const dnsLabel = z.string().regex(DNS1123_LABEL, 'must be a DNS-1123 label (lowercase letters, digits, "-", at most 63)');

/** A release version (names.ts deriveVersion): it ends up in object names and labels. */
export const VersionSchema = z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/, 'must be a version like 20260102-030405-abc1234');

export const RunSchema = z.object({
  modelName: dnsLabel,
  version: VersionSchema,
  image: z.string().min(1),
  imageDigest: z.string().nullable(),
  servingImage: z.string().min(1),
  dataUri: z.string().startsWith('s3://', 'must be an s3:// URI'),
  evalDataUri: z.string().startsWith('s3://', 'must be an s3:// URI'),
  hyperparameters: z.record(z.string(), z.union([z.string(), z.number(), z.boolean()])),
  modelUri: z.string().startsWith('s3://', 'must be an s3:// URI'),
  executionArn: z.string(),
  executionName: z.string(),
  startedAt: z.string(),
  approvalTimeoutSeconds: z.number(),
  trigger: z.object({ source: z.string(), detail: z.record(z.string(), z.unknown()).optional() }),
  namespaces: z.object({ staging: dnsLabel, production: dnsLabel }),
  names: z.object({
    trainingJob: dnsLabel,
    stagingDeployment: dnsLabel,
    stagingService: dnsLabel,
    productionDeployment: dnsLabel,
    productionService: dnsLabel,
  }),
}) satisfies z.ZodType<RunContext>;

export const TrainingSchema = z.object({
  jobName: dnsLabel,
  namespace: dnsLabel,
  submittedAt: z.string(),
  status: z.enum(['pending', 'succeeded']),
  completedAt: z.string().optional(),
  metrics: z.record(z.string(), z.number()).optional(),
}) satisfies z.ZodType<TrainingResult>;

export const StageSchema = z.object({
  stage: z.enum(['staging', 'production']),
  namespace: dnsLabel,
  deploymentName: dnsLabel,
  serviceName: dnsLabel,
  deployedAt: z.string(),
  status: z.enum(['pending', 'ready', 'exposed', 'serving']),
  endpoint: z.string().optional(),
  previousVersion: z.string().nullable().optional(),
  switchedAt: z.string().optional(),
}) satisfies z.ZodType<StageResult>;

/** Parses `input` with `schema`; failures become InvalidInputError listing each field and why. */
export function parseInput<T>(schema: z.ZodType<T>, input: unknown, what: string): T {
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  const problems = result.error.issues.map((i) => `${i.path.length ? i.path.join('.') : '(input)'}: ${i.message}`);
  throw new InvalidInputError(`${what} is invalid: ${problems.join('; ')}`);
}

/** `{ run }` plus the given slices, for handlers that need them. */
export function stateWith<S extends z.ZodRawShape>(shape: S) {
  return z.object({ run: RunSchema, ...shape });
}
