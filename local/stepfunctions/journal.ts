/**
 * The local engine's run history on disk, so it outlives a restart of `npm start` (issue 11): one JSON
 * line per fact — an execution started, a history event recorded, an execution ended — appended as it
 * happens (a crash loses at most the line being written), and replayed when the engine starts. An execution
 * with no end line was running when its process died: it is reloaded ABORTED with the error Interrupted,
 * as a stopped run reads, never RUNNING forever. Task tokens are not written (a restarted engine cannot
 * resume a Task anyway, and the file is not a place for them).
 */
import { appendFileSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { ExecutionStatus, HistoryEvent } from './model';

export interface JournalledExecution {
  arn: string;
  name: string;
  input: string;
  status: ExecutionStatus;
  startDate: Date;
  stopDate?: Date;
  output?: string;
  error?: string;
  cause?: string;
  history: HistoryEvent[];
}

type Line =
  | { t: 'start'; arn: string; name: string; input: string; startDate: string }
  | { t: 'event'; arn: string; event: HistoryEvent }
  | { t: 'end'; arn: string; status: ExecutionStatus; stopDate: string; output?: string; error?: string; cause?: string };

/** The error of a run the local pipeline stopped under, or that was running when its process ended (local/pipeline.ts INTERRUPTED_ERROR is this one). */
export const INTERRUPTED = { error: 'Interrupted', cause: 'The local pipeline ended while this run was running (its process stopped without stopping the run).' };

/** `"taskToken":"<token>"` inside a (JSON-in-JSON) parameters string. */
const TASK_TOKEN = /(taskToken\\*"\s*:\s*\\*")[A-Za-z0-9_-]{16,}/g;

/** Executions kept at load (the newest): a full local run writes ~240 KB of history, read at every start. */
export const KEPT_EXECUTIONS = 100;

export class ExecutionJournal {
  /** Set when a write failed: the runs go on, without history on disk (said once). */
  private broken: string | undefined;

  constructor(
    readonly file: string,
    private readonly warn: (message: string) => void = (m) => console.error(m),
  ) {
    mkdirSync(dirname(file), { recursive: true });
  }

  private text(line: Line): string {
    return `${JSON.stringify(line).replace(TASK_TOKEN, '$1(not kept)')}\n`;
  }

  /** A failed write (disk full, the directory gone) must never stop a run: the journal is a record, not the engine. */
  private append(line: Line): void {
    if (this.broken) return;
    try {
      appendFileSync(this.file, this.text(line));
    } catch (err) {
      this.broken = (err as Error).message;
      this.warn(`run history is no longer kept in ${this.file}: ${this.broken}`);
    }
  }

  started(e: { arn: string; name: string; input: string; startDate: Date }): void {
    this.append({ t: 'start', arn: e.arn, name: e.name, input: e.input, startDate: e.startDate.toISOString() });
  }

  event(arn: string, event: HistoryEvent): void {
    this.append({ t: 'event', arn, event });
  }

  ended(e: EndedExecution): void {
    this.append(endLine(e));
  }

  /**
   * The executions written so far, in the order they started. Those that never ended are ended here
   * (ABORTED, Interrupted), in the returned list and in the file. A line that does not parse (the last
   * one, cut by a crash) is skipped.
   */
  load(now = new Date()): JournalledExecution[] {
    if (!existsSync(this.file)) return [];
    const runs = new Map<string, JournalledExecution>();
    for (const text of readFileSync(this.file, 'utf8').split('\n')) {
      if (!text.trim()) continue;
      let line: Line;
      try {
        line = JSON.parse(text) as Line;
      } catch {
        continue;
      }
      if (line.t === 'start') {
        runs.set(line.arn, { arn: line.arn, name: line.name, input: line.input, status: 'RUNNING', startDate: new Date(line.startDate), history: [] });
        continue;
      }
      const run = runs.get(line.arn);
      if (!run) continue;
      if (line.t === 'event') run.history.push({ ...line.event, timestamp: new Date(line.event.timestamp) });
      else Object.assign(run, { status: line.status, stopDate: new Date(line.stopDate) }, pick(line));
    }
    // The newest KEPT_EXECUTIONS, rewritten whole (which also drops a line cut by a crash, so the next
    // append does not glue onto it); written beside and renamed, so a crash now leaves one file or the other.
    const kept = [...runs.values()].slice(-KEPT_EXECUTIONS);
    try {
      const tmp = `${this.file}.${process.pid}.tmp`;
      writeFileSync(tmp, kept.map((r) => this.lines(r)).join(''));
      renameSync(tmp, this.file);
    } catch (err) {
      this.broken = (err as Error).message;
      this.warn(`run history is no longer kept in ${this.file}: ${this.broken}`);
    }
    for (const run of kept) {
      if (run.status !== 'RUNNING') continue;
      const id = run.history.length + 1;
      const event: HistoryEvent = { id, previousEventId: id - 1, timestamp: now, type: 'ExecutionAborted', executionAbortedEventDetails: { ...INTERRUPTED } };
      run.history.push(event);
      Object.assign(run, { status: 'ABORTED', stopDate: now, ...INTERRUPTED });
      this.event(run.arn, event);
      this.ended(run);
    }
    return kept;
  }

  /** One execution as the lines that load() reads back. */
  private lines(r: JournalledExecution): string {
    let out = this.text({ t: 'start', arn: r.arn, name: r.name, input: r.input, startDate: r.startDate.toISOString() });
    for (const event of r.history) out += this.text({ t: 'event', arn: r.arn, event });
    if (r.status !== 'RUNNING') out += this.text(endLine(r));
    return out;
  }
}

type EndedExecution = { arn: string; status: ExecutionStatus; stopDate?: Date; output?: string; error?: string; cause?: string };

function endLine(e: EndedExecution): Line {
  return { t: 'end', arn: e.arn, status: e.status, stopDate: (e.stopDate ?? new Date()).toISOString(), ...pick(e) };
}

function pick(line: { output?: string; error?: string; cause?: string }): { output?: string; error?: string; cause?: string } {
  return {
    ...(line.output !== undefined ? { output: line.output } : {}),
    ...(line.error !== undefined ? { error: line.error } : {}),
    ...(line.cause !== undefined ? { cause: line.cause } : {}),
  };
}
