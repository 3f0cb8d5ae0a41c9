/**
 * The one logger of every mlpipe Lambda: Powertools Logger, service `mlpipe`, one JSON line per fact on
 * stdout (WARN and above on stderr), which Lambda's JSON log format ingests as is (level filtering included)
 * and the local run routes to .mlpipe/handlers.log. Level: `POWERTOOLS_LOG_LEVEL`, read by Powertools
 * (default INFO); on AWS Lambda's ApplicationLogLevel (`AWS_LAMBDA_LOG_LEVEL`) wins over it, so
 * lib/constructs/lambda-defaults.ts sets both from one value.
 *
 * Every line of an invocation says which run it belongs to — executionName, model, version, state — so a
 * run can be followed across functions with one query. withLogContext (every handler) or startInvocation
 * (the approval page and the starter, which handle their own errors) clear the previous invocation's keys
 * first: the logger lives at module scope and outlives an invocation.
 *
 * Never a secret in a line (task tokens, the approval HMAC secret and link signatures, EKS tokens, AWS
 * credentials): events are never logged (no injectLambdaContext/logEventIfEnabled, so
 * POWERTOOLS_LOGGER_LOG_EVENT has nothing to switch on), errors go in as name and message only (a raw
 * Error would carry its every enumerable property), and a JSON replacer redacts values under secret-like
 * keys and strings shaped like bearer tokens, EKS tokens, presigned AWS URLs or access key ids.
 */
import { Logger } from '@aws-lambda-powertools/logger';
import type { Context } from 'aws-lambda';

/** The keys that tie a line to its run. Absent when not known yet (a run whose Prepare failed has no version). */
export interface RunLogKeys {
  executionName?: string;
  model?: string;
  version?: string;
  /** The state machine state this invocation serves (two states share Cleanup, RecordRelease and Notify). */
  state?: string;
}

