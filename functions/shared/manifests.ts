/**
 * Builders for the Kubernetes objects a run owns: the training Job, the serving Deployments (staging and
 * versioned production) and the LoadBalancer Services. Pure functions of the run and the workload
 * settings, so a retried step applies exactly the same object. Pods run as non-root with a read-only root
 * filesystem, no privilege escalation and no capabilities; /tmp is an emptyDir for libraries that need
 * scratch space. AWS access comes from EKS Pod Identity on the ServiceAccount, never from keys.
 */
import type { V1Container, V1Deployment, V1Job, V1PodSpec, V1Service } from '@kubernetes/client-node';
import type { PRODUCTION_SERVICE, SERVING_DEPLOYMENT, STAGING_SERVICE, TRAINING_JOB } from './function-settings';
import { LABELS, PREVIOUS_VERSION_ANNOTATION, workloadLabels, type WorkloadStage } from './names';
import type { SettingsOf } from './settings';
import type { RunContext, Stage } from './types';

export const SERVING_PORT = 8501;
export const SERVICE_PORT = 80;

/** What the training Job is built from: the calling function's loaded settings. */
export type TrainingJobSettings = SettingsOf<typeof TRAINING_JOB>;
/** What a serving Deployment is built from. */
export type ServingDeploymentSettings = SettingsOf<typeof SERVING_DEPLOYMENT>;
/** The settings of the production Service. */
export type ProductionServiceSettings = SettingsOf<typeof PRODUCTION_SERVICE>;

/**
 * A staging Service's annotations: SERVICE_ANNOTATIONS, then STAGING_SERVICE_ANNOTATIONS over them (e.g.
 * an internal load balancer scheme, so untested models are never reachable from the internet).
 */
export function stagingServiceAnnotations(s: SettingsOf<typeof STAGING_SERVICE>): Record<string, string> {
  return { ...s.SERVICE_ANNOTATIONS, ...s.STAGING_SERVICE_ANNOTATIONS };
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

export function trainingJob(run: RunContext, settings: TrainingJobSettings): V1Job {
  const labels = objectLabels(run, 'training');
  const size = { cpu: settings.TRAINING_CPU, memory: settings.TRAINING_MEMORY };
  return {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: { name: run.names.trainingJob, namespace: run.namespaces.staging, labels },
    spec: {
      backoffLimit: settings.TRAINING_BACKOFF_LIMIT,
      ttlSecondsAfterFinished: settings.TRAINING_JOB_TTL_SECONDS,
      activeDeadlineSeconds: settings.TRAINING_TIMEOUT_SECONDS,
      template: {
        metadata: { labels },
        spec: hardenedPod(
          settings.TRAINER_SERVICE_ACCOUNT,
          [
            hardenedContainer({
              name: 'trainer',
              image: run.image,
              env: [
                { name: 'MODEL_OUTPUT_URI', value: run.modelUri },
                { name: 'DATA_URI', value: run.dataUri },
                { name: 'HYPERPARAMETERS', value: JSON.stringify(run.hyperparameters) },
                // A retried pod (backoffLimit, a disruption) resumes from the checkpoints saved here.
                ...(run.checkpointUri ? [{ name: 'CHECKPOINT_URI', value: run.checkpointUri }] : []),
              ],
            }, size),
          ],
          { restartPolicy: 'Never' },
        ),
      },
    },
  };
}

/** A production candidate's differences: its first canary step's replicas, and a drill's `FAULT` (rollout.candidateFault). */
export interface ServingOverrides {
  replicas?: number;
  fault?: string;
}

export function servingDeployment(run: RunContext, stage: Stage, settings: ServingDeploymentSettings, overrides: ServingOverrides = {}): V1Deployment {
  const labels = objectLabels(run, stage);
  const size = { cpu: settings.SERVING_CPU, memory: settings.SERVING_MEMORY };
  const name = stage === 'staging' ? run.names.stagingDeployment : run.names.productionDeployment;
  const namespace = run.namespaces[stage];
  const modelPath = `/v1/models/${run.modelName}`;
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name, namespace, labels },
    spec: {
      replicas: stage === 'staging' ? 1 : (overrides.replicas ?? settings.SERVING_REPLICAS),
      // No progress for this long marks the rollout failed; never longer than the rollout phase itself.
      progressDeadlineSeconds: Math.min(600, settings.ROLLOUT_TIMEOUT_SECONDS),
      revisionHistoryLimit: 2,
      selector: { matchLabels: labels },
      template: {
        metadata: { labels },
        spec: hardenedPod(settings.SERVER_SERVICE_ACCOUNT, [
          hardenedContainer({
            name: 'server',
            image: run.servingImage,
            env: [
              { name: 'MODEL_URI', value: run.modelUri },
              { name: 'MODEL_NAME', value: run.modelName },
              // Sent back as X-Model-Version, so clients (the traffic generator) can tell versions apart in a canary.
              { name: 'MODEL_VERSION', value: run.version },
              ...(overrides.fault ? [{ name: 'FAULT', value: overrides.fault }] : []),
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
          }, size),
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
 * The LoadBalancer Service of a stage, with `annotations` (SERVICE_ANNOTATIONS; for staging,
 * stagingServiceAnnotations). Staging: one per version. Production: one per model, its selector naming the
 * version that serves (blue/green); `previousVersion` is kept as an annotation so a retried switch can
 * still report what served before.
 */
export function servingService(target: ServiceTarget, annotations: Record<string, string>, previousVersion?: string | null): V1Service {
  const selector = workloadLabels(target.modelName, target.version, target.stage);
  const labels =
    target.stage === 'staging'
      ? selector
      : { [LABELS.name]: target.modelName, [LABELS.managedBy]: selector[LABELS.managedBy]!, [LABELS.stage]: 'production' };
  const all: Record<string, string> = { ...annotations };
  if (target.stage === 'production' && previousVersion) all[PREVIOUS_VERSION_ANNOTATION] = previousVersion;
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: target.name, namespace: target.namespace, labels, annotations: all },
    spec: {
      type: 'LoadBalancer',
      selector,
      ports: [{ name: 'http', port: SERVICE_PORT, targetPort: 'http', protocol: 'TCP' }],
    },
  };
}
