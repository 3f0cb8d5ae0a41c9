/**
 * Live training progress for a person at a terminal: `npm start` shows the trainer's progress.json
 * (functions/shared/progress.ts: epoch, latest loss/accuracy, ETA) while the run trains, and `mlpipe status`
 * shows the same line. On a TTY the line is rewritten in place (once a second, so the ETA counts down, and
 * whenever the trainer reports); elsewhere (a pipe, CI, a test's log) each new report is one plain line, so
 * a log never fills with repaints. Images that write no progress.json show nothing beyond the state lines.
 */
import { describeProgress, formatDuration, readProgress, remainingSeconds, type TrainingProgress } from '../functions/shared/progress';
import { secondsBetween } from '../functions/shared/notifications';
import type { PipelineState } from '../functions/shared/types';

const BAR_WIDTH = 20;
/** ESC [2K: erase the whole line; with \r the cursor is back at its start. */
const CLEAR_LINE = '\r\x1b[2K';

/** `[████████░░░░░░░░░░░░]` for 40 %. */
export function progressBar(fraction: number, width = BAR_WIDTH): string {
  const filled = Math.min(width, Math.max(0, Math.round(fraction * width)));
  return `[${'█'.repeat(filled)}${'░'.repeat(width - filled)}]`;
}

/**
 * The progress line `npm start` and `mlpipe status` show:
 * `[████████░░░░░░░░░░░░] epoch 2/5 · 40 % · loss 0.410 · accuracy 0.850 · ETA 31 s`, the ETA counted from
 * the trainer's own estimate at its last report (or extrapolated from the training's start, `startedAt`).
 */
export function trainingLine(progress: TrainingProgress, startedAt: string | undefined, now: Date): string {
  return `${progressBar(progress.fraction)} ${describeProgress(progress, startedAt, now)}`;
}

/**
 * Where the printer writes: permanent lines, and one live line kept under them. On a TTY the live line is
 * redrawn in place and a permanent line written meanwhile goes above it; without a TTY there is no live line
 * (`tty` false: callers print plain lines instead).
 */
export interface LiveLog {
  readonly tty: boolean;
  line(text: string): void;
  /** Shows `text` as the live line (TTY only), or clears it when undefined. */
  live(text: string | undefined): void;
}

export interface Tty {
  write(text: string): unknown;
  /** The terminal's width: a live line longer than this would wrap, and `\r` would then redraw only its end. */
  columns?: number;
}

/** Plain lines through `log`, or, given a TTY, lines and a live line on it. */
export function liveLog(log: (line: string) => void, tty?: Tty): LiveLog {
  if (!tty) return { tty: false, line: log, live: () => undefined };
  let shown: string | undefined;
  const fit = (text: string) => {
    const max = (tty.columns ?? 80) - 1;
    return text.length > max ? `${text.slice(0, Math.max(0, max - 1))}…` : text;
  };
  return {
    tty: true,
    line(text) {
      tty.write(`${shown !== undefined ? CLEAR_LINE : ''}${text}\n${shown ?? ''}`);
    },
    live(text) {
      if (text === undefined) {
        if (shown !== undefined) tty.write(CLEAR_LINE);
        shown = undefined;
        return;
      }
      shown = fit(text);
      tty.write(`${CLEAR_LINE}${shown}`);
    },
  };
}

/** What the display reads each tick: progress.json as readProgress gives it. */
export type ProgressSource = () => Promise<{ progress?: TrainingProgress; problem?: string }>;

export interface TrainingProgressDisplayOptions {
  out: LiveLog;
  source: ProgressSource;
  /** When the Job was submitted ($.training.submittedAt): the ETA's fallback and the elapsed time count from it. */
  submittedAt: string;
  /** Indentation of the printer's notes, so the line sits under the state it belongs to. */
  indent?: string;
  /** Injected in tests; defaults to the wall clock. */
  now?: () => number;
  /** Starts the periodic refresh; returns its stop. Injected in tests, which call refresh() themselves. */
  every?: (ms: number, fn: () => void) => () => void;
  tickMs?: number;
}

function everyUnref(ms: number, fn: () => void): () => void {
  const timer = setInterval(fn, ms);
  timer.unref(); // never what keeps the process alive
  return () => clearInterval(timer);
}

/**
 * One training's live progress. start() refreshes once a second until stop(); each refresh reads the source
 * once (a refresh still reading is not doubled) and shows what it has. A source that fails (S3 away for a
 * moment) keeps the last line: the display is information, never a reason for the run to fail.
 */
export class TrainingProgressDisplay {
  private latest: TrainingProgress | undefined;
  private printed: string | undefined;
  private problemShown = false;
  private reading: Promise<void> | undefined;
  private stopTimer: (() => void) | undefined;
  private stopped = false;
  private readonly indent: string;
  private readonly now: () => number;

  constructor(private readonly opts: TrainingProgressDisplayOptions) {
    this.indent = opts.indent ?? '';
    this.now = opts.now ?? Date.now;
  }

  start(): void {
    if (this.stopTimer || this.stopped) return;
    this.stopTimer = (this.opts.every ?? everyUnref)(this.opts.tickMs ?? 1000, () => void this.refresh());
    void this.refresh();
  }

  /** Reads the source once and shows the result (a tick; tests call it directly). */
  refresh(): Promise<void> {
    this.reading ??= this.read().finally(() => (this.reading = undefined));
    return this.reading;
  }

  /** The latest report seen, if any. */
  get progress(): TrainingProgress | undefined {
    return this.latest;
  }

