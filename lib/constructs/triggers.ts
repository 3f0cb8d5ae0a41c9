/**
 * What starts a run (DESIGN decision 8): a successful ECR push to a configured repository, optionally a
 * new dataset version in the bucket and a schedule. All three land in ONE queue, so the starter Lambda
 * sees every trigger the same way: SQS with a DLQ (nothing lost), partial batch failures (nothing
 * retried that already worked), and a deterministic execution name (nothing doubled).
 */
import { Duration } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import { SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import * as scheduler from 'aws-cdk-lib/aws-scheduler';
import * as schedulerTargets from 'aws-cdk-lib/aws-scheduler-targets';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import type * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import { Stack } from 'aws-cdk-lib';
import { Construct } from 'constructs';
import { PipelineFunction } from './lambda-defaults';
import { FUNCTION_SETTINGS } from '../../functions/shared/function-settings';
import { environmentFor } from './pipeline-functions';

/** One entry of the starter's PIPELINES setting: what a push to a repository runs. */
export interface PipelineTarget {
  readonly modelName: string;
  readonly dataUri?: string;
  readonly evalDataUri?: string;
  readonly hyperparameters?: Record<string, string | number | boolean>;
}

export const STARTER_TIMEOUT = Duration.seconds(30);

/** The ECR event pattern: successful pushes to the given repositories only. */
export function ecrPushPattern(repositoryNames: readonly string[]): events.EventPattern {
  return {
    source: ['aws.ecr'],
    detailType: ['ECR Image Action'],
    detail: { 'action-type': ['PUSH'], result: ['SUCCESS'], 'repository-name': [...repositoryNames] },
  };
}

/**
 * The S3 pattern for a new dataset version: an object whose key is under `dataPrefix` and ends with
 * `markerFile`. Matching one marker file rather than every object keeps a four-file upload from
 * starting four runs; upload the marker last.
 */
export function dataPattern(bucketName: string, dataPrefix: string, markerFile: string): events.EventPattern {
  return {
    source: ['aws.s3'],
    detailType: ['Object Created'],
    detail: { bucket: { name: [bucketName] }, object: { key: [{ wildcard: `${dataPrefix}*${markerFile}` }] } },
  };
}

/**
 * The message a scheduled run puts on the queue (the starter's contract). `scheduledTime` is filled in
 * by EventBridge Scheduler; the same firing delivered twice carries the same time, so it names one run.
 */
export function scheduleMessage(repositoryName: string): { mlpipe: 'schedule'; repositoryName: string; scheduledTime: string } {
  return { mlpipe: 'schedule', repositoryName, scheduledTime: scheduler.ContextAttribute.scheduledTime };
}

export interface TriggersProps {
  readonly stateMachine: sfn.IStateMachine;
  /** Repository name → what a push to it runs (the starter's PIPELINES setting). */
  readonly pipelines: Readonly<Record<string, PipelineTarget>>;
  /** Repositories the starter may look up (latest image for data and schedule triggers). */
  readonly repositoryArns: readonly string[];
  readonly bucket: s3.IBucket;
  /** Start a run with the latest image when a dataset marker lands under this prefix. @default no data trigger */
  readonly dataPrefix?: string;
  /** @default 'dataset.json' */
  readonly dataMarkerFile?: string;
  /** EventBridge Scheduler expression, e.g. `rate(7 days)` or `cron(0 3 ? * MON *)`. @default no schedule */
  readonly schedule?: string;
  /** The repository a scheduled run (re)trains. Required with `schedule`. */
  readonly scheduleRepositoryName?: string;
}

export class Triggers extends Construct {
  readonly queue: sqs.Queue;
  readonly deadLetterQueue: sqs.Queue;
  readonly starter: PipelineFunction;
  readonly ecrRule: events.Rule;
  readonly dataRule?: events.Rule;
  readonly schedule?: scheduler.Schedule;
  readonly deadLetterAlarm: cloudwatch.Alarm;

  constructor(scope: Construct, id: string, props: TriggersProps) {
    super(scope, id);

    this.deadLetterQueue = new sqs.Queue(this, 'DeadLetterQueue', {
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
    });
    this.queue = new sqs.Queue(this, 'Queue', {
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
      // AWS's rule for Lambda event sources: at least six times the function timeout, so a message is
      // not redelivered while a (retried) batch is still being worked on.
      visibilityTimeout: Duration.seconds(STARTER_TIMEOUT.toSeconds() * 6),
      deadLetterQueue: { queue: this.deadLetterQueue, maxReceiveCount: 5 },
    });

    this.starter = new PipelineFunction(this, 'StartPipeline', {
      entry: 'functions/start-pipeline.ts',
      timeout: STARTER_TIMEOUT,
      description: 'mlpipe: start a run for each trigger event (ECR push, new data, schedule)',
      environment: environmentFor('StartPipeline', FUNCTION_SETTINGS.StartPipeline, {
        STATE_MACHINE_ARN: props.stateMachine.stateMachineArn,
        PIPELINES: Stack.of(this).toJsonString(props.pipelines),
        DEAD_LETTER_QUEUE_URL: this.deadLetterQueue.queueUrl,
      }),
    });
    this.starter.addToRolePolicy(
      new iam.PolicyStatement({ actions: ['states:StartExecution'], resources: [props.stateMachine.stateMachineArn] }),
    );
    // Malformed or unmapped events go straight to the DLQ with the reason, rather than five futile retries.
    this.deadLetterQueue.grantSendMessages(this.starter);
    if (props.repositoryArns.length > 0) {
      this.starter.addToRolePolicy(
        new iam.PolicyStatement({ actions: ['ecr:DescribeImages'], resources: [...props.repositoryArns] }),
      );
    }
    this.starter.addEventSource(
      new SqsEventSource(this.queue, {
        batchSize: 10,
        maxBatchingWindow: Duration.seconds(5),
        reportBatchItemFailures: true,
      }),
    );

    this.ecrRule = new events.Rule(this, 'EcrPushRule', {
      description: 'mlpipe: successful pushes to the training repositories',
      eventPattern: ecrPushPattern(Object.keys(props.pipelines)),
      targets: [new targets.SqsQueue(this.queue)],
    });

    if (props.dataPrefix !== undefined) {
      this.dataRule = new events.Rule(this, 'DataRule', {
        description: 'mlpipe: a new dataset version in the artifact bucket',
        eventPattern: dataPattern(props.bucket.bucketName, props.dataPrefix, props.dataMarkerFile ?? 'dataset.json'),
        targets: [new targets.SqsQueue(this.queue)],
      });
    }

    if (props.schedule !== undefined) {
      if (props.scheduleRepositoryName === undefined) {
        throw new Error('mlpipe: "scheduleRepositoryName" must be set when "schedule" is.');
      }
      this.schedule = new scheduler.Schedule(this, 'Schedule', {
        description: 'mlpipe: scheduled retraining',
        schedule: scheduler.ScheduleExpression.expression(props.schedule),
        target: new schedulerTargets.SqsSendMessage(this.queue, {
          input: scheduler.ScheduleTargetInput.fromObject(scheduleMessage(props.scheduleRepositoryName)),
        }),
      });
    }

    this.deadLetterAlarm = new cloudwatch.Alarm(this, 'DeadLetterAlarm', {
      alarmDescription: 'mlpipe: a trigger event could not start a run; read the message and its "reason" attribute in the DLQ',
      metric: this.deadLetterQueue.metricApproximateNumberOfMessagesVisible({ period: Duration.minutes(1), statistic: 'Maximum' }),
      threshold: 0,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
      evaluationPeriods: 1,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });
  }
}
