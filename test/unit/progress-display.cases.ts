/**
 * npm start's live training progress (local/progress-display.ts): the line it draws, in place on a TTY and
 * as one plain line per report otherwise, with an injected clock and progress source; the follower that
 * starts and ends it from the run's state events; and, end to end, progress.json read from the local S3.
 * Run from test/unit/local-s3.test.ts, which loads the same S3 modules (their loading is paid once per file).
 */
import { liveLog, progressBar, trainingLine, TrainingFollower, TrainingProgressDisplay, type ProgressSource } from '../../local/progress-display';
import { putJson } from '../../functions/shared/clients';
import type { TrainingProgress } from '../../functions/shared/progress';
import type { PipelineState } from '../../functions/shared/types';
import { useLocalS3 } from '../local-s3-env';

const T0 = Date.parse('2026-11-29T16:00:00.000Z');
const iso = (s: number) => new Date(T0 + s * 1000).toISOString();
const report = (epoch: number, epochs: number, at: number, etaSeconds: number, metrics = { loss: 0.5 - epoch / 20, accuracy: 0.8 + epoch / 100 }): TrainingProgress => ({
  fraction: epoch / epochs, epoch, epochs, metrics, etaSeconds, updatedAt: iso(at),
});

/** A terminal: what was written, and what it shows (each \r\x1b[2K erases the line being drawn). */
function fakeTty(columns = 200) {
  let written = '';
  return {
    columns,
    write: (text: string) => void (written += text),
    get written() {
      return written;
    },
    /** The screen: lines ended by \n, then the line still being drawn. */
    get screen(): string[] {
      const rows = written.split('\n').map((row) => row.split('\r\x1b[2K').at(-1) ?? '');
      return rows;
    },
  };
}

/** A clock and a timer the test moves, and a progress source it sets. */
function harness(tty?: ReturnType<typeof fakeTty>) {
  let now = T0;
  let current: { progress?: TrainingProgress; problem?: string } | Error = { problem: 'missing' };
  const lines: string[] = [];
  let ticking = 0;
  const source: ProgressSource = async () => {
    if (current instanceof Error) throw current;
    return current;
  };
  return {
    lines,
    out: liveLog((l) => lines.push(l), tty),
    source,
    now: () => now,
    every: (_ms: number, _fn: () => void) => {
      ticking++;
      return () => void ticking--;
    },
    get ticking() {
      return ticking;
    },
    at(seconds: number) {
      now = T0 + seconds * 1000;
    },
    set(next: { progress?: TrainingProgress; problem?: string } | Error) {
      current = next;
    },
  };
}

describe('the progress line', () => {
  it('draws a bar of the fraction done next to epoch, metrics and ETA', () => {
    expect(progressBar(0)).toBe(`[${'░'.repeat(20)}]`);
    expect(progressBar(0.4)).toBe(`[${'█'.repeat(8)}${'░'.repeat(12)}]`);
    expect(progressBar(1)).toBe(`[${'█'.repeat(20)}]`);
    const line = trainingLine(report(2, 5, 10, 31, { loss: 0.41, accuracy: 0.85 }), iso(0), new Date(T0 + 15_000));
    // The trainer's ETA (31 s at its report) less the 5 s since.
    expect(line).toBe(`[${'█'.repeat(8)}${'░'.repeat(12)}] epoch 2/5 · 40 % · loss 0.410 · accuracy 0.850 · ETA 26 s`);
  });
});

