/**
 * Access to the existing EKS cluster, both ways:
 * - the Lambda tasks that call the Kubernetes API share ONE role with an EKS access entry whose
 *   AmazonEKSEditPolicy is scoped to the pipeline's two namespaces (DESIGN decision 4; never aws-auth).
 *   One role rather than one per task: an access entry is per principal, all these tasks need exactly
 *   the same Kubernetes rights, and twelve access entries would be twelve things to audit for no gain.
 *   Rollback (run by people, outside the state machine) is the exception: it alone rewrites the
 *   registry's production.json, so it has its own role, with an entry scoped to production only. So does
 *   the serving monitor (a schedule, not a run): it needs only to list production's pods and read their
 *   /metrics, and gets no access to staging, where untested images run. By default its entry is
 *   AmazonEKSEditPolicy on production (EKS's view policy lacks `get pods/proxy`), so the role CAN read
 *   production's Secrets (the endpoint token) and write there. With `monitorKubernetesGroup` its entry
 *   carries that Kubernetes group and no access policy at all: the operator binds the group to a Role of
 *   exactly list pods + get pods/proxy (lib/monitor-rbac.ts, `mlpipe monitor-rbac`; docs/deploy.md).
 *   The endpoint token rotation (with endpoint auth) has a role of its own too, its entry the tasks' (edit on
 *   both namespaces: it writes the token Secret and reads the serving pods' /metrics), so that its
 *   Secrets Manager writes are not the tasks'. With `rotationKubernetesGroup` its entry carries that group
 *   and no access policy: the operator binds it in both namespaces to a Role of exactly ROTATION_RULES
 *   (`mlpipe monitor-rbac --rotation`). The tasks' entry has the same option, `tasksKubernetesGroup`: that
 *   group and no policy, bound in both namespaces to a Role of TASK_RULES (`mlpipe monitor-rbac --tasks`),
 *   and so has the rollback's, `rollbackKubernetesGroup`: bound in production to ROLLBACK_RULES (`--rollback`).
 * - the pods reach S3 through EKS Pod Identity (decision 5): `mlpipe-trainer` (staging, where training
 *   Jobs run) writes its model's prefix but never the registry records in it; `mlpipe-server` (staging
 *   and production) only reads it.
 */
import { Aws, Stack } from 'aws-cdk-lib';
import * as eks from 'aws-cdk-lib/aws-eks';
import * as iam from 'aws-cdk-lib/aws-iam';
import { Construct } from 'constructs';
import { Artifacts, PREFIX } from './artifacts';

export const EDIT_POLICY_NAME = 'AmazonEKSEditPolicy';

/** A Kubernetes permission: a verb on a resource (with its subresource) of the core API group. */
export interface KubernetesPermission {
  readonly verb: string;
  /** The API group: core ("") unless given. */
  readonly apiGroup?: 'apps' | 'batch';
  /** `resource` or `resource/subresource`, e.g. `pods/proxy`. */
  readonly resource: string;
}

/**
 * Rules of AmazonEKSEditPolicy the pipeline's subresource reads rely on, as the EKS user guide lists them
 * ("Review access policy permissions"; the policy mirrors the Kubernetes `edit` ClusterRole, and a real
 * API server allowed `edit` exactly this: test/fixtures/k8s/13-rbac-serviceaccount-edit.json). Access
 * policies cannot be read through the EKS API, so this is the record test/cdk checks the needs against.
 */
export const EDIT_POLICY_SUBRESOURCE_RULES: ReadonlyArray<{ readonly resources: readonly string[]; readonly verbs: readonly string[] }> = [
  { resources: ['pods/attach', 'pods/exec', 'pods/portforward', 'pods/proxy', 'secrets', 'services/proxy'], verbs: ['get', 'list', 'watch'] },
  { resources: ['pods/log', 'pods/status'], verbs: ['get', 'list', 'watch'] },
];

/**
 * What the tasks role needs beyond plain objects, in the production namespace, and why:
 * - `get pods/proxy`: the canary analysis reads each version's /metrics from every pod through the API
 *   server's pod proxy (functions/shared/canary-analysis.ts), so no Lambda needs a network path to pods
 *   and no IAM permission is involved: the access entry's edit policy is the whole grant;
 * - `get pods/log`: failure messages carry the failed pod's log tail.
 */
