/** `mlpipe status [run]`: where a run is, how long it has taken, and what it measured so far. */
import type { Command } from '../command';
import { describeRun, duration, errorLine, progressOf, resolveRun, runHistory } from '../runs';
import { validateRunId } from '../validate';
import { formatDuration, readProgress, type TrainingProgress } from '../../functions/shared/progress';
import { secondsBetween } from '../../functions/shared/notifications';
import { trainingLine } from '../../local/progress-display';
import type { TrainingResult } from '../../functions/shared/types';

/**
 * A training not completed: the trainer's progress.json as it is now (readProgress), else the report the
 * last check put in `$.training.progress` (older by up to one wait, but it needs no S3 access). A run that
 * stopped while it trained shows how far it got, without an ETA.
 */
async function trainingProgressLine(training: Partial<TrainingResult>, modelUri: string | undefined, running: boolean, now: Date): Promise<string> {
  let progress: TrainingProgress | undefined;
  if (modelUri) progress = (await readProgress(modelUri).catch(() => undefined))?.progress;
  progress ??= training.progress;
  const elapsed = secondsBetween(training.submittedAt, now.toISOString());
  if (!running) {
    return progress ? `${trainingLine({ ...progress, etaSeconds: undefined }, undefined, now)} (its last report)` : 'no progress was reported';
  }
  const since = elapsed === undefined ? '' : ` (${formatDuration(elapsed)} since the Job was submitted)`;
  return progress ? `${trainingLine(progress, training.submittedAt, now)}${since}` : `no progress reported yet${since}`;
}

export const statusCommand: Command = {
  name: 'status',
  usage: 'mlpipe status [run]',
  summary: 'Show a run: current step, elapsed time, metrics, endpoint (default: the latest run)',
  help: ['[run] is the run name (`mlpipe list` shows them) or its execution ARN; default the latest run.', 'Exits 1 when the run failed, timed out or was stopped, so scripts can wait on it.'],
  options: {},
  positionals: [0, 1],
  validate(args) {
    validateRunId(args[0]);
  },
  async run({ target, args, io }) {
    const arn = await resolveRun(target, args[0]);
    const d = await describeRun(target, arn);
    const events = await runHistory(target, arn);
    const p = progressOf(events);
    const started = d.startDate ?? new Date();
    const elapsed = (d.stopDate ?? new Date()).getTime() - started.getTime();
    const run = p.data?.run;
    io.out(`run       ${d.name}`);
    io.out(`status    ${d.status}${d.status === 'RUNNING' && p.current ? ` — in ${p.current}` : ''}`);
    if (d.status !== 'RUNNING' && p.last) io.out(`last step ${p.last}`);
    io.out(`started   ${started.toISOString()} (${duration(elapsed)}${d.status === 'RUNNING' ? ' so far' : ''})`);
    if (run) {
      io.out(`model     ${run.modelName} ${run.version}`);
      io.out(`image     ${run.image}`);
    }
    const training = p.data?.training;
    const metrics = training?.metrics;
    if (training?.status === 'succeeded') {
      const took = secondsBetween(training.submittedAt, training.completedAt);
      const accuracy = metrics?.accuracy !== undefined ? `accuracy ${metrics.accuracy.toFixed(4)}${metrics.loss !== undefined ? `, loss ${metrics.loss.toFixed(4)}` : ''}` : '';
      const time = took !== undefined ? `trained in ${formatDuration(took)}` : '';
      if (accuracy || time) io.out(`training  ${accuracy}${accuracy && time ? ` (${time})` : time}`);
    } else if (training?.submittedAt) {
      io.out(`training  ${await trainingProgressLine(training, run?.modelUri, d.status === 'RUNNING', new Date())}`);
    }
    const ev = p.data?.evaluation;
    if (ev) {
      io.out(`evaluated accuracy ${ev.accuracy.toFixed(4)}, p95 ${ev.latencyMsP95.toFixed(1)} ms, errors ${(ev.errorRate * 100).toFixed(2)} % — ${ev.passed ? 'passed' : 'FAILED'} the gate`);
    }
    if (p.data?.staging?.endpoint) io.out(`staging   ${p.data.staging.endpoint}`);
    if (p.data?.production?.endpoint) io.out(`production ${p.data.production.endpoint}`);
    if (p.data?.approval) io.out(`approval  ${p.data.approval.decision} by ${p.data.approval.by} at ${p.data.approval.at}`);
    if (d.status === 'RUNNING' && p.current === 'RequestApproval') io.out(`waiting   for approval: mlpipe approve ${d.name}  |  mlpipe reject ${d.name}`);
    const error = errorLine(d.error, d.cause, d.name ?? '');
    if (error) io.out(`error     ${error}`);
    const link = target.consoleLink(arn);
    if (link) io.out(`console   ${link}`);
    return d.status === 'FAILED' || d.status === 'TIMED_OUT' || d.status === 'ABORTED' ? 1 : 0;
  },
};
