/**
 * Runs the template's functions like Lambda does, one worker thread per "container": the function's own
 * bundle, its own `process.env` — exactly the template's Environment plus what Lambda's runtime adds
 * (region, function name and memory, credentials) and the local endpoints that stand in for AWS — its
 * Timeout enforced, and its stdout/stderr (JSON log lines) handed to a log sink. A container stays warm
 * between invocations; concurrent invocations get containers of their own.
 */
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { createInterface } from 'node:readline';
import { handlerFile, type LocalStack, type TemplateFunction } from './template';

/** What a Lambda error looks like to its caller (Invoke's payload with X-Amz-Function-Error). */
export interface LambdaErrorPayload {
  errorType: string;
  errorMessage: string;
  trace: string[];
}

/** A failed invocation, named after the function's error type so Step Functions Retry/Catch match it. */
export class LambdaInvocationError extends Error {
  constructor(readonly payload: LambdaErrorPayload) {
    super(payload.errorMessage);
    this.name = payload.errorType;
    this.stack = payload.trace.length ? payload.trace.join('\n') : `${payload.errorType}: ${payload.errorMessage}`;
  }
}

export interface LocalLambdaOptions {
  stack: LocalStack;
  /**
   * Added to every function: what Lambda's runtime gives a function (credentials) and the local
   * endpoints that stand in for AWS (AWS_ENDPOINT_URL_*).
   */
  runtimeEnv: Record<string, string>;
  /** Added only to functions that reach the cluster (those whose template environment names CLUSTER_NAME). */
  clusterEnv?: Record<string, string>;
  /** Each line a function writes to stdout or stderr. */
  onLog?: (fn: TemplateFunction, line: string, stream: 'stdout' | 'stderr') => void;
  /**
   * A directory for V8's compile cache of the bundles (node:module enableCompileCache: entries named by the
   * file's path, checked against its content): a repeat run's containers then load their bundles without compiling them again. Measured:
   * loading the 24 bundles in workers took 8.4-9.0 s of CPU without it, 6.4-7.0 s with it.
   */
  compileCacheDir?: string;
}

interface Pending {
  resolve(payload: string): void;
  reject(err: Error): void;
}

const BOOTSTRAP = join(__dirname, 'bootstrap.cjs');

/** One warm container: a worker that has loaded (or failed to load) the function's bundle. */
class Container {
  readonly worker: Worker;
  private readonly pending = new Map<string, Pending>();
  busy = false;
  dead = false;
  /** Resolves once the bundle's init is over (loaded or failed) or the worker has gone. */
  readonly initialized: Promise<void>;
  private initDone!: () => void;

  constructor(readonly fn: TemplateFunction, env: Record<string, string>, onLog: LocalLambdaOptions['onLog'], compileCacheDir?: string) {
    this.initialized = new Promise<void>((r) => (this.initDone = r));
    const { file, exportName } = handlerFile(fn);
    // NODE_OPTIONS in a worker's env is applied as the worker's own options: with the template's
    // --enable-source-maps Node read every bundle's map at load and mapped its traces itself, so
    // lazy-source-maps.cjs (bootstrap.cjs) went unused. That flag alone is kept from the worker (its other
    // flags still apply, as on Lambda); bootstrap.cjs puts the whole value back into the function's process.env.
    const { NODE_OPTIONS: nodeOptions, ...workerEnv } = env;
    const otherOptions = nodeOptions?.split(/\s+/).filter((flag) => flag && flag !== '--enable-source-maps').join(' ');
    if (otherOptions) workerEnv.NODE_OPTIONS = otherOptions;
    this.worker = new Worker(BOOTSTRAP, {
      env: workerEnv,
      workerData: { file, exportName, arn: fn.arn, compileCacheDir, nodeOptions },
      // No loader from the parent (tsx, jest): a bundle runs on plain Node, as on Lambda.
      execArgv: [],
      stdout: true,
      stderr: true,
      // The function's memory as its heap limit: a bundle that needs more than its MemorySize fails here too.
      resourceLimits: { maxOldGenerationSizeMb: fn.memoryMb },
      name: fn.name,
    });
    for (const stream of ['stdout', 'stderr'] as const) {
      createInterface({ input: this.worker[stream] }).on('line', (line) => onLog?.(fn, line, stream));
    }
    this.worker.on('message', (msg: { id: string; payload?: string; error?: LambdaErrorPayload; init?: boolean; initDone?: boolean }) => {
      if (msg.initDone) return this.initDone();
      const p = this.pending.get(msg.id);
      if (!p) return;
      this.pending.delete(msg.id);
      if (msg.init) this.dead = true; // Lambda re-initializes after an init error
      if (msg.error) p.reject(new LambdaInvocationError(msg.error));
      else p.resolve(msg.payload ?? 'null');
    });
    const fail = (payload: LambdaErrorPayload) => {
      this.dead = true;
      this.initDone();
      for (const p of this.pending.values()) p.reject(new LambdaInvocationError(payload));
      this.pending.clear();
    };
    this.worker.on('error', (err) => fail({ errorType: 'Runtime.ExitError', errorMessage: `RequestId: the container exited: ${err.message}`, trace: (err.stack ?? '').split('\n') }));
    this.worker.on('exit', (code) => fail({ errorType: 'Runtime.ExitError', errorMessage: `the container exited with code ${code}`, trace: [] }));
  }

