/**
 * The starter's logic: SQS messages (EventBridge events and schedule payloads) → StartExecution with a
 * deterministic name, one run per trigger. Duplicates end as ExecutionAlreadyExists (= already started);
 * throttling and 5xx are retried here with full-jitter exponential backoff, then handed back to SQS as
 * batch item failures; messages that can never start a run go to the dead-letter queue with a reason.
 */
import { SFNClient, StartExecutionCommand } from '@aws-sdk/client-sfn';
import { SQSClient, SendMessageCommand } from '@aws-sdk/client-sqs';
import { ECRClient, DescribeImagesCommand, type ImageDetail } from '@aws-sdk/client-ecr';
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import * as z from 'zod';
import { ConfigurationError, isTransient } from './errors';
import { logger, startInvocation } from './logger';
import { parseTriggerMessage, type TriggerEvent } from './trigger-events';
import { dataExecutionName, pushExecutionName, scheduleExecutionName } from './execution-name';
import type { RunRequest } from './types';

const pipelineSchema = z.object({
  modelName: z.string().regex(/^[a-z0-9]([-a-z0-9]{0,38}[a-z0-9])?$/, 'modelName must be a DNS-1123 label of at most 40 characters'),
  dataUri: z.string().regex(/^s3:\/\/[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]\/.*$/, 'dataUri must be s3://bucket/prefix/').optional(),
  evalDataUri: z.string().regex(/^s3:\/\/[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]\/.*$/, 'evalDataUri must be s3://bucket/prefix/').optional(),
  hyperparameters: z.record(z.string(), z.union([z.string(), z.number(), z.boolean()])).optional(),
  servingImage: z.string().min(1).optional(),
});
const pipelinesSchema = z.record(z.string().min(2), pipelineSchema);

export type PipelineConfig = z.infer<typeof pipelineSchema>;

export interface StarterSettings {
  stateMachineArn: string;
  pipelines: Record<string, PipelineConfig>;
  deadLetterQueueUrl: string;
  /** Attempts per StartExecution before the message goes back to SQS (default 5). */
  maxAttempts: number;
  /** First backoff ceiling in ms; doubles per attempt, capped at 2 s (default 100). */
  retryBaseMs: number;
}

