/**
 * The RUN VIEW: one run as everything that shows runs sees it — `mlpipe status` (text, and `-o json`, which
 * prints exactly a RunView), `status --watch`, the console's run page. Read once here from DescribeExecution,
 * the execution history, the trainer's progress.json, the approval record and the registry, so they all
 * agree: a finished run shows no staging endpoint (Cleanup deleted it), and a run whose version no longer
 * serves (rolled back, replaced) does not claim production — production.json decides, not the run's state.
 * RunViewSchema is the documented contract: docs/status.schema.json is generated from it (cli/status-schema.ts).
 */
import { join } from 'node:path';
import type { HistoryEvent } from '@aws-sdk/client-sfn';
import { z } from 'zod';
import { approvalId, getApproval } from '../functions/shared/approvals';
import { EvaluationSchema } from '../functions/shared/state';
import { readProgress, TrainingProgressSchema, type TrainingProgress } from '../functions/shared/progress';
import { readProduction } from '../functions/shared/registry';
import { RunCostSchema } from '../functions/shared/run-cost';
import { secondsBetween } from '../functions/shared/notifications';
import { MonitorSnapshotSchema } from '../functions/shared/serving-monitor';
import { readServingSnapshot } from '../functions/shared/serving-monitor-scrape';
import type { PipelineState } from '../functions/shared/types';
import { localApprovalLinks } from '../local/approval-links';
import { describeRun, errorLine, progressOf, runHistory } from './runs';
import type { Target } from './target';

const Time = z.string().describe('ISO 8601 time');

export const RUN_STATUSES = ['RUNNING', 'SUCCEEDED', 'FAILED', 'TIMED_OUT', 'ABORTED', 'PENDING_REDRIVE'] as const;

/** One state of the machine as the run went through it; a state entered several times (a wait loop) is one step. */
export const StepViewSchema = z.object({
  name: z.string(),
  type: z.string().describe('The ASL state type (Task, Choice, Wait, Pass, Succeed, Fail), from the history\'s event type.'),
  status: z.enum(['running', 'succeeded', 'failed', 'stopped']).describe('`stopped`: the run ended (aborted, timed out) while in this state.'),
  enteredAt: Time.describe('First entered (ISO 8601).'),
  leftAt: Time.nullable().describe('Last left (ISO 8601); null while in it.'),
  seconds: z.number().nonnegative().describe('Time spent in the state, all entries together (so far, while in it).'),
  entries: z.number().int().min(1),
});

export const RunViewSchema = z
  .object({
    name: z.string(),
    executionArn: z.string(),
    status: z.enum(RUN_STATUSES),
    currentStep: z.string().nullable().describe('The state the run is in (RUNNING only).'),
    lastStep: z.string().nullable().describe('The last state entered.'),
    startedAt: Time,
    stoppedAt: Time.nullable(),
    seconds: z.number().nonnegative().describe('Start to stop, or to now while running.'),
    model: z.string().nullable(),
    version: z.string().nullable(),
    image: z.string().nullable(),
    imageDigest: z.string().nullable(),
    trigger: z.object({ source: z.string(), detail: z.record(z.string(), z.unknown()).optional() }).nullable(),
    steps: z.array(StepViewSchema),
    training: z
      .object({
        status: z.enum(['pending', 'watch', 'succeeded']),
        jobName: z.string(),
        submittedAt: Time,
        completedAt: Time.nullable(),
        seconds: z.number().nonnegative().nullable().describe('Submission to completion, or to the end of the run / now.'),
        progress: TrainingProgressSchema.nullable().describe('The trainer\'s latest report: progress.json as it is now until training completes, else the last one the state kept.'),
        metrics: z.record(z.string(), z.number()).nullable(),
      })
      .nullable(),
    evaluation: EvaluationSchema.loose().nullable().describe('`$.evaluation` as EvaluateModel wrote it (fields added later, e.g. per-class accuracy, pass through).'),
    staging: z.object({ endpoint: z.string() }).nullable().describe('The staging endpoint while it exists (a running run before its cleanup).'),
    production: z
      .discriminatedUnion('serving', [
        z.object({ serving: z.literal(true), endpoint: z.string().nullable(), since: Time.nullable() }),
        z.object({
          serving: z.literal(false),
          replacedBy: z.object({ version: z.string(), action: z.string(), at: Time, by: z.string().nullable() }).nullable().describe('What production serves instead, how it got there (release, rollback, canary-rollback) and when; null when unknown.'),
        }),
      ])
      .nullable()
      .describe(
        "This run's version in production: serving, with the endpoint production answers on now (the registry's production.json), or, " +
          'once another version took over (a rollback, a later release), serving false and what replaced it. Null when the run never released.',
      ),
    monitor: MonitorSnapshotSchema.nullable().describe(
      "The serving monitor's latest scrape of the model in production (monitor/<model>/latest.json: requests, error rate, p50/p95, " +
        "predicted classes, drift as PSI, alarm states), while this run's version serves; null otherwise or before its first scrape.",
    ),
    approval: z
      .discriminatedUnion('status', [
        z.object({
          status: z.literal('pending'),
          expiresAt: Time.nullable(),
          links: z.object({ approve: z.string(), reject: z.string() }).nullable().describe('The approval links (local mode: from the local "email"); on AWS they are only in the approvers\' email.'),
          commands: z.object({ approve: z.string(), reject: z.string() }),
        }),
        z.object({ status: z.literal('decided'), decision: z.enum(['approve', 'reject']), by: z.string(), at: Time, comment: z.string().nullable() }),
      ])
      .nullable()
      .describe('pending: the run waits for a decision (links and commands that decide it); decided: the decision. Null otherwise.'),
    error: z.string().nullable().describe('A failed run\'s error as one readable line.'),
    cost: RunCostSchema.nullable().describe(
      'What the run cost, estimated at list prices when RecordRelease/RecordFailure wrote its manifest (functions/shared/run-cost.ts): ' +
        'state transitions, Lambda GB-s and requests, training pod CPU/GPU-seconds. Null until then (and for a run that never started).',
    ),
    consoleLink: z.string().nullable().describe('The Step Functions console page (AWS).'),
  })
  .describe('One mlpipe run, as `mlpipe status -o json` prints it');

