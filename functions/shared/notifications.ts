/**
 * What mlpipe tells people, over SNS: the approval request email (RequestApproval) and the outcome of a
 * run (Notify). Plain text, because email is the subscriber most topics have. SNS limits: subject <= 100
 * printable ASCII characters, message <= 256 KiB.
 */
import { PublishCommand } from '@aws-sdk/client-sns';
import { snsClient } from './clients';
import { NOTIFICATION_TOPIC_ARN, currentSetting } from './settings';
import type { ProductionComparison } from './registry';
import type { CanaryThresholds } from './canary-analysis';
import { describeProgress, formatDuration } from './progress';
import type { CanaryState, EvaluationResult, TrainingResult } from './types';
import { championColumn, className, classRows, describeTrigger, hyperparameterList, trainingTime, type ClassRow, type RunFacts } from './approval-facts';

const MAX_SUBJECT = 100;
/** Below SNS's 256 KiB so headers and encoding overhead always fit. */
export const MAX_MESSAGE_BYTES = 240 * 1024;

/** SNS rejects subjects with non-ASCII or control characters, or longer than 100 characters. */
export function safeSubject(text: string): string {
  const ascii = text
    .normalize('NFKD')
    .replace(/[^\x20-\x7e]/g, (c) => (/\s/.test(c) ? ' ' : ''))
    .replace(/\s+/g, ' ')
    .trim();
  const subject = ascii.length > MAX_SUBJECT ? `${ascii.slice(0, MAX_SUBJECT - 3)}...` : ascii;
  return subject || 'mlpipe notification';
}

/** Keeps the end of `text` (a log tail matters most at its end) within `maxBytes` of UTF-8. */
export function keepTail(text: string, maxBytes: number): string {
  const buf = Buffer.from(text, 'utf8');
  if (buf.length <= maxBytes) return text;
  const marker = '[... earlier output trimmed ...]\n';
  // Cutting mid-character leaves replacement characters at the start only; drop them.
  const tail = buf.subarray(buf.length - (maxBytes - marker.length)).toString('utf8').replace(/^\uFFFD+/, '');
  return marker + tail;
}

export async function publish(subject: string, message: string): Promise<string> {
  const out = await snsClient().send(
    new PublishCommand({
      TopicArn: currentSetting(NOTIFICATION_TOPIC_ARN),
      Subject: safeSubject(subject),
      Message: keepTail(message, MAX_MESSAGE_BYTES),
    }),
  );
  if (!out.MessageId) throw new Error('SNS Publish returned no MessageId.');
  return out.MessageId;
}

// ---------------------------------------------------------------------------------------------------
// Formatting

export const fmt = {
  accuracy: (x: number | null | undefined) => (x === null || x === undefined ? 'n/a' : x.toFixed(4)),
  ms: (x: number | null | undefined) => (x === null || x === undefined ? 'n/a' : `${x} ms`),
  rate: (x: number | null | undefined) => (x === null || x === undefined ? 'n/a' : `${Math.round(x * 10000) / 100}%`),
};

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/**
 * "22 Nov 2026, 02:14 UTC": people read this faster than ISO 8601, and it names its time zone (the
 * approver's is unknown, so UTC). Falls back to the text itself if it is not a date.
 */
export function formatTime(iso: string): string {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  const two = (n: number) => String(n).padStart(2, '0');
  return `${d.getUTCDate()} ${MONTHS[d.getUTCMonth()]} ${d.getUTCFullYear()}, ${two(d.getUTCHours())}:${two(d.getUTCMinutes())} UTC`;
}

/** "in 24 hours", "in 5 minutes", "2 minutes ago": how far `iso` is from `now`, rounded. */
export function timeFromNow(iso: string, now = new Date()): string {
  const ms = Date.parse(iso) - now.getTime();
  if (Number.isNaN(ms)) return 'unknown';
  const abs = Math.abs(ms);
  const [n, unit] =
    abs >= 2 * 86_400_000 ? [Math.round(abs / 86_400_000), 'day'] : abs >= 2 * 3_600_000 ? [Math.round(abs / 3_600_000), 'hour'] : [Math.max(1, Math.round(abs / 60_000)), 'minute'];
  const text = `${n} ${unit}${n === 1 ? '' : 's'}`;
  return ms >= 0 ? `in ${text}` : `${text} ago`;
}

/** Rows of cells as aligned plain-text columns. Email clients may use a proportional font; the columns still read in order. */
export function textTable(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) => `  ${r.map((c, i) => c.padEnd(widths[i]!)).join('  ')}`.trimEnd()).join('\n');
}

