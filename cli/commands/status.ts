/** `mlpipe status [run]`: where a run is, how long it has taken, and what it measured so far (a RunView, as text or JSON). */
import type { Clock, Command, Values } from '../command';
import { UsageError } from '../io';
import { duration, resolveRun } from '../runs';
import { validateRunId } from '../validate';
import { formatDuration } from '../../functions/shared/progress';
import { costLines } from '../../functions/shared/run-cost';
import { trainingLine } from '../../local/progress-display';
import { readRunView, type RunView, type StepView } from '../run-view';
import { snapshotLine } from '../../functions/shared/serving-monitor';
import { OUTPUT_HELP, OUTPUT_OPTION, outputFormat, printJson } from '../output';

/**
 * A training not completed: the trainer's latest report (progress.json while the run trains, else the one
 * the last check kept). A run that stopped while it trained shows how far it got, without an ETA.
 */
function trainingProgressLine(t: NonNullable<RunView['training']>, running: boolean, now: Date): string {
  const progress = t.progress ?? undefined;
  if (!running) {
    return progress ? `${trainingLine({ ...progress, etaSeconds: undefined }, undefined, now)} (its last report)` : 'no progress was reported';
  }
  const since = t.seconds === null ? '' : ` (${formatDuration(t.seconds)} since the Job was submitted)`;
  return progress ? `${trainingLine(progress, t.submittedAt, now)}${since}` : `no progress reported yet${since}`;
}

const STEP_MARK: Record<StepView['status'], string> = { succeeded: '✓', failed: '✗', running: '▶', stopped: '■' };

function stepTime(seconds: number): string {
  return seconds < 10 ? `${seconds.toFixed(1)}s` : duration(seconds * 1000);
}

/** The steps, one line each; Choice states (instant decisions) are left out. */
export function stepLines(steps: StepView[]): string[] {
  const shown = steps.filter((s) => s.type !== 'Choice');
  const width = Math.max(0, ...shown.map((s) => s.name.length));
  return shown.map((s, i) => `${i === 0 ? 'steps    ' : '         '} ${STEP_MARK[s.status]} ${s.name.padEnd(width)}  ${stepTime(s.seconds)}${s.entries > 1 ? ` (${s.entries}×)` : ''}`);
}

/** A RunView as the lines of `mlpipe status`. */
export function runViewLines(v: RunView, now: Date): string[] {
  const out: string[] = [];
  const running = v.status === 'RUNNING';
  out.push(`run       ${v.name}`);
  out.push(`status    ${v.status}${running && v.currentStep ? ` — in ${v.currentStep}` : ''}`);
  if (!running && v.lastStep) out.push(`last step ${v.lastStep}`);
  out.push(`started   ${v.startedAt} (${duration(v.seconds * 1000)}${running ? ' so far' : ''})`);
  if (v.model && v.version) {
    out.push(`model     ${v.model} ${v.version}`);
    out.push(`image     ${v.image}`);
  }
  const t = v.training;
  if (t?.status === 'succeeded') {
    const m = t.metrics;
    const accuracy = m?.accuracy !== undefined ? `accuracy ${m.accuracy.toFixed(4)}${m.loss !== undefined ? `, loss ${m.loss.toFixed(4)}` : ''}` : '';
    const time = t.completedAt && t.seconds !== null ? `trained in ${formatDuration(t.seconds)}` : '';
    if (accuracy || time) out.push(`training  ${accuracy}${accuracy && time ? ` (${time})` : time}`);
  } else if (t) {
    out.push(`training  ${trainingProgressLine(t, running, now)}`);
  }
  const ev = v.evaluation;
  if (ev) out.push(`evaluated accuracy ${ev.accuracy.toFixed(4)}, p95 ${ev.latencyMsP95.toFixed(1)} ms, errors ${(ev.errorRate * 100).toFixed(2)} % — ${ev.passed ? 'passed' : 'FAILED'} the gate`);
  if (v.staging) out.push(`staging   ${v.staging.endpoint}`);
  const p = v.production;
  if (p?.serving) out.push(`production ${p.endpoint ?? '(no endpoint recorded)'}`);
  else if (p?.replacedBy) {
    const r = p.replacedBy;
    out.push(`production no longer serves: ${r.action === 'rollback' ? 'rolled back to' : 'replaced by'} ${r.version} at ${r.at}${r.by ? ` by ${r.by}` : ''}`);
  }
  if (v.monitor) out.push(`serving   ${snapshotLine(v.monitor)}`);
  const a = v.approval;
  if (a?.status === 'decided') out.push(`approval  ${a.decision} by ${a.by} at ${a.at}`);
  if (a?.status === 'pending') {
    out.push(`waiting   for approval: ${a.commands.approve}  |  ${a.commands.reject}`);
    if (a.links) {
      out.push(`approve   ${a.links.approve}`);
      out.push(`reject    ${a.links.reject}`);
    }
  }
  if (v.error) out.push(`error     ${v.error}`);
  if (v.cost) {
    const [total, ...components] = costLines(v.cost);
    out.push(`cost      ${total} (estimate)`, ...components.map((c) => `            ${c}`));
  }
  out.push(...stepLines(v.steps));
  if (v.consoleLink) out.push(`console   ${v.consoleLink}`);
  return out;
}

