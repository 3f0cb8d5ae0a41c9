/**
 * Automatic rotation of the endpoint tokens: one rotation function (functions/rotate-endpoint-token.ts)
 * and, on each model's token secret, a Secrets Manager rotation schedule every ENDPOINT_TOKEN_ROTATION_DAYS.
 * The schedule's grants are CDK's own (RotationSchedule): DescribeSecret, GetSecretValue, PutSecretValue,
 * UpdateSecretVersionStage on each token secret only, GetRandomPassword (takes no resource), the stack
 * key through Secrets Manager only, and Secrets Manager may invoke the function. Its Kubernetes access is
 * the rotation role's entry (cluster-access.ts), which each schedule depends on: creating a schedule runs
 * the function's testSecret once (Secrets Manager's configuration test). No rotation at deploy: the first
 * is one period later, or `mlpipe endpoint <model> --rotate`.
 */
import { Duration } from 'aws-cdk-lib';
import type * as iam from 'aws-cdk-lib/aws-iam';
import type * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { Construct, type IDependable } from 'constructs';
import { FUNCTION_SETTINGS } from '../../functions/shared/function-settings';
import { ENDPOINT_TOKEN_LOAD_WAIT_SECONDS, ENDPOINT_TOKEN_ROTATION_DAYS, parseSetting } from '../../functions/shared/settings';
import { PipelineFunction } from './lambda-defaults';
import { environmentFor, type SettingValues } from './pipeline-functions';

export interface EndpointTokenRotationProps {
  readonly settings: SettingValues;
  /** Model → its token secret. */
  readonly secrets: Readonly<Record<string, secretsmanager.Secret>>;
  /** The rotation role (cluster-access.ts): Kubernetes access to both namespaces. */
  readonly role: iam.IRole;
  /** The rotation role's EKS access entry: the schedules wait for it (see below). */
  readonly accessEntry?: IDependable;
}

export class EndpointTokenRotation extends Construct {
  readonly function: PipelineFunction;
  readonly schedules: secretsmanager.RotationSchedule[] = [];

  constructor(scope: Construct, id: string, props: EndpointTokenRotationProps) {
    super(scope, id);
    const days = parseSetting(ENDPOINT_TOKEN_ROTATION_DAYS, props.settings[ENDPOINT_TOKEN_ROTATION_DAYS.name]) as number;
    const waitSeconds = parseSetting(ENDPOINT_TOKEN_LOAD_WAIT_SECONDS, props.settings[ENDPOINT_TOKEN_LOAD_WAIT_SECONDS.name]) as number;
    this.function = new PipelineFunction(this, 'Function', {
      entry: 'functions/rotate-endpoint-token.ts',
      // testSecret waits for the pods up to ENDPOINT_TOKEN_LOAD_WAIT_SECONDS; a minute more for the API calls.
      timeout: Duration.seconds(waitSeconds + 60),
      description: 'mlpipe: rotates the endpoint tokens (Secrets Manager rotation function) without downtime',
      role: props.role,
      environment: environmentFor('RotateEndpointToken', FUNCTION_SETTINGS.RotateEndpointToken, props.settings),
    });
    for (const secret of Object.values(props.secrets)) {
      const schedule = secret.addRotationSchedule('Rotation', {
        rotationLambda: this.function,
        automaticallyAfter: Duration.days(days),
        // Not at deploy: a rotation writes Kubernetes Secrets, which the cluster's access entries must allow first.
        rotateImmediatelyOnUpdate: false,
      });
      // Without rotating, Secrets Manager still runs testSecret once (its configuration test), which lists
      // the serving pods: the function's Kubernetes access must exist by then.
      if (props.accessEntry) schedule.node.addDependency(props.accessEntry);
      this.schedules.push(schedule);
    }
  }
}
