/**
 * Live traffic during every production rollout of the local state machine, whoever started the run: the
 * run `npm start` started, one `mlpipe run` started while it serves, a retry link's. Once a run's
 * DeployProduction has succeeded, if production.json names an endpoint (a version serves), a
 * TrafficGenerator (local/traffic.ts) sends held-out images there until the run ends, so the canary's
 * analysis has requests to judge; each canary step's window of it is kept, and every analysis reported
 * with what the servers counted next to what the client saw.
 *
 *   const rollouts = watchRolloutTraffic(sfn, { ratePerSecond: 20, productionRecord, reporterFor });
 *   const done = rollouts.track(executionArn, printer);   // a run whose report goes to its own printer
 *   …; const seen = await done();                         // after it ended: what the generator saw
 *   await rollouts.stop();                                // every generator, when the pipeline stops
 *
 * One generator per model at a time: DeployProduction refuses a second canary while one splits the
 * model's traffic (CanaryError), so that run never gets one; and should two rollouts of a model overlap
 * anyway, the second sends none of its own (its requests would double the first's load and tally it twice).
 */
import { statsText } from '../functions/shared/canary';
import type { ProductionRecord } from '../functions/shared/registry';
import type { CanaryState, PipelineState } from '../functions/shared/types';
import type { ExecutionEvent, LocalStepFunctions } from './stepfunctions';
import { TrafficGenerator, type TrafficSnapshot } from './traffic';

/** The generator's view of a rollout: all of it, each canary step's window, and what came after a rollback. */
export interface RolloutTraffic {
  endpoint: string;
  /** Every request sent during the rollout (from DeployProduction to the end of the run). */
  total: TrafficSnapshot;
  steps: Array<{ step: number; weight: number; canaryReplicas: number; totalReplicas: number; verdict?: string; snapshot: TrafficSnapshot }>;
  /** Requests sent after AbortCanary put the stable version back (a failed canary only). */
  afterRollback?: TrafficSnapshot;
  /** A failed canary: from the first request that failed to the stable version back at 100 % (AbortCanary done), in ms. */
  firstErrorToRollbackMs?: number;
}

/** Where a rollout's traffic is told: the own run's printer, or the prefixed lines of a followed run. */
export interface RolloutReporter {
  note(text: string): void;
  /** One canary analysis with the client's view of its step (canaryLines says what). */
  canary(c: CanaryState, step: number, version: string, stepCount: number, client: TrafficSnapshot): void;
}

export interface RolloutTrafficOptions {
  /** Requests per second; undefined: no traffic (runs still report nothing and end normally). */
  ratePerSecond: number | undefined;
  /** What serves the model in production now (production.json), undefined when nothing does. */
  productionRecord(modelName: string): Promise<ProductionRecord | undefined>;
  /** The reporter of a run nobody tracked (a run this process did not start). */
  reporterFor(executionName: string): RolloutReporter;
  /** The requests' images (784 bytes each); @default the held-out Fashion-MNIST test set (TrafficGenerator). */
  images?: Uint8Array;
  /** The model's endpoint token (the local secrets store's), undefined when endpoints need none. */
  endpointToken?(modelName: string): Promise<string | undefined>;
}

export interface RolloutTrafficWatcher {
  /**
   * Reports the run's rollout to `reporter` instead of reporterFor's; returns the function that, once the
   * run has ended, stops its generator (if still running) and gives what it saw (undefined: none ran).
   */
  track(executionArn: string, reporter: RolloutReporter): () => Promise<RolloutTraffic | undefined>;
  /** Stops following the engine and every generator (the pipeline's stop). */
  stop(): Promise<void>;
}

