/**
 * The serving monitor in the synthesized stack (lib/constructs/serving-monitor.ts): the schedule that
 * invokes it, its three alarms to the pipeline's topic with the shared rules' thresholds, its role's
 * least privilege (production only in the cluster, its own records in S3), and the props' validation.
 */
import { Match } from 'aws-cdk-lib/assertions';
import { Duration } from 'aws-cdk-lib';
import { Stack } from 'aws-cdk-lib';
import { MONITOR_SUBRESOURCE_NEEDS, EDIT_POLICY_SUBRESOURCE_RULES } from '../../lib/constructs/cluster-access';
import { servingMetric } from '../../lib/constructs/serving-monitor';
import { buildStack, logicalId, resourcesOf, synthStack } from './helpers';

describe('serving monitor', () => {
  it('is invoked by an EventBridge Scheduler schedule, every minute by default', () => {
    // GIVEN / WHEN
    const { template } = synthStack();
    const fn = logicalId(template, 'AWS::Lambda::Function', 'ServingMonitorFunction');
    // THEN
    template.hasResourceProperties('AWS::Scheduler::Schedule', {
      ScheduleExpression: 'rate(1 minute)',
      State: 'ENABLED',
      Target: Match.objectLike({ Arn: { 'Fn::GetAtt': [fn, 'Arn'] }, RetryPolicy: { MaximumRetryAttempts: 0, MaximumEventAgeInSeconds: 60 } }),
    });
  });

  it('alarms on p95 latency, error rate and drift (2 of 3 periods) to the pipeline topic, with the settings as thresholds', () => {
    // GIVEN / WHEN
    const { template } = synthStack({ props: { maxP95LatencyMs: 300, maxPredictionDrift: 0.3, monitorSchedule: 'rate(5 minutes)' } });
    const topic = logicalId(template, 'AWS::SNS::Topic', 'Topic');
    // THEN
    const alarms = Object.values(resourcesOf(template, 'AWS::CloudWatch::Alarm'))
      .map((a) => a.Properties as Record<string, unknown>)
      .filter((p) => p.Namespace === 'mlpipe/Serving');
    expect(alarms.map((a) => [a.MetricName, a.Threshold, a.Period, a.EvaluationPeriods, a.DatapointsToAlarm, a.TreatMissingData, a.ComparisonOperator]).sort()).toEqual([
      ['ErrorRate', 0.01, 300, 3, 2, 'notBreaching', 'GreaterThanThreshold'],
      ['LatencyP95', 300, 300, 3, 2, 'notBreaching', 'GreaterThanThreshold'],
      ['PredictionDrift', 0.3, 300, 3, 2, 'notBreaching', 'GreaterThanThreshold'],
    ]);
    for (const a of alarms) {
      expect(a.Dimensions).toEqual([{ Name: 'Model', Value: 'fashion-mnist' }]);
      expect(a.AlarmActions).toEqual([{ Ref: topic }]);
      expect(a.OKActions).toEqual([{ Ref: topic }]);
    }
    template.hasResourceProperties('AWS::Scheduler::Schedule', { ScheduleExpression: 'rate(5 minutes)' });
    // The dashboard graphs the serving metrics at the schedule's period too (5 minutes is a graph's default,
    // so no 60 s period is left anywhere), and says so.
    const body = JSON.stringify(Object.values(resourcesOf(template, 'AWS::CloudWatch::Dashboard'))[0]?.Properties?.DashboardBody);
    expect(body).toContain('fashion-mnist: requests per 5 minutes');
    expect(body).toContain('mlpipe/Serving');
    expect(body).not.toMatch(/period[^0-9]{1,6}60[^0-9]/);
  });

  it('has a role of its own: Kubernetes access to production only, no staging; reads what serves and its evaluation, writes only monitor/<model>/', () => {
    // GIVEN / WHEN
    const { template } = synthStack();
    const role = logicalId(template, 'AWS::IAM::Role', 'MonitorRole');
    // THEN
    template.hasResourceProperties('AWS::EKS::AccessEntry', {
      PrincipalArn: { 'Fn::GetAtt': [role, 'Arn'] },
      AccessPolicies: [Match.objectLike({ AccessScope: { Type: 'namespace', Namespaces: ['mlpipe-production'] } })],
    });
    for (const need of MONITOR_SUBRESOURCE_NEEDS) {
      expect(EDIT_POLICY_SUBRESOURCE_RULES.some((r) => r.resources.includes(need.resource) && r.verbs.includes(need.verb))).toBe(true);
    }
    const statements = Object.values(resourcesOf(template, 'AWS::IAM::Policy'))
      .filter((p) => JSON.stringify(p.Properties?.Roles).includes(role))
      .flatMap((p) => (p.Properties?.PolicyDocument as { Statement: Array<Record<string, unknown>> }).Statement);
    const keys = (action: string) =>
      statements
        .filter((s) => ([] as string[]).concat(s.Action as string).includes(action))
        .flatMap((s) => ([] as unknown[]).concat(s.Resource))
        .map((r) => JSON.stringify(r).match(/"(\/[^"]*)"\]\]\}$/)?.[1] ?? JSON.stringify(r));
    expect(keys('s3:PutObject')).toEqual(['/monitor/fashion-mnist/*']);
    expect(keys('s3:GetObject').sort()).toEqual(['/models/fashion-mnist/*/evaluation.json', '/models/fashion-mnist/production.json', '/monitor/fashion-mnist/*']);
    expect(statements.flatMap((s) => ([] as string[]).concat(s.Action as string)).filter((a) => a.startsWith('cloudwatch:'))).toEqual([]);
  });

  it.each([
    ['monitorSchedule', 'rate(30 seconds)', /"monitorSchedule" property is not valid: must be an EventBridge Scheduler rate of whole minutes/],
    ['monitorSchedule', 'cron(0 * * * ? *)', /"monitorSchedule" property is not valid/],
    ['maxPredictionDrift', 0, /"maxPredictionDrift" property is not valid: must be a number >= 0.01 and <= 10/],
  ])('refuses %s %j, saying why', (prop, value, message) => {
    expect(() => buildStack({ props: { [prop]: value } })).toThrow(message);
  });

  it('gives the dashboard the same metric (servingMetric)', () => {
    const stack = new Stack();
    const m = servingMetric('fashion-mnist', 'LatencyP95', Duration.minutes(5));
    expect([m.namespace, m.metricName, m.dimensions, m.statistic, m.period.toSeconds()]).toEqual(['mlpipe/Serving', 'LatencyP95', { Model: 'fashion-mnist' }, 'Maximum', 300]);
    expect(stack).toBeDefined();
  });
});