/**
 * Candidate vs production (when something serves it) and the gate's limits. Production's latency is shown
 * only when it was measured in the same evaluation (approval-facts.ts championColumn).
 */
export function metricsTable(evaluation: EvaluationResult, production: ProductionComparison | null): string {
  const t = evaluation.thresholds;
  const p = championColumn(evaluation, production);
  const theirs = (v: string) => (p ? [v] : []);
  const table = textTable([
    ['', 'this model', ...theirs(`production (${p?.version})`), 'required'],
    ['accuracy', fmt.accuracy(evaluation.accuracy), ...theirs(fmt.accuracy(p?.accuracy)), `>= ${fmt.accuracy(t.minAccuracy)}`],
    ['p50 latency', fmt.ms(evaluation.latencyMsP50), ...theirs(fmt.ms(p?.latency?.p50)), ''],
    ['p95 latency', fmt.ms(evaluation.latencyMsP95), ...theirs(fmt.ms(p?.latency?.p95)), `<= ${t.maxP95LatencyMs} ms`],
    ['error rate', fmt.rate(evaluation.errorRate), ...theirs(fmt.rate(p?.errorRate)), `<= ${fmt.rate(t.maxErrorRate)}`],
  ]);
  if (!p) return `${table}\n  (nothing serves production yet: this would be the first release)`;
  return p.latency
    ? `${table}\n  (both measured in this evaluation, on the same images, requests interleaved)`
    : `${table}\n  (production's latency was not measured alongside this model; numbers from another time are not compared)`;
}

/** Accuracy per class against production's, classes that got worse marked; empty when the evaluation has none. */
export function classTable(e: EvaluationResult): string {
  const rows = classRows(e);
  if (rows.length === 0) return '';
  const p = e.production?.perClassAccuracy ? e.production : undefined;
  const mark = (r: ClassRow) => [r.worse ? 'WORSE' : '', r.belowMinimum ? `below ${fmt.accuracy(e.thresholds.minAccuracy)}` : ''].filter(Boolean).join(', ');
  return textTable([
    ['class', 'this model', ...(p ? [`production (${p.version})`, 'change'] : []), ''],
    ...rows.map((r) => [
      r.name,
      fmt.accuracy(r.accuracy),
      ...(p ? [fmt.accuracy(r.production), !r.change ? '' : `${r.change > 0 ? '+' : '-'}${Math.abs(r.change).toFixed(4)}`] : []),
      mark(r),
    ]),
  ]);
}

/** The confusion matrix: a row per true class, a column per predicted class (numbered; the rows name them). */
export function confusionTable(e: EvaluationResult): string {
  const m = e.confusion;
  if (!m || m.length === 0) return '';
  return textTable([
    ['true / predicted', ...m.map((_, c) => String(c))],
    ...m.map((row, t) => [`${t} ${className(e, t)}`, ...row.map(String)]),
  ]);
}

/**
 * A failed canary's evidence: canary and stable side by side over the failing step, with each limit, as
 * the analysis judged them (canary-analysis.ts judge).
 */
export function canaryTable(c: CanaryState, canaryVersion: string, t: CanaryThresholds): string {
  const e = c.last;
  if (!e) return '  (no analysis ran)';
  const s = e.stable;
  const p95 = (v: number | null) => (v === null ? 'n/a' : fmt.ms(v));
  const rows: string[][] = [
    ['', `canary (${canaryVersion})`, `stable (${c.stableVersion})`, 'limit'],
    ['pods', `${c.canaryReplicas} of ${c.totalReplicas}`, `${c.stableReplicas} of ${c.totalReplicas}`, `${c.weight} % requested, ${c.reachablePercent} % reachable`],
    ['requests', String(e.canary.requests), s ? String(s.requests) : 'n/a', `>= ${t.minRequests} each`],
    ['served share', e.servedShare === null ? 'n/a' : fmt.rate(e.servedShare), e.servedShare === null ? 'n/a' : fmt.rate(1 - e.servedShare), ''],
    ['errors', String(e.canary.errors), s ? String(s.errors) : 'n/a', ''],
    ['error rate', fmt.rate(e.canary.errorRate), s ? fmt.rate(s.errorRate) : 'n/a', `<= ${fmt.rate(t.maxErrorRate)}, at most +${fmt.rate(t.maxErrorRateIncrease)} over stable`],
    ['p95 latency', p95(e.canary.p95Ms), s ? p95(s.p95Ms) : 'n/a', `<= ${t.maxP95LatencyMs} ms, at most ${t.maxP95Ratio}x stable`],
  ];
  return textTable(rows);
}

