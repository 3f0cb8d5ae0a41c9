/**
 * Moving the wall clock (Date) forward in a test instead of sleeping until a deadline passes. Only Date is
 * faked: timers, ticks and microtasks stay real, so the local servers in the test process (s3rver, the
 * approval page, the Step Functions endpoint) keep running as they do.
 */
const REAL_TIMERS = [
  'hrtime', 'nextTick', 'performance', 'queueMicrotask', 'requestAnimationFrame', 'cancelAnimationFrame', 'requestIdleCallback',
  'cancelIdleCallback', 'setImmediate', 'clearImmediate', 'setInterval', 'clearInterval', 'setTimeout', 'clearTimeout',
] as const;

/** Runs `fn` with Date `ms` milliseconds ahead of now, then puts the real clock back. */
export async function withClockAhead<T>(ms: number, fn: () => Promise<T>): Promise<T> {
  const now = Date.now();
  jest.useFakeTimers({ doNotFake: [...REAL_TIMERS], now: now + ms });
  try {
    return await fn();
  } finally {
    jest.useRealTimers();
  }
}
