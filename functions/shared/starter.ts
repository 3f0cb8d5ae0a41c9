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
import { FUNCTION_SETTINGS } from './function-settings';
import { readSettings, type PipelineConfig, type SettingsOf } from './settings';
import { isTransient } from './errors';
import { logger, startInvocation } from './logger';
import { parseTriggerMessage, type TriggerEvent } from './trigger-events';
import { dataExecutionName, pushExecutionName, scheduleExecutionName } from './execution-name';
import type { RunRequest } from './types';

export type { PipelineConfig };

export interface StarterSettings {
  stateMachineArn: string;
  /** Repository name → pipeline. A Map: only the repositories PIPELINES names are found (never `constructor`). */
  pipelines: ReadonlyMap<string, PipelineConfig>;
  deadLetterQueueUrl: string;
  /** Attempts per StartExecution before the message goes back to SQS. */
  maxAttempts: number;
  /** First backoff ceiling in ms; doubles per attempt, capped at 2 s. */
  retryBaseMs: number;
}

/** The starter's settings from `env` (tests, benches); the Lambda loads them in start-pipeline.ts. */
export function loadStarterSettings(env: Readonly<Record<string, string | undefined>>): StarterSettings {
  return starterSettings(readSettings(FUNCTION_SETTINGS.StartPipeline, env));
}

/** The starter's settings from its loaded settings (function-settings.ts StartPipeline). */
export function starterSettings(s: SettingsOf<(typeof FUNCTION_SETTINGS)['StartPipeline']['definitions']>): StarterSettings {
  return {
    stateMachineArn: s.STATE_MACHINE_ARN,
    pipelines: s.PIPELINES,
    deadLetterQueueUrl: s.DEAD_LETTER_QUEUE_URL,
    maxAttempts: s.STARTER_MAX_ATTEMPTS,
    retryBaseMs: s.STARTER_RETRY_BASE_MS,
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

  /** The pipeline of a repository PIPELINES names; any other repository can never start a run. */
  function pipelineOf(repositoryName: string): PipelineConfig {
    const pipeline = settings.pipelines.get(repositoryName);
    if (!pipeline) throw new DeadLetter('unmapped-repository', `repository ${repositoryName} has no pipeline in PIPELINES`);
    return pipeline;
  }

  /** The runs a trigger asks for: one per pipeline it concerns. */
  async function runsFor(event: TriggerEvent): Promise<Array<{ name: string; repositoryName: string; request: RunRequest }>> {
    const request = (repositoryName: string, digest: string, account: string, region: string, trigger: RunRequest['trigger']): RunRequest => {
      const p = pipelineOf(repositoryName);
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
    const [, , , region, account] = settings.stateMachineArn.split(':');
    switch (event.kind) {
      case 'ecr-push': {
        pipelineOf(event.repositoryName);
        const detail = { repositoryName: event.repositoryName, imageDigest: event.imageDigest, ...(event.imageTag ? { imageTag: event.imageTag } : {}) };
        return [{
          name: pushExecutionName(event.repositoryName, event.imageDigest),
          repositoryName: event.repositoryName,
          request: request(event.repositoryName, event.imageDigest, event.account, event.region, { source: 'ecr-push', detail }),
        }];
      }
      case 's3-data': {
        const uri = `s3://${event.bucket}/${event.key}`;
        const repos = [...settings.pipelines].filter(([, p]) => p.dataUri && uri.startsWith(p.dataUri)).map(([r]) => r);
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
        pipelineOf(event.repositoryName);
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
          const run = 'executionName' in o ? { executionName: o.executionName, model: settings.pipelines.get(o.repositoryName)?.modelName } : {};
          const { level, message } = OUTCOME_LOG[o.outcome];
          logger[level](message, { messageId: record.messageId, ...run, ...o, ms: Date.now() - began });
        }
      }),
    );
    return { batchItemFailures: failures };
  };
}
