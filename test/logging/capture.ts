/**
 * Captures what the handlers' logger (functions/shared/logger.ts) writes. Powertools writes to
 * process.stdout / process.stderr through its own Console, not through the global console, so this
 * listens on the streams: lines of the `mlpipe` service are kept (and kept out of the test output), anything
 * else passes through.
 */
export interface LogLine {
  level: string;
  message: string;
  service: string;
  timestamp: string;
  executionName?: string;
  model?: string;
  version?: string;
  state?: string;
  [key: string]: unknown;
}

export interface CapturedLogs {
  /** Parsed lines, in order, with the stream each went to. */
  readonly lines: Array<LogLine & { stream: 'stdout' | 'stderr' }>;
  /** The exact text written, for searching secrets in what would reach CloudWatch. */
  readonly text: () => string;
  clear(): void;
  restore(): void;
}

function parse(chunk: string): LogLine | undefined {
  try {
    const value = JSON.parse(chunk) as unknown;
    return value !== null && typeof value === 'object' && (value as LogLine).service === 'mlpipe' ? (value as LogLine) : undefined;
  } catch {
    return undefined;
  }
}

export function captureLogs(): CapturedLogs {
  const lines: CapturedLogs['lines'][number][] = [];
  const raw: string[] = [];
  const spies = (['stdout', 'stderr'] as const).map((name) => {
    const stream = process[name];
    const original = stream.write.bind(stream) as (...args: unknown[]) => boolean;
    return jest.spyOn(stream, 'write').mockImplementation(((chunk: unknown, ...rest: unknown[]) => {
      const text = typeof chunk === 'string' ? chunk : Buffer.isBuffer(chunk) ? chunk.toString('utf8') : undefined;
      const line = text === undefined ? undefined : parse(text);
      if (!line) return original(chunk, ...rest);
      raw.push(text!);
      lines.push({ ...line, stream: name });
      // Console passes a callback for write errors; call it like a stream would.
      const callback = rest.find((r) => typeof r === 'function') as (() => void) | undefined;
      callback?.();
      return true;
    }) as typeof stream.write);
  });
  return {
    lines,
    text: () => raw.join(''),
    clear() {
      lines.length = 0;
      raw.length = 0;
    },
    restore() {
      spies.forEach((s) => s.mockRestore());
    },
  };
}