export type RunView = z.infer<typeof RunViewSchema>;
export type StepView = z.infer<typeof StepViewSchema>;

/** States that remove staging: once one is entered, the staging endpoint is gone (or going). */
const STAGING_GONE = ['CleanupStaging', 'Cleanup'];
const STATE_TYPE = /^(\w+?)State(Entered|Exited)$/;

/** The steps of a run from its history: first entry, last exit, time inside summed over entries. */
export function stepsOf(events: HistoryEvent[], ended: { status: string; stoppedAt?: Date }, failed: Set<string>, now: Date): StepView[] {
  const steps = new Map<string, StepView & { open?: number }>();
  for (const e of events) {
    const at = e.timestamp ? new Date(e.timestamp).getTime() : now.getTime();
    const entered = e.stateEnteredEventDetails?.name;
    const exited = e.stateExitedEventDetails?.name;
    if (entered) {
      const type = STATE_TYPE.exec(e.type ?? '')?.[1] ?? 'State';
      const step = steps.get(entered) ?? { name: entered, type, status: 'running', enteredAt: new Date(at).toISOString(), leftAt: null, seconds: 0, entries: 0 };
      step.entries += 1;
      step.open = at;
      step.status = 'running';
      steps.set(entered, step);
    } else if (exited) {
      const step = steps.get(exited);
      if (!step || step.open === undefined) continue;
      step.seconds += (at - step.open) / 1000;
      step.leftAt = new Date(at).toISOString();
      step.status = 'succeeded';
      delete step.open;
    }
  }
  const end = ended.stoppedAt?.getTime() ?? now.getTime();
  return [...steps.values()].map(({ open, ...step }) => {
    if (open !== undefined) step.seconds += Math.max(0, end - open) / 1000;
    if (failed.has(step.name)) step.status = 'failed';
    else if (open !== undefined && ended.status !== 'RUNNING') step.status = step.type === 'Succeed' ? 'succeeded' : 'stopped';
    step.seconds = Math.round(step.seconds * 1000) / 1000;
    return step;
  });
}

async function approvalOf(target: Target, name: string, arn: string, data: Partial<PipelineState> | undefined, waiting: boolean): Promise<RunView['approval']> {
  const a = data?.approval;
  if (a && (a.decision === 'approve' || a.decision === 'reject')) return { status: 'decided', decision: a.decision, by: a.by, at: a.at, comment: a.comment ?? null };
  if (!waiting) return null;
  const id = approvalId(arn);
  const record = await getApproval(id).catch(() => undefined);
  return {
    status: 'pending',
    expiresAt: record?.expiresAt ?? null,
    links: (target.mode === 'local' && target.stateDir ? localApprovalLinks(join(target.stateDir, 'notifications.jsonl'), arn) : undefined) ?? null,
    commands: { approve: `mlpipe approve ${name}`, reject: `mlpipe reject ${name}` },
  };
}

