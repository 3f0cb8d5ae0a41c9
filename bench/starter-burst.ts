/**
 * Starter under a burst: 1,000 ECR push events (20 % of them duplicates of others), shuffled, delivered in
 * SQS batches of 10 to the real starter handler, five batches at a time (Lambda's first SQS pollers),
 * against the local Step Functions endpoint over HTTP with the real @aws-sdk/client-sfn. Batch item
 * failures are redelivered until none are left, as SQS would. Counts come from ListExecutions.
 *
 *   npx tsx bench/starter-burst.ts
 */
import { SFNClient, paginateListExecutions } from '@aws-sdk/client-sfn';
import { SQSClient } from '@aws-sdk/client-sqs';
import { ECRClient } from '@aws-sdk/client-ecr';
import type { SQSRecord } from 'aws-lambda';
import { LocalStepFunctions, startLocalSfnEndpoint } from '../local/stepfunctions';
import { startLocalSqs } from '../local/sqs';
import { LOCAL_AWS_ENV } from '../local/s3';
import { createStarter, loadStarterSettings } from '../functions/shared/starter';
import { pushExecutionName } from '../functions/shared/execution-name';
import { PASS_MACHINE, REGION, STATE_MACHINE_ARN, batches, digestOf, ecrPush, record, shuffle } from '../test/triggers/fixtures';

const EVENTS = 1000;
const DUPLICATE_SHARE = 0.2;
const CONCURRENT_BATCHES = 5;
const REPOSITORY = 'fashion-mnist-trainer';

export interface StarterBurstResult {
  events: number;
  duplicates: number;
  distinct: number;
  started: number;
  lost: number;
  drainMs: number;
}

export async function benchStarterBurst(): Promise<StarterBurstResult> {
  const sfn = new LocalStepFunctions({ definition: PASS_MACHINE, stateMachineArn: STATE_MACHINE_ARN, taskHandlers: {} });
  const endpoint = await startLocalSfnEndpoint(sfn);
  const sqs = await startLocalSqs({ queues: ['mlpipe-dlq'] });
  const saved = { ...process.env };
  const log = console.log;
  try {
    Object.assign(process.env, LOCAL_AWS_ENV, { AWS_ENDPOINT_URL_SFN: endpoint.endpoint, AWS_ENDPOINT_URL_SQS: sqs.endpoint });
    const settings = loadStarterSettings({
      STATE_MACHINE_ARN,
      PIPELINES: JSON.stringify({ [REPOSITORY]: { modelName: 'fashion-mnist' } }),
      DEAD_LETTER_QUEUE_URL: sqs.queueUrl('mlpipe-dlq'),
    });
    const handler = createStarter(settings, { sfn: new SFNClient({ maxAttempts: 1 }), sqs: new SQSClient({}), ecr: new ECRClient({}) });

    const duplicates = Math.round(EVENTS * DUPLICATE_SHARE);
    const distinct = EVENTS - duplicates;
    const digests = Array.from({ length: distinct }, (_, i) => digestOf(`burst-${i}`));
    const originals = digests.map((d, i) => ecrPush(REPOSITORY, d, `v${i}`));
    const copies = Array.from({ length: duplicates }, (_, i) => originals[(i * 7919) % distinct]!);
    const queue: SQSRecord[] = shuffle([...originals, ...copies], 1234).map((e) => record(e));

    console.log = () => undefined; // one structured line per message is for CloudWatch, not for this table
    const began = performance.now();
    let pending = batches(queue);
    while (pending.length > 0) {
      const redeliver: SQSRecord[] = [];
      for (let i = 0; i < pending.length; i += CONCURRENT_BATCHES) {
        const wave = pending.slice(i, i + CONCURRENT_BATCHES);
        const results = await Promise.all(wave.map((b) => handler(b)));
        results.forEach((r, j) => {
          const failed = new Set(r.batchItemFailures.map((f) => f.itemIdentifier));
          redeliver.push(...wave[j]!.Records.filter((rec) => failed.has(rec.messageId)));
        });
      }
      pending = batches(redeliver);
    }
    const drainMs = performance.now() - began;
    console.log = log;

    const client = new SFNClient({ region: REGION });
    const names = new Set<string>();
    for await (const page of paginateListExecutions({ client }, { stateMachineArn: STATE_MACHINE_ARN, maxResults: 1000 })) {
      for (const e of page.executions ?? []) names.add(e.name!);
    }
    const expected = digests.map((d) => pushExecutionName(REPOSITORY, d));
    const lost = expected.filter((n) => !names.has(n)).length;
    return { events: EVENTS, duplicates, distinct, started: names.size, lost, drainMs: Math.round(drainMs) };
  } finally {
    console.log = log;
    process.env = saved;
    await sfn.close();
    await endpoint.stop();
    await sqs.stop();
  }
}

if (require.main === module) {
  benchStarterBurst()
    .then((r) => {
      console.log('Starter burst: ECR push events through the starter into the local Step Functions endpoint');
      console.log(JSON.stringify(r, null, 2));
      console.log(`${r.started} runs for ${r.distinct} distinct pushes (${r.duplicates} duplicates), ${r.lost} lost, drained in ${r.drainMs} ms`);
    })
    .catch((err: unknown) => {
      console.error(err);
      process.exit(1);
    });
}
