/**
 * Alarms that tell someone when the pipeline itself is broken, sent to the same topic approvers read, and
 * the dashboard that shows how runs go and how the served models do.
 *
 * Alarms: UNEXPECTED run failures (Notify's UnexpectedFailures metric, functions/shared/pipeline-metrics.ts:
 * a rejection, an expired approval, a failed evaluation gate or canary analysis is the pipeline working,
 * and the run's own email reports it), timed-out executions, errors in any function, and a backstop for the
 * failures Notify cannot count: an execution that failed without its failure being notified (Notify failed,
 * or an error no Catch takes, such as States.Runtime) — ExecutionsFailed minus FailuresNotified.
 *
 * Dashboard: runs started/succeeded/failed and how they ended, execution time, each Lambda's duration,
 * the approval wait, training time and cost per run; for each model, the serving metrics the Monitor
 * function publishes (mlpipe/Serving, dimension Model).
 */
import { Arn, ArnFormat, Duration } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as actions from 'aws-cdk-lib/aws-cloudwatch-actions';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import type * as sns from 'aws-cdk-lib/aws-sns';
import type * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import { Construct } from 'constructs';
import { PIPELINE_METRICS, PIPELINE_NAMESPACE } from '../../functions/shared/pipeline-metrics';
import type { ReleaseStatus } from '../../functions/shared/registry';
import { servingMetric } from './serving-monitor';

/** Every way a run ends (registry.ts ReleaseStatus), for the outcome graph. */
const OUTCOMES: readonly ReleaseStatus[] = ['released', 'failed', 'gate-failed', 'rejected', 'approval-timeout', 'canary-rolled-back'];

export interface MonitoringProps {
  readonly topic: sns.ITopic;
  readonly stateMachine: sfn.IStateMachine;
  /** By a short name used in the alarm's id and description. */
  readonly functions: Readonly<Record<string, lambda.IFunction>>;
  /** The models the pipeline serves: a row of serving graphs each. */
  readonly models: readonly string[];
  /** The serving monitor's period (ServingMonitor.period, from MONITOR_SCHEDULE): one datapoint per scrape. @default 1 minute */
  readonly servingPeriod?: Duration;
  /** Other alarms (e.g. the DLQ's) that should notify the topic too. */
  readonly extraAlarms?: readonly cloudwatch.Alarm[];
}

export class Monitoring extends Construct {
  readonly alarms: cloudwatch.Alarm[] = [];
  readonly dashboard: cloudwatch.Dashboard;
  /** Unexpected run failures: what the failure alarm watches. */
  readonly unexpectedFailures: cloudwatch.Metric;

