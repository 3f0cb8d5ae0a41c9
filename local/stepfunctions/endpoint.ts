/**
 * The Step Functions API over HTTP on 127.0.0.1, for @aws-sdk/client-sfn pointed at it with
 * AWS_ENDPOINT_URL_SFN: awsJson1_0 (`X-Amz-Target: AWSStepFunctions.<Operation>`), dates as epoch seconds,
 * errors as `{"__type": "com.amazonaws.sfn#<Code>", "message"}` so the SDK raises the named exception.
 * Signatures are not checked (local credentials only). `faults` lets tests make a real server throttle.
 */
import { createServer, type ServerResponse } from 'node:http';
import { listenOnLoopback, readBody } from '../http';
import { SfnError } from './model';
import type { LocalStepFunctions } from './engine';

export interface EndpointFaults {
  /** Answer this many of the next calls with ThrottlingException (400). */
  throttleNext?: number;
  /** Answer this many of the next calls with ServiceUnavailable (503). */
  failNext?: number;
  /** Only these operations are faulted (default: all). */
  operations?: string[];
}

export interface LocalSfnEndpointOptions {
  port?: number;
  faults?: EndpointFaults;
}

export interface LocalSfnEndpoint {
  /** e.g. http://127.0.0.1:41234 */
  endpoint: string;
  /** Change injected faults while running. */
  faults: EndpointFaults;
  /** Calls received per operation (including faulted ones). */
  calls: Record<string, number>;
  stop(): Promise<void>;
}

type Body = Record<string, unknown>;

function str(body: Body, field: string, required: true): string;
function str(body: Body, field: string, required?: false): string | undefined;
function str(body: Body, field: string, required = false): string | undefined {
  const v = body[field];
  if (v === undefined || v === null) {
    if (required) throw new SfnError('ValidationException', `1 validation error detected: Value null at '${field}' failed to satisfy constraint: Member must not be null`);
    return undefined;
  }
  if (typeof v !== 'string') throw new SfnError('ValidationException', `Value at '${field}' must be a string`);
  return v;
}

function num(body: Body, field: string): number | undefined {
  const v = body[field];
  return typeof v === 'number' ? v : undefined;
}

function operations(sfn: LocalStepFunctions): Record<string, (b: Body) => unknown> {
  const checkMachine = (arn: string | undefined): void => {
    if (arn !== undefined && arn !== sfn.stateMachineArn) {
      throw new SfnError('StateMachineDoesNotExist', `State Machine Does Not Exist: '${arn}'`);
    }
  };
  return {
    StartExecution: (b) => {
      checkMachine(str(b, 'stateMachineArn', true));
      const name = str(b, 'name');
      const input = str(b, 'input');
      return sfn.startExecution({ ...(name !== undefined ? { name } : {}), ...(input !== undefined ? { input } : {}) });
    },
    DescribeExecution: (b) => sfn.describeExecution(str(b, 'executionArn', true)),
    ListExecutions: (b) => {
      checkMachine(str(b, 'stateMachineArn', true));
      const statusFilter = str(b, 'statusFilter');
      const maxResults = num(b, 'maxResults');
      const nextToken = str(b, 'nextToken');
      return sfn.listExecutions({
        ...(statusFilter ? { statusFilter } : {}),
        ...(maxResults ? { maxResults } : {}),
        ...(nextToken ? { nextToken } : {}),
      });
    },
    GetExecutionHistory: (b) => {
      const maxResults = num(b, 'maxResults');
      const nextToken = str(b, 'nextToken');
      return sfn.getExecutionHistory(str(b, 'executionArn', true), {
        reverseOrder: b.reverseOrder === true,
        ...(maxResults ? { maxResults } : {}),
        ...(nextToken ? { nextToken } : {}),
      });
    },
    SendTaskSuccess: (b) => {
      sfn.sendTaskSuccess(str(b, 'taskToken', true), str(b, 'output', true));
      return {};
    },
    SendTaskFailure: (b) => {
      sfn.sendTaskFailure(str(b, 'taskToken', true), str(b, 'error'), str(b, 'cause'));
      return {};
    },
    StopExecution: (b) => sfn.stopExecution(str(b, 'executionArn', true), str(b, 'error'), str(b, 'cause')),
    DescribeStateMachine: (b) => {
      checkMachine(str(b, 'stateMachineArn', true));
      const name = sfn.stateMachineArn.split(':').pop()!;
      return {
        stateMachineArn: sfn.stateMachineArn,
        name,
        status: 'ACTIVE',
        definition: sfn.definition,
        roleArn: `arn:aws:iam::${sfn.stateMachineArn.split(':')[4]}:role/${name}`,
        type: 'STANDARD',
        creationDate: startedAt,
      };
    },
  };
}

