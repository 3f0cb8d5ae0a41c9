/**
 * The local engine's run history on disk, so it outlives a restart of `npm start` (issue 11): one JSON
 * line per fact — an execution started, a history event recorded, an execution ended — appended as it
 * happens (a crash loses at most the line being written), and replayed when the engine starts. An execution
 * with no end line was running when its process died: it is reloaded ABORTED with the error Interrupted,
 * as a stopped run reads, never RUNNING forever. Task tokens are not written (a restarted engine cannot
 * resume a Task anyway, and the file is not a place for them).
 */
import { appendFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
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

export class ExecutionJournal {
  constructor(readonly file: string) {
    mkdirSync(dirname(file), { recursive: true });
  }

  private append(line: Line): void {
    appendFileSync(this.file, `${JSON.stringify(line).replace(TASK_TOKEN, '$1(not kept)')}\n`);
  }

  started(e: { arn: string; name: string; input: string; startDate: Date }): void {
    this.append({ t: 'start', arn: e.arn, name: e.name, input: e.input, startDate: e.startDate.toISOString() });
  }

  event(arn: string, event: HistoryEvent): void {
    this.append({ t: 'event', arn, event });
  }

  ended(e: { arn: string; status: ExecutionStatus; stopDate?: Date; output?: string; error?: string; cause?: string }): void {
    this.append({
      t: 'end', arn: e.arn, status: e.status, stopDate: (e.stopDate ?? new Date()).toISOString(),
      ...(e.output !== undefined ? { output: e.output } : {}), ...(e.error !== undefined ? { error: e.error } : {}), ...(e.cause !== undefined ? { cause: e.cause } : {}),
    });
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
    for (const run of runs.values()) {
      if (run.status !== 'RUNNING') continue;
      const id = run.history.length + 1;
      const event: HistoryEvent = { id, previousEventId: id - 1, timestamp: now, type: 'ExecutionAborted', executionAbortedEventDetails: { ...INTERRUPTED } };
      run.history.push(event);
      Object.assign(run, { status: 'ABORTED', stopDate: now, ...INTERRUPTED });
      this.event(run.arn, event);
      this.ended(run);
    }
    return [...runs.values()];
  }
}

function pick(line: { output?: string; error?: string; cause?: string }): Partial<JournalledExecution> {
  return {
    ...(line.output !== undefined ? { output: line.output } : {}),
    ...(line.error !== undefined ? { error: line.error } : {}),
    ...(line.cause !== undefined ? { cause: line.cause } : {}),
  };
}