/** The lines of one canary analysis: the step, the servers' counts per version (the verdict's evidence) and the client's view. */
export function canaryLines(c: CanaryState, step: number, version: string, stepCount: number, client: TrafficSnapshot): string[] {
  // `step` is the step analysed: when the analysis passed it, `c` is already at the next step (or
  // promoted) and the step's record holds the evidence; else `c`'s own.
  const ended = c.step !== step || c.status === 'promote' ? c.steps.at(-1) : undefined;
  const e = ended ? ended.evidence : c.last;
  if (!e) return [];
  const at = ended ?? c;
  const served = e.servedShare === null ? 'n/a' : `${(e.servedShare * 100).toFixed(0)} %`;
  const lines = [
    `canary step ${step + 1}/${stepCount} ${at.weight} % (${at.canaryReplicas} of ${c.totalReplicas} pods = ${at.reachablePercent} % reachable), analysis ${at.analyses}: ${e.verdict.toUpperCase()}, served ${served}`,
    `  canary ${version}: ${statsText(e.canary)}`,
    `  stable ${c.stableVersion}: ${e.stable ? statsText(e.stable) : 'n/a'}`,
  ];
  const seen = [
    ...Object.entries(client.byVersion).map(([v, t]) => `${v} ${t.ok} ok/${t.failed} failed`),
    ...(client.inFlight ? [`${client.inFlight} in flight`] : []),
  ].join(', ');
  if (seen) lines.push(`  client view this step: ${seen}`);
  if (e.verdict !== 'pass') lines.push(`  ${e.reasons.join('; ')}`);
  return lines;
}

/** A reporter writing one prefixed line per note, as `npm start` prints the runs it follows (local/stepfunctions/follow.ts). */
export function lineReporter(log: (line: string) => void, prefix: string): RolloutReporter {
  const note = (text: string) => log(`${prefix}${text}`);
  return { note, canary: (...args) => canaryLines(...args).forEach(note) };
}

function parse(text: string | undefined): Partial<PipelineState> | undefined {
  try {
    const v = JSON.parse(text ?? '') as unknown;
    return v && typeof v === 'object' ? (v as Partial<PipelineState>) : undefined;
  } catch {
    return undefined;
  }
}

const ENDED = new Set(['ExecutionSucceeded', 'ExecutionFailed', 'ExecutionAborted', 'ExecutionTimedOut']);

/** Follows every execution of `sfn` and gives each production rollout its traffic (see the file's comment). */
export function watchRolloutTraffic(sfn: LocalStepFunctions, opts: RolloutTrafficOptions): RolloutTrafficWatcher {
  const watches = new Map<string, RolloutWatch>();
  const reporters = new Map<string, RolloutReporter>();
  /** model name → the run whose generator sends its production traffic. */
  const sending = new Map<string, string>();
  const ended = new Map<string, Promise<RolloutTraffic | undefined>>();

  /** Generators stopping (a run ended): the watcher's stop waits for them too. */
  const stopping = new Set<Promise<unknown>>();
  const end = (arn: string): Promise<RolloutTraffic | undefined> => {
    const w = watches.get(arn);
    if (!w) return Promise.resolve(undefined);
    watches.delete(arn);
    // The model's slot is free at once: this generator sends nothing new, only waits for its last answers.
    for (const [model, holder] of sending) if (holder === arn) sending.delete(model);
    const result = w.stop().finally(() => stopping.delete(result));
    stopping.add(result);
    return result;
  };

  const onEvent = (e: ExecutionEvent) => {
    const arn = e.executionArn;
    if (ENDED.has(e.type)) {
      const result = end(arn);
      // Kept only for a tracked run: its caller collects it; nobody asks for a followed run's.
      if (reporters.has(arn)) ended.set(arn, result);
      return;
    }
    if (!e.type.endsWith('StateExited') || !e.stateName) return;
    const s = parse(e.event.stateExitedEventDetails?.output);
    if (e.stateName === 'DeployProduction') {
      // Its output has `production.rollout` only when it succeeded (a Catch's output has the error instead):
      // a run DeployProduction refused (another canary splits the traffic) starts nothing.
      const modelName = s?.run?.modelName;
      if (!s?.production?.rollout || !modelName || opts.ratePerSecond === undefined || watches.has(arn)) return;
      const reporter = reporters.get(arn) ?? opts.reporterFor(e.executionName);
      const holder = sending.get(modelName);
      if (holder) {
        reporter.note(`traffic   none of its own: the rollout of ${holder.split(':').pop()} sends ${modelName}'s production traffic`);
        return;
      }
      sending.set(modelName, arn);
      const w = new RolloutWatch(reporter);
      watches.set(arn, w);
      void w.start(modelName, { ...opts, ratePerSecond: opts.ratePerSecond });
      return;
    }
    watches.get(arn)?.exited(e.stateName, s);
  };
  sfn.on('event', onEvent);

  return {
    track(executionArn, reporter) {
      reporters.set(executionArn, reporter);
      return async () => {
        // The run's end event may still be on its way when its caller's wait resolves: end it here too.
        const result = await (ended.get(executionArn) ?? end(executionArn));
        ended.delete(executionArn);
        reporters.delete(executionArn);
        return result;
      };
    },
    async stop() {
      sfn.off('event', onEvent);
      await Promise.all([...[...watches.keys()].map(end), ...stopping]);
    },
  };
}

