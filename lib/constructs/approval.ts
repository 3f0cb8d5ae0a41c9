/**
 * Human approval (DESIGN decision 9): the notification topic approvers subscribe to by email, the HMAC
 * key that signs the approve/reject links, and the HTTP endpoint those links open (API Gateway HTTP API
 * → approval-api Lambda). GET shows a confirmation page, POST decides; only the POST path can resume
 * the state machine, and only this function may send task results to it.
 */
import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import { AccessLogFormat } from 'aws-cdk-lib/aws-apigateway';
import * as apigwv2 from 'aws-cdk-lib/aws-apigatewayv2';
import { HttpLambdaIntegration } from 'aws-cdk-lib/aws-apigatewayv2-integrations';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as logs from 'aws-cdk-lib/aws-logs';
import type * as kms from 'aws-cdk-lib/aws-kms';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as subscriptions from 'aws-cdk-lib/aws-sns-subscriptions';
import type * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import { Construct } from 'constructs';
import { Artifacts, PREFIX } from './artifacts';
import { PipelineFunction } from './lambda-defaults';
import { FUNCTION_SETTINGS } from '../../functions/shared/function-settings';
import { environmentFor } from './pipeline-functions';

export interface ApprovalProps {
  readonly artifacts: Artifacts;
  /** Email addresses subscribed to the topic (each confirms its subscription once). */
  readonly approverEmails: readonly string[];
  /** Encrypts the topic; its policy lets CloudWatch alarms publish (an AWS managed key cannot). */
  readonly key: kms.IKey;
  /** Requests per second the approval endpoint accepts (steady rate). @default 5 */
  readonly throttleRateLimit?: number;
  /** @default 10 */
  readonly throttleBurstLimit?: number;
}

export class Approval extends Construct {
  readonly topic: sns.Topic;
  readonly secret: secretsmanager.Secret;
  readonly api: apigwv2.HttpApi;
  readonly apiFunction: PipelineFunction;
  /** The approval endpoint's access log (requests without their query strings). */
  readonly accessLogs: logs.LogGroup;

  constructor(scope: Construct, id: string, props: ApprovalProps) {
    super(scope, id);
    const { artifacts } = props;

    this.topic = new sns.Topic(this, 'Topic', {
      displayName: 'mlpipe',
      masterKey: props.key,
      enforceSSL: true,
    });
    for (const email of props.approverEmails) {
      this.topic.addSubscription(new subscriptions.EmailSubscription(email));
    }

    this.secret = new secretsmanager.Secret(this, 'LinkSigningKey', {
      description: 'mlpipe: HMAC key that signs approval links',
      generateSecretString: { passwordLength: 64, excludePunctuation: true, includeSpace: false },
    });

    this.apiFunction = new PipelineFunction(this, 'ApiFunction', {
      entry: 'functions/approval-api.ts',
      timeout: Duration.seconds(15),
      description: 'mlpipe: approval links (GET confirms, POST decides)',
      environment: environmentFor('ApprovalApi', FUNCTION_SETTINGS.ApprovalApi, {
        ARTIFACT_BUCKET: artifacts.bucket.bucketName,
        APPROVAL_SECRET_ARN: this.secret.secretArn,
      }),
    });
    artifacts.grantRead(this.apiFunction, `${PREFIX.approvals}*`, `${artifacts.modelPrefix}*`);
    artifacts.grantWrite(this.apiFunction, `${PREFIX.approvals}*`);
    this.secret.grantRead(this.apiFunction);

    this.api = new apigwv2.HttpApi(this, 'Api', {
      description: 'mlpipe approval links',
      createDefaultStage: false,
    });
    this.accessLogs = new logs.LogGroup(this, 'AccessLogs', {
      retention: logs.RetentionDays.ONE_YEAR,
      // Who opened or decided which approval, from where: evidence that outlives the stack.
      removalPolicy: RemovalPolicy.RETAIN,
    });
    new apigwv2.HttpStage(this, 'DefaultStage', {
      httpApi: this.api,
      stageName: '$default',
      autoDeploy: true,
      accessLogSettings: {
        destination: new apigwv2.LogGroupLogDestination(this.accessLogs),
        // The path, never the query string: the query holds the link's signature.
        format: AccessLogFormat.custom(
          JSON.stringify({
            requestId: '$context.requestId',
            time: '$context.requestTime',
            ip: '$context.identity.sourceIp',
            userAgent: '$context.identity.userAgent',
            method: '$context.httpMethod',
            path: '$context.path',
            status: '$context.status',
            responseLength: '$context.responseLength',
            integrationError: '$context.integrationErrorMessage',
          }),
        ),
      },
      // Approvals are clicked by people: a low limit costs nobody anything and caps abuse of the endpoint.
      throttle: { rateLimit: props.throttleRateLimit ?? 5, burstLimit: props.throttleBurstLimit ?? 10 },
    });
    const integration = new HttpLambdaIntegration('ApiIntegration', this.apiFunction);
    this.api.addRoutes({
      path: '/approvals/{id}',
      methods: [apigwv2.HttpMethod.GET, apigwv2.HttpMethod.POST],
      integration,
    });
    // The failure email's retry links (functions/shared/retry-api.ts): GET asks, POST starts the retry.
    this.api.addRoutes({
      path: '/retries/{run}',
      methods: [apigwv2.HttpMethod.GET, apigwv2.HttpMethod.POST],
      integration,
    });
  }

  /** Base URL the links point at (no trailing slash), e.g. `https://abc.execute-api.eu-west-1.amazonaws.com`. */
  get baseUrl(): string {
    return this.api.apiEndpoint;
  }

  /** Only the approval endpoint may resume (or fail) a waiting execution, and only of this state machine. */
  allowDecisionsOn(stateMachine: sfn.IStateMachine): void {
    this.apiFunction.addToRolePolicy(
      new iam.PolicyStatement({
        actions: ['states:SendTaskSuccess', 'states:SendTaskFailure'],
        resources: [stateMachine.stateMachineArn],
      }),
    );
  }

  /**
   * A retry link starts a retry of a failed run of this state machine (StartExecution on it alone) after
   * reading the failed run's status and input and whether its retry exists (DescribeExecution on its
   * executions alone). The registry read it needs (the run's manifest, its model files) is the models
   * prefix the endpoint reads already.
   */
  allowRetriesOf(stateMachine: sfn.IStateMachine): void {
    stateMachine.grantStartExecution(this.apiFunction);
    stateMachine.grantExecution(this.apiFunction, 'states:DescribeExecution');
  }
}