export const TASK_SUBRESOURCE_NEEDS: readonly KubernetesPermission[] = [
  { verb: 'get', resource: 'pods/proxy' },
  { verb: 'get', resource: 'pods/log' },
];

/**
 * What the serving monitor needs in the production namespace (and nothing in staging): list the model's
 * pods, and `get pods/proxy` to read each one's /metrics (functions/shared/serving-monitor-scrape.ts).
 * What it is GIVEN is more: AmazonEKSEditPolicy there (no EKS access policy grants pods/proxy without
 * edit), which also reads Secrets and writes. The least-privilege fix is an access entry with a
 * Kubernetes group bound to a namespaced Role of exactly these rules (docs/deploy.md, known limitation).
 */
export const MONITOR_SUBRESOURCE_NEEDS: readonly KubernetesPermission[] = [{ verb: 'get', resource: 'pods/proxy' }];

/**
 * Every Kubernetes call of the endpoint token rotation (functions/shared/endpoint-token-rotation.ts and the
 * syncTokenSecret it writes with), by the kube helper it goes through, and the permissions each needs in
 * both serving namespaces. test/cdk reads the module's calls and checks each is listed here and each
 * permission is in ROTATION_RULES (lib/monitor-rbac.ts), so a new call cannot slip past the Role.
 * `applyObject` is a server-side apply: a PATCH, which the API server also authorizes as `create` (with the name) when
 * the object does not exist yet.
 */
export const ROTATION_KUBERNETES_NEEDS: Readonly<Record<string, readonly KubernetesPermission[]>> = {
  'readObject Secret': [{ verb: 'get', resource: 'secrets' }],
  'applyObject Secret': [
    { verb: 'patch', resource: 'secrets' },
    { verb: 'create', resource: 'secrets' },
  ],
  'listObjects Pod': [{ verb: 'list', resource: 'pods' }],
  proxyGet: [{ verb: 'get', resource: 'pods/proxy' }],
};

/**
 * Every Kubernetes call of the rollback (functions/rollback.ts and the retention.ts/workloads.ts functions it
 * reaches), by the kube helper it goes through and the kind, and the permissions each needs in production.
 * test/cdk follows the rollback's calls through those modules and checks each is listed here and each
 * permission is in ROLLBACK_RULES (lib/monitor-rbac.ts). Its one `applyObject` re-applies the Service it
 * has just read (it refuses when there is none): an update, authorized as `patch` alone; were the Service
 * deleted in between, the missing `create` refuses to bring it back, which is the rollback's business neither.
 */
export const ROLLBACK_KUBERNETES_NEEDS: Readonly<Record<string, readonly KubernetesPermission[]>> = {
  'readObject Service': [{ verb: 'get', resource: 'services' }],
  'applyObject Service': [{ verb: 'patch', resource: 'services' }],
  'readObject Deployment': [{ verb: 'get', apiGroup: 'apps', resource: 'deployments' }],
  'patchObject Deployment': [{ verb: 'patch', apiGroup: 'apps', resource: 'deployments' }],
  'watchUntil Deployment': [
    { verb: 'list', apiGroup: 'apps', resource: 'deployments' },
    { verb: 'watch', apiGroup: 'apps', resource: 'deployments' },
  ],
  'watchUntil Pod': [
    { verb: 'list', resource: 'pods' },
    { verb: 'watch', resource: 'pods' },
  ],
  'listObjects Pod': [{ verb: 'list', resource: 'pods' }],
  podLogTail: [{ verb: 'get', resource: 'pods/log' }],
};

