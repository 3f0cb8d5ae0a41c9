/**
 * The FAULT setting of a model server (`error-rate=0.2,latency-ms=50`): a drill / game-day knob that
 * makes a deliberately bad candidate, so a canary's automatic rollback can be seen working. One grammar
 * for both sides: the run input's `rollout.candidateFault` is checked with it before anything is
 * deployed, and the example server (examples/fashion-mnist/serve.ts, whose image copies this file) reads
 * its env `FAULT` with it. Only the production CANDIDATE's pods get it, never staging or the stable version.
 *
 * - error-rate=<0..1>: that fraction of prediction requests answer 500, spread evenly (request n fails
 *   when ⌊n·rate⌋ goes up), so a drill fails exactly that share and is reproducible;
 * - latency-ms=<0..60000>: every prediction request is answered that much later.
 * Both optional, each at most once; an empty value means no fault.
 */

export interface Fault {
  /** Fraction of prediction requests that answer 500 (0..1). */
  errorRate: number;
  /** Delay added to every prediction request, in ms. */
  latencyMs: number;
}

export const NO_FAULT: Fault = { errorRate: 0, latencyMs: 0 };

/** The most latency a fault may add: beyond a minute a request times out anyway. */
export const MAX_FAULT_LATENCY_MS = 60_000;

/** A FAULT value that does not follow the grammar; the message says which part and why. */
export class FaultSpecError extends Error {
  override readonly name = 'FaultSpecError';
}

/** Parses a FAULT value (see module comment); throws FaultSpecError naming the offending part. */
export function parseFault(spec: string | undefined): Fault {
  const text = (spec ?? '').trim();
  if (text === '') return { ...NO_FAULT };
  const fault = { ...NO_FAULT };
  const seen = new Set<string>();
  for (const part of text.split(',')) {
    const m = /^\s*([a-z-]+)\s*=\s*(\S+)\s*$/.exec(part);
    if (!m) throw new FaultSpecError(`"${part.trim()}" is not key=value (expected e.g. "error-rate=0.2,latency-ms=50")`);
    const [, key, raw] = m as unknown as [string, string, string];
    if (seen.has(key)) throw new FaultSpecError(`${key} is given twice`);
    seen.add(key);
    const value = /^(\d+(\.\d*)?|\.\d+)$/.test(raw) ? Number(raw) : Number.NaN;
    if (key === 'error-rate') {
      if (!(value >= 0 && value <= 1)) throw new FaultSpecError(`error-rate must be a fraction between 0 and 1, not "${raw}"`);
      fault.errorRate = value;
    } else if (key === 'latency-ms') {
      if (!Number.isInteger(value) || value > MAX_FAULT_LATENCY_MS) {
        throw new FaultSpecError(`latency-ms must be a whole number of milliseconds from 0 to ${MAX_FAULT_LATENCY_MS}, not "${raw}"`);
      }
      fault.latencyMs = value;
    } else {
      throw new FaultSpecError(`unknown fault "${key}" (known: error-rate, latency-ms)`);
    }
  }
  return fault;
}

/** The canonical text of a fault (`error-rate=0.2,latency-ms=50`); '' for none. */
export function formatFault(fault: Fault): string {
  const parts: string[] = [];
  if (fault.errorRate > 0) parts.push(`error-rate=${fault.errorRate}`);
  if (fault.latencyMs > 0) parts.push(`latency-ms=${fault.latencyMs}`);
  return parts.join(',');
}

/**
 * Decides request by request whether to fail, spreading `errorRate` evenly: request n (1, 2, …) fails
 * when ⌊n·rate⌋ > ⌊(n−1)·rate⌋, so after any n requests exactly ⌊n·rate⌋ have failed.
 */
export class FaultInjector {
  private served = 0;
  constructor(readonly fault: Fault) {}

  get active(): boolean {
    return this.fault.errorRate > 0 || this.fault.latencyMs > 0;
  }

  /** Counts one request; true when it is one to fail. */
  nextFails(): boolean {
    const n = ++this.served;
    return Math.floor(n * this.fault.errorRate + 1e-9) > Math.floor((n - 1) * this.fault.errorRate + 1e-9);
  }
}
