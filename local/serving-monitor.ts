/**
 * The serving monitor during `npm start`: what EventBridge Scheduler does on AWS, a timer that invokes the
 * synthesized stack's Monitor function (its own bundle, its template environment) every `intervalMs`,
 * and what CloudWatch does with its alarms: each alarm that changed state in a scrape (the monitor
 * evaluates the same rules as the CloudWatch alarms, functions/shared/serving-monitor.ts) is published to
 * the local SNS, so it lands in the local email outbox (notifications.jsonl) like any other email.
 *
 * Off the run's critical path: one scrape at a time (a tick that would overlap is skipped), nothing before
 * the first interval, the timer never keeps the process alive, and a failed scrape is reported once, not
 * every tick. It scrapes production whatever runs: the local run's rollout traffic (local/rollout-traffic.ts)
 * and evaluation against production are what it sees.
 */
import { PublishCommand, SNSClient } from '@aws-sdk/client-sns';
import { alarmNotification, MonitorSnapshotSchema, type MonitorSnapshot } from '../functions/shared/serving-monitor';
import type { LocalStack } from './lambda/template';
import { LOCAL_AWS_ENV } from './s3';

export interface LocalMonitorOptions {
  stack: LocalStack;
  /** Invokes a function of the stack from its bundle (LocalPipeline.invoke). */
  invoke(fn: string, event: unknown): Promise<unknown>;
  /** The local SNS (LocalPipeline.snsEndpoint). */
  snsEndpoint: string;
  /** @default 10 s: at the local traffic's 20 requests/s, 200 predictions per window (drift needs 100). */
  intervalMs?: number;
  log?: (line: string) => void;
}

export interface LocalMonitor {
  /** One scrape now (tests; the timer calls it too); undefined when skipped or failed. */
  tick(): Promise<MonitorSnapshot | undefined>;
  stop(): void;
}

/** The Monitor function of a synthesized stack, or undefined for a stack without one. */
function monitorFunction(stack: LocalStack) {
  return stack.functions.find((f) => f.logicalId.includes('ServingMonitorFunction'));
}

export function startLocalMonitor(opts: LocalMonitorOptions): LocalMonitor {
  const fn = monitorFunction(opts.stack);
  const topicArn = opts.stack.functions.map((f) => f.environment.NOTIFICATION_TOPIC_ARN).find((v) => v !== undefined);
  const sns = new SNSClient({
    endpoint: opts.snsEndpoint,
    region: opts.stack.resources.region,
    credentials: { accessKeyId: LOCAL_AWS_ENV.AWS_ACCESS_KEY_ID, secretAccessKey: LOCAL_AWS_ENV.AWS_SECRET_ACCESS_KEY },
  });
  const log = opts.log ?? ((line: string) => console.log(line));
  const alarmed = new Set<string>();
  let running: Promise<MonitorSnapshot | undefined> | undefined;
  let stopped = false;
  let reportedFailure = false;

  const publishChanges = async (s: MonitorSnapshot): Promise<void> => {
    for (const alarm of s.alarms) {
      // A state entered in this very scrape is a change (`since` is the scrape's time); OK is news only after an ALARM this process saw.
      const changed = alarm.since === s.readAt && (alarm.state === 'ALARM' || alarmed.has(alarm.metric));
      if (alarm.state === 'ALARM') alarmed.add(alarm.metric);
      else alarmed.delete(alarm.metric);
      if (!changed || !topicArn) continue;
      const { subject, message } = alarmNotification(s, alarm, 'local');
      await sns.send(new PublishCommand({ TopicArn: topicArn, Subject: subject, Message: message }));
    }
  };

  const tick = (): Promise<MonitorSnapshot | undefined> => {
    if (!fn || stopped || running) return Promise.resolve(undefined);
    running = (async () => {
      try {
        const snapshot = MonitorSnapshotSchema.parse(await opts.invoke(fn.logicalId, { source: 'mlpipe.local', 'detail-type': 'Scheduled Event' }));
        await publishChanges(snapshot);
        return snapshot;
      } catch (err) {
        if (!stopped && !reportedFailure && !/runtime is stopped/.test((err as Error).message)) {
          reportedFailure = true;
          log(`monitor   a scrape failed (reported once; handlers.log has each): ${(err as Error).message.split('\n')[0]}`);
        }
        return undefined;
      } finally {
        running = undefined;
      }
    })();
    return running;
  };

  const timer = setInterval(() => void tick(), opts.intervalMs ?? 10_000);
  timer.unref();
  return {
    tick,
    stop() {
      stopped = true;
      clearInterval(timer);
      sns.destroy();
    },
  };
}