/**
 * One run's rollout: its generator, each canary step's window of it, and each analysis reported with what
 * the servers counted (share served, requests, error rate, p95 per version) next to what the client saw.
 */
class RolloutWatch {
  private generator: TrafficGenerator | undefined;
  private endpoint: string | undefined;
  private starting: Promise<void> | undefined;
  private readonly steps: Array<RolloutTraffic['steps'][number] & { since: number; until?: number }> = [];
  private rolledBackAt: number | undefined;
  private result: Promise<RolloutTraffic | undefined> | undefined;

  constructor(private readonly reporter: RolloutReporter) {}

  start(modelName: string, opts: RolloutTrafficOptions & { ratePerSecond: number }): Promise<void> {
    this.starting ??= (async () => {
      const record = await opts.productionRecord(modelName).catch(() => undefined);
      if (!record?.endpoint || this.result) return; // a first release (nothing serves yet), or the run already ended
      this.endpoint = record.endpoint;
      const { ratePerSecond, images } = opts;
      const token = await opts.endpointToken?.(modelName);
      this.generator = new TrafficGenerator({ url: record.endpoint, modelName, ratePerSecond, ...(images ? { images } : {}), ...(token === undefined ? {} : { token }) });
      this.generator.start();
      this.reporter.note(`traffic   ${ratePerSecond} requests/s of held-out images to production ${record.endpoint} (serving ${record.version}) during the rollout`);
    })().catch((err: Error) => this.reporter.note(`traffic   not started: ${err.message}`));
    return this.starting;
  }

  exited(state: string, s: Partial<PipelineState> | undefined): void {
    const g = this.generator;
    const c = s?.canary;
    if (!g || !c) return;
    const open = this.steps.at(-1);
    if (state === 'ShiftCanaryTraffic' && c.status === 'baking' && (!open || open.step !== c.step || open.until !== undefined)) {
      this.steps.push({ step: c.step, weight: c.weight, canaryReplicas: c.canaryReplicas, totalReplicas: c.totalReplicas, since: g.now(), snapshot: g.snapshot({ since: g.now() }) });
    }
    if (state === 'AnalyzeCanary' && open && open.until === undefined) {
      open.snapshot = g.snapshot({ since: open.since });
      open.verdict = c.last?.verdict;
      this.reporter.canary(c, open.step, s?.run?.version ?? '?', s?.run?.rollout?.steps.length ?? 0, open.snapshot);
      if (c.status !== 'baking') open.until = g.now();
    }
    if (state === 'AbortCanary' && this.rolledBackAt === undefined) {
      const at = (this.rolledBackAt = g.now());
      const first = g.snapshot().failures[0];
      // After the run's own printer has said the canary rolled back (it hears the same event later).
      if (first) queueMicrotask(() => this.reporter.note(`stable at 100 % again ${((at - first.sentAt) / 1000).toFixed(1)} s after the canary's first failed request`));
    }
  }

  /** Stops the generator (once) and gives what it saw; undefined when it never ran. */
  stop(): Promise<RolloutTraffic | undefined> {
    this.result ??= (async () => {
      await this.starting;
      const g = this.generator;
      if (!g || !this.endpoint) return undefined;
      this.generator = undefined;
      await g.stop();
      // Every step's window, now that each request sent in it is answered (at its analysis some were still
      // in flight): a step closed by its last analysis ends there; the one still open runs to the end.
      for (const step of this.steps) step.snapshot = g.snapshot({ since: step.since, ...(step.until === undefined ? {} : { until: step.until }) });
      const firstFailure = g.snapshot().failures[0];
      return {
        ...(this.rolledBackAt !== undefined && firstFailure && firstFailure.sentAt < this.rolledBackAt
          ? { firstErrorToRollbackMs: Math.round(this.rolledBackAt - firstFailure.sentAt) }
          : {}),
        endpoint: this.endpoint,
        total: g.snapshot(),
        steps: this.steps.map(({ since: _s, until: _u, ...step }) => step),
        ...(this.rolledBackAt !== undefined ? { afterRollback: g.snapshot({ since: this.rolledBackAt }) } : {}),
      };
    })();
    return this.result;
  }
}