describe('TrainingProgressDisplay on a TTY', () => {
  it('redraws one line in place: the ETA counts down between reports, a new report replaces it, nothing scrolls', async () => {
    // GIVEN a display on a terminal, before the trainer's first report
    const tty = fakeTty();
    const h = harness(tty);
    const display = new TrainingProgressDisplay({ out: h.out, source: h.source, submittedAt: iso(0), now: h.now, every: h.every });
    display.start();
    await display.refresh();
    expect(h.ticking).toBe(1);
    expect(tty.screen).toEqual(['training, no progress reported yet · 0:00 elapsed']);

    // WHEN the trainer reports, and the clock moves on without a new report
    h.set({ progress: report(1, 5, 10, 40) });
    h.at(12);
    await display.refresh();
    const first = tty.screen.at(-1)!;
    h.at(20);
    await display.refresh();

    // THEN the same line shows, with the ETA counting down from the report, and no line was ever ended
    expect(first).toBe(`${progressBar(0.2)} ETA 38 s · 0:12 elapsed · epoch 1/5 · 20 % · loss 0.450 · accuracy 0.810`);
    expect(tty.screen).toEqual([`${progressBar(0.2)} ETA 30 s · 0:20 elapsed · epoch 1/5 · 20 % · loss 0.450 · accuracy 0.810`]);
    expect(tty.written).not.toContain('\n');
    expect(h.lines).toEqual([]);

    h.set({ progress: report(2, 5, 21, 30) });
    h.at(22);
    await display.refresh();
    expect(tty.screen).toEqual([`${progressBar(0.4)} ETA 29 s · 0:22 elapsed · epoch 2/5 · 40 % · loss 0.400 · accuracy 0.820`]);
  });

  it('puts a line written meanwhile above the live line, and on stop keeps the last report without an ETA', async () => {
    const tty = fakeTty();
    const h = harness(tty);
    const display = new TrainingProgressDisplay({ out: h.out, source: h.source, submittedAt: iso(0), now: h.now, every: h.every, indent: '  ' });
    display.start();
    await display.refresh(); // start()'s own first read
    h.set({ progress: report(3, 5, 30, 20) });
    h.at(31);
    await display.refresh();

    h.out.line('✉ an email');
    expect(tty.screen).toEqual(['✉ an email', `  ${progressBar(0.6)} ETA 19 s · 0:31 elapsed · epoch 3/5 · 60 % · loss 0.350 · accuracy 0.830`]);

    display.stop();
    display.stop(); // twice is harmless
    expect(h.ticking).toBe(0);
    expect(tty.screen).toEqual(['✉ an email', `  ${progressBar(0.6)} epoch 3/5 · 60 % · loss 0.350 · accuracy 0.830`, '']);
    // A read that lands after the stop draws nothing.
    await display.refresh();
    expect(tty.screen.at(-1)).toBe('');
  });

  it('fits the live line to the terminal width, so \\r redraws all of it, cutting metrics before the ETA', async () => {
    const tty = fakeTty(60);
    const h = harness(tty);
    const display = new TrainingProgressDisplay({ out: h.out, source: h.source, submittedAt: iso(0), now: h.now, every: h.every });
    h.set({ progress: report(1, 5, 1, 40) });
    await display.refresh();
    expect(tty.screen[0]).toHaveLength(59);
    expect(tty.screen[0]).toBe(`${progressBar(0.2)} ETA 40 s · 0:00 elapsed · epoch 1/5…`);
  });
});

describe('TrainingProgressDisplay without a TTY', () => {
  it('prints one plain line per report, never one per tick', async () => {
    const h = harness();
    const display = new TrainingProgressDisplay({ out: h.out, source: h.source, submittedAt: iso(0), now: h.now, every: h.every });
    display.start();
    await display.refresh(); // nothing reported yet: nothing printed
    h.set({ progress: report(1, 2, 5, 5) });
    h.at(6);
    await display.refresh();
    h.at(7);
    await display.refresh(); // the same report: no new line
    h.set({ progress: { ...report(2, 2, 9, 0), fraction: 1 } });
    h.at(9);
    await display.refresh();
    display.stop();
    expect(h.lines).toEqual([
      `${progressBar(0.5)} epoch 1/2 · 50 % · loss 0.450 · accuracy 0.810 · ETA 4 s`,
      `${progressBar(1)} epoch 2/2 · 100 % · loss 0.400 · accuracy 0.820`,
    ]);
  });

  it('says once why a malformed progress.json is ignored, and keeps the last line when S3 fails', async () => {
    const h = harness();
    const display = new TrainingProgressDisplay({ out: h.out, source: h.source, submittedAt: iso(0), now: h.now, every: h.every });
    h.set({ problem: 'fraction: Too big: expected number to be <=1' });
    await display.refresh();
    await display.refresh();
    h.set({ progress: report(1, 4, 3, 9) });
    await display.refresh();
    h.set(new Error('connect ECONNREFUSED 127.0.0.1:9'));
    await display.refresh();
    expect(h.lines).toEqual(['progress.json ignored: fraction: Too big: expected number to be <=1', expect.stringContaining('epoch 1/4 · 25 %')]);
    expect(display.progress?.epoch).toBe(1);
  });
});