  constructor(scope: Construct, id: string, props: MonitoringProps) {
    super(scope, id);
    if (props.models.length === 0) throw new Error('mlpipe: Monitoring needs at least one model name (props.models) for its serving graphs.');
    const notify = new actions.SnsAction(props.topic);
    const period = Duration.minutes(5);
    const machine = props.stateMachine;
    // The dimension Notify and RecordRelease give their metrics: the state machine's name, from its ARN.
    const machineName = Arn.split(machine.stateMachineArn, ArnFormat.COLON_RESOURCE_NAME).resourceName!;
    const pipelineMetric = (metricName: string, statistic: string, extra: Record<string, string> = {}) =>
      new cloudwatch.Metric({ namespace: PIPELINE_NAMESPACE, metricName, dimensionsMap: { StateMachine: machineName, ...extra }, statistic, period });

    const add = (alarmId: string, description: string, metric: cloudwatch.IMetric, opts: { evaluationPeriods?: number } = {}) => {
      const alarm = new cloudwatch.Alarm(this, alarmId, {
        alarmDescription: `mlpipe: ${description}`,
        metric,
        threshold: 0,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        evaluationPeriods: opts.evaluationPeriods ?? 1,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      });
      alarm.addAlarmAction(notify);
      this.alarms.push(alarm);
    };

    this.unexpectedFailures = pipelineMetric(PIPELINE_METRICS.unexpectedFailures, 'Sum');
    add('UnexpectedFailures', 'a pipeline run failed unexpectedly (not a rejection, an expired approval or a failed gate; the run\'s email says why)', this.unexpectedFailures);
    add('ExecutionsTimedOut', 'a pipeline execution timed out', machine.metricTimedOut({ period, statistic: 'Sum' }));
    // Hourly: Notify counts a failure a moment before the execution fails, and over 5 minutes the two would
    // fall on either side of a period boundary now and then; over an hour that is rare. Notify's own errors
    // alarm (below) reports a failing Notify within 5 minutes anyway.
    const hour = Duration.hours(1);
    add(
      'FailedWithoutNotice',
      'a pipeline execution failed without a failure notification (Notify failed, or an error no Catch takes, e.g. States.Runtime)',
      new cloudwatch.MathExpression({
        expression: 'FILL(failed, 0) - FILL(notified, 0)',
        usingMetrics: {
          failed: machine.metricFailed({ period: hour, statistic: 'Sum' }),
          notified: pipelineMetric(PIPELINE_METRICS.failuresNotified, 'Sum').with({ period: hour }),
        },
        period: hour,
        label: 'Failed executions not notified',
      }),
    );
    for (const [name, fn] of Object.entries(props.functions)) {
      add(`${name}Errors`, `function ${name} reported errors`, fn.metricErrors({ period, statistic: 'Sum' }));
    }
    for (const alarm of props.extraAlarms ?? []) {
      alarm.addAlarmAction(notify);
    }

    this.dashboard = new cloudwatch.Dashboard(this, 'Dashboard', { defaultInterval: Duration.days(7) });
    const runs = Duration.hours(1);
    const width = 8;
    this.dashboard.addWidgets(new cloudwatch.TextWidget({ markdown: '## Pipeline runs', width: 24, height: 1 }));
    this.dashboard.addWidgets(
      new cloudwatch.GraphWidget({
        title: 'Runs started, succeeded, failed (per hour)',
        width,
        left: [
          machine.metricStarted({ period: runs, statistic: 'Sum', label: 'started' }),
          machine.metricSucceeded({ period: runs, statistic: 'Sum', label: 'succeeded' }),
          machine.metricFailed({ period: runs, statistic: 'Sum', label: 'failed' }),
          machine.metricTimedOut({ period: runs, statistic: 'Sum', label: 'timed out' }),
          machine.metricAborted({ period: runs, statistic: 'Sum', label: 'aborted' }),
          this.unexpectedFailures.with({ period: runs, label: 'failed unexpectedly' }),
        ],
      }),
      new cloudwatch.GraphWidget({
        title: 'How runs ended (per hour)',
        width,
        stacked: true,
        left: OUTCOMES.map((outcome) => pipelineMetric(PIPELINE_METRICS.runsEnded, 'Sum', { Outcome: outcome }).with({ period: runs, label: outcome })),
      }),
      new cloudwatch.GraphWidget({
        title: 'Execution time (start to end)',
        width,
        left: [
          machine.metric('ExecutionTime', { period: runs, statistic: 'p50', label: 'p50', unit: cloudwatch.Unit.MILLISECONDS }),
          machine.metric('ExecutionTime', { period: runs, statistic: 'Maximum', label: 'max', unit: cloudwatch.Unit.MILLISECONDS }),
        ],
      }),
    );
    this.dashboard.addWidgets(
      new cloudwatch.GraphWidget({
        title: 'Approval wait and training time per run (s)',
        width,
        left: [
          pipelineMetric(PIPELINE_METRICS.approvalWait, 'Maximum').with({ period: runs, label: 'approval wait' }),
          pipelineMetric(PIPELINE_METRICS.trainingTime, 'Maximum').with({ period: runs, label: 'training' }),
        ],
      }),
      new cloudwatch.GraphWidget({
        title: 'Estimated cost per run (USD, list prices)',
        width,
        left: [
          pipelineMetric(PIPELINE_METRICS.runCost, 'Average').with({ period: runs, label: 'average' }),
          pipelineMetric(PIPELINE_METRICS.runCost, 'Maximum').with({ period: runs, label: 'max' }),
        ],
        right: [pipelineMetric(PIPELINE_METRICS.runCost, 'Sum').with({ period: runs, label: 'all runs' })],
      }),
      new cloudwatch.GraphWidget({
        title: 'Lambda duration (max per function, ms)',
        width,
        left: Object.entries(props.functions).map(([name, fn]) => fn.metricDuration({ period, statistic: 'Maximum', label: name })),
      }),
    );
    const servingPeriod = props.servingPeriod ?? Duration.minutes(1);
    const perScrape = servingPeriod.toMinutes() === 1 ? 'minute' : servingPeriod.toHumanString();
    for (const model of props.models) {
      // The Monitor function's metrics (serving-monitor.ts), each with the statistic its alarms use.
      const serving = (name: Parameters<typeof servingMetric>[1], label: string) => servingMetric(model, name, servingPeriod).with({ label });
      this.dashboard.addWidgets(new cloudwatch.TextWidget({ markdown: `## Serving: ${model}`, width: 24, height: 1 }));
      this.dashboard.addWidgets(
        new cloudwatch.GraphWidget({ title: `${model}: requests per ${perScrape}`, width: 6, left: [serving('Requests', 'requests')] }),
        new cloudwatch.GraphWidget({ title: `${model}: error rate`, width: 6, left: [serving('ErrorRate', 'error rate')], leftYAxis: { min: 0, max: 1 } }),
        new cloudwatch.GraphWidget({ title: `${model}: latency (ms)`, width: 6, left: [serving('LatencyP50', 'p50'), serving('LatencyP95', 'p95')] }),
        new cloudwatch.GraphWidget({ title: `${model}: prediction drift (PSI)`, width: 6, left: [serving('PredictionDrift', 'PSI')] }),
      );
    }
  }
}
