/**
 * Alarms that tell someone when the pipeline itself is broken, sent to the same topic approvers read:
 * failed/timed-out executions and errors in any of its functions. A failed run already sends its own
 * NotifyFailure email; these alarms catch what that path cannot (a failure to notify, a broken starter).
 */
import { Duration } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as actions from 'aws-cdk-lib/aws-cloudwatch-actions';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import type * as sns from 'aws-cdk-lib/aws-sns';
import type * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import { Construct } from 'constructs';

export interface MonitoringProps {
  readonly topic: sns.ITopic;
  readonly stateMachine: sfn.IStateMachine;
  /** By a short name used in the alarm's id and description. */
  readonly functions: Readonly<Record<string, lambda.IFunction>>;
  /** Other alarms (e.g. the DLQ's) that should notify the topic too. */
  readonly extraAlarms?: readonly cloudwatch.Alarm[];
}

export class Monitoring extends Construct {
  readonly alarms: cloudwatch.Alarm[] = [];

  constructor(scope: Construct, id: string, props: MonitoringProps) {
    super(scope, id);
    const notify = new actions.SnsAction(props.topic);
    const period = Duration.minutes(5);

    const add = (alarmId: string, description: string, metric: cloudwatch.IMetric) => {
      const alarm = new cloudwatch.Alarm(this, alarmId, {
        alarmDescription: `mlpipe: ${description}`,
        metric,
        threshold: 0,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        evaluationPeriods: 1,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      });
      alarm.addAlarmAction(notify);
      this.alarms.push(alarm);
    };

    add('ExecutionsFailed', 'a pipeline execution failed', props.stateMachine.metricFailed({ period, statistic: 'Sum' }));
    add('ExecutionsTimedOut', 'a pipeline execution timed out', props.stateMachine.metricTimedOut({ period, statistic: 'Sum' }));
    for (const [name, fn] of Object.entries(props.functions)) {
      add(`${name}Errors`, `function ${name} reported errors`, fn.metricErrors({ period, statistic: 'Sum' }));
    }
    for (const alarm of props.extraAlarms ?? []) {
      alarm.addAlarmAction(notify);
    }
  }
}
