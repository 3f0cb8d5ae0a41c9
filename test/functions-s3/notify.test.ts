/** Notify against local SNS: what a success and a failure message say, and SNS's limits. */
import { keepTail, safeSubject, MAX_MESSAGE_BYTES } from '../../functions/shared/notifications';
import { RolloutSchema } from '../../functions/shared/rollout';
import { RETRY_LINK_TTL_SECONDS, verifyRetryLink } from '../../functions/shared/retry-link';
import { resetApprovalSecret } from '../../functions/shared/approval-link';
import type { CanaryState, PipelineState } from '../../functions/shared/types';
import { passedEvaluation, runContext, startLocalAws, type LocalAws } from './fixtures';
import { captureLogs } from '../logging/capture';
import { estimateRunCost } from '../../functions/shared/run-cost';

type Handler = (e: unknown) => Promise<{ messageId: string }>;

describe('Notify', () => {
  let aws: LocalAws;
  let handler: Handler;
  let unquiet: () => void;

  beforeAll(async () => {
    aws = await startLocalAws();
    handler = (require('../../functions/notify') as { handler: Handler }).handler;
    captureLogs(); // handler log lines stay out of the test output
    unquiet = keepEmfOut();
  });
  afterAll(async () => {
    unquiet();
    jest.restoreAllMocks();
    await aws.stop();
  });

  const last = () => aws.messages().at(-1)!;

  it('announces a release: version, accuracy, p95, endpoint, approver', async () => {
    const run = runContext({ version: 'v7' });
    const state: PipelineState & { cleanup: { deleted: string[] } } = {
      run,
      evaluation: passedEvaluation({ accuracy: 0.8877, latencyMsP95: 12.25, errorRate: 0, production: { version: 'v6', accuracy: 0.871 } }),
      approval: { decision: 'approve', by: 'alice', at: '2026-01-01T13:00:00.000Z', from: '198.51.100.7', comment: 'good' },
      production: { stage: 'production', namespace: 'p', deploymentName: 'fashion-v7', serviceName: 'fashion', deployedAt: '', status: 'serving', endpoint: 'http://lb.example:80', previousVersion: 'v6' },
      release: { status: 'released', manifestUri: 's3://artifacts/models/fashion/v7/manifest.json', recordedAt: '' },
      cleanup: { deleted: ['Deployment mlpipe-staging/fashion-v7-staging', 'Service mlpipe-staging/fashion-v7-staging'] },
    };
    const { messageId } = await handler(state);
    const m = last();
    expect(m.messageId).toBe(messageId);
    expect(m.subject).toBe('[mlpipe] Released fashion v7');
    expect(m.message).toContain('fashion v7 is serving in production.');
    expect(m.message).toMatch(/Endpoint:\s+http:\/\/lb\.example:80/);
    expect(m.message).toMatch(/Accuracy:\s+0\.8877 \(previous production v6: 0\.8710\)/);
    expect(m.message).toMatch(/p95 latency:\s+12\.25 ms/);
    expect(m.message).toMatch(/Approved by:\s+alice at 2026-01-01T13:00:00\.000Z from 198\.51\.100\.7 \("good"\)/);
    expect(m.message).toMatch(/Replaced:\s+v6/);
    expect(m.message).toMatch(/Manifest:\s+s3:\/\/artifacts\/models\/fashion\/v7\/manifest\.json/);
    expect(m.message).toContain('Deployment mlpipe-staging/fashion-v7-staging, Service mlpipe-staging/fashion-v7-staging');
  });

  type Emf = Record<string, unknown> & { _aws: { CloudWatchMetrics: Array<{ Namespace: string; Dimensions: string[][]; Metrics: Array<{ Name: string; Unit: string }> }> } };
  /** Hands each EMF document (functions/shared/pipeline-metrics.ts) written to stdout to `take`; other writes go on. Returns the undo. */
  function keepEmfOut(take: (doc: Emf) => void = () => undefined): () => void {
    const write = process.stdout.write;
    process.stdout.write = ((chunk: unknown, ...rest: unknown[]) => {
      if (typeof chunk === 'string' && chunk.startsWith('{"_aws"')) {
        take(JSON.parse(chunk) as Emf);
        return true;
      }
      return (write as (...a: unknown[]) => boolean).call(process.stdout, chunk, ...rest);
    }) as typeof process.stdout.write;
    return () => {
      process.stdout.write = write;
    };
  }
  /** The EMF documents written while `act` runs. */
  async function emfOf(act: () => Promise<unknown>): Promise<Emf[]> {
    const docs: Emf[] = [];
    const undo = keepEmfOut((doc) => docs.push(doc));
    try {
      await act();
    } finally {
      undo();
    }
    return docs;
  }

  it.each([
    ['a rejection', 'rejected', 0, { Error: 'ApprovalRejected', Cause: JSON.stringify({ decision: 'reject', by: 'carol', at: '2026-01-01T13:00:00.000Z', from: 'cli' }) }],
    ['a failed evaluation gate', 'gate-failed', 0, { Error: 'EvaluationGateFailed', Cause: 'accuracy 0.5 < 0.85' }],
    ['an expired approval', 'approval-timeout', 0, { Error: 'ApprovalTimedOut', Cause: 'no decision within 3600 s' }],
    ['a failed canary analysis', 'canary-rolled-back', 0, { Error: 'CanaryAnalysisFailed', Cause: 'Canary failed at 10 %' }],
    ['a failed training', 'failed', 1, { Error: 'TrainingFailedError', Cause: 'BackoffLimitExceeded' }],
    ['a timed-out Lambda', 'failed', 1, { Error: 'States.Timeout', Cause: '' }],
  ] as const)('%s ends as %s and adds %s to UnexpectedFailures, the failure alarm\'s metric', async (_what, outcome, unexpected, error) => {
    const [doc, ...more] = await emfOf(() => handler({ run: runContext({ version: 'v30' }), error, cleanup: { deleted: [] } }));
    expect(more).toEqual([]);
    expect(doc).toMatchObject({ StateMachine: 'mlpipe', Outcome: outcome, UnexpectedFailures: unexpected, FailuresNotified: 1, RunsEnded: 1 });
    // The alarm's metric: mlpipe/Pipeline UnexpectedFailures by StateMachine (lib/constructs/monitoring.ts).
    expect(doc!._aws.CloudWatchMetrics).toContainEqual({ Namespace: 'mlpipe/Pipeline', Dimensions: [['StateMachine']], Metrics: expect.arrayContaining([{ Name: 'UnexpectedFailures', Unit: 'Count' }]) });
  });

  it('shows the run\'s cost with each component in the success and the failure email, and a release counts no failure', async () => {
    const t = (s: number) => new Date(Date.parse('2026-01-01T12:00:00Z') + s * 1000);
    const events = [
      { type: 'TaskStateEntered', timestamp: t(0), stateEnteredEventDetails: { name: 'Prepare' } },
      { type: 'LambdaFunctionStarted', timestamp: t(0) },
      { type: 'LambdaFunctionSucceeded', timestamp: t(2) },
    ];
    const training = { submittedAt: t(10).toISOString(), completedAt: t(3610).toISOString(), request: { cpu: '1', gpus: 0 } };
    const cost = estimateRunCost({ events, memory: { '*': 1024 }, training, region: 'us-east-1', now: t(4000) });
    const release = { status: 'released', manifestUri: 's3://artifacts/models/fashion/v31/manifest.json', recordedAt: '', cost };
    const production = { stage: 'production' as const, namespace: 'p', deploymentName: 'fashion-v31', serviceName: 'fashion', deployedAt: '', status: 'serving' as const, endpoint: 'http://lb.example:80' };
    const [released] = await emfOf(() => handler({ run: runContext({ version: 'v31' }), evaluation: passedEvaluation(), production, release }));
    expect(last().message).toMatch(/Cost:\s+\$0\.04 at us-east-1 list prices\n {2}state transitions 1: \$0\.000025\n {2}Lambda 2 GB-s, 1 requests: \$0\.000027\n {2}training pod 3600 CPU-s, 0 GPU-s: \$0\.04\n/);
    expect(released).toMatchObject({ Outcome: 'released', UnexpectedFailures: 0, FailuresNotified: 0 });

    await handler({ run: runContext({ version: 'v32' }), error: { Error: 'EvaluationError', Cause: 'no endpoint' }, release: { ...release, status: 'failed' } });
    expect(last().message).toMatch(/Cost:\s+\$0\.04 at us-east-1 list prices\n {2}state transitions 1/);
    // No estimate (the record failed): no Cost line rather than a made-up one.
    await handler({ run: runContext({ version: 'v33' }), error: { Error: 'EvaluationError', Cause: 'no endpoint' } });
    expect(last().message).not.toContain('Cost:');
  });

  it('reports a training failure with the end of the pod log, trimmed to fit SNS', async () => {
    const tail = Array.from({ length: 20000 }, (_, i) => `epoch 1 step ${i}: loss 0.5`).join('\n') + '\nError: out of memory (the real reason)';
    const cause = JSON.stringify({ errorType: 'TrainingFailedError', errorMessage: `Job fashion-v8-train failed: BackoffLimitExceeded. Pod log tail:\n${tail}`, trace: ['at x'] });
    await handler({
      run: runContext({ version: 'v8' }),
      error: { Error: 'TrainingFailedError', Cause: cause },
      cleanup: { deleted: ['Job mlpipe-staging/fashion-v8-train'] },
    });
    const m = last();
    expect(m.subject).toBe('[mlpipe] fashion v8: training failed');
    expect(m.message).toContain('fashion v8 did not reach production: training failed. Production is unchanged.');
    expect(m.message).toMatch(/Error:\s+TrainingFailedError/);
    expect(m.message).toMatch(/Cleaned up:\s+Job mlpipe-staging\/fashion-v8-train/);
    expect(m.message.trimEnd().endsWith('Error: out of memory (the real reason)')).toBe(true);
    expect(m.message).toContain('[... earlier output trimmed ...]');
    expect(m.message).not.toContain('"trace"');
    expect(Buffer.byteLength(m.message, 'utf8')).toBeLessThanOrEqual(MAX_MESSAGE_BYTES);
  });

  it('reports a rejection with who rejected and why, and a gate failure with its summary', async () => {
    const decision = { decision: 'reject', by: 'carol', at: '2026-01-01T13:00:00.000Z', from: 'cli', comment: 'too slow' };
    await handler({ run: runContext({ version: 'v9' }), error: { Error: 'ApprovalRejected', Cause: JSON.stringify(decision) }, cleanup: { deleted: [] } });
    expect(last().subject).toBe('[mlpipe] fashion v9: rejected');
    expect(last().message).toMatch(/Rejected by:\s+carol at 2026-01-01T13:00:00\.000Z from cli/);
    expect(last().message).toMatch(/Comment:\s+too slow/);
    expect(last().message).toMatch(/Cleaned up:\s+nothing needed cleaning up/);

    const summary = 'Failed on 1000 samples: error rate 100% > 1% (batch 0: HTTP 404).';
    await handler({ run: runContext({ version: 'v10' }), evaluation: passedEvaluation({ passed: false, summary }), error: { Error: 'EvaluationGateFailed', Cause: summary } });
    expect(last().subject).toBe('[mlpipe] fashion v10: failed the evaluation gate');
    expect(last().message).toContain(summary);
  });

  it('offers a resumable run\'s retry as a command and a signed link, valid a week, that verifies with the link key', async () => {
    resetApprovalSecret();
    const run = runContext({ version: 'v11' });
    const training = { jobName: 'fashion-v11-train', namespace: 'mlpipe-staging', submittedAt: '', status: 'succeeded' as const, completedAt: '' };
    const before = Math.floor(Date.now() / 1000);
    await handler({ run, training, error: { Error: 'EvaluationError', Cause: 'the staging endpoint did not answer' } });
    const m = last().message;
    expect(m).toMatch(/Retry:\s+mlpipe retry v11 {3}\(reuses the trained model; staging and the evaluation run again\)/);
    const link = new URL(/^ {2}(http:\/\/\S+\/retries\/v11\?\S+)$/m.exec(m)![1]!);
    expect(link.origin).toBe(process.env.APPROVAL_BASE_URL);
    const q = (k: string) => link.searchParams.get(k) ?? undefined;
    const verified = verifyRetryLink({ run: 'v11', execution: q('execution'), model: q('model'), version: q('version'), exp: q('exp'), sig: q('sig'), secret: process.env.APPROVAL_SECRET! });
    expect(verified).toMatchObject({ executionArn: run.executionArn, modelName: run.modelName, version: 'v11' });
    expect(verified.expiresAt - before).toBeGreaterThanOrEqual(RETRY_LINK_TTL_SECONDS);
    expect(verified.expiresAt - before).toBeLessThanOrEqual(RETRY_LINK_TTL_SECONDS + 5);
    // Another key does not verify it (the link is the pipeline's, not anyone's).
    expect(() => verifyRetryLink({ run: 'v11', execution: q('execution'), model: q('model'), version: q('version'), exp: q('exp'), sig: q('sig'), secret: 'another-key-0123456789abcdef' })).toThrow(/signature does not match/);
    // A run that never trained has nothing to retry: neither the command nor the link.
    await handler({ run: runContext({ version: 'v12' }), error: { Error: 'TrainingFailedError', Cause: 'oom' } });
    expect(last().message).not.toMatch(/retry/i);
  });

  it('reports a run that failed before it started, and a failed cleanup', async () => {
    await handler({ error: { Error: 'InvalidInputError', Cause: '{"errorType":"InvalidInputError","errorMessage":"image is required"}' }, cleanupError: { Error: 'KubernetesUnavailableError', Cause: 'ECONNREFUSED' } });
    expect(last().subject).toBe('[mlpipe] a run that never started: invalid input');
    expect(last().message).toContain('image is required');
    expect(last().message).toMatch(/Cleaned up:\s+cleanup failed \(KubernetesUnavailableError\): ECONNREFUSED/);
  });

  it('says where production traffic went when the run failed after its switch', async () => {
    const error = { Error: 'EndpointUnavailableError', Cause: 'never answered' };
    await handler({ run: runContext({ version: 'v11' }), error, cleanup: { deleted: ['Deployment/p/fashion-v11'], switchedBack: { from: 'v11', to: 'v10' } } });
    expect(last().message).toContain('fashion v11 did not reach production: endpoint never became ready. Production traffic was switched back to v10.');
    await handler({ run: runContext({ version: 'v12' }), error, cleanup: { deleted: [], trafficKept: { version: 'v12', reason: 'no version served production before this run (first release)' } } });
    expect(last().message).toContain('Production traffic stays on this version: no version served production before this run (first release).');
  });

  it('shows a rolled-back canary with canary and stable side by side, and a released one with its steps', async () => {
    const rollout = RolloutSchema.parse({});
    const stats = (requests: number, errors: number, p95Ms: number) => ({ requests, errors, errorRate: errors / requests, p95Ms });
    const evidence = { verdict: 'fail' as const, reasons: ['canary error rate 50.0 % (20/40) is above maxErrorRate 5.0 %'], canary: stats(40, 20, 12.5), stable: stats(120, 0, 9.75), servedShare: 0.25 };
    const canary: CanaryState = {
      status: 'rolledBack', stableVersion: 'v12', totalReplicas: 4, step: 0, weight: 10, canaryReplicas: 1, stableReplicas: 3, reachablePercent: 25,
      scaledAt: '', inconclusive: 0, analyses: 1, waitSeconds: 60, steps: [], last: evidence, failure: 'Canary v13 failed at 10 %', rolledBackAt: '',
    };
    await handler({ run: runContext({ version: 'v13', rollout }), canary, error: { Error: 'CanaryAnalysisFailed', Cause: 'Canary v13 failed at 10 %' }, cleanup: { deleted: [], switchedBack: { from: 'v13', to: 'v12' } } });
    const m = last();
    expect(m.subject).toBe('[mlpipe] fashion v13: the canary failed its analysis and was rolled back');
    expect(m.message).toContain('Canary at 10 % (step 1), analysis 1: fail');
    expect(m.message).toMatch(/canary \(v13\) +stable \(v12\) +limit/);
    expect(m.message).toMatch(/pods +1 of 4 +3 of 4 +10 % requested, 25 % reachable/);
    expect(m.message).toMatch(/requests +40 +120 +>= 50 each/);
    expect(m.message).toMatch(/error rate +50% +0% +<= 5%, at most \+2% over stable/);
    expect(m.message).toMatch(/p95 latency +12\.5 ms +9\.75 ms +<= 1000 ms, at most 1\.5x stable/);

    const passed = { ...evidence, verdict: 'pass' as const, canary: stats(40, 0, 9), servedShare: 0.26 };
    const step = (weight: number) => ({ weight, canaryReplicas: 1, stableReplicas: 3, reachablePercent: 25, startedAt: '', endedAt: '', analyses: 5, evidence: passed });
    await handler({
      run: runContext({ version: 'v14', rollout }),
      production: { stage: 'production', namespace: 'p', deploymentName: 'fashion-v14', serviceName: 'fashion', deployedAt: '', status: 'serving', endpoint: 'http://lb', previousVersion: 'v12', rollout: { strategy: 'canary', stableVersion: 'v12', reason: 'canary over v12' } },
      canary: { ...canary, status: 'promote', weight: 100, steps: [step(10), step(50)], last: undefined, failure: undefined },
    });
    expect(last().message).toMatch(/Rollout:\s+canary over v12: 10 % pass \(served 26%\) → 50 % pass \(served 26%\) → 100 %/);
  });

  describe('training time', () => {
    const submitted = '2026-01-01T12:00:00.000Z';
    const trained = { jobName: 'fashion-t-train', namespace: 'mlpipe-staging', submittedAt: submitted, status: 'succeeded' as const, completedAt: '2026-01-01T12:04:10.000Z' };
    const released = (version: string) => ({
      evaluation: passedEvaluation(),
      approval: { decision: 'approve' as const, by: 'alice', at: '2026-01-01T13:00:00.000Z', from: 'cli' },
      production: { stage: 'production' as const, namespace: 'p', deploymentName: `fashion-${version}`, serviceName: 'fashion', deployedAt: '', status: 'serving' as const, endpoint: 'http://lb' },
    });

    it('a release says how long training took, and a retry whose training it reused', async () => {
      await handler({ run: runContext({ version: 'v20' }), training: trained, ...released('v20') });
      expect(last().message).toMatch(/^Training:\s+4 min 10 s$/m);

      const retry = { of: 'arn:aws:states:us-east-1:000000000000:execution:mlpipe:v19', from: 'DeployStaging' as const };
      await handler({ run: runContext({ version: 'v19', retry }), training: trained, ...released('v19') });
      expect(last().message).toMatch(/^Training:\s+4 min 10 s \(trained by run v19, reused by this retry\)$/m);
    });

    it('a failure during training says how long it ran and how far it got (its last report, no stale ETA)', async () => {
      // GIVEN a run that failed while its Job ran, 2 h 10 min after submission, with the last check's progress in the state
      const submittedAt = new Date(Date.now() - (2 * 3600 + 600) * 1000).toISOString();
      const progress = { fraction: 0.6, epoch: 3, epochs: 5, metrics: { loss: 0.41, accuracy: 0.85 }, etaSeconds: 5200, updatedAt: '2026-11-29T16:05:00.000Z' };
      const error = { Error: 'TrainingFailedError', Cause: 'Job fashion-v21-train failed: BackoffLimitExceeded' };

      // WHEN it is notified
      await handler({ run: runContext({ version: 'v21' }), training: { jobName: 'fashion-v21-train', namespace: 'mlpipe-staging', submittedAt, status: 'pending', progress }, error });

      // THEN
      expect(last().message).toMatch(
        /^Training:\s+ran for 2 h 10 min before the run failed; last progress epoch 3\/5 · 60 % · loss 0\.410 · accuracy 0\.850 \(reported 29 Nov 2026, 16:05 UTC\)$/m,
      );
      expect(last().message).not.toContain('ETA');

      // A trainer that reports nothing, and a run that failed after training completed
      await handler({ run: runContext({ version: 'v22' }), training: { jobName: 'j', namespace: 'n', submittedAt, status: 'pending' }, error });
      expect(last().message).toMatch(/^Training:\s+ran for 2 h 10 min before the run failed; no progress reported$/m);
      await handler({ run: runContext({ version: 'v23' }), training: trained, error: { Error: 'EvaluationError', Cause: 'no answer' } });
      expect(last().message).toMatch(/^Training:\s+4 min 10 s$/m);
      // No Job was ever submitted: no training line at all
      await handler({ run: runContext({ version: 'v24' }), error: { Error: 'TrainingFailedError', Cause: 'quota' } });
      expect(last().message).not.toMatch(/^Training:/m);
    });
  });

  it('keeps subjects to 100 printable ASCII characters', async () => {
    await handler({ run: runContext({ modelName: 'm'.repeat(63), version: `v-${'9'.repeat(60)}` }), error: { Error: 'ÜberError\nx', Cause: 'c' } });
    const s = last().subject!;
    expect(s.length).toBeLessThanOrEqual(100);
    expect(s).toMatch(/^[\x20-\x7e]+$/);
    expect(safeSubject('Modèle  prêt\n✓')).toBe('Modele pret');
    expect(keepTail('abcdef', 100)).toBe('abcdef');
  });
});
