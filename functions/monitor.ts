/**
 * Monitor: the scheduled serving monitor (EventBridge Scheduler, every MONITOR_SCHEDULE; locally a timer
 * of `npm start`). Scrapes production's pods of the stack's model through the pod proxy, publishes
 * Requests, ErrorRate, LatencyP50, LatencyP95 and PredictionDrift in the embedded metric format (a log
 * line: no CloudWatch permission), and keeps the latest numbers and alarm states in
 * `monitor/<model>/latest.json` for `mlpipe status` and the console (functions/shared/serving-monitor*.ts).
 * The schedule's event carries nothing this needs; it reads only, so a retried invocation is harmless
 * (its window is then just shorter).
 */
import { FUNCTION_SETTINGS } from './shared/function-settings';
import { withLogContext } from './shared/logger';
import { SERVING_PORT } from './shared/manifests';
import { phaseClock } from './shared/phase';
import type { MonitorSnapshot } from './shared/serving-monitor';
import { scrapeServing } from './shared/serving-monitor-scrape';
import { loadSettings } from './shared/settings';

/** Read and validated once, at init. */
const settings = loadSettings(FUNCTION_SETTINGS.Monitor);

async function monitor(): Promise<MonitorSnapshot> {
  return scrapeServing({
    model: settings.MODEL_NAME,
    namespace: settings.PRODUCTION_NAMESPACE,
    port: SERVING_PORT,
    thresholds: { maxP95LatencyMs: settings.MAX_P95_LATENCY_MS, maxErrorRate: settings.MAX_ERROR_RATE, maxPredictionDrift: settings.MAX_PREDICTION_DRIFT },
    now: new Date(phaseClock().now()),
  });
}

export const handler = withLogContext(() => ({ model: settings.MODEL_NAME }), monitor);
