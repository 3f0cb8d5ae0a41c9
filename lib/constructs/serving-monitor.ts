/**
 * Watching production (DESIGN decision 15): an EventBridge Scheduler schedule invokes the Monitor Lambda
 * (functions/monitor.ts) every MONITOR_SCHEDULE; it scrapes production's pods through the pod proxy and
 * logs the `mlpipe/Serving` metrics in the embedded metric format; alarms on p95 latency, error rate and
 * prediction drift notify the pipeline's topic. The alarm rules (threshold, 2 of 3 periods, missing data
 * not breaching) come from functions/shared/serving-monitor.ts, which the monitor's own snapshot (what
 * `mlpipe status` shows, and the local run's emails) evaluates the same way.
 */
import { Aws, Duration } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as actions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as scheduler from 'aws-cdk-lib/aws-scheduler';
import * as schedulerTargets from 'aws-cdk-lib/aws-scheduler-targets';
import type * as sns from 'aws-cdk-lib/aws-sns';
import { Construct } from 'constructs';
import { FUNCTION_SETTINGS } from '../../functions/shared/function-settings';
import { monitorKeys, servingAlarmRules, SERVING_DIMENSION, SERVING_METRICS, SERVING_NAMESPACE, type ServingMetricName } from '../../functions/shared/serving-monitor';
import { MAX_ERROR_RATE, MAX_P95_LATENCY_MS, MAX_PREDICTION_DRIFT, MONITOR_SCHEDULE, MONITOR_SCHEDULE_PATTERN, parseSetting } from '../../functions/shared/settings';
import { Artifacts } from './artifacts';
import { PipelineFunction } from './lambda-defaults';
import { environmentFor, type SettingValues } from './pipeline-functions';

/** How CloudWatch aggregates each serving metric over a period: a sum of counts, the worst of the rest. */
const STATISTIC: Record<ServingMetricName, string> = {
  Requests: 'Sum',
  ErrorRate: 'Maximum',
  LatencyP50: 'Maximum',
  LatencyP95: 'Maximum',
  PredictionDrift: 'Maximum',
};

/**
 * A serving metric of a model (namespace `mlpipe/Serving`, dimension `Model`), for alarms and dashboards.
 * @param period @default 1 minute (the monitor's default schedule)
 */
export function servingMetric(model: string, name: ServingMetricName, period: Duration = Duration.minutes(1)): cloudwatch.Metric {
  return new cloudwatch.Metric({
    namespace: SERVING_NAMESPACE,
    metricName: name,
    dimensionsMap: { [SERVING_DIMENSION]: model },
    statistic: STATISTIC[name],
    period,
    unit: cloudwatch.Unit[SERVING_METRICS[name] === 'Count' ? 'COUNT' : SERVING_METRICS[name] === 'Milliseconds' ? 'MILLISECONDS' : 'NONE'],
  });
}

/** The schedule's period: `rate(5 minutes)` → 5 minutes (the setting admits whole minutes only). */
export function schedulePeriod(schedule: string): Duration {
  const m = MONITOR_SCHEDULE_PATTERN.exec(schedule);
  if (!m) throw new Error(`mlpipe: the monitor schedule must look like "rate(1 minute)" or "rate(5 minutes)"; got "${schedule}".`);
  return Duration.minutes(Number(m[1]));
}

export interface ServingMonitorProps {
  /** The setting values of the stack (the Monitor's environment and the alarms' thresholds come from them). */
  readonly settings: SettingValues;
  readonly modelName: string;
  readonly artifacts: Artifacts;
  /** The monitor's role: Kubernetes access to the production namespace only (cluster-access.ts). */
  readonly role: iam.IRole;
  /** Where the alarms go: the pipeline's topic. */
  readonly topic: sns.ITopic;
}

export class ServingMonitor extends Construct {
  readonly function: PipelineFunction;
  readonly schedule: scheduler.Schedule;
  /** The schedule's period: one datapoint of each serving metric per period (the dashboard graphs them so). */
  readonly period: Duration;
  readonly alarms: cloudwatch.Alarm[] = [];

  constructor(scope: Construct, id: string, props: ServingMonitorProps) {
    super(scope, id);
    const setting = <T,>(def: Parameters<typeof parseSetting<T>>[0]): T => parseSetting(def, props.settings[def.name]) as T;
    const schedule = setting(MONITOR_SCHEDULE);
    const period = schedulePeriod(schedule);
    this.period = period;

    this.function = new PipelineFunction(this, 'Function', {
      entry: 'functions/monitor.ts',
      // One scrape: a pod list, one /metrics read per pod, three small S3 objects. Well within a minute.
      timeout: Duration.seconds(50),
      description: "mlpipe: scrape production's /metrics (pod proxy), publish serving metrics (EMF)",
      role: props.role,
      environment: environmentFor('Monitor', FUNCTION_SETTINGS.Monitor, props.settings),
    });
    const model = props.artifacts.modelPrefix;
    // What serves and its evaluation (the drift baseline); its own records under monitor/<model>/.
    props.artifacts.grantRead(this.function, `${model}production.json`, `${model}*/evaluation.json`, `${monitorKeys.prefix(props.modelName)}*`);
    props.artifacts.grantWrite(this.function, `${monitorKeys.prefix(props.modelName)}*`);

    // A role of its own (the target's default is one shared stack-wide role): Scheduler of this account only.
    const scheduleRole = new iam.Role(this, 'ScheduleRole', {
      assumedBy: new iam.ServicePrincipal('scheduler.amazonaws.com', { conditions: { StringEquals: { 'aws:SourceAccount': Aws.ACCOUNT_ID } } }),
      description: `mlpipe: the serving monitor's schedule invokes the Monitor function of ${props.modelName}`,
    });
    this.schedule = new scheduler.Schedule(this, 'Schedule', {
      description: `mlpipe: serving monitor of ${props.modelName}`,
      schedule: scheduler.ScheduleExpression.expression(schedule),
      // A late scrape is still worth its window; one missed is covered by the next (its window is longer).
      target: new schedulerTargets.LambdaInvoke(this.function, { role: scheduleRole, retryAttempts: 0, maxEventAge: Duration.minutes(1) }),
    });

    const notify = new actions.SnsAction(props.topic);
    const rules = servingAlarmRules({
      maxP95LatencyMs: setting(MAX_P95_LATENCY_MS),
      maxErrorRate: setting(MAX_ERROR_RATE),
      maxPredictionDrift: setting(MAX_PREDICTION_DRIFT),
    });
    for (const rule of rules) {
      const alarm = new cloudwatch.Alarm(this, `${rule.metric}Alarm`, {
        alarmDescription: `mlpipe: ${props.modelName} in production: ${rule.description} in ${rule.datapointsToAlarm} of ${rule.evaluationPeriods} periods (${schedule})`,
        metric: servingMetric(props.modelName, rule.metric, period),
        threshold: rule.threshold,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        evaluationPeriods: rule.evaluationPeriods,
        datapointsToAlarm: rule.datapointsToAlarm,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      });
      alarm.addAlarmAction(notify);
      alarm.addOkAction(notify);
      this.alarms.push(alarm);
    }
  }
}
