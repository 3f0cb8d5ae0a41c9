/**
 * Training progress: the optional `progress.json` of the container contract (docs/architecture.md). A
 * trainer MAY write it next to its outputs (under MODEL_OUTPUT_URI), overwriting it as it goes (the example
 * trainer does, once per epoch):
 *
 *   { "fraction": 0.4, "epoch": 2, "epochs": 5, "metrics": { "loss": 0.41, "accuracy": 0.85 },
 *     "etaSeconds": 31, "updatedAt": "2026-11-29T16:00:00.000Z" }
 *
 * `fraction` (0..1, work done) and `updatedAt` (ISO 8601) are required; the rest is optional. Unknown
 * fields are ignored. A missing or malformed file is "no progress", never a failure: images that do not
 * write it keep working, with backed-off waits instead of progress-planned ones.
 *
 * One module reads, validates, compacts and describes it, for the wait planner (CheckTraining), `npm
 * start`'s progress bar, `mlpipe status` and the emails.
 */
import * as z from 'zod';
import { getJson, parseS3Uri } from './clients';

/** What `$.training.progress` carries: compact (the state stays far below 256 KiB). */
export const TrainingProgressSchema = z.object({
  fraction: z.number().min(0).max(1),
  epoch: z.number().int().nonnegative().optional(),
  epochs: z.number().int().positive().optional(),
  /** At most MAX_METRICS finite numbers (loss, accuracy, …) as of the latest report. */
  metrics: z.record(z.string(), z.number()).optional(),
  /** The trainer's own estimate of the time left, as of updatedAt. */
  etaSeconds: z.number().nonnegative().optional(),
  updatedAt: z.string().datetime({ offset: true }),
});
export type TrainingProgress = z.infer<typeof TrainingProgressSchema>;

export const PROGRESS_FILE = 'progress.json';
const MAX_METRICS = 8;

/** The progress file's S3 location for a run's model URI (MODEL_OUTPUT_URI). */
export function progressLocation(modelUri: string): { bucket: string; key: string } {
  return parseS3Uri(`${modelUri.replace(/\/?$/, '/')}${PROGRESS_FILE}`, 'run.modelUri');
}

/**
 * Validates a parsed progress.json: the compact progress, or `undefined` with why not (for a warning).
 * Metrics keep finite numbers only, at most MAX_METRICS of them, names cut to 40 characters.
 */
export function parseProgress(raw: unknown): { progress?: TrainingProgress; problem?: string } {
  if (raw === undefined) return { problem: 'missing' };
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return { problem: 'not a JSON object' };
  const record = raw as Record<string, unknown>;
  const metrics = record.metrics && typeof record.metrics === 'object' && !Array.isArray(record.metrics)
    ? Object.fromEntries(
        Object.entries(record.metrics as Record<string, unknown>)
          .filter((e): e is [string, number] => typeof e[1] === 'number' && Number.isFinite(e[1]))
          .slice(0, MAX_METRICS)
          .map(([k, v]) => [k.slice(0, 40), v]),
      )
    : undefined;
  const parsed = TrainingProgressSchema.safeParse({
    fraction: record.fraction,
    epoch: record.epoch,
    epochs: record.epochs,
    metrics: metrics && Object.keys(metrics).length ? metrics : undefined,
    etaSeconds: record.etaSeconds,
    updatedAt: record.updatedAt,
  });
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    return { problem: `${issue?.path.join('.') || 'progress'}: ${issue?.message ?? 'invalid'}` };
  }
  return { progress: parsed.data };
}

/** Reads progress.json for a run; `undefined` when absent or malformed (with the problem, to log once). */
export async function readProgress(modelUri: string): Promise<{ progress?: TrainingProgress; problem?: string }> {
  const { bucket, key } = progressLocation(modelUri);
  let raw: unknown;
  try {
    raw = await getJson<unknown>(bucket, key);
  } catch (err) {
    if (err instanceof SyntaxError) return { problem: `not valid JSON (${err.message})` };
    throw err;
  }
  return parseProgress(raw);
}

/**
 * Seconds of training expected to be left at `now`: the trainer's ETA minus the time since it reported,
 * else extrapolated from the fraction done since `startedAt`; `undefined` when nothing can be said.
 * Never negative.
 */
export function remainingSeconds(progress: TrainingProgress, startedAt: string, now: Date): number | undefined {
  const sinceReport = Math.max(0, (now.getTime() - Date.parse(progress.updatedAt)) / 1000);
  if (progress.etaSeconds !== undefined) return Math.max(0, progress.etaSeconds - sinceReport);
  if (progress.fraction <= 0) return undefined;
  const elapsedAtReport = (Date.parse(progress.updatedAt) - Date.parse(startedAt)) / 1000;
  if (!(elapsedAtReport > 0)) return undefined;
  return Math.max(0, (elapsedAtReport * (1 - progress.fraction)) / progress.fraction - sinceReport);
}

/** "epoch 2/5 · 40 % · loss 0.410 · accuracy 0.850 · ETA 31 s": one line for logs, status and emails. */
export function describeProgress(progress: TrainingProgress, startedAt?: string, now: Date = new Date()): string {
  const parts: string[] = [];
  if (progress.epoch !== undefined) parts.push(`epoch ${progress.epoch}${progress.epochs !== undefined ? `/${progress.epochs}` : ''}`);
  parts.push(`${Math.round(progress.fraction * 100)} %`);
  for (const [name, value] of Object.entries(progress.metrics ?? {})) parts.push(`${name} ${formatMetric(value)}`);
  const left = startedAt === undefined ? progress.etaSeconds : remainingSeconds(progress, startedAt, now);
  if (left !== undefined && progress.fraction < 1) parts.push(`ETA ${formatDuration(left)}`);
  return parts.join(' · ');
}

function formatMetric(value: number): string {
  return Math.abs(value) >= 100 || Number.isInteger(value) ? String(Math.round(value * 100) / 100) : value.toFixed(3);
}

/** 42 s, 3 min 5 s, 2 h 10 min. */
export function formatDuration(seconds: number): string {
  const s = Math.round(seconds);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min${s % 60 ? ` ${s % 60} s` : ''}`;
  const minutes = Math.round((s % 3600) / 60);
  return `${Math.floor(s / 3600)} h${minutes ? ` ${minutes} min` : ''}`;
}