const REDACTED = '[redacted]';
/** Keys whose values are secrets whatever they hold (taskToken, APPROVAL_SECRET, sessionToken, authorization...). */
const SECRET_KEY = /token|secret|password|credential|authorization|signature|^sig$|accesskey/i;
/** Secret-shaped substrings of any logged string, with what replaces them. */
const SECRET_TEXT: Array<[RegExp, string]> = [
  [/k8s-aws-v1\.[\w-]+/g, `k8s-aws-v1.${REDACTED}`], // EKS bearer token (a presigned STS URL, base64url)
  [/\b(Bearer\s+)[^\s"',]+/gi, `$1${REDACTED}`],
  [/(X-Amz-(?:Signature|Credential|Security-Token)=)[^&\s"']+/gi, `$1${REDACTED}`], // presigned AWS URLs
  [/([?&]sig=)[0-9a-f]+/gi, `$1${REDACTED}`], // approval links: the signature is what lets its holder decide
  [/\b(?:AKIA|ASIA)[A-Z0-9]{16}\b/g, REDACTED], // AWS access key ids
  // AWS validation errors quote the value: "Value '<token>' at 'taskToken' failed to satisfy constraint".
  [/(Value ')[^']*(' at '[\w.]*(?:[Tt]oken|[Ss]ecret)[\w.]*')/g, `$1${REDACTED}$2`],
  // Opaque bearer tokens: a Step Functions task token is several hundred characters of base64, longer than
  // any name, key or path this code logs (the longest, an S3 model URI, stays under 200).
  [/[A-Za-z0-9+/=_-]{400,}/g, REDACTED],
];

/** Applied to every key and value Powertools serializes, nested ones included. */
export function redact(key: string, value: unknown): unknown {
  if (value === null || value === undefined) return value;
  if (key !== '' && SECRET_KEY.test(key)) return REDACTED;
  if (typeof value !== 'string') return value;
  let text = value;
  for (const [pattern, replacement] of SECRET_TEXT) text = text.replace(pattern, replacement);
  return text;
}

/** Module scope, like every client: created once per container, cold start tracked by Powertools. */
export const logger = new Logger({ serviceName: 'mlpipe', jsonReplacerFn: redact });

/** An error as a log value: its name and message, nothing else it may carry (inputs, requests, responses). */
export function errorFields(err: unknown): { name: string; message: string } {
  if (err instanceof Error) return { name: err.name, message: err.message };
  return { name: 'NonError', message: String(err) };
}

const MAX_RUN_KEY_LENGTH = 256;

/** Only short strings: the values come from the event, which is not validated yet when they are read. */
function defined(keys: RunLogKeys): Record<string, string> {
  return Object.fromEntries(
    Object.entries(keys).filter((e): e is [string, string] => typeof e[1] === 'string' && e[1] !== '').map(([k, v]) => [k, v.slice(0, MAX_RUN_KEY_LENGTH)]),
  );
}

/**
 * Starts an invocation's log context: drops the previous invocation's keys, adds the Lambda context
 * (function name, request id, cold start; absent when a local runner or a test passes none) and `keys`.
 */
export function startInvocation(keys: RunLogKeys, context?: Context): void {
  logger.resetKeys();
  if (context?.awsRequestId) logger.addContext(context);
  logger.appendKeys(defined(keys));
}

/** Adds keys learned during the invocation (Prepare derives the version) to its remaining lines. */
export function appendRunKeys(keys: RunLogKeys): void {
  logger.appendKeys(defined(keys));
}

type Fields = Record<string, unknown>;
const field = (value: unknown, key: string): unknown => (value !== null && typeof value === 'object' ? (value as Fields)[key] : undefined);
const text = (value: unknown): string | undefined => (typeof value === 'string' ? value : undefined);

/**
 * The run keys of a state machine task's input. The direct-ARN Task form passes the whole state, whose
 * `run` Prepare wrote; RequestApproval gets `{ taskToken, state }`; Prepare gets `{ input, executionName }`
 * (its model may come from a setting and its version is derived: Prepare appends both).
 */
export function runKeysOf(event: unknown): RunLogKeys {
  const run = field(event, 'run') ?? field(field(event, 'state'), 'run');
  return {
    executionName: text(field(run, 'executionName')) ?? text(field(event, 'executionName')),
    model: text(field(run, 'modelName')) ?? text(field(field(event, 'input'), 'modelName')),
    version: text(field(run, 'version')),
  };
}

/**
 * The one line of an Await invocation: DEBUG while the wait goes on (the Await ⟲ Choice loop would fill
 * INFO with it), INFO once `what` reached its status (`staging rollout: ready`, `training: succeeded`).
 */
export function logWait<T extends { status: string }>(result: T, what: string, fields: Record<string, unknown>): T {
  if (result.status === 'pending') logger.debug(`${what}: still waiting`, fields);
  else logger.info(`${what}: ${result.status}`, fields);
  return result;
}

/** The execution's name: the last part of its ARN (`arn:aws:states:<region>:<account>:execution:<machine>:<name>`). */
export function executionNameOf(executionArn: string): string {
  return executionArn.slice(executionArn.lastIndexOf(':') + 1);
}

/**
 * The state a function that serves two states is running: CleanupStaging/Cleanup, RecordRelease/RecordFailure
 * and NotifySuccess/NotifyFailure. Only the failure path has `$.error`: every Catch writes it (ResultPath
 * `$.error`), as do the gate and approval Pass states, and all of them lead to Cleanup; the success path
 * never sets it. So the state is known from the input, with no change to the state machine.
 */
export function stateByPath(success: string, failure: string): (event: unknown) => RunLogKeys {
  return (event) => ({ ...runKeysOf(event), state: field(event, 'error') !== undefined ? failure : success });
}

/**
 * Wraps a Lambda handler: sets the invocation's log keys — for a state machine task just its state's name
 * (the run keys come from its input), else a function of the event — and logs a failure with them before
 * rethrowing it (the state machine Retries and Catches on it; Lambda logs the stack).
 */
export function withLogContext<E, R>(
  keys: string | ((event: E) => RunLogKeys),
  handler: (event: E) => Promise<R>,
): (event: E, context?: Context) => Promise<R> {
  return async (event: E, context?: Context): Promise<R> => {
    startInvocation(typeof keys === 'string' ? { ...runKeysOf(event), state: keys } : keys(event), context);
    try {
      return await handler(event);
    } catch (err) {
      logger.error('invocation failed', { error: errorFields(err) });
      throw err;
    }
  };
}
