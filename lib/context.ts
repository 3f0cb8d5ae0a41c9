/**
 * Reads MlPipeline props from CDK context (`mlpipe:*` keys in cdk.json, or `-c mlpipe:key=value` on the
 * command line). Command-line values arrive as strings, so numbers, lists and durations are accepted in
 * string form too; anything else fails with a message naming the context key.
 */
import { Duration } from 'aws-cdk-lib';
import { z } from 'zod';
import type { MlPipelineProps } from './mlpipe-pipeline';

export const CONTEXT_PREFIX = 'mlpipe:';

const text = z.string().trim().min(1, 'must not be empty');

const number = z.union([z.number(), z.string().trim().min(1)]).transform((v, ctx) => {
  const n = typeof v === 'number' ? v : Number(v);
  if (!Number.isFinite(n)) {
    ctx.addIssue({ code: 'custom', message: `must be a number, got "${String(v)}"` });
    return z.NEVER;
  }
  return n;
});

/** A list: a JSON array, or a comma-separated string (`-c mlpipe:approverEmails=a@x.com,b@x.com`). */
const list = z.union([z.array(z.string()), z.string()]).transform((v) => {
  if (Array.isArray(v)) return v.map((s) => s.trim()).filter((s) => s !== '');
  const trimmed = v.trim();
  if (trimmed.startsWith('[')) {
    try {
      const parsed: unknown = JSON.parse(trimmed);
      if (Array.isArray(parsed)) return parsed.map((s) => String(s).trim()).filter((s) => s !== '');
    } catch {
      // fall through: treated as a comma-separated list
    }
  }
  return trimmed.split(',').map((s) => s.trim()).filter((s) => s !== '');
});

/** A boolean: true/false, or the strings "true"/"false" (what `-c` gives). */
const boolean = z.union([z.boolean(), z.string()]).transform((v, ctx) => {
  if (typeof v === 'boolean') return v;
  if (v.trim() === 'true' || v.trim() === 'false') return v.trim() === 'true';
  ctx.addIssue({ code: 'custom', message: `must be true or false, got "${v}"` });
  return z.NEVER;
});

/** A duration: seconds as a number, or ISO 8601 like "PT24H" / "P1D" (what Duration.parse reads). */
const duration = z.union([z.number(), z.string().trim().min(1)]).transform((v, ctx) => {
  if (typeof v === 'number' || /^\d+(\.\d+)?$/.test(v)) return Duration.seconds(Number(v));
  try {
    return Duration.parse(v);
  } catch {
    ctx.addIssue({ code: 'custom', message: `must be seconds or an ISO 8601 duration like "PT24H", got "${v}"` });
    return z.NEVER;
  }
});

/** An object of `value`s, or the same as a JSON string (what `-c` gives); `message` says what is expected. */
function jsonRecord<V extends z.ZodType>(value: V, message: string) {
  const record = z.record(z.string(), value);
  return z.union([record, z.string()]).transform((v, ctx) => {
    if (typeof v !== 'string') return v;
    try {
      return record.parse(JSON.parse(v));
    } catch {
      ctx.addIssue({ code: 'custom', message });
      return z.NEVER;
    }
  });
}

const hyperparameters = jsonRecord(
  z.union([z.string(), z.number(), z.boolean()]),
  'must be a JSON object of string, number or boolean values, e.g. {"epochs":5}',
);

// Keys are checked with the API's rules at construction (settings.ts), so the message there names the key.
const annotations = jsonRecord(
  z.string(),
  'must be a JSON object of strings, e.g. {"service.beta.kubernetes.io/aws-load-balancer-scheme":"internet-facing"}',
);