export interface ClusterAccessProps {
  readonly clusterName: string;
  /** @default derived from clusterName in this stack's account and region */
  readonly clusterArn?: string;
  readonly stagingNamespace: string;
  readonly productionNamespace: string;
  readonly trainerServiceAccount: string;
  readonly serverServiceAccount: string;
  readonly artifacts: Artifacts;
  /**
   * The serving monitor's Kubernetes group: its access entry gets this group and NO access policy (the
   * operator binds the group to lib/monitor-rbac.ts's Role). @default the edit policy on production
   */
  readonly monitorKubernetesGroup?: string;
  /** A role for the endpoint token rotation function (endpoint auth on). @default false */
  readonly tokenRotation?: boolean;
  /**
   * The rotation function's Kubernetes group (with `tokenRotation`): its access entry gets this group and
   * NO access policy (the operator binds it to ROTATION_RULES in both namespaces). @default the edit policy on both
   */
  readonly rotationKubernetesGroup?: string;
  /**
   * The Kubernetes tasks' group: their access entry gets this group and NO access policy (the operator
   * binds it to TASK_RULES in both namespaces). @default the edit policy on both
   */
  readonly tasksKubernetesGroup?: string;
  /**
   * The rollback's Kubernetes group: its access entry gets this group and NO access policy (the operator
   * binds it to ROLLBACK_RULES in production). @default the edit policy on production
   */
  readonly rollbackKubernetesGroup?: string;
}

export class ClusterAccess extends Construct {
  /** Role of every state machine task that calls the Kubernetes API. */
  readonly kubernetesRole: iam.Role;
  /** Role of the rollback function: Kubernetes access to the production namespace only. */
  readonly rollbackRole: iam.Role;
  /** Role of the serving monitor: Kubernetes access to the production namespace only. */
  readonly monitorRole: iam.Role;
  readonly trainerRole: iam.Role;
  readonly serverRole: iam.Role;
  readonly clusterArn: string;
  readonly accessEntry: eks.CfnAccessEntry;
  readonly rollbackAccessEntry: eks.CfnAccessEntry;
  readonly monitorAccessEntry: eks.CfnAccessEntry;
  /**
   * Role of the endpoint token rotation function (with `tokenRotation`): it writes the token Secret and
   * reads the serving pods' /metrics in both namespaces, so its entry is the tasks' (edit, both namespaces),
   * or with `rotationKubernetesGroup` that group and no policy; its IAM rights (the token secrets) are its own, not the tasks'.
   */
  readonly rotationRole?: iam.Role;
  readonly rotationAccessEntry?: eks.CfnAccessEntry;