  invoke(payload: string): Promise<string> {
    const id = randomUUID();
    const timeoutMs = this.fn.timeoutSeconds * 1000;
    const started = Date.now();
    return new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => {
        // Lambda freezes and discards a timed-out container; so does this.
        this.pending.delete(id);
        this.dead = true;
        void this.worker.terminate();
        const seconds = ((Date.now() - started) / 1000).toFixed(2);
        reject(new LambdaInvocationError({ errorType: 'Sandbox.Timedout', errorMessage: `RequestId: ${id} Error: Task timed out after ${seconds} seconds`, trace: [] }));
      }, timeoutMs);
      this.pending.set(id, {
        resolve: (v) => (clearTimeout(timer), resolve(v)),
        reject: (e) => (clearTimeout(timer), reject(e)),
      });
      this.worker.postMessage({ id, payload, requestId: id, deadlineMs: started + timeoutMs });
    });
  }
}

export class LocalLambdaRuntime {
  private readonly containers = new Map<string, Container[]>();
  private stopped = false;

  constructor(private readonly opts: LocalLambdaOptions) {}

  /** The environment a function's container gets: the template's, then the runtime's additions. */
  environmentOf(fn: TemplateFunction): Record<string, string> {
    const { region } = this.opts.stack.resources;
    const reachesCluster = 'CLUSTER_NAME' in fn.environment;
    return {
      ...fn.environment,
      // What Lambda's runtime sets (https://docs.aws.amazon.com/lambda/latest/dg/configuration-envvars.html#configuration-envvars-runtime).
      AWS_REGION: region,
      AWS_DEFAULT_REGION: region,
      AWS_EXECUTION_ENV: `AWS_Lambda_${fn.runtime}`,
      AWS_LAMBDA_FUNCTION_NAME: fn.name,
      AWS_LAMBDA_FUNCTION_MEMORY_SIZE: String(fn.memoryMb),
      AWS_LAMBDA_FUNCTION_VERSION: '$LATEST',
      AWS_LAMBDA_LOG_GROUP_NAME: fn.logGroupName,
      AWS_LAMBDA_LOG_STREAM_NAME: `local/[$LATEST]${fn.logicalId}`,
      ...(fn.logFormat ? { AWS_LAMBDA_LOG_FORMAT: fn.logFormat } : {}),
      ...(fn.applicationLogLevel ? { AWS_LAMBDA_LOG_LEVEL: fn.applicationLogLevel } : {}),
      ...(fn.codeDir ? { LAMBDA_TASK_ROOT: fn.codeDir } : {}),
      TZ: ':UTC',
      LANG: 'en_US.UTF-8',
      PATH: process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin',
      ...this.opts.runtimeEnv,
      ...(reachesCluster ? this.opts.clusterEnv : {}),
    };
  }

  /** Invokes a function by logical id, name or ARN with a JSON-serializable event; resolves to its result. */
  async invoke(nameOrArn: string, event: unknown): Promise<unknown> {
    const payload = await this.invokeRaw(nameOrArn, JSON.stringify(event ?? null));
    return JSON.parse(payload) as unknown;
  }

  /** Invoke with a JSON payload string, as the Lambda Invoke API does. */
  async invokeRaw(nameOrArn: string, payload: string): Promise<string> {
    if (this.stopped) throw new Error('the local Lambda runtime is stopped');
    const fn = this.opts.stack.findFunction(nameOrArn);
    if (!fn) throw new FunctionNotFoundError(`Function not found: ${nameOrArn}`);
    const container = this.acquire(fn);
    try {
      return await container.invoke(payload);
    } finally {
      container.busy = false;
      if (container.dead) this.discard(container);
    }
  }

  private acquire(fn: TemplateFunction): Container {
    const pool = this.containers.get(fn.logicalId) ?? [];
    this.containers.set(fn.logicalId, pool);
    let container = pool.find((c) => !c.busy && !c.dead);
    if (!container) {
      container = new Container(fn, this.environmentOf(fn), this.opts.onLog, this.opts.compileCacheDir);
      pool.push(container);
    }
    container.busy = true;
    return container;
  }

  private discard(container: Container): void {
    const pool = this.containers.get(container.fn.logicalId) ?? [];
    this.containers.set(container.fn.logicalId, pool.filter((c) => c !== container));
    void container.worker.terminate();
  }

  /**
   * Starts a container for each of these functions, in this order (put the first needed first), so their
   * cold starts are spent ahead of their first invocations. One bundle loads at a time: loading them all at
   * once made every one of them, the first state's included, wait for all (measured: Prepare took 4.7 s
   * of a repeat local run, its own work well under 0.5 s), and took the CPU the run itself needed.
   * Resolves when all are loaded (or the runtime stopped).
   */
  async prewarm(nameOrArns: string[]): Promise<void> {
    for (const n of nameOrArns) {
      if (this.stopped) return;
      const fn = this.opts.stack.findFunction(n);
      if (!fn || this.containers.get(fn.logicalId)?.length) continue;
      const container = this.acquire(fn);
      container.busy = false;
      await container.initialized;
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    const all = [...this.containers.values()].flat();
    this.containers.clear();
    await Promise.all(all.map((c) => c.worker.terminate()));
  }
}

export class FunctionNotFoundError extends Error {
  override name = 'ResourceNotFoundException';
}