/**
 * What changed between two polls of a run, as lines: steps that started or ended, and the status lines
 * (training progress, evaluation, approval, endpoints, the end) that are new. The elapsed-time line is left
 * out: it changes on every poll.
 */
export function changeLines(prev: RunView, next: RunView, now: Date): string[] {
  const before = new Map(prev.steps.map((s) => [s.name, s]));
  const steps = next.steps
    .filter((s) => s.type !== 'Choice')
    .filter((s) => before.get(s.name)?.status !== s.status || (before.get(s.name)?.entries ?? 0) < s.entries)
    .map((s) => `          ${STEP_MARK[s.status]} ${s.name}${s.status === 'running' ? '' : `  ${stepTime(s.seconds)}`}`);
  const body = (v: RunView, at: Date) => runViewLines({ ...v, steps: [] }, at).filter((l) => !l.startsWith('started '));
  const seen = new Set(body(prev, now));
  return [...steps, ...body(next, now).filter((l) => !seen.has(l))];
}

/**
 * Polls the run until it ends: the whole view first, then what changes (text), or one JSON line per changed
 * view (json). Returns the last view.
 */
async function watch(read: () => Promise<RunView>, opts: { json: boolean; intervalMs: number; clock: Clock; out(line: string): void }): Promise<RunView> {
  let view = await read();
  opts.out(opts.json ? JSON.stringify(view) : runViewLines(view, opts.clock.now()).join('\n'));
  while (view.status === 'RUNNING') {
    await opts.clock.sleep(opts.intervalMs);
    const next = await read();
    if (opts.json) {
      // Only when something but the clock moved.
      const still = (v: RunView) => JSON.stringify({ ...v, seconds: 0, steps: v.steps.map((s) => ({ ...s, seconds: s.status === 'running' ? 0 : s.seconds })), training: v.training && { ...v.training, seconds: 0 } });
      if (still(next) !== still(view)) opts.out(JSON.stringify(next));
    } else {
      for (const line of changeLines(view, next, opts.clock.now())) opts.out(line);
    }
    view = next;
  }
  return view;
}

/** Exit code of a run's status: 1 when it failed, timed out or was stopped, so scripts can wait on it. */
export function statusExitCode(v: Pick<RunView, 'status'>): number {
  return v.status === 'FAILED' || v.status === 'TIMED_OUT' || v.status === 'ABORTED' ? 1 : 0;
}

function intervalMs(values: Values): number {
  if (values.interval === undefined) return 2000;
  const s = Number(values.interval);
  if (!values.watch) throw new UsageError('--interval goes with --watch.');
  if (!Number.isFinite(s) || s < 0.2 || s > 3600) throw new UsageError(`--interval must be a number of seconds from 0.2 to 3600, got "${String(values.interval).slice(0, 40)}".`);
  return s * 1000;
}

export const statusCommand: Command = {
  name: 'status',
  usage: 'mlpipe status [run] [--watch [--interval <seconds>]] [-o json|text]',
  summary: 'Show a run: current step, elapsed time, metrics, endpoint (default: the latest run)',
  help: [
    '[run] is the run name (`mlpipe list` shows them) or its execution ARN; default the latest run.',
    'Exits 1 when the run failed, timed out or was stopped, so scripts can wait on it.',
    '  -w, --watch         follow the run until it ends: the status, then each change (exit code as above)',
    '  --interval <s>      seconds between two looks while watching (default 2)',
    OUTPUT_HELP,
    '                      (-o json prints a RunView: the schema is docs/status.schema.json; with --watch one per line, each change)',
  ],
  options: { ...OUTPUT_OPTION, watch: { type: 'boolean', short: 'w' }, interval: { type: 'string' } },
  positionals: [0, 1],
  validate(args, values) {
    validateRunId(args[0]);
    outputFormat(values);
    intervalMs(values);
  },
  async run({ target, args, values, io, clock }) {
    const arn = await resolveRun(target, args[0]);
    if (values.watch) {
      const last = await watch(() => readRunView(target, arn, { now: clock.now() }), { json: outputFormat(values) === 'json', intervalMs: intervalMs(values), clock, out: io.out });
      return statusExitCode(last);
    }
    const now = clock.now();
    const view = await readRunView(target, arn, { now });
    if (outputFormat(values) === 'json') printJson(io, view);
    else for (const line of runViewLines(view, now)) io.out(line);
    return statusExitCode(view);
  },
};
