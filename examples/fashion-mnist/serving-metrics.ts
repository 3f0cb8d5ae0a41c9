/**
 * The serving image's Prometheus metrics, rendered in the text exposition format (0.0.4) without a client
 * library: request counts by route and status code, errors, a latency histogram per route, instances
 * predicted, the predicted class of each (`mlpipe_predictions_total{class="<index>"}`: the serving
 * monitor's drift check compares their distribution with the evaluation's), and whether (and how fast)
 * the model loaded.
 */

/** Seconds; spans a 1-instance request (~1 ms) to a 1,000-instance one on a busy node. */
export const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

interface Histogram {
  counts: number[];
  sum: number;
  count: number;
}

export class ServingMetrics {
  private readonly requests = new Map<string, number>();
  private readonly errors = new Map<string, number>();
  private readonly latency = new Map<string, Histogram>();
  private instances = 0;
  /** Predicted class index → instances given that class (the argmax of each prediction). */
  private readonly predictedClasses = new Map<number, number>();
  private loadSeconds: number | undefined;

  observe(route: string, code: number, seconds: number): void {
    const key = `route="${route}",code="${code}"`;
    this.requests.set(key, (this.requests.get(key) ?? 0) + 1);
    if (code >= 400) this.errors.set(`route="${route}"`, (this.errors.get(`route="${route}"`) ?? 0) + 1);
    let h = this.latency.get(route);
    if (!h) {
      h = { counts: LATENCY_BUCKETS.map(() => 0), sum: 0, count: 0 };
      this.latency.set(route, h);
    }
    LATENCY_BUCKETS.forEach((bound, i) => {
      if (seconds <= bound) h.counts[i]!++;
    });
    h.sum += seconds;
    h.count++;
  }

  instancesPredicted(n: number): void {
    this.instances += n;
  }

  /** Counts each instance's predicted class (index of its highest probability). */
  classesPredicted(classes: readonly number[]): void {
    for (const c of classes) this.predictedClasses.set(c, (this.predictedClasses.get(c) ?? 0) + 1);
  }

  modelLoaded(seconds: number): void {
    this.loadSeconds = seconds;
  }

  render(available: boolean): string {
    const lines: string[] = [];
    const family = (name: string, type: string, help: string): void => {
      lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    };
    family('serving_requests_total', 'counter', 'HTTP requests answered, by route and status code.');
    for (const [labels, v] of this.requests) lines.push(`serving_requests_total{${labels}} ${v}`);
    family('serving_request_errors_total', 'counter', 'HTTP requests answered with a 4xx or 5xx status, by route.');
    for (const [labels, v] of this.errors) lines.push(`serving_request_errors_total{${labels}} ${v}`);
    family('serving_request_duration_seconds', 'histogram', 'Time from request to response, by route.');
    for (const [route, h] of this.latency) {
      LATENCY_BUCKETS.forEach((bound, i) =>
        lines.push(`serving_request_duration_seconds_bucket{route="${route}",le="${bound}"} ${h.counts[i]}`),
      );
      lines.push(`serving_request_duration_seconds_bucket{route="${route}",le="+Inf"} ${h.count}`);
      lines.push(`serving_request_duration_seconds_sum{route="${route}"} ${h.sum}`);
      lines.push(`serving_request_duration_seconds_count{route="${route}"} ${h.count}`);
    }
    family('serving_instances_predicted_total', 'counter', 'Instances (images) classified.');
    lines.push(`serving_instances_predicted_total ${this.instances}`);
    family('mlpipe_predictions_total', 'counter', 'Instances predicted, by predicted class (index of the highest probability).');
    for (const [c, v] of [...this.predictedClasses].sort((a, b) => a[0] - b[0])) lines.push(`mlpipe_predictions_total{class="${c}"} ${v}`);
    family('serving_model_available', 'gauge', '1 once the model is loaded and serving, else 0.');
    lines.push(`serving_model_available ${available ? 1 : 0}`);
    if (this.loadSeconds !== undefined) {
      family('serving_model_load_seconds', 'gauge', 'Time taken to load the model from S3 and warm it up.');
      lines.push(`serving_model_load_seconds ${this.loadSeconds}`);
    }
    return `${lines.join('\n')}\n`;
  }
}
