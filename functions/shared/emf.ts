/**
 * CloudWatch embedded metric format (EMF,
 * https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html):
 * a log line CloudWatch Logs turns into metrics, so a function publishes metrics with no PutMetricData call
 * and no CloudWatch permission. Used for the pipeline's metrics (pipeline-metrics.ts) and the serving
 * monitor's (serving-monitor.ts).
 */

export type MetricUnit = 'Count' | 'Seconds' | 'Milliseconds' | 'None';

export interface MetricValue {
  name: string;
  unit: MetricUnit;
  value: number;
}

/** One EMF document in `namespace`: each group's metrics under its set of dimension names, values from `dimensions`. */
export function emfDocument(
  namespace: string,
  dimensions: Record<string, string>,
  groups: ReadonlyArray<{ dimensionSet: string[]; metrics: MetricValue[] }>,
  now: Date,
): Record<string, unknown> {
  const doc: Record<string, unknown> = {
    _aws: {
      Timestamp: now.getTime(),
      CloudWatchMetrics: groups.map((g) => ({
        Namespace: namespace,
        Dimensions: [g.dimensionSet],
        Metrics: g.metrics.map((m) => ({ Name: m.name, Unit: m.unit })),
      })),
    },
    ...dimensions,
  };
  for (const g of groups) for (const m of g.metrics) doc[m.name] = m.value;
  return doc;
}

/**
 * Writes one EMF line straight to stdout: with Lambda's JSON log format, console.log would wrap it in a
 * log record and CloudWatch would not extract the metrics (the EMF client libraries do the same).
 */
export function writeEmf(doc: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify(doc)}\n`);
}