  /**
   * Ends the display: the timer stops, a read still under way is ignored, the live line is cleared and, on
   * a TTY, what it last showed stays as a permanent line (without an ETA: training is over). Synchronous, so
   * the caller's next line comes after it. Safe to call more than once.
   */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.stopTimer?.();
    const { out } = this.opts;
    if (!out.tty) return;
    out.live(undefined);
    if (!this.latest) return;
    const { etaSeconds: _eta, ...final } = this.latest;
    out.line(`${this.indent}${trainingLine(final, undefined, new Date(this.now()))}`);
  }

  private async read(): Promise<void> {
    let got: Awaited<ReturnType<ProgressSource>> | undefined;
    try {
      got = await this.opts.source();
    } catch {
      got = undefined; // S3 unavailable for a moment: keep what was shown
    }
    if (this.stopped) return;
    const { out } = this.opts;
    if (got?.progress) this.latest = got.progress;
    else if (got?.problem && got.problem !== 'missing' && !this.problemShown) {
      // A trainer writing a malformed file should hear why nothing shows, once.
      this.problemShown = true;
      out.line(`${this.indent}progress.json ignored: ${got.problem}`);
    }
    const now = new Date(this.now());
    if (out.tty) {
      out.live(`${this.indent}${liveLine(this.latest, this.opts.submittedAt, now)}`);
      return;
    }
    // Plain lines: one per report (the ETA as of that report), never a repaint per tick.
    if (this.latest && this.latest.updatedAt !== this.printed) {
      this.printed = this.latest.updatedAt;
      out.line(`${this.indent}${trainingLine(this.latest, this.opts.submittedAt, now)}`);
    }
  }
}

/**
 * The TTY's live line: the time facts first (ETA, elapsed), then epoch and metrics, so a narrow terminal cuts
 * metrics rather than the ETA: `[████░░░░] ETA 31 s · 0:42 elapsed · epoch 2/5 · 40 % · loss 0.410 …`.
 */
function liveLine(progress: TrainingProgress | undefined, submittedAt: string, now: Date): string {
  const elapsed = formatElapsed(now.getTime() - Date.parse(submittedAt));
  if (!progress) return `training, no progress reported yet · ${elapsed}`;
  const left = progress.fraction < 1 ? remainingSeconds(progress, submittedAt, now) : undefined;
  const eta = left === undefined ? '' : `ETA ${formatDuration(left)} · `;
  return `${progressBar(progress.fraction)} ${eta}${elapsed} · ${describeProgress({ ...progress, etaSeconds: undefined })}`;
}

function formatElapsed(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')} elapsed`;
}

/** The training loop's states, from SubmitTraining until IsTrainingComplete says succeeded. */
const TRAINING_LOOP = new Set(['CheckTraining', 'WaitForTraining', 'AwaitTraining']);

/** Where the local run's notes start: under the state lines' `[ 12.3 s] ▶ ` prefix. */
export const NOTE_INDENT = `${' '.repeat(10)}  `;

/** How the follower reads progress: progress.json through readProgress by default; tests inject a source and a clock. */
export interface TrainingWatch {
  source?: (modelUri: string) => ProgressSource;
  now?: () => number;
  every?: (ms: number, fn: () => void) => () => void;
}

/**
 * The training part of the local run's printer (local/pipeline.ts ProgressPrinter): learns the run's model
 * URI from Prepare, starts the live display once SubmitTraining has submitted the Job, keeps the training
 * loop to one line per state (CheckTraining, WaitForTraining and AwaitTraining alternate for hours on AWS),
 * and when training succeeds ends the display and says how long it took.
 */
export class TrainingFollower {
  private modelUri: string | undefined;
  private display: TrainingProgressDisplay | undefined;
  private readonly shown = new Set<string>();

  constructor(
    private readonly out: LiveLog,
    private readonly indent = NOTE_INDENT,
    private readonly watch: TrainingWatch = {},
  ) {}

  /** A state was entered: false when its line would repeat a training-loop state already shown. */
  entered(state: string): boolean {
    if (TRAINING_LOOP.has(state)) {
      if (this.shown.has(state)) return false;
      this.shown.add(state);
      return true;
    }
    if (/^Is[A-Z]/.test(state)) return true; // loop Choices are the printer's to hide
    this.shown.clear();
    this.ended(); // training is over (DeployStaging) or failed (Cleanup)
    return true;
  }

  exited(state: string, s: Partial<PipelineState>): void {
    if (state === 'Prepare' && s.run) this.modelUri = s.run.modelUri;
    if (state === 'SubmitTraining' && s.training && s.training.status !== 'succeeded') this.start(s.training.submittedAt);
    if (TRAINING_LOOP.has(state) && s.training?.status === 'succeeded') {
      this.ended();
      const acc = s.training.metrics?.accuracy;
      const took = secondsBetween(s.training.submittedAt, s.training.completedAt);
      this.out.line(`${this.indent}training complete${took !== undefined ? ` in ${formatDuration(took)}` : ''}${acc !== undefined ? `, validation accuracy ${acc.toFixed(4)}` : ''}`);
    }
  }

  /** Reads progress now, or waits for the read under way (a tick; tests await it). */
  refresh(): Promise<void> {
    return this.display?.refresh() ?? Promise.resolve();
  }

  /** Stops the live display, if one runs (the run ended, or left training). */
  ended(): void {
    this.display?.stop();
    this.display = undefined;
  }

  private start(submittedAt: string): void {
    if (this.display || !this.modelUri) return;
    const modelUri = this.modelUri;
    this.display = new TrainingProgressDisplay({
      out: this.out,
      source: this.watch.source?.(modelUri) ?? (() => readProgress(modelUri)),
      submittedAt,
      indent: this.indent,
      ...(this.watch.now ? { now: this.watch.now } : {}),
      ...(this.watch.every ? { every: this.watch.every } : {}),
    });
    this.display.start();
  }
}
