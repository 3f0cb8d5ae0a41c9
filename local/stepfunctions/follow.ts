/**
 * `npm start` follows every run of its state machine, not only the one it started: a run started by
 * `mlpipe run` (or a retry link) is printed compactly as it goes — each step once, its version, the
 * approval links when it waits for a decision, how it ended — one line each, prefixed with the run's name.
 * The run `npm start` itself started has its own, detailed printer (local/pipeline.ts), so it is skipped.
 * A followed run's rollout traffic and canary analyses come from local/rollout-traffic.ts, in the same
 * prefixed lines (the local pipeline gives every run its traffic, whether or not anything follows it).
 */
import { randomBytes } from 'node:crypto';
import { describeCause } from '../../functions/shared/outcome';
import { localApprovalLinks } from '../approval-links';
import type { LocalStepFunctions } from './engine';
import type { ExecutionEvent } from './model';

export interface FollowOptions {
  log(line: string): void;
  /** Runs printed elsewhere (by name). */
  skip(name: string): boolean;
  /** The local "email" log, for approval links. */
  notificationsFile: string;
}

/** A name for a run `npm start` starts: readable in `mlpipe list`, and known before it starts (so it can be skipped here). */
export function localRunName(now = new Date()): string {
  const t = now.toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
  return `local-${t}-${randomBytes(3).toString('hex')}`;
}

function parse(text: string | undefined): Record<string, unknown> | undefined {
  try {
    const v = JSON.parse(text ?? '') as unknown;
    return v && typeof v === 'object' ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** Starts following; returns the function that stops it. */
export function followExecutions(sfn: LocalStepFunctions, opts: FollowOptions): () => void {
  const last = new Map<string, string>();
  const started = new Map<string, number>();
  const onEvent = (e: ExecutionEvent) => {
    const name = e.executionName;
    if (opts.skip(name)) return;
    const say = (text: string) => opts.log(`[${name}] ${text}`);
    const at = e.timestamp.getTime();
    const took = () => `${((at - (started.get(name) ?? at)) / 1000).toFixed(1)} s`;
    const ev = e.event;
    switch (e.type) {
      case 'ExecutionStarted': {
        started.set(name, at);
        const input = parse(ev.executionStartedEventDetails?.input);
        const trigger = input?.trigger as { source?: string; detail?: { by?: string } } | undefined;
        say(`started: ${String(input?.image ?? '')}${trigger?.source ? ` (${trigger.source}${trigger.detail?.by ? ` by ${trigger.detail.by}` : ''})` : ''}`);
        return;
      }
      case 'ExecutionSucceeded':
        say(`✓ SUCCEEDED in ${took()}`);
        break;
      case 'ExecutionFailed':
      case 'ExecutionAborted':
      case 'ExecutionTimedOut': {
        const d = ev.executionFailedEventDetails ?? ev.executionAbortedEventDetails ?? ev.executionTimedOutEventDetails;
        const why = [d?.error, describeCause(d?.cause)?.split('\n')[0]?.slice(0, 200)].filter(Boolean).join(': ');
        say(`✗ ${e.type.replace('Execution', '').replace('TimedOut', 'TIMED_OUT').toUpperCase()} after ${took()}${why ? ` — ${why}` : ''}`);
        break;
      }
      default:
        break;
    }
    if (e.type.startsWith('Execution')) {
      last.delete(name);
      started.delete(name);
      return;
    }
    const state = e.stateName;
    if (!state) return;
    // Each step once: Choices are decisions, and a wait loop re-enters the same states.
    if (e.type.endsWith('StateEntered') && e.type !== 'ChoiceStateEntered' && last.get(name) !== state) {
      last.set(name, state);
      say(`▶ ${state}`);
    }
    if (e.type === 'TaskStateExited' && state === 'Prepare') {
      const run = parse(ev.stateExitedEventDetails?.output)?.run as { modelName?: string; version?: string } | undefined;
      if (run?.version) say(`  ${run.modelName} ${run.version}`);
    }
    // The approval request has been sent (the handler returned): its links are in the local "email".
    if (e.type === 'TaskSubmitted' && state === 'RequestApproval') {
      const links = localApprovalLinks(opts.notificationsFile, e.executionArn);
      say(`  waits for approval: npm run mlpipe -- approve ${name}   (or: reject ${name})`);
      if (links) {
        say(`  approve  ${links.approve}`);
        say(`  reject   ${links.reject}`);
      }
    }
  };
  sfn.on('event', onEvent);
  return () => sfn.off('event', onEvent);
}