  constructor(scope: Construct, id: string, props: ClusterAccessProps) {
    super(scope, id);
    this.clusterArn =
      props.clusterArn ??
      Stack.of(this).formatArn({ service: 'eks', resource: 'cluster', resourceName: props.clusterName });

    const tasks = this.kubernetesPrincipal(
      'KubernetesTaskRole',
      'AccessEntry',
      `mlpipe Lambda tasks that call the Kubernetes API of ${props.clusterName} (namespaces ${props.stagingNamespace}, ${props.productionNamespace})`,
      props.clusterName,
      [props.stagingNamespace, props.productionNamespace],
      props.tasksKubernetesGroup,
    );
    this.kubernetesRole = tasks.role;
    this.accessEntry = tasks.entry;
    const rollback = this.kubernetesPrincipal(
      'RollbackRole',
      'RollbackAccessEntry',
      `mlpipe rollback: switches the production Service of ${props.clusterName} (namespace ${props.productionNamespace})`,
      props.clusterName,
      [props.productionNamespace],
      props.rollbackKubernetesGroup,
    );
    this.rollbackRole = rollback.role;
    this.rollbackAccessEntry = rollback.entry;
    const monitor = this.kubernetesPrincipal(
      'MonitorRole',
      'MonitorAccessEntry',
      `mlpipe serving monitor: reads production's /metrics through the pod proxy of ${props.clusterName} (namespace ${props.productionNamespace})`,
      props.clusterName,
      [props.productionNamespace],
      props.monitorKubernetesGroup,
    );
    this.monitorRole = monitor.role;
    this.monitorAccessEntry = monitor.entry;
    if (props.tokenRotation) {
      const rotation = this.kubernetesPrincipal(
        'TokenRotationRole',
        'TokenRotationAccessEntry',
        `mlpipe endpoint token rotation: writes the token Secrets and reads the serving pods' /metrics of ${props.clusterName} (namespaces ${props.stagingNamespace}, ${props.productionNamespace})`,
        props.clusterName,
        [props.stagingNamespace, props.productionNamespace],
        props.rotationKubernetesGroup,
      );
      this.rotationRole = rotation.role;
      this.rotationAccessEntry = rotation.entry;
    }

    const models = `${props.artifacts.modelPrefix}*`;

    this.trainerRole = podIdentityRole(this, 'TrainerRole', `mlpipe training Jobs (${props.trainerServiceAccount})`);
    // Checkpoints: a retried pod reads what the pod before it saved (CHECKPOINT_URI).
    const checkpoints = `${props.artifacts.checkpointPrefix}*`;
    props.artifacts.grantRead(this.trainerRole, `${PREFIX.datasets}*`, checkpoints);
    props.artifacts.grantWrite(this.trainerRole, models, checkpoints);
    // The training image is the user's code: it may write its model files, never the records the
    // pipeline keeps about models (what serves production, what was evaluated and decided).
    this.trainerRole.addToPolicy(
      new iam.PolicyStatement({
        effect: iam.Effect.DENY,
        actions: ['s3:PutObject'],
        resources: registryRecordKeys(props.artifacts.modelPrefix).map((k) => props.artifacts.bucket.arnForObjects(k)),
      }),
    );

    this.serverRole = podIdentityRole(this, 'ServerRole', `mlpipe model servers (${props.serverServiceAccount})`);
    props.artifacts.grantRead(this.serverRole, models);

    const associations: Array<[string, string, string, iam.Role]> = [
      ['TrainerStaging', props.stagingNamespace, props.trainerServiceAccount, this.trainerRole],
      ['ServerStaging', props.stagingNamespace, props.serverServiceAccount, this.serverRole],
      ['ServerProduction', props.productionNamespace, props.serverServiceAccount, this.serverRole],
    ];
    for (const [assocId, namespace, serviceAccount, role] of associations) {
      new eks.CfnPodIdentityAssociation(this, `${assocId}PodIdentity`, {
        clusterName: props.clusterName,
        namespace,
        serviceAccount,
        roleArn: role.roleArn,
      });
    }
  }

  /**
   * A Lambda role with an access entry whose edit policy is scoped to `namespaces`, or, with `group`, that
   * Kubernetes group and no policy (RBAC bound in the cluster decides). The endpoint and CA
   * come from DescribeCluster; the bearer token is a presigned sts:GetCallerIdentity, which needs no
   * permission.
   */
  private kubernetesPrincipal(
    roleId: string,
    entryId: string,
    description: string,
    clusterName: string,
    namespaces: string[],
    group?: string,
  ): { role: iam.Role; entry: eks.CfnAccessEntry } {
    const role = new iam.Role(this, roleId, { assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'), description });
    role.addToPolicy(new iam.PolicyStatement({ actions: ['eks:DescribeCluster'], resources: [this.clusterArn] }));
    const entry = new eks.CfnAccessEntry(this, entryId, {
      clusterName,
      principalArn: role.roleArn,
      type: 'STANDARD',
      ...(group !== undefined
        ? { kubernetesGroups: [group] }
        : {
            accessPolicies: [
              {
                policyArn: `arn:${Aws.PARTITION}:eks::aws:cluster-access-policy/${EDIT_POLICY_NAME}`,
                accessScope: { type: 'namespace', namespaces },
              },
            ],
          }),
    });
    return { role, entry };
  }
}

/** Keys under `models/<model>/` that only the pipeline's own functions write (docs/architecture.md). */
export function registryRecordKeys(modelPrefix: string): string[] {
  return [`${modelPrefix}production.json`, `${modelPrefix}*/manifest.json`, `${modelPrefix}*/evaluation.json`];
}

/** A role EKS Pod Identity can hand to a pod: trusted by pods.eks.amazonaws.com for AssumeRole + TagSession. */
function podIdentityRole(scope: Construct, id: string, description: string): iam.Role {
  return new iam.Role(scope, id, {
    assumedBy: new iam.SessionTagsPrincipal(new iam.ServicePrincipal('pods.eks.amazonaws.com')),
    description,
  });
}