/** This run's version in production, decided by the registry (production.json), not by what the run once did. */
async function productionOf(data: Partial<PipelineState> | undefined, arn: string, running: boolean): Promise<RunView['production']> {
  const run = data?.run;
  const state = data?.production;
  if (!run || !state?.endpoint) return null;
  const record = await readProduction(run.modelName).catch(() => undefined);
  const released = record ? record.history.findIndex((h) => h.action === 'release' && h.executionArn === arn) : -1;
  // A retry keeps its run's version: the version serves for the run whose release is recorded.
  const releasedByAnother = record?.history.some((h) => h.action === 'release' && h.version === run.version && h.executionArn && h.executionArn !== arn) ?? false;
  if (record?.version === run.version && (released >= 0 || !releasedByAnother)) return { serving: true, endpoint: record.endpoint ?? state.endpoint, since: record.switchedAt };
  // Switched, and not recorded yet (RecordRelease comes after the switch; the registry may be unreadable).
  if (running && state.status === 'serving') return { serving: true, endpoint: state.endpoint, since: state.switchedAt ?? null };
  if (!record || released < 0) return null; // never released (or switched back by its own Cleanup): nothing to claim
  // What took over: the first later entry that put another version in.
  const after = record.history.slice(released + 1).find((h) => h.version !== run.version) ?? record.history.at(-1)!;
  return { serving: false, replacedBy: { version: after.version, action: after.action, at: after.at, by: after.by ?? null } };
}

async function trainingOf(data: Partial<PipelineState> | undefined, stoppedAt: Date | undefined, now: Date): Promise<RunView['training']> {
  const t = data?.training;
  if (!t?.submittedAt) return null;
  let progress: TrainingProgress | undefined;
  // Not completed: progress.json is fresher than the state's copy (one check old); a run that failed while
  // it trained shows how far the trainer got.
  if (t.status !== 'succeeded' && data?.run?.modelUri) progress = (await readProgress(data.run.modelUri).catch(() => undefined))?.progress;
  progress ??= t.progress;
  const until = t.completedAt ?? (stoppedAt ?? now).toISOString();
  return {
    status: t.status,
    jobName: t.jobName,
    submittedAt: t.submittedAt,
    completedAt: t.completedAt ?? null,
    seconds: secondsBetween(t.submittedAt, until) ?? null,
    progress: progress ?? null,
    metrics: t.metrics ?? null,
  };
}

/** The cost estimate the run recorded (`$.release.cost`), if it got that far; one that does not parse is left out. */
function costOf(data: Partial<PipelineState> | undefined): RunView['cost'] {
  const parsed = RunCostSchema.safeParse(data?.release?.cost);
  return parsed.success ? parsed.data : null;
}

/** Reads one run as a RunView. `now` is injectable so tests get exact durations. */
export async function readRunView(target: Target, executionArn: string, opts: { now?: Date } = {}): Promise<RunView> {
  const now = opts.now ?? new Date();
  const d = await describeRun(target, executionArn);
  const events = await runHistory(target, executionArn);
  const p = progressOf(events);
  const status = (RUN_STATUSES as readonly string[]).includes(d.status ?? '') ? (d.status as RunView['status']) : 'RUNNING';
  const running = status === 'RUNNING';
  const name = d.name ?? executionArn.split(':').pop()!;
  const started = d.startDate ?? now;
  const data = p.data;
  const run = data?.run;
  const production = await productionOf(data, executionArn, running);
  const stagingLive = running && data?.staging?.endpoint && !STAGING_GONE.some((s) => p.done.has(s) || p.current === s);
  return {
    name,
    executionArn,
    status,
    currentStep: running ? (p.current ?? null) : null,
    lastStep: p.last ?? null,
    startedAt: started.toISOString(),
    stoppedAt: d.stopDate?.toISOString() ?? null,
    seconds: Math.max(0, ((d.stopDate ?? now).getTime() - started.getTime()) / 1000),
    model: run?.modelName ?? null,
    version: run?.version ?? null,
    image: run?.image ?? null,
    imageDigest: run?.imageDigest ?? null,
    trigger: run?.trigger ?? null,
    steps: stepsOf(events, { status, ...(d.stopDate ? { stoppedAt: d.stopDate } : {}) }, p.failed, now),
    training: await trainingOf(data, d.stopDate, now),
    evaluation: data?.evaluation ?? null,
    staging: stagingLive ? { endpoint: data!.staging!.endpoint! } : null,
    production,
    monitor: production?.serving && run ? ((await readServingSnapshot(run.modelName).catch(() => undefined)) ?? null) : null,
    approval: await approvalOf(target, name, executionArn, data, running && p.current === 'RequestApproval'),
    error: errorLine(d.error, d.cause, name) ?? null,
    cost: costOf(data),
    consoleLink: target.consoleLink(executionArn) ?? null,
  };
}
