/**
 * Builders for the Kubernetes objects a run owns: the training Job, the serving Deployments (staging and
 * versioned production), the LoadBalancer Services and (endpoint auth) the model's token Secret. Pure functions of the run and the workload
 * settings, so a retried step applies exactly the same object. Pods run as non-root with a read-only root
 * filesystem, no privilege escalation and no capabilities; /tmp is an emptyDir for libraries that need
 * scratch space. AWS access comes from EKS Pod Identity on the ServiceAccount, never from keys. Placement
 * (GPUs, node selector, tolerations, priority class: placement.ts) is added only when set.
 */
import type { V1Container, V1Deployment, V1Job, V1PodSpec, V1Secret, V1Service, V1ServicePort } from '@kubernetes/client-node';
import type { PRODUCTION_SERVICE, SERVING_DEPLOYMENT, STAGING_SERVICE, TRAINING_JOB } from './function-settings';
import { LABELS, PREVIOUS_VERSION_ANNOTATION, workloadLabels, type WorkloadStage } from './names';
import { podPlacement, withGpus, type Placement } from './placement';
import type { SettingsOf } from './settings';
import type { RunContext, Stage } from './types';

export const SERVING_PORT = 8501;
export const SERVICE_PORT = 80;
/**
 * With endpoint auth on, the server answers its probes and /metrics on this second port, without a token,
 * and nothing else there; the Service never targets it. So the kubelet's probes and the pipeline's reads
 * through the API server's pod proxy (which strips the caller's Authorization header) need no token, while
 * everything the load balancer reaches (port `http`) requires one. See docs/architecture.md (Endpoint auth).
 */
export const ADMIN_PORT = 8502;
export const ADMIN_PORT_NAME = 'admin';
/** Where the endpoint token Secret is mounted in a serving pod, and the file the server reads (`AUTH_TOKEN_FILE`). */
export const AUTH_TOKEN_DIR = '/var/run/mlpipe/auth';
export const AUTH_TOKEN_KEY = 'tokens';
const TLS_CERT_ANNOTATION = 'service.beta.kubernetes.io/aws-load-balancer-ssl-cert';
export const TLS_SERVICE_PORT = 443;

/** What the training Job is built from: the calling function's loaded settings. */
export type TrainingJobSettings = SettingsOf<typeof TRAINING_JOB>;
/** What a serving Deployment is built from. */
export type ServingDeploymentSettings = SettingsOf<typeof SERVING_DEPLOYMENT>;
/** The settings of the production Service. */
export type ProductionServiceSettings = SettingsOf<typeof PRODUCTION_SERVICE>;

/** How a Service meets the network: its load balancer's annotations and who may connect (CIDRs; empty: anyone). */
export interface ServiceExposure {
  annotations: Record<string, string>;
  sourceRanges: string[];
}

/**
 * A staging Service's exposure: SERVICE_ANNOTATIONS, then STAGING_SERVICE_ANNOTATIONS over them (e.g.
 * an internal load balancer scheme, so untested models are never reachable from the internet).
 */
export function stagingExposure(s: SettingsOf<typeof STAGING_SERVICE>): ServiceExposure {
  return { annotations: { ...s.SERVICE_ANNOTATIONS, ...s.STAGING_SERVICE_ANNOTATIONS }, sourceRanges: s.LOAD_BALANCER_SOURCE_RANGES };
}

/** The production Service's exposure: SERVICE_ANNOTATIONS, then PRODUCTION_SERVICE_ANNOTATIONS over them. */
export function productionExposure(s: ProductionServiceSettings): ServiceExposure {
  return { annotations: { ...s.SERVICE_ANNOTATIONS, ...s.PRODUCTION_SERVICE_ANNOTATIONS }, sourceRanges: s.LOAD_BALANCER_SOURCE_RANGES };
}

/** The Kubernetes Secret holding a model's endpoint tokens (one per namespace it serves in). */
export function endpointTokenSecretName(modelName: string): string {
  return `${modelName}-endpoint-token`;
}

/**
 * The endpoint token Secret: one token per line of its `tokens` key, the current one first; during a
 * rotation the next one too, so both are accepted until every pod has read the file again. As `data`
 * (base64), not `stringData`: server-side apply tracks the fields it was sent, and stringData is never stored.
 */