/** Context key (without the prefix) → schema. Keys are the MlPipeline prop names. */
const CONTEXT_SCHEMA = {
  clusterName: text,
  clusterArn: text,
  stagingNamespace: text,
  productionNamespace: text,
  modelName: text,
  trainingRepositoryName: text,
  servingImage: text,
  dataUri: text,
  evalDataUri: text,
  defaultHyperparameters: hyperparameters,
  minAccuracy: number,
  maxP95LatencyMs: number,
  maxErrorRate: number,
  maxAccuracyDrop: number,
  evalSamples: number,
  evalBatchSize: number,
  monitorSchedule: text,
  maxPredictionDrift: number,
  approverEmails: list,
  approvalTimeout: duration,
  trainerServiceAccount: text,
  serverServiceAccount: text,
  watchBudget: duration,
  trainingTimeout: duration,
  trainingCheckMaxWait: duration,
  trainingWatchLead: duration,
  rolloutTimeout: duration,
  endpointTimeout: duration,
  trainingCpu: text,
  trainingMemory: text,
  servingCpu: text,
  servingMemory: text,
  servingReplicas: number,
  servingDrainSeconds: number,
  trainingBackoffLimit: number,
  trainingJobTtl: duration,
  // Their fields are checked at construction with the settings' schema (placement.ts), naming the field.
  trainingPlacement: jsonRecord(z.unknown(), 'must be a JSON object like {"gpus":1,"tolerations":[{"key":"nvidia.com/gpu","operator":"Exists","effect":"NoSchedule"}]}'),
  servingPlacement: jsonRecord(z.unknown(), 'must be a JSON object like {"nodeSelector":{"pool":"serving"}}'),
  // Its fields are checked at construction with the ROLLOUT setting's schema (rollout.ts), naming the field.
  rollout: jsonRecord(z.unknown(), 'must be a JSON object like {"strategy":"canary","steps":[10,50,100],"bakeSeconds":300}'),
  retentionHours: number,
  evalConcurrency: number,
  evalRequestTimeout: duration,
  allowImageTags: boolean,
  serviceAnnotations: annotations,
  stagingServiceAnnotations: annotations,
  dataPrefix: text,
  dataMarkerFile: text,
  schedule: text,
  vpcId: text,
  privateSubnetIds: list,
  securityGroupIds: list,
  endpointAuth: boolean,
  endpointTokenRotationDays: number,
  monitorKubernetesGroup: text,
  rotationKubernetesGroup: text,
  tasksKubernetesGroup: text,
  rollbackKubernetesGroup: text,
  // Each range is checked at construction with the setting's CIDR rule, naming the bad value.
  loadBalancerSourceRanges: list,
  internalProduction: boolean,
  productionServiceAnnotations: annotations,
  nlb: boolean,
  tlsCertificateArn: text,
} satisfies { [K in keyof MlPipelineProps]-?: z.ZodType };

export const CONTEXT_KEYS = Object.keys(CONTEXT_SCHEMA).map((k) => `${CONTEXT_PREFIX}${k}`);

/**
 * MlPipeline props from context. `get(key)` is `node.tryGetContext`. Unset keys (and empty strings, so
 * `-c mlpipe:schedule=` switches a cdk.json setting off) fall back to the construct's defaults.
 */
export function propsFromContext(get: (key: string) => unknown): MlPipelineProps {
  const props: Record<string, unknown> = {};
  for (const [name, schema] of Object.entries(CONTEXT_SCHEMA)) {
    const key = `${CONTEXT_PREFIX}${name}`;
    const raw = get(key);
    if (raw === undefined || raw === null || (typeof raw === 'string' && raw.trim() === '')) continue;
    const parsed = (schema as z.ZodType).safeParse(raw);
    if (!parsed.success) {
      const why = parsed.error.issues.map((i) => i.message).join('; ');
      throw new Error(`mlpipe: context "${key}" ${why}. Set it in cdk.json or with -c ${key}=...`);
    }
    props[name] = parsed.data;
  }
  if (props.clusterName === undefined) {
    throw new Error(`mlpipe: context "${CONTEXT_PREFIX}clusterName" is required: the name of your existing EKS cluster. Deploy with -c ${CONTEXT_PREFIX}clusterName=<name>.`);
  }
  return props as unknown as MlPipelineProps;
}