const startedAt = new Date();

/** JSON with Dates as epoch seconds, as awsJson1_0 carries timestamps. */
function serialize(value: unknown): string {
  return JSON.stringify(value, function (this: Record<string, unknown>, key, v) {
    const original = key === '' ? value : this[key];
    return original instanceof Date ? original.getTime() / 1000 : v;
  });
}

function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = serialize(body);
  res.writeHead(status, {
    'content-type': 'application/x-amz-json-1.0',
    'content-length': Buffer.byteLength(text),
    'x-amzn-requestid': crypto.randomUUID(),
    ...headers,
  });
  res.end(text);
}

function sendError(res: ServerResponse, status: number, code: string, message: string): void {
  send(res, status, { __type: `com.amazonaws.sfn#${code}`, message }, { 'x-amzn-errortype': code });
}

export async function startLocalSfnEndpoint(sfn: LocalStepFunctions, opts: LocalSfnEndpointOptions = {}): Promise<LocalSfnEndpoint> {
  const ops = operations(sfn);
  const faults: EndpointFaults = { ...opts.faults };
  const calls: Record<string, number> = {};

  const server = createServer((req, res) => {
    void (async () => {
      const target = String(req.headers['x-amz-target'] ?? '');
      const op = target.startsWith('AWSStepFunctions.') ? target.slice('AWSStepFunctions.'.length) : '';
      if (req.method !== 'POST' || !op) {
        await readBody(req);
        sendError(res, 400, 'UnknownOperationException', `Expected POST with X-Amz-Target AWSStepFunctions.<Operation>, got ${req.method} ${target || '(none)'}`);
        return;
      }
      const bytes = await readBody(req);
      if (bytes === undefined) {
        sendError(res, 413, 'RequestEntityTooLarge', 'Request body too large.');
        return;
      }
      const raw = bytes.toString('utf8');
      calls[op] = (calls[op] ?? 0) + 1;
      const faulted = !faults.operations || faults.operations.includes(op);
      if (faulted && (faults.throttleNext ?? 0) > 0) {
        faults.throttleNext! -= 1;
        sendError(res, 400, 'ThrottlingException', 'Rate exceeded');
        return;
      }
      if (faulted && (faults.failNext ?? 0) > 0) {
        faults.failNext! -= 1;
        sendError(res, 503, 'ServiceUnavailable', 'Service is unavailable (injected fault).');
        return;
      }
      const handler = ops[op];
      if (!handler) {
        sendError(res, 400, 'UnknownOperationException', `Operation ${op} is not supported by the local Step Functions endpoint.`);
        return;
      }
      let body: Body;
      try {
        body = raw ? (JSON.parse(raw) as Body) : {};
      } catch {
        sendError(res, 400, 'SerializationException', 'Request body is not JSON.');
        return;
      }
      try {
        send(res, 200, handler(body));
      } catch (err) {
        if (err instanceof SfnError) sendError(res, 400, err.code, err.message);
        else sendError(res, 500, 'InternalFailure', (err as Error).message);
      }
    })().catch((err: unknown) => {
      if (!res.headersSent) sendError(res, 500, 'InternalFailure', (err as Error).message);
    });
  });
  const { endpoint, stop } = await listenOnLoopback(server, opts.port);
  return { endpoint, faults, calls, stop };
}
