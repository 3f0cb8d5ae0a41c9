/**
 * Builders for the Kubernetes objects a run owns: the training Job, the serving Deployments (staging and
 * versioned production) and the LoadBalancer Services. Pure functions of the run and the workload
 * settings, so a retried step applies exactly the same object. Pods run as non-root with a read-only root
 * filesystem, no privilege escalation and no capabilities; /tmp is an emptyDir for libraries that need
 * scratch space. AWS access comes from EKS Pod Identity on the ServiceAccount, never from keys.
 */
import type { V1Container, V1Deployment, V1Job, V1PodSpec, V1Service } from '@kubernetes/client-node';
import { numberEnv, optionalEnv } from './config';
import { ConfigurationError } from './errors';
import { LABELS, PREVIOUS_VERSION_ANNOTATION, workloadLabels, type WorkloadStage } from './names';
import { phaseTimeoutSeconds } from './phase';
import type { RunContext, Stage } from './types';

export const SERVING_PORT = 8501;
export const SERVICE_PORT = 80;

export interface WorkloadSettings {
  trainerServiceAccount: string;
  serverServiceAccount: string;
  training: { cpu: string; memory: string; backoffLimit: number; ttlSecondsAfterFinished: number; timeoutSeconds: number };
  serving: { cpu: string; memory: string; replicas: number; progressDeadlineSeconds: number };
  /** Extra Service annotations, e.g. for the AWS Load Balancer Controller (JSON object setting). */
  serviceAnnotations: Record<string, string>;
  /**
   * Annotations for staging Services only, applied over `serviceAnnotations` (e.g. an internal load
   * balancer scheme, so untested models are never reachable from the internet).
   */
  stagingServiceAnnotations: Record<string, string>;
}

const QUANTITY = /^[0-9]+(\.[0-9]+)?(m|k|Ki|M|Mi|G|Gi|T|Ti)?$/;

function quantityEnv(name: string, defaultValue: string): string {
  const value = optionalEnv(name) ?? defaultValue;
  if (!QUANTITY.test(value)) throw new ConfigurationError(`Setting ${name} must be a Kubernetes quantity like 500m or 2Gi, got "${value}".`);
  return value;
}

function annotationsEnv(name: string): Record<string, string> {
  const raw = optionalEnv(name);
  if (!raw) return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    throw new ConfigurationError(`Setting ${name} must be a JSON object of strings.`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed) || Object.values(parsed).some((v) => typeof v !== 'string')) {
    throw new ConfigurationError(`Setting ${name} must be a JSON object of strings.`);
  }
  return parsed as Record<string, string>;
}

/** Workload settings from the environment (docs/architecture.md, "Settings"); defaults documented here. */
export function workloadSettings(): WorkloadSettings {
  const rolloutTimeout = phaseTimeoutSeconds('rollout');
  return {
    trainerServiceAccount: optionalEnv('TRAINER_SERVICE_ACCOUNT') ?? 'mlpipe-trainer',
    serverServiceAccount: optionalEnv('SERVER_SERVICE_ACCOUNT') ?? 'mlpipe-server',
    training: {
      cpu: quantityEnv('TRAINING_CPU', '1'),
      memory: quantityEnv('TRAINING_MEMORY', '2Gi'),
      backoffLimit: numberEnv('TRAINING_BACKOFF_LIMIT', 1, { min: 0, max: 10 }),
      ttlSecondsAfterFinished: numberEnv('TRAINING_JOB_TTL_SECONDS', 86_400, { min: 0 }),
      timeoutSeconds: phaseTimeoutSeconds('training'),
    },
    serving: {
      cpu: quantityEnv('SERVING_CPU', '250m'),
      memory: quantityEnv('SERVING_MEMORY', '512Mi'),
      replicas: numberEnv('SERVING_REPLICAS', 2, { min: 1, max: 50 }),
      // No progress for this long marks the rollout failed; never longer than the rollout phase itself.
      progressDeadlineSeconds: Math.min(600, rolloutTimeout),
    },
    serviceAnnotations: annotationsEnv('SERVICE_ANNOTATIONS'),
    stagingServiceAnnotations: annotationsEnv('STAGING_SERVICE_ANNOTATIONS'),
  };
}

/** Pod-level hardening shared by trainer and server. */
function hardenedPod(serviceAccountName: string, containers: V1Container[], extra: Partial<V1PodSpec> = {}): V1PodSpec {
  return {
    serviceAccountName,
    // Pod Identity injects its own token volume; the Kubernetes API token is not needed by the workload.
    automountServiceAccountToken: false,
    securityContext: {
      runAsNonRoot: true,
      // Images that declare USER root (stock TF Serving) still start, as an unprivileged uid.
      runAsUser: 1000,
      runAsGroup: 1000,
      fsGroup: 1000,
      seccompProfile: { type: 'RuntimeDefault' },
    },
    containers,
    volumes: [{ name: 'tmp', emptyDir: { sizeLimit: '1Gi' } }],
    ...extra,
  };
}