/** Seconds from `from` to `to` (ISO timestamps); undefined unless both parse and `to` is not earlier. */
export function secondsBetween(from: string | undefined, to: string | undefined): number | undefined {
  const ms = Date.parse(to ?? '') - Date.parse(from ?? '');
  return Number.isFinite(ms) && ms >= 0 ? ms / 1000 : undefined;
}

/**
 * How long the run trained, for the emails. A completed training: submission to completion ("4 min 10 s";
 * a retry says whose training it reuses). One that never completed (the run failed while it trained): to
 * `now`, since Notify runs moments after the failure was seen (only Cleanup and RecordFailure come between),
 * with the trainer's last progress report from `$.training.progress`, so the email says how far it got.
 * Null when no Job was submitted. The state is not validated here (Notify takes any partial state), hence
 * the defensive reads.
 */
export function trainingTimeText(training: Partial<TrainingResult> | null | undefined, now: Date, retryOf?: string): string | null {
  if (!training || typeof training.submittedAt !== 'string') return null;
  if (training.status === 'succeeded') {
    const took = secondsBetween(training.submittedAt, training.completedAt);
    const reused = retryOf ? ` (trained by run ${retryOf.split(':').pop()}, reused by this retry)` : '';
    return took === undefined ? null : `${formatDuration(took)}${reused}`;
  }
  const ran = secondsBetween(training.submittedAt, now.toISOString());
  if (ran === undefined) return null;
  const p = training.progress;
  // The last report as it was: its ETA is stale once training has stopped.
  const last = p && typeof p.fraction === 'number' && typeof p.updatedAt === 'string'
    ? `last progress ${describeProgress({ ...p, etaSeconds: undefined })} (reported ${formatTime(p.updatedAt)})`
    : 'no progress reported';
  return `ran for ${formatDuration(ran)} before the run failed; ${last}`;
}

export interface ApprovalEmail {
  modelName: string;
  version: string;
  image: string;
  evaluation: EvaluationResult;
  production: ProductionComparison | null;
  approveUrl: string;
  rejectUrl: string;
  expiresAt: string;
  /** The execution ARN, so the email can name the run for `mlpipe approve <run>`. */
  executionArn?: string;
  /** Trigger, data, hyperparameters, training time (approval-facts.ts). */
  facts?: RunFacts;
}

/** The run's facts as `Label: value` lines. */
function factLines(image: string, run: string | undefined, f: RunFacts | undefined): string[] {
  const lines: Array<[string, string]> = [
    ...(run ? [['Run', run] as [string, string]] : []),
    ...(f ? [['Trigger', describeTrigger(f.trigger)] as [string, string]] : []),
    ['Image', image],
    ...(f
      ? ([
          ['Image digest', f.imageDigest ?? 'not pinned (a tag)'],
          ['Data', `${f.data.uri}${f.data.version ? ` (version ${f.data.version})` : ''}`],
          ['Data sha256', f.data.sha256 ?? 'not recorded (no dataset.json next to the data)'],
          ['Held-out data', f.data.evalUri],
          ['Hyperparameters', hyperparameterList(f.hyperparameters)],
          ['Training time', trainingTime(f)],
        ] as Array<[string, string]>)
      : []),
  ];
  const width = Math.max(...lines.map(([k]) => k.length)) + 2;
  return lines.map(([k, v]) => `${`${k}:`.padEnd(width)}${v}`);
}

const section = (title: string, body: string): string[] => (body ? ['', `${title}:`, body] : []);

export function approvalEmail(e: ApprovalEmail, now = new Date()): { subject: string; message: string } {
  const run = e.executionArn?.split(':').pop();
  return {
    subject: `[mlpipe] Approve ${e.modelName} ${e.version} for production?`,
    message: [
      `${e.modelName} ${e.version} passed its evaluation gate and is waiting for your decision.`,
      '',
      metricsTable(e.evaluation, e.production),
      '',
      `Gate: ${e.evaluation.summary}`,
      ...section('Accuracy per class (WORSE: lower than production on the same images)', classTable(e.evaluation)),
      ...section('Confusion matrix (rows: true class; columns: predicted class; counts)', confusionTable(e.evaluation)),
      '',
      ...factLines(e.image, run, e.facts),
      '',
      `Approve: ${e.approveUrl}`,
      '',
      `Reject:  ${e.rejectUrl}`,
      '',
      'Each link opens a page with the details and a button; nothing is decided until you press it.',
      ...(run ? [`From a terminal instead: mlpipe approve ${run}   (or: mlpipe reject ${run})`] : []),
      `The request expires on ${formatTime(e.expiresAt)} (${timeFromNow(e.expiresAt, now)}); if nobody decides by then, the model is not released.`,
      '',
      `Full evaluation report: ${e.evaluation.reportUri}`,
    ].join('\n'),
  };
}