export function endpointTokenSecret(modelName: string, namespace: string, tokens: readonly string[]): V1Secret {
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    type: 'Opaque',
    metadata: { name: endpointTokenSecretName(modelName), namespace, labels: { [LABELS.name]: modelName, [LABELS.managedBy]: 'mlpipe' } },
    data: { [AUTH_TOKEN_KEY]: Buffer.from(`${tokens.join('\n')}\n`, 'utf8').toString('base64') },
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

function hardenedContainer(c: V1Container, size: { cpu: string; memory: string }, placement: Placement): V1Container {
  return {
    ...c,
    // Trainer and server are sized alike: CPU and memory requested, memory (only) limited; GPUs limited.
    resources: withGpus({ requests: { cpu: size.cpu, memory: size.memory }, limits: { memory: size.memory } }, placement),
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

/** The trainer's container name (the podFailurePolicy's exit-code rule names it). */
export const TRAINER_CONTAINER = 'trainer';
/** The trainer's exit code for an invalid environment (container contract): retrying cannot help. */
export const INVALID_ENVIRONMENT_EXIT_CODE = 2;

/**
 * How the Job counts a failed training pod. A disruption (node drain, spot reclaim, eviction, preemption:
 * the pod gets the DisruptionTarget condition) is not the trainer's fault: Ignore, so a replacement pod
 * starts (and resumes from its checkpoint) without spending backoffLimit. An invalid environment (exit 2)
 * fails the Job at once: a retry would fail the same way. Anything else counts against backoffLimit.
 */
export const TRAINING_POD_FAILURE_POLICY = {
  rules: [
    { action: 'Ignore', onPodConditions: [{ type: 'DisruptionTarget', status: 'True' }] },
    { action: 'FailJob', onExitCodes: { containerName: TRAINER_CONTAINER, operator: 'In', values: [INVALID_ENVIRONMENT_EXIT_CODE] } },
  ],
};

export function trainingJob(run: RunContext, settings: TrainingJobSettings): V1Job {
  const labels = objectLabels(run, 'training');
  const size = { cpu: settings.TRAINING_CPU, memory: settings.TRAINING_MEMORY };
  const placement = settings.TRAINING_PLACEMENT;
  return {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: { name: run.names.trainingJob, namespace: run.namespaces.staging, labels },
    spec: {
      backoffLimit: settings.TRAINING_BACKOFF_LIMIT,
      ttlSecondsAfterFinished: settings.TRAINING_JOB_TTL_SECONDS,
      activeDeadlineSeconds: settings.TRAINING_TIMEOUT_SECONDS,
      // Requires restartPolicy Never (below); makes the API default podReplacementPolicy to Failed.
      podFailurePolicy: TRAINING_POD_FAILURE_POLICY,
      template: {
        metadata: { labels },
        spec: hardenedPod(
          settings.TRAINER_SERVICE_ACCOUNT,
          [
            hardenedContainer({
              name: TRAINER_CONTAINER,
              image: run.image,
              env: [
                { name: 'MODEL_OUTPUT_URI', value: run.modelUri },
                { name: 'DATA_URI', value: run.dataUri },
                { name: 'HYPERPARAMETERS', value: JSON.stringify(run.hyperparameters) },
                // A retried pod (backoffLimit, a disruption) resumes from the checkpoints saved here.
                ...(run.checkpointUri ? [{ name: 'CHECKPOINT_URI', value: run.checkpointUri }] : []),
              ],
            }, size, placement),
          ],
          { restartPolicy: 'Never', ...podPlacement(placement) },
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
  const placement = settings.SERVING_PLACEMENT;
  const name = stage === 'staging' ? run.names.stagingDeployment : run.names.productionDeployment;
  const namespace = run.namespaces[stage];
  const modelPath = `/v1/models/${run.modelName}`;
  const auth = settings.ENDPOINT_AUTH;
  // With auth, the probes use the admin port: the kubelet has no token (and a token in the pod spec would be readable by anyone who can read Deployments).
  const probePort = auth ? ADMIN_PORT_NAME : 'http';
  const server = hardenedContainer({
    name: 'server',
    image: run.servingImage,
    env: [
      { name: 'MODEL_URI', value: run.modelUri },
      { name: 'MODEL_NAME', value: run.modelName },
      // Sent back as X-Model-Version, so clients (the traffic generator) can tell versions apart in a canary.
      { name: 'MODEL_VERSION', value: run.version },
      ...(auth ? [{ name: 'AUTH_TOKEN_FILE', value: `${AUTH_TOKEN_DIR}/${AUTH_TOKEN_KEY}` }, { name: 'ADMIN_PORT', value: String(ADMIN_PORT) }] : []),
      ...(overrides.fault ? [{ name: 'FAULT', value: overrides.fault }] : []),
    ],
    ports: [
      { name: 'http', containerPort: SERVING_PORT, protocol: 'TCP' },
      ...(auth ? [{ name: ADMIN_PORT_NAME, containerPort: ADMIN_PORT, protocol: 'TCP' }] : []),
    ],
    // Ready only once the model is loaded and answers, not when the port opens.
    readinessProbe: {
      httpGet: { path: modelPath, port: probePort },
      initialDelaySeconds: 1,
      periodSeconds: 2,
      failureThreshold: 3,
    },
    livenessProbe: {
      httpGet: { path: modelPath, port: probePort },
      initialDelaySeconds: 60,
      periodSeconds: 10,
      failureThreshold: 6,
    },
  }, size, placement);
  // Deleting a pod takes it out of the Service's endpoints and starts its shutdown at the same moment, but
  // kube-proxy and the load balancer (an NLB deregisters its targets) keep sending it new connections for a
  // few seconds more: the kubelet's own sleep (no binary in the image needed) keeps it serving meanwhile.
  const drain = settings.SERVING_DRAIN_SECONDS;
  if (drain > 0) server.lifecycle = { preStop: { sleep: { seconds: drain } } };
  const pod = hardenedPod(settings.SERVER_SERVICE_ACCOUNT, [server], {
    ...podPlacement(placement),
    // The grace period counts from the deletion, preStop included: the drain, then the server's own 10 s
    // to finish requests in flight after SIGTERM (serve.ts), with room.
    ...(drain > 0 ? { terminationGracePeriodSeconds: drain + 30 } : {}),
  });
  if (auth) {
    // Mounted as a directory (no subPath): the kubelet then updates the file in place when the Secret changes, so a rotation needs no restart.
    pod.volumes = [...(pod.volumes ?? []), { name: 'auth-token', secret: { secretName: endpointTokenSecretName(run.modelName), defaultMode: 0o440 } }];
    server.volumeMounts = [...(server.volumeMounts ?? []), { name: 'auth-token', mountPath: AUTH_TOKEN_DIR, readOnly: true }];
  }
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
      template: { metadata: { labels }, spec: pod },
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
 * The LoadBalancer Service of a stage, with its exposure (annotations, source ranges: stagingExposure,
 * productionExposure). Staging: one per version. Production: one per model, its selector naming the
 * version that serves (blue/green); `previousVersion` is kept as an annotation so a retried switch can
 * still report what served before. With a TLS certificate annotation (the AWS Load Balancer Controller's
 * `aws-load-balancer-ssl-cert`), a second port 443 gets the TLS listener; port 80 stays first, the one the
 * pipeline's own checks call (the load balancer's hostname is not the certificate's name).
 */
export function servingService(target: ServiceTarget, exposure: ServiceExposure, previousVersion?: string | null): V1Service {
  const selector = workloadLabels(target.modelName, target.version, target.stage);
  const labels =
    target.stage === 'staging'
      ? selector
      : { [LABELS.name]: target.modelName, [LABELS.managedBy]: selector[LABELS.managedBy]!, [LABELS.stage]: 'production' };
  const all: Record<string, string> = { ...exposure.annotations };
  if (target.stage === 'production' && previousVersion) all[PREVIOUS_VERSION_ANNOTATION] = previousVersion;
  const ports: V1ServicePort[] = [{ name: 'http', port: SERVICE_PORT, targetPort: 'http', protocol: 'TCP' }];
  if (all[TLS_CERT_ANNOTATION] !== undefined) ports.push({ name: 'https', port: TLS_SERVICE_PORT, targetPort: 'http', protocol: 'TCP' });
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: target.name, namespace: target.namespace, labels, annotations: all },
    spec: {
      type: 'LoadBalancer',
      selector,
      ports,
      ...(exposure.sourceRanges.length > 0 ? { loadBalancerSourceRanges: exposure.sourceRanges } : {}),
    },
  };
}
