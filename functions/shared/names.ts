/**
 * Deterministic names and labels for everything a run puts in Kubernetes (docs/architecture.md,
 * "Kubernetes conventions"). The same run always gets the same names, so a retried step finds the object
 * its earlier attempt made instead of making a second one.
 */
import { createHash } from 'node:crypto';
import type { RunContext } from './types';

export const MAX_NAME_LENGTH = 63;
export const FIELD_MANAGER = 'mlpipe';

export const LABELS = {
  name: 'app.kubernetes.io/name',
  managedBy: 'app.kubernetes.io/managed-by',
  version: 'mlpipe.dev/version',
  stage: 'mlpipe.dev/stage',
} as const;

/** Set on the production Service: what it selected before the last switch (makes the switch retry-safe). */
export const PREVIOUS_VERSION_ANNOTATION = 'mlpipe.dev/previous-version';

/**
 * Set on the production Service when traffic was moved off a failed run (Cleanup, or a canary's
 * rollback): a retried step finds the selector already moved and still reports the switch-back.
 */
export const SWITCHED_BACK_FROM_ANNOTATION = 'mlpipe.dev/switched-back-from';

/** Set on the production Service while a canary splits traffic: the candidate version, and the stable one. */
export const CANARY_VERSION_ANNOTATION = 'mlpipe.dev/canary-version';
export const STABLE_VERSION_ANNOTATION = 'mlpipe.dev/stable-version';

export type WorkloadStage = 'training' | 'staging' | 'production';

export { DNS1123_LABEL } from './k8s-names';

export function shortHash(value: string, length = 8): string {
  return createHash('sha256').update(value).digest('hex').slice(0, length);
}

/**
 * Keeps a name within 63 characters: a long one is cut and suffixed with a hash of the whole name, so two
 * long names that share a prefix still differ.
 */
export function fitName(name: string): string {
  if (name.length <= MAX_NAME_LENGTH) return name;
  const suffix = shortHash(name);
  const head = name.slice(0, MAX_NAME_LENGTH - suffix.length - 1).replace(/-+$/, '');
  return `${head}-${suffix}`;
}

export function trainingJobName(modelName: string, version: string): string {
  return fitName(`${modelName}-${version}-train`);
}

export function stagingName(modelName: string, version: string): string {
  return fitName(`${modelName}-${version}-staging`);
}

export function productionDeploymentName(modelName: string, version: string): string {
  return fitName(`${modelName}-${version}`);
}

export function productionServiceName(modelName: string): string {
  return fitName(modelName);
}

export function runNames(modelName: string, version: string): RunContext['names'] {
  return {
    trainingJob: trainingJobName(modelName, version),
    stagingDeployment: stagingName(modelName, version),
    stagingService: stagingName(modelName, version),
    productionDeployment: productionDeploymentName(modelName, version),
    productionService: productionServiceName(modelName),
  };
}

/** The labels on every object and pod of one workload; also its selector. */
export function workloadLabels(modelName: string, version: string, stage: WorkloadStage): Record<string, string> {
  return {
    [LABELS.name]: modelName,
    [LABELS.managedBy]: FIELD_MANAGER,
    [LABELS.version]: version,
    [LABELS.stage]: stage,
  };
}

/** `k=v,k=v` for a list or watch request's labelSelector. */
export function labelSelector(labels: Record<string, string>): string {
  return Object.entries(labels)
    .map(([k, v]) => `${k}=${v}`)
    .join(',');
}

/**
 * Version of a run: `<yyyymmdd>-<hhmmss>-<7 hex>` from the execution's start time (UTC) and a hash of the
 * execution name with the image digest (or reference). A retried Prepare gets the same answer; the
 * timestamp prefix makes versions sort by age.
 */
export function deriveVersion(startTime: string, executionName: string, image: string, imageDigest: string | null): string {
  const start = new Date(startTime);
  if (Number.isNaN(start.getTime())) throw new RangeError(`startTime is not a timestamp: "${startTime}"`);
  const iso = start.toISOString(); // 2026-01-02T03:04:05.000Z
  const stamp = `${iso.slice(0, 4)}${iso.slice(5, 7)}${iso.slice(8, 10)}-${iso.slice(11, 13)}${iso.slice(14, 16)}${iso.slice(17, 19)}`;
  // The execution name is part of the hash: two runs of one image started in the same second (a CLI run
  // next to a push) must not share a version, and with it Kubernetes objects and an S3 prefix.
  const tag = shortHash(`${executionName}|${imageDigest ?? image}`, 7);
  return `${stamp}-${tag}`;
}
