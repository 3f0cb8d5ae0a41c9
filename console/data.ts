/**
 * What the console shows, read through a Target (cli/target.ts): the runs (Step Functions ListExecutions
 * and each run's history), one run (cli/run-view.ts's RunView, the registry's manifest and evaluation report,
 * the training log through cli/commands/logs.ts), a model (cli/production-view.ts and the registry).
 * Reads only: console/read-only.ts makes sure of it for every client this process uses.
 */
import { DescribeStateMachineCommand, ListExecutionsCommand } from '@aws-sdk/client-sfn';
import { listVersions, readEvaluation, readManifest, type EvaluationReport, type ReleaseManifest } from '../functions/shared/registry';
import { buildGraph, parseAsl, type GraphModel } from '../cli/graph-model';
import { readRunView, type RunView } from '../cli/run-view';
import { readProductionView, type ProductionView } from '../cli/production-view';
import { readTrainingLog, type TrainingLog } from '../cli/commands/logs';
import { progressOf, resolveRun, runHistory } from '../cli/runs';
import type { Target } from '../cli/target';

/** One row of the runs list. */
export interface RunSummary {
  name: string;
  status: string;
  startedAt: string;
  stoppedAt: string | null;
  /** The state it is in (running) or ended in. */
  step: string | null;
  model: string | null;
  version: string | null;
}

/** A run waiting at RequestApproval, with what approves or rejects it. */
export interface PendingApproval {
  run: string;
  model: string | null;
  version: string | null;
  accuracy: number | null;
  expiresAt: string | null;
  links: { approve: string; reject: string } | null;
  commands: { approve: string; reject: string };
}

export interface RunsSnapshot {
  runs: RunSummary[];
  approvals: PendingApproval[];
}

export interface RunPage {
  view: RunView;
  /** The registry's manifest.json: lineage and decisions, once RecordRelease or RecordFailure wrote it. */
  manifest: ReleaseManifest | undefined;
  /** evaluation.json: the per-class numbers when the state leaves them out (a model with many classes). */
  report: EvaluationReport | undefined;
  log: TrainingLog | { error: string };
  /** What produced production.json's history entries about this run (rollbacks after it). */
  production: ProductionView | undefined;
}

export interface ModelPage {
  production: ProductionView;
  /** Every version in the registry, newest first, with its manifest's outcome when it has one. */
  versions: Array<{ version: string; status: string | null; accuracy: number | null; run: string | null; recordedAt: string | null }>;
}

/** How many runs the list reads (newest first). */
export const RUNS_LISTED = 50;
/** How many lines of the training log the run page shows. */
export const LOG_TAIL = 60;
/** How many versions the model page reads manifests for. */
const VERSIONS_LISTED = 30;

export class ConsoleData {
  /** Summaries of finished runs: they no longer change. */
  private readonly finished = new Map<string, RunSummary>();
  private graph: Promise<GraphModel> | undefined;

  constructor(readonly target: Target) {}

  /** The state machine's graph, read once (a deploy that changes it is seen after a restart of the console). */
  graphModel(): Promise<GraphModel> {
    this.graph ??= this.target.sfn
      .send(new DescribeStateMachineCommand({ stateMachineArn: this.target.stateMachineArn }))
      .then(({ definition }) => buildGraph(parseAsl(definition)));
    this.graph.catch(() => (this.graph = undefined));
    return this.graph;
  }

  async runs(): Promise<RunsSnapshot> {
    const { executions = [] } = await this.target.sfn.send(new ListExecutionsCommand({ stateMachineArn: this.target.stateMachineArn, maxResults: RUNS_LISTED }));
    const runs = await Promise.all(
      executions.map(async (e): Promise<RunSummary> => {
        const arn = e.executionArn!;
        const known = this.finished.get(arn);
        if (known) return known;
        const p = progressOf(await runHistory(this.target, arn));
        const summary: RunSummary = {
          name: e.name ?? arn.split(':').pop()!,
          status: e.status ?? 'UNKNOWN',
          startedAt: e.startDate?.toISOString() ?? '',
          stoppedAt: e.stopDate?.toISOString() ?? null,
          step: (e.status === 'RUNNING' ? p.current : undefined) ?? p.last ?? null,
          model: p.data?.run?.modelName ?? null,
          version: p.data?.run?.version ?? null,
        };
        if (summary.status !== 'RUNNING') this.finished.set(arn, summary);
        return summary;
      }),
    );
    const waiting = runs.filter((r) => r.status === 'RUNNING' && r.step === 'RequestApproval');
    const approvals = await Promise.all(
      waiting.map(async (r): Promise<PendingApproval | undefined> => {
        const view = await readRunView(this.target, await resolveRun(this.target, r.name));
        if (view.approval?.status !== 'pending') return undefined;
        return {
          run: r.name,
          model: view.model,
          version: view.version,
          accuracy: view.evaluation?.accuracy ?? null,
          expiresAt: view.approval.expiresAt,
          links: view.approval.links,
          commands: view.approval.commands,
        };
      }),
    );
    return { runs, approvals: approvals.filter((a): a is PendingApproval => a !== undefined) };
  }

  async run(name: string): Promise<RunPage> {
    const arn = await resolveRun(this.target, name);
    const view = await readRunView(this.target, arn);
    const model = view.model;
    const version = view.version;
    const [manifest, report, log, production] = await Promise.all([
      model && version ? readManifest(model, version).catch(() => undefined) : undefined,
      model && version && view.evaluation ? readEvaluation(model, version).catch(() => undefined) : undefined,
      view.training ? readTrainingLog(this.target, arn, LOG_TAIL).catch((err: Error) => ({ error: err.message })) : { error: 'The run has not started training.' },
      model ? readProductionView(this.target, model).catch(() => undefined) : undefined,
    ]);
    return { view, manifest, report, log, production };
  }

  async model(model: string): Promise<ModelPage> {
    const production = await readProductionView(this.target, model);
    const all = (await listVersions(model)).reverse().slice(0, VERSIONS_LISTED);
    const versions = await Promise.all(
      all.map(async (version) => {
        const m = await readManifest(model, version).catch(() => undefined);
        return { version, status: m?.status ?? null, accuracy: m?.evaluation?.accuracy ?? null, run: m?.execution.name ?? null, recordedAt: m?.recordedAt ?? null };
      }),
    );
    return { production, versions };
  }
}