/** Reads STATE_MACHINE_ARN, PIPELINES, DEAD_LETTER_QUEUE_URL (+ STARTER_MAX_ATTEMPTS, STARTER_RETRY_BASE_MS). */
export function loadStarterSettings(env: NodeJS.ProcessEnv = process.env): StarterSettings {
  const need = (name: string): string => {
    const v = env[name]?.trim();
    if (!v) throw new ConfigurationError(`Missing required setting: environment variable ${name} is not set.`);
    return v;
  };
  const stateMachineArn = need('STATE_MACHINE_ARN');
  if (!/^arn:aws[\w-]*:states:[a-z0-9-]+:\d{12}:stateMachine:[A-Za-z0-9_-]+$/.test(stateMachineArn)) {
    throw new ConfigurationError(`Setting STATE_MACHINE_ARN must be a state machine ARN, got "${stateMachineArn}".`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(need('PIPELINES'));
  } catch (err) {
    if (err instanceof ConfigurationError) throw err;
    throw new ConfigurationError(`Setting PIPELINES must be JSON: ${(err as Error).message}`);
  }
  const parsed = pipelinesSchema.safeParse(raw);
  if (!parsed.success) {
    const where = parsed.error.issues.map((i) => `PIPELINES.${i.path.join('.')}: ${i.message}`).join('; ');
    throw new ConfigurationError(`Setting PIPELINES is invalid: ${where}`);
  }
  const int = (name: string, dflt: number): number => {
    const v = env[name]?.trim();
    if (!v) return dflt;
    const n = Number(v);
    if (!Number.isInteger(n) || n < 0) throw new ConfigurationError(`Setting ${name} must be a whole number >= 0, got "${v}".`);
    return n;
  };
  return {
    stateMachineArn,
    pipelines: parsed.data,
    deadLetterQueueUrl: need('DEAD_LETTER_QUEUE_URL'),
    maxAttempts: Math.max(1, int('STARTER_MAX_ATTEMPTS', 5)),
    retryBaseMs: int('STARTER_RETRY_BASE_MS', 100),
  };
}

export interface StarterClients {
  sfn: SFNClient;
  sqs: SQSClient;
  ecr: ECRClient;
}

/** Our own retry loop is the only one: the SDK's would hide throttling from it and stack delays. */
export function defaultStarterClients(): StarterClients {
  return { sfn: new SFNClient({ maxAttempts: 1 }), sqs: new SQSClient({}), ecr: new ECRClient({}) };
}

type Outcome =
  | { outcome: 'started' | 'duplicate'; executionName: string; repositoryName: string; attempts: number }
  | { outcome: 'dead-lettered'; reason: string; detail: string }
  | { outcome: 'retry-later'; reason: string; detail: string };

/** One line per outcome; a message that will not start a run (yet) is a warning. */
const OUTCOME_LOG: Record<Outcome['outcome'], { level: 'info' | 'warn'; message: string }> = {
  started: { level: 'info', message: 'run started' },
  duplicate: { level: 'info', message: 'run already started (duplicate trigger)' },
  'dead-lettered': { level: 'warn', message: 'trigger sent to the dead-letter queue' },
  'retry-later': { level: 'warn', message: 'trigger handed back to SQS for a retry' },
};

class DeadLetter extends Error {
  constructor(
    readonly reason: string,
    message: string,
  ) {
    super(message);
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export function createStarter(settings: StarterSettings, clients: StarterClients = defaultStarterClients()) {
  const registryFor = (account: string, region: string): string => `${account}.dkr.ecr.${region}.amazonaws.com`;

  /** Retries `call` on transient errors with full-jitter exponential backoff; rethrows the last error. */
  async function withRetries<T>(call: () => Promise<T>): Promise<{ value: T; attempts: number }> {
    for (let attempt = 1; ; attempt++) {
      try {
        return { value: await call(), attempts: attempt };
      } catch (err) {
        if (!isTransient(err) || attempt >= settings.maxAttempts) throw Object.assign(err as object, { attempts: attempt });
        await sleep(Math.random() * Math.min(2000, settings.retryBaseMs * 2 ** (attempt - 1)));
      }
    }
  }

  async function latestImageDigest(repositoryName: string): Promise<string> {
    const images: ImageDetail[] = [];
    let nextToken: string | undefined;
    do {
      const { value: page } = await withRetries(() =>
        clients.ecr.send(new DescribeImagesCommand({ repositoryName, nextToken, maxResults: 1000 })),
      );
      images.push(...(page.imageDetails ?? []));
      nextToken = page.nextToken;
    } while (nextToken);
    const latest = images
      .filter((i) => i.imageDigest && i.imagePushedAt)
      .sort((a, b) => b.imagePushedAt!.getTime() - a.imagePushedAt!.getTime())[0];
    if (!latest) throw new DeadLetter('no-image', `repository ${repositoryName} has no pushed image to re-run`);
    return latest.imageDigest!;
  }

  /** The runs a trigger asks for: one per pipeline it concerns. */
  async function runsFor(event: TriggerEvent): Promise<Array<{ name: string; repositoryName: string; request: RunRequest }>> {
    const request = (repositoryName: string, digest: string, account: string, region: string, trigger: RunRequest['trigger']): RunRequest => {
      const p = settings.pipelines[repositoryName]!;
      return {
        image: `${registryFor(account, region)}/${repositoryName}@${digest}`,
        modelName: p.modelName,
        ...(p.dataUri ? { dataUri: p.dataUri } : {}),
        ...(p.evalDataUri ? { evalDataUri: p.evalDataUri } : {}),
        ...(p.hyperparameters ? { hyperparameters: p.hyperparameters } : {}),
        ...(p.servingImage ? { servingImage: p.servingImage } : {}),
        trigger,
      };
    };
    const mapped = (repositoryName: string): void => {
      if (!settings.pipelines[repositoryName]) {
        throw new DeadLetter('unmapped-repository', `repository ${repositoryName} has no pipeline in PIPELINES`);
      }
    };
    const [, , , region, account] = settings.stateMachineArn.split(':');
    switch (event.kind) {
      case 'ecr-push': {
        mapped(event.repositoryName);
        const detail = { repositoryName: event.repositoryName, imageDigest: event.imageDigest, ...(event.imageTag ? { imageTag: event.imageTag } : {}) };
        return [{
          name: pushExecutionName(event.repositoryName, event.imageDigest),
          repositoryName: event.repositoryName,
          request: request(event.repositoryName, event.imageDigest, event.account, event.region, { source: 'ecr-push', detail }),
        }];
      }
      case 's3-data': {
        const uri = `s3://${event.bucket}/${event.key}`;
        const repos = Object.entries(settings.pipelines).filter(([, p]) => p.dataUri && uri.startsWith(p.dataUri)).map(([r]) => r);
        if (repos.length === 0) throw new DeadLetter('unmapped-data', `no pipeline has its dataUri above ${uri}`);
        const runs = [];
        for (const repositoryName of repos) {
          const digest = await latestImageDigest(repositoryName);
          const detail = { bucket: event.bucket, key: event.key, etag: event.etag };
          runs.push({
            name: dataExecutionName(repositoryName, event),
            repositoryName,
            request: request(repositoryName, digest, event.account, event.region, { source: 's3-data', detail }),
          });
        }
        return runs;
      }
      case 'schedule': {
        mapped(event.repositoryName);
        const digest = await latestImageDigest(event.repositoryName);
        return [{
          name: scheduleExecutionName(event.repositoryName, event.scheduledTime),
          repositoryName: event.repositoryName,
          // A schedule carries no account or region: the images live next to the state machine.
          request: request(event.repositoryName, digest, account!, region!, { source: 'schedule', detail: { scheduledTime: event.scheduledTime } }),
        }];
      }
    }
  }

  async function deadLetter(record: SQSRecord, reason: string, detail: string): Promise<void> {
    await clients.sqs.send(
      new SendMessageCommand({
        QueueUrl: settings.deadLetterQueueUrl,
        MessageBody: record.body,
        MessageAttributes: {
          reason: { DataType: 'String', StringValue: reason },
          sourceMessageId: { DataType: 'String', StringValue: record.messageId },
          detail: { DataType: 'String', StringValue: detail.slice(0, 1000) || '-' },
        },
      }),
    );
  }

  async function process(record: SQSRecord): Promise<Outcome[]> {
    const sentAt = new Date(Number(record.attributes?.SentTimestamp ?? Date.now()));
    const parsed = parseTriggerMessage(record.body, sentAt);
    if (!parsed.ok) return [{ outcome: 'dead-lettered', reason: parsed.reason, detail: parsed.detail }];
    let runs;
    try {
      runs = await runsFor(parsed.event);
    } catch (err) {
      if (err instanceof DeadLetter) return [{ outcome: 'dead-lettered', reason: err.reason, detail: err.message }];
      return [{ outcome: 'retry-later', reason: (err as Error).name, detail: (err as Error).message }];
    }
    const outcomes: Outcome[] = [];
    for (const run of runs) {
      try {
        const { attempts } = await withRetries(() =>
          clients.sfn.send(
            new StartExecutionCommand({ stateMachineArn: settings.stateMachineArn, name: run.name, input: JSON.stringify(run.request) }),
          ),
        );
        outcomes.push({ outcome: 'started', executionName: run.name, repositoryName: run.repositoryName, attempts });
      } catch (err) {
        const e = err as Error & { attempts?: number };
        if (e.name === 'ExecutionAlreadyExists') {
          outcomes.push({ outcome: 'duplicate', executionName: run.name, repositoryName: run.repositoryName, attempts: e.attempts ?? 1 });
        } else {
          outcomes.push({ outcome: 'retry-later', reason: e.name, detail: `${run.name}: ${e.message} (after ${e.attempts ?? 1} attempts)` });
        }
      }
    }
    return outcomes;
  }

  return async function handler(event: SQSEvent, context?: Context): Promise<SQSBatchResponse> {
    // Records run concurrently: each line names its own run rather than sharing invocation keys.
    startInvocation({}, context);
    const failures: SQSBatchResponse['batchItemFailures'] = [];
    await Promise.all(
      event.Records.map(async (record) => {
        const began = Date.now();
        let outcomes = await process(record);
        const dead = outcomes.find((o) => o.outcome === 'dead-lettered');
        if (dead && dead.outcome === 'dead-lettered') {
          try {
            await withRetries(() => deadLetter(record, dead.reason, dead.detail));
          } catch (err) {
            outcomes = [{ outcome: 'retry-later', reason: 'DeadLetterFailed', detail: `${dead.reason}; SendMessage failed: ${(err as Error).message}` }];
          }
        }
        if (outcomes.some((o) => o.outcome === 'retry-later')) failures.push({ itemIdentifier: record.messageId });
        for (const o of outcomes) {
          const run = 'executionName' in o ? { executionName: o.executionName, model: settings.pipelines[o.repositoryName]?.modelName } : {};
          const { level, message } = OUTCOME_LOG[o.outcome];
          logger[level](message, { messageId: record.messageId, ...run, ...o, ms: Date.now() - began });
        }
      }),
    );
    return { batchItemFailures: failures };
  };
}