describe('TrainingFollower (the run printer\'s training part)', () => {
  const run = { modelUri: 's3://b/models/m/v1/' } as PipelineState['run'];
  const pending = { jobName: 'm-v1-train', namespace: 'ns', submittedAt: iso(0), status: 'pending' as const };

  it('starts the display once the Job is submitted, shows each loop state once, and ends it with the training time', async () => {
    const h = harness();
    const sources: string[] = [];
    let tick: (() => void) | undefined;
    const follower = new TrainingFollower(h.out, '> ', {
      source: (uri) => {
        sources.push(uri);
        return h.source;
      },
      now: h.now,
      every: (_ms, fn) => {
        tick = fn;
        return () => (tick = undefined);
      },
    });
    follower.exited('Prepare', { run });
    expect(follower.entered('SubmitTraining')).toBe(true);
    expect(tick).toBeUndefined(); // nothing to show before the Job exists
    follower.exited('SubmitTraining', { run, training: pending });
    expect(sources).toEqual(['s3://b/models/m/v1/']);
    expect(tick).toBeDefined();
    await follower.refresh(); // the display's first read, at once: no progress.json yet
    expect(h.lines).toEqual([]);

    // CheckTraining → WaitForTraining → CheckTraining → AwaitTraining: each state's line once
    expect(['CheckTraining', 'WaitForTraining', 'CheckTraining', 'WaitForTraining', 'AwaitTraining', 'AwaitTraining'].map((s) => follower.entered(s))).toEqual([
      true, true, false, false, true, false,
    ]);
    h.set({ progress: report(1, 2, 4, 4) });
    tick!();
    await follower.refresh(); // the tick's read
    expect(h.lines).toEqual([`> ${progressBar(0.5)} epoch 1/2 · 50 % · loss 0.450 · accuracy 0.810 · ETA 4 s`]);

    follower.exited('AwaitTraining', { run, training: { ...pending, status: 'succeeded', completedAt: iso(134), metrics: { accuracy: 0.8812 } } });
    expect(tick).toBeUndefined();
    expect(h.lines.at(-1)).toBe('> training complete in 2 min 14 s, validation accuracy 0.8812');
    expect(follower.entered('DeployStaging')).toBe(true);
  });

  it('ends the display when the run leaves training for Cleanup, and when the run ends', () => {
    const tty = fakeTty();
    const h = harness(tty);
    let ticking = 0;
    const follower = new TrainingFollower(h.out, '', { source: () => h.source, now: h.now, every: () => (ticking++, () => void ticking--) });
    follower.exited('Prepare', { run });
    follower.exited('SubmitTraining', { run, training: pending });
    expect(ticking).toBe(1);
    follower.entered('Cleanup');
    expect(ticking).toBe(0);
    follower.exited('SubmitTraining', { run, training: pending });
    expect(ticking).toBe(1);
    follower.ended();
    expect(ticking).toBe(0);
  });
});

describe('the local run reads progress.json from local S3', () => {
  useLocalS3(['artifacts'], 'mlpipe-progress-');

  it('shows each progress.json the trainer writes under MODEL_OUTPUT_URI, as plain lines', async () => {
    // GIVEN the follower with its default source (readProgress), the run's model URI from Prepare
    const modelUri = 's3://artifacts/models/fashion-mnist/20261129-160000-abcdef1/';
    const h = harness();
    let tick: (() => void) | undefined;
    const follower = new TrainingFollower(h.out, '', { now: h.now, every: (_ms, fn) => ((tick = fn), () => (tick = undefined)) });
    follower.exited('Prepare', { run: { modelUri } as PipelineState['run'] });
    follower.exited('SubmitTraining', { training: { jobName: 'j', namespace: 'ns', submittedAt: iso(0), status: 'pending' } });
    const key = 'models/fashion-mnist/20261129-160000-abcdef1/progress.json';
    await follower.refresh(); // its first read: nothing written yet
    expect(h.lines).toEqual([]);

    // WHEN the trainer writes its first and second report, each followed by a tick of the display
    await putJson('artifacts', key, { fraction: 0.2, epoch: 1, epochs: 5, metrics: { loss: 0.52, accuracy: 0.81 }, etaSeconds: 40, updatedAt: iso(10) });
    h.at(10);
    tick!();
    await follower.refresh();
    await putJson('artifacts', key, { fraction: 0.4, epoch: 2, epochs: 5, metrics: { loss: 0.44, accuracy: 0.84 }, etaSeconds: 30, updatedAt: iso(20) });
    h.at(20);
    tick!();
    await follower.refresh();
    follower.ended();

    // THEN
    expect(h.lines).toEqual([
      `${progressBar(0.2)} epoch 1/5 · 20 % · loss 0.520 · accuracy 0.810 · ETA 40 s`,
      `${progressBar(0.4)} epoch 2/5 · 40 % · loss 0.440 · accuracy 0.840 · ETA 30 s`,
    ]);
  });
});