function hardenedContainer(c: V1Container, size: { cpu: string; memory: string }): V1Container {
  return {
    ...c,
    // Trainer and server are sized alike: CPU and memory requested, memory (only) limited.
    resources: { requests: { cpu: size.cpu, memory: size.memory }, limits: { memory: size.memory } },
    securityContext: {
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ['ALL'] },
    },
    volumeMounts: [{ name: 'tmp', mountPath: '/tmp' }],
  };
}

function objectLabels(run: RunContext, stage: WorkloadStage): Record<string, string> {
  return workloadLabels(run.modelName, run.version, stage);
}

export function trainingJob(run: RunContext, settings: WorkloadSettings): V1Job {
  const labels = objectLabels(run, 'training');
  const t = settings.training;
  return {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: { name: run.names.trainingJob, namespace: run.namespaces.staging, labels },
    spec: {
      backoffLimit: t.backoffLimit,
      ttlSecondsAfterFinished: t.ttlSecondsAfterFinished,
      activeDeadlineSeconds: t.timeoutSeconds,
      template: {
        metadata: { labels },
        spec: hardenedPod(
          settings.trainerServiceAccount,
          [
            hardenedContainer({
              name: 'trainer',
              image: run.image,
              env: [
                { name: 'MODEL_OUTPUT_URI', value: run.modelUri },
                { name: 'DATA_URI', value: run.dataUri },
                { name: 'HYPERPARAMETERS', value: JSON.stringify(run.hyperparameters) },
              ],
            }, t),
          ],
          { restartPolicy: 'Never' },
        ),
      },
    },
  };
}

export function servingDeployment(run: RunContext, stage: Stage, settings: WorkloadSettings): V1Deployment {
  const labels = objectLabels(run, stage);
  const s = settings.serving;
  const name = stage === 'staging' ? run.names.stagingDeployment : run.names.productionDeployment;
  const namespace = run.namespaces[stage];
  const modelPath = `/v1/models/${run.modelName}`;
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name, namespace, labels },
    spec: {
      replicas: stage === 'staging' ? 1 : s.replicas,
      progressDeadlineSeconds: s.progressDeadlineSeconds,
      revisionHistoryLimit: 2,
      selector: { matchLabels: labels },
      template: {
        metadata: { labels },
        spec: hardenedPod(settings.serverServiceAccount, [
          hardenedContainer({
            name: 'server',
            image: run.servingImage,
            env: [
              { name: 'MODEL_URI', value: run.modelUri },
              { name: 'MODEL_NAME', value: run.modelName },
            ],
            ports: [{ name: 'http', containerPort: SERVING_PORT, protocol: 'TCP' }],
            // Ready only once the model is loaded and answers, not when the port opens.
            readinessProbe: {
              httpGet: { path: modelPath, port: 'http' },
              initialDelaySeconds: 1,
              periodSeconds: 2,
              failureThreshold: 3,
            },
            livenessProbe: {
              httpGet: { path: modelPath, port: 'http' },
              initialDelaySeconds: 60,
              periodSeconds: 10,
              failureThreshold: 6,
            },
          }, s),
        ]),
      },
    },
  };
}

/** Which Service to build: a stage's Service and the version it should select. */
export interface ServiceTarget {
  modelName: string;
  version: string;
  stage: Stage;
  namespace: string;
  name: string;
}

export function stagingServiceTarget(run: RunContext): ServiceTarget {
  return { modelName: run.modelName, version: run.version, stage: 'staging', namespace: run.namespaces.staging, name: run.names.stagingService };
}

export function productionServiceTarget(run: RunContext): ServiceTarget {
  return { modelName: run.modelName, version: run.version, stage: 'production', namespace: run.namespaces.production, name: run.names.productionService };
}

/**
 * The LoadBalancer Service of a stage. Staging: one per version. Production: one per model, its selector
 * naming the version that serves (blue/green); `previousVersion` is kept as an annotation so a retried
 * switch can still report what served before.
 */
export function servingService(target: ServiceTarget, settings: WorkloadSettings, previousVersion?: string | null): V1Service {
  const selector = workloadLabels(target.modelName, target.version, target.stage);
  const labels =
    target.stage === 'staging'
      ? selector
      : { [LABELS.name]: target.modelName, [LABELS.managedBy]: selector[LABELS.managedBy]!, [LABELS.stage]: 'production' };
  const annotations: Record<string, string> = {
    ...settings.serviceAnnotations,
    ...(target.stage === 'staging' ? settings.stagingServiceAnnotations : {}),
  };
  if (target.stage === 'production' && previousVersion) annotations[PREVIOUS_VERSION_ANNOTATION] = previousVersion;
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: target.name, namespace: target.namespace, labels, annotations },
    spec: {
      type: 'LoadBalancer',
      selector,
      ports: [{ name: 'http', port: SERVICE_PORT, targetPort: 'http', protocol: 'TCP' }],
    },
  };
}
