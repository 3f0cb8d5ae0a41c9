/**
 * End to end, offline, as the synthesized stack: the template's state machine definition on the local
 * Step Functions engine, every Task running its function's bundle from `cdk synth` with the template's
 * environment (the approval endpoint and rollback too), a real Fashion-MNIST model trained and served by local "pods" of the local Kubernetes API, local S3,
 * approvals through the real approval endpoint. Runs on one local pipeline: approved, rejected, one whose
 * training fails, and a second approved release; `mlpipe rollback` (the CLI's code path) back to the
 * previous release, and a restart on the same state directory, which restores production from the S3
 * registry. Each test compares production before and after what it does; the two releases the tests build
 * on (the default run, then a quick one) are made once, by whichever test needs them first, and observed
 * right after (defaultRelease, quickSecondRelease), so the tests pass in any order (jest randomize) and
 * alone, and a file run makes two releases rather than up to five.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { parseSnsLog } from '../../local/sns';
import { LOCAL_CONTEXT, startLocalPipeline, type LocalPipeline, type LocalPipelineOptions, type RunOutcome } from '../../local/pipeline';
import { main as mlpipe } from '../../cli/main';
import { getJson } from '../../functions/shared/clients';
import { costLines } from '../../functions/shared/run-cost';
import { E2E_CONTEXT, QUICK_HYPERPARAMETERS, SHARED_SYNTH_CACHE } from './shared-synth';
import { productionDeploymentName } from '../../functions/shared/names';
import type { EvaluationReport, ProductionRecord, ReleaseManifest } from '../../functions/shared/registry';
import { NO_ANSWER, TrafficGenerator } from '../../local/traffic';
import { startLocalMonitor } from '../../local/serving-monitor';
import { MIN_DRIFT_PREDICTIONS } from '../../functions/shared/serving-monitor';
import { checkConsole } from '../browser/console-checks';
import { readLocalSecret } from '../../local/secrets';

// The first run on a fresh clone synthesizes the stack (esbuild bundles every function) before it starts.
jest.setTimeout(600_000);

describe('local pipeline end to end', () => {
  let dir: string;
  let pipeline: LocalPipeline;
  let kc: k8s.KubeConfig;
  const savedEnv = { ...process.env };
  const lines: string[] = [];

  const options = (): LocalPipelineOptions => ({
    stateDir: dir,
    approvalPort: 0,
    log: (l) => lines.push(l),
    context: E2E_CONTEXT,
    synthCacheDir: SHARED_SYNTH_CACHE,
  });

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'mlpipe-e2e-'));
    pipeline = await startLocalPipeline(options());
    kc = new k8s.KubeConfig();
    kc.loadFromFile(pipeline.kubeconfigPath);
  });

  afterAll(async () => {
    await pipeline?.stop();
    rmSync(dir, { recursive: true, force: true });
    process.env = savedEnv;
  });

  const names = async (api: 'jobs' | 'deployments' | 'services', ns: string): Promise<string[]> => {
    if (api === 'jobs') return (await kc.makeApiClient(k8s.BatchV1Api).listNamespacedJob({ namespace: ns })).items.map((o) => o.metadata!.name!);
    if (api === 'deployments') return (await kc.makeApiClient(k8s.AppsV1Api).listNamespacedDeployment({ namespace: ns })).items.map((o) => o.metadata!.name!);
    return (await kc.makeApiClient(k8s.CoreV1Api).listNamespacedService({ namespace: ns })).items.map((o) => o.metadata!.name!);
  };
  /** The model's endpoint token from the local secrets store (what `mlpipe endpoint --show-token` prints). */
  const endpointToken = (model: string): string => {
    const local = JSON.parse(readFileSync(join(dir, 'local.json'), 'utf8')) as { endpointTokenSecrets: Record<string, string> };
    return readLocalSecret(join(dir, 'secrets.json'), local.endpointTokenSecrets[model]!)!;
  };
  const notifications = () => parseSnsLog(readFileSync(pipeline.notificationsFile, 'utf8'));

  const production = () => getJson<ProductionRecord>(pipeline.bucket, 'models/fashion-mnist/production.json');
  const selected = async (): Promise<string | undefined> =>
    (await kc.makeApiClient(k8s.CoreV1Api).readNamespacedService({ name: 'fashion-mnist', namespace: 'mlpipe-production' })).spec?.selector?.['mlpipe.dev/version'];
  /** The cheap training that still passes the lowered gate (E2E_CONTEXT). */
  const QUICK = QUICK_HYPERPARAMETERS;
  /** What production is before a test acts: the record and the production Deployments. */
  const productionNow = async () => ({ record: await production(), deployments: (await names('deployments', 'mlpipe-production')).sort() });

  /** An approved release of `hyperparameters`, asserted SUCCEEDED. */
  async function release(hyperparameters: Record<string, unknown>): Promise<RunOutcome> {
    const run = await pipeline.run({ hyperparameters }, { approval: 'auto-approve' });
    expect({ status: run.status, error: run.error, cause: run.cause }).toEqual({ status: 'SUCCEEDED', error: undefined, cause: undefined });
    return run;
  }

  /**
   * The two releases the tests share, each run once per file whichever test needs it first: a full run
   * costs tens of seconds, and in a random order each test making its own would run up to five. What a
   * test asserts about its release is observed right after the run (by the first caller), so it holds
   * whichever test ran first. The first is the default-hyperparameter run test 1 is about.
   */
  let firstRelease: Promise<FirstRelease> | undefined;
  let secondRelease: Promise<SecondRelease> | undefined;

  interface FirstRelease {
    run: RunOutcome;
    /** Status of a status read of production: with the model's token, without one, with a wrong one (endpoint auth). */
    productionStatus: number;
    unauthenticated: number[];
    productionDeployments: string[];
    selector: string | undefined;
    staging: { deployments: string[]; services: string[]; jobs: string[] };
    objects: { metrics: unknown; evaluation: unknown; manifest: unknown; production: unknown };
  }

  function defaultRelease(): Promise<FirstRelease> {
    firstRelease ??= (async () => {
      const run = await pipeline.run({}, { approval: 'auto-approve' });
      const s = run.output;
      if (run.status !== 'SUCCEEDED' || !s) return { run, productionStatus: 0, unauthenticated: [], productionDeployments: [], selector: undefined, staging: { deployments: [], services: [], jobs: [] }, objects: { metrics: undefined, evaluation: undefined, manifest: undefined, production: undefined } };
      const { version, modelName } = s.run;
      const prefix = `models/${modelName}/${version}/`;
      return {
        run,
        productionStatus: (await fetch(`${s.production!.endpoint}/v1/models/${modelName}`, { headers: { authorization: `Bearer ${endpointToken(modelName)}` } })).status,
        unauthenticated: [
          (await fetch(`${s.production!.endpoint}/v1/models/${modelName}:predict`, { method: 'POST', body: '{"instances":[[0]]}' })).status,
          (await fetch(`${s.production!.endpoint}/v1/models/${modelName}`, { headers: { authorization: 'Bearer wrong' } })).status,
        ],
        productionDeployments: await names('deployments', 'mlpipe-production'),
        selector: (await kc.makeApiClient(k8s.CoreV1Api).readNamespacedService({ name: s.run.names.productionService, namespace: 'mlpipe-production' })).spec?.selector?.['mlpipe.dev/version'],
        staging: { deployments: await names('deployments', 'mlpipe-staging'), services: await names('services', 'mlpipe-staging'), jobs: await names('jobs', 'mlpipe-staging') },
        objects: {
          metrics: await getJson(pipeline.bucket, `${prefix}metrics.json`),
          evaluation: await getJson(pipeline.bucket, `${prefix}evaluation.json`),
          manifest: await getJson(pipeline.bucket, `${prefix}manifest.json`),
          production: await getJson(pipeline.bucket, `models/${modelName}/production.json`),
        },
      };
    })();
    return firstRelease;
  }

  interface SecondRelease {
    v1: string;
    /** Production's Deployments before the second release, and after it. */
    deploymentsBefore: string[];
    deploymentsAfter: string[];
    second: RunOutcome;
    record: ProductionRecord | undefined;
    selector: string | undefined;
  }

  /** A quick release over the first: production moves on, keeping the first as its previous version. */
  function quickSecondRelease(): Promise<SecondRelease> {
    secondRelease ??= (async () => {
      const first = await defaultRelease();
      expect({ status: first.run.status, error: first.run.error, cause: first.run.cause }).toEqual({ status: 'SUCCEEDED', error: undefined, cause: undefined });
      const v1 = first.run.output!.run.version;
      const deploymentsBefore = await names('deployments', 'mlpipe-production');
      const second = await release(QUICK);
      return { v1, deploymentsBefore, deploymentsAfter: await names('deployments', 'mlpipe-production'), second, record: await production(), selector: await selected() };
    })();
    return secondRelease;
  }

  /** Production once both shared releases are made (a test may since have rolled back: it has two either way). */
  async function twoReleases(): Promise<ProductionRecord> {
    await quickSecondRelease();
    const record = await production();
    if (!record || record.history.filter((h) => h.action === 'release').length < 2 || !record.previousVersion) {
      throw new Error(`expected two releases and a previous version, production has ${JSON.stringify(record)}`);
    }
    return record;
  }

  /** Production's version and the previous one (released first if there are none yet). */
  async function currentAndPrevious(): Promise<{ current: string; previous: string }> {
    const { version, previousVersion } = await twoReleases();
    if (!previousVersion) throw new Error('twoReleases() returned a record without a previous version');
    return { current: version, previous: previousVersion };
  }

  it('an approved run trains, evaluates over HTTP, and promotes the model to production', async () => {
    const seen = await defaultRelease();
    const first = seen.run;
    expect(first.error).toBeUndefined();
    expect(first.status).toBe('SUCCEEDED');
    const s = first.output!;
    const { version } = s.run;

    // Evaluated over HTTP on the held-out set, by EvaluateModel.
    expect(s.evaluation!.samples).toBe(E2E_CONTEXT.evalSamples);
    expect(s.evaluation!.accuracy).toBeGreaterThanOrEqual(0.85);
    expect(s.evaluation!.errorRate).toBe(0);
    // Per class, named from the staged data's dataset.json, with the confusion matrix (approval page and email).
    expect(s.evaluation!.classes).toHaveLength(10);
    expect(s.evaluation!.classes![6]).toBe('Shirt');
    expect(s.evaluation!.perClassAccuracy).toHaveLength(10);
    expect(s.evaluation!.confusion!.flat().reduce((a, b) => a + b, 0)).toBe(E2E_CONTEXT.evalSamples);
    expect(s.approval!.decision).toBe('approve');

    // The production endpoint really served the model (right after the run: seen by defaultRelease).
    expect(seen.productionStatus).toBe(200);
    expect(seen.unauthenticated).toEqual([401, 401]); // endpoint auth is on by default
    // The local secrets store generates the token as the template asks Secrets Manager to (its PasswordLength).
    const local = JSON.parse(readFileSync(join(dir, 'local.json'), 'utf8')) as { endpointTokenSecrets: Record<string, string> };
    const tokenSecretId = /:secret:(.+)-local$/.exec(local.endpointTokenSecrets['fashion-mnist']!)![1]!;
    const generated = pipeline.stack.template.Resources[tokenSecretId]!.Properties?.GenerateSecretString as { PasswordLength: number };
    expect(endpointToken('fashion-mnist')).toHaveLength(generated.PasswordLength);

    // Kubernetes: production Deployment of this version + the stable Service; staging and the Job are gone.
    expect(seen.productionDeployments).toContain(s.run.names.productionDeployment);
    expect(seen.selector).toBe(version);
    expect(seen.staging.deployments).not.toContain(s.run.names.stagingDeployment);
    expect(seen.staging.services).not.toContain(s.run.names.stagingService);
    expect(seen.staging.jobs).not.toContain(s.run.names.trainingJob);

    // S3: model, metrics, evaluation, manifest, and the production pointer.
    expect(seen.objects.metrics).toEqual(expect.objectContaining({ accuracy: expect.any(Number) }));
    expect(seen.objects.evaluation).toEqual(expect.objectContaining({ passed: true, samples: E2E_CONTEXT.evalSamples }));
    expect(seen.objects.manifest).toEqual(expect.objectContaining({ status: 'released' }));
    expect(seen.objects.production).toEqual(expect.objectContaining({ version }));
    expect(notifications().some((n) => n.message.includes(version) && /succeeded|released/i.test(`${n.subject} ${n.message}`))).toBe(true);
    // The success email shows the run's cost estimate (RecordRelease, from its history), a line per component, as the manifest records it.
    const cost = s.release!.cost!;
    expect(cost.transitions.count).toBeGreaterThan(15);
    expect(cost.lambda.requests).toBeGreaterThan(10);
    expect(cost.training.cpuSeconds).toBeGreaterThan(0);
    expect((seen.objects.manifest as { cost?: unknown }).cost).toEqual(cost);
    const email = notifications().find((n) => n.subject === `[mlpipe] Released ${s.run.modelName} ${version}`)!.message;
    const [total, ...components] = costLines(cost).map((l) => l.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
    expect(email).toMatch(new RegExp(`^Cost:\\s+${total}\\n${components.map((c) => `  ${c}`).join('\\n')}$`, 'm'));
    const status: string[] = [];
    expect(await mlpipe(['status', s.run.executionName, '-o', 'json', '--local', '--state-dir', dir], { out: (l) => status.push(l), err: () => undefined })).toBe(0);
    expect((JSON.parse(status.join('\n')) as { cost: unknown }).cost).toEqual(cost);

    // The functions ran in workers of their own: their log lines went to handlers.log, not to this process.
    const logLines = readFileSync(pipeline.handlersLog, 'utf8').trim().split('\n');
    expect(logLines.filter((l) => l.includes(version)).length).toBeGreaterThan(0);
    for (const line of logLines) expect(() => JSON.parse(line)).not.toThrow();
    // No field a handler logged was dropped (Powertools drops its own keys: service, level, message…, with a warning).
    expect(logLines.filter((l) => /is a reserved key/.test(l))).toEqual([]);
    // Nothing of the template's settings was put into this process's environment for the handlers.
    expect(process.env.WATCH_BUDGET_SECONDS).toBeUndefined();
  });

  it('the web console shows the runs live, the release\'s graph, evaluation, lineage and log, and the model page', async () => {
    const { run } = await defaultRelease();
    const s = run.output!;
    // The run that appears while the list is open: one Prepare refuses (its input is not a run request),
    // so it is over in seconds and changes nothing the other tests look at.
    let another: Promise<RunOutcome> | undefined;
    await checkConsole({
      stateDir: dir,
      release: { name: s.run.executionName, model: s.run.modelName, version: s.run.version },
      startAnotherRun: async () => {
        const name = `console-live-${s.run.version}`;
        another = pipeline.run({ hyperparameters: 'not an object' }, { name });
        return name;
      },
    });
    expect(await another).toMatchObject({ status: 'FAILED', lastStateName: 'PipelineFailed' });
  });

  it('the serving monitor (the stack\'s Monitor bundle, on its local timer) reads production\'s traffic; mlpipe status shows its numbers', async () => {
    // Prepare: whatever serves now (a release), and the run that released it
    await defaultRelease();
    const record = (await production())!;
    const released = [...record.history].reverse().find((h) => h.action === 'release' && h.version === record.version)!;
    const monitor = startLocalMonitor({ stack: pipeline.stack, invoke: pipeline.invoke, snsEndpoint: pipeline.snsEndpoint, intervalMs: 3_600_000 });
    try {
      await monitor.tick();
      // Act: MIN_DRIFT_PREDICTIONS held-out images, one per predict request, with the endpoint's token (auth is on), then a scrape
      const sent = MIN_DRIFT_PREDICTIONS;
      const traffic = new TrafficGenerator({ url: record.endpoint!, modelName: 'fashion-mnist', ratePerSecond: 100, token: endpointToken('fashion-mnist') });
      const answered = new Promise<void>((resolve) => {
        let n = 0;
        traffic.onResult(() => ++n === sent && resolve());
      });
      traffic.start();
      await answered;
      await traffic.stop();
      const snapshot = (await monitor.tick())!;
      // Assess: every request was a predict answered 200 (none refused 401), the window holds them, its classes close to what the evaluation predicted
      const sentTally = traffic.snapshot();
      expect(sentTally.failures).toEqual([]);
      expect(snapshot).toMatchObject({ model: 'fashion-mnist', version: record.version, errors: 0, errorRate: 0 });
      expect(snapshot.requests).toBeGreaterThanOrEqual(sent);
      expect(snapshot.predictions).toBeGreaterThanOrEqual(sent);
      expect(snapshot.drift).not.toBeNull();
      expect(snapshot.drift).toBeLessThan(0.2);
      expect(snapshot.alarms.map((a) => a.state)).toEqual(['OK', 'OK', 'OK']);
      const out: string[] = [];
      const code = await mlpipe(['status', released.executionArn!.split(':').pop()!, '--local', '--state-dir', dir, '-o', 'json'], { out: (l) => out.push(l), err: () => undefined });
      expect(code).toBe(0);
      expect((JSON.parse(out.join('\n')) as { monitor: unknown }).monitor).toEqual(snapshot);
    } finally {
      monitor.stop();
    }
  });

  it('a rejected run leaves production as it was, records the decision and cleans up staging', async () => {
    const before = await productionNow();
    const run = await pipeline.run({ hyperparameters: QUICK }, { approval: 'reject' });
    expect(run.status).toBe('FAILED');
    expect(run.error).toBe('ApprovalRejected');
    const version = run.lastState!.run.version;
    expect(version).not.toBe(before.record?.version);

    const manifest = await getJson<{ status: string }>(pipeline.bucket, `models/fashion-mnist/${version}/manifest.json`);
    expect(manifest!.status).toBe('rejected');
    expect(await productionNow()).toEqual(before);
    expect(await names('deployments', 'mlpipe-staging')).toEqual([]);
    expect(await names('services', 'mlpipe-staging')).toEqual([]);
    expect(notifications().some((n) => n.message.includes(version) && /reject/i.test(`${n.subject} ${n.message}`))).toBe(true);
  });

  it('a run whose training fails ends in a failure notification carrying the pod log tail, with staging cleaned up', async () => {
    const before = await productionNow();
    const run = await pipeline.run({ hyperparameters: { failWith: 'simulated out-of-memory in epoch 1' } }, { approval: 'auto-approve' });
    expect(run.status).toBe('FAILED');
    expect(run.error).toBe('TrainingFailedError');
    expect(run.cause).toContain('simulated out-of-memory in epoch 1');
    const failure = notifications().at(-1)!;
    expect(failure.message).toContain('TrainingFailedError');
    expect(failure.message).toContain('simulated out-of-memory in epoch 1');
    expect(await names('jobs', 'mlpipe-staging')).toEqual([]);
    expect(await names('deployments', 'mlpipe-staging')).toEqual([]);
    // Production is untouched.
    expect(await productionNow()).toEqual(before);
  });

  it('a second approved release takes production over, keeping the first as its previous version', async () => {
    const { v1, deploymentsBefore, deploymentsAfter, second, record, selector } = await quickSecondRelease();
    const previousDeployment = productionDeploymentName('fashion-mnist', v1);
    expect(deploymentsBefore).toContain(previousDeployment);
    const v2 = second.output!.run.version;
    expect(second.output!.production!.previousVersion).toBe(v1);
    // Its evaluation measured the version serving production alongside it: per class and latency, same images.
    expect(second.output!.evaluation!.production).toEqual({
      version: v1,
      accuracy: expect.any(Number),
      perClassAccuracy: expect.arrayContaining([expect.any(Number)]),
      latencyMsP50: expect.any(Number),
      latencyMsP95: expect.any(Number),
      errorRate: 0,
    });
    // Its accuracy is production's own evaluation's, of the very same images (evaluation.json names it).
    const report = await getJson<EvaluationReport>(pipeline.bucket, `models/fashion-mnist/${v2}/evaluation.json`);
    expect(report!.details.production).toMatchObject({ failedRequests: 0, accuracyFrom: `models/fashion-mnist/${v1}/evaluation.json` });
    // Production's record and Service right after the release (seen by quickSecondRelease).
    expect(record).toMatchObject({ version: v2, previousVersion: v1 });
    expect(selector).toBe(v2);
    // The previous version's Deployment stays for rollback.
    expect(deploymentsAfter).toEqual(expect.arrayContaining([previousDeployment, second.output!.run.names.productionDeployment]));
    // It went through the canary's steps: 10 % and 50 % judged a pass on both versions' counters, 100 % on the canary's alone.
    expect(second.output!.production!.rollout).toMatchObject({ strategy: 'canary', stableVersion: v1 });
    const canary = second.output!.canary!;
    // (E2E_CONTEXT's two pods: 10 % and 50 % both put one canary pod beside one stable.)
    expect(canary).toMatchObject({ status: 'promote', weight: 100, canaryReplicas: 2, stableVersion: v1 });
    expect(canary.steps.map((st) => [st.weight, st.canaryReplicas, st.stableReplicas, st.evidence.verdict])).toEqual([[10, 1, 1, 'pass'], [50, 1, 1, 'pass'], [100, 2, 0, 'pass']]);
    // The share served was measured, not assumed: the canary answered some of the requests, not all.
    const [at10, at50, at100] = canary.steps;
    for (const st of [at10!, at50!]) expect(st.evidence.servedShare).toBeGreaterThan(0);
    for (const st of [at10!, at50!]) expect(st.evidence.servedShare).toBeLessThan(1);
    expect(at100!.evidence.servedShare).toBe(1);
    // Live traffic ran through the rollout: both versions answered it, and not one request failed.
    const traffic = second.traffic!;
    // (failures first: a failed request shows its error, a refusal, a reset or a timeout)
    expect(traffic.total.failures).toEqual([]);
    expect(Object.keys(traffic.total.byVersion).sort()).toEqual([v1, v2].sort());
    expect(traffic.steps.map((st) => st.weight)).toEqual([10, 50, 100]);
    // production.json's history keeps how the release went.
    expect(record!.history.at(-1)).toMatchObject({ action: 'release', version: v2, canary: { version: v2, stableVersion: v1, steps: [{ weight: 10, verdict: 'pass' }, { weight: 50, verdict: 'pass' }, { weight: 100, verdict: 'pass' }] } });
  });

  it('a faulty release is rolled back by its canary: production keeps serving and only the canary fails requests', async () => {
    // Arrange: a version serves production
    await twoReleases();
    const before = await productionNow();
    const stable = before.record!.version;
    // Act: a release whose pods fail half their predictions on purpose (the drill knob)
    const run = await pipeline.run({ hyperparameters: QUICK, rollout: { candidateFault: 'error-rate=0.5' } }, { approval: 'auto-approve' });
    // Assess: failed by its canary, at the first step, with the evidence
    expect({ status: run.status, error: run.error }).toEqual({ status: 'FAILED', error: 'CanaryAnalysisFailed' });
    const version = run.lastState!.run.version;
    const canary = run.lastState!.canary!;
    expect(canary).toMatchObject({ status: 'rolledBack', stableVersion: stable, step: 0, weight: 10, canaryReplicas: 1, stableReplicas: 1 });
    expect(canary.last!.verdict).toBe('fail');
    expect(canary.last!.canary.errorRate).toBeGreaterThan(0.05);
    expect(canary.last!.stable).toMatchObject({ errors: 0 });
    expect(run.cause).toContain(`Canary ${version} failed at 10 %`);

    // The traffic generator: during the failing step only the canary's requests failed; none went unanswered,
    // none the stable version answered failed, before or after the rollback.
    const traffic = run.traffic!;
    const failing = traffic.steps.at(-1)!;
    expect(failing.verdict).toBe('fail');
    expect(failing.snapshot.byVersion[version]!.failed).toBeGreaterThan(0);
    const failedElsewhere = Object.entries(traffic.total.byVersion).filter(([v, t]) => v !== version && t.failed > 0);
    expect(failedElsewhere).toEqual([]);
    expect(traffic.total.byVersion[NO_ANSWER]).toBeUndefined();
    expect(traffic.total.failures.filter((f) => f.version !== version)).toEqual([]);
    expect(Object.keys(traffic.afterRollback!.byVersion).filter((v) => v !== stable)).toEqual([]);
    // How long a bad canary hurt: from its first failed request to the stable version alone again (printed for the record).
    expect(traffic.firstErrorToRollbackMs).toBeGreaterThan(0);
    console.log(`canary rollback: stable at 100 % ${traffic.firstErrorToRollbackMs} ms after the first failed request`);

    // Production: the same version, selector and Deployments as before, the stable one at all its replicas again.
    const after = await productionNow();
    expect(after.deployments).toEqual(before.deployments);
    expect(after.record).toMatchObject({ version: stable, previousVersion: before.record!.previousVersion });
    expect(await selected()).toBe(stable);
    const stableDeployment = await kc.makeApiClient(k8s.AppsV1Api).readNamespacedDeployment({ name: productionDeploymentName('fashion-mnist', stable), namespace: 'mlpipe-production' });
    expect(stableDeployment.spec?.replicas).toBe({ ...LOCAL_CONTEXT, ...E2E_CONTEXT }.servingReplicas);
    // Recorded: production.json's history and the manifest carry the evidence; the email shows both versions' numbers.
    expect(after.record!.history.at(-1)).toMatchObject({ action: 'canary-rollback', version: stable, canary: { version, failure: { weight: 10, stable: { errors: 0 } } } });
    const manifest = (await getJson<ReleaseManifest>(pipeline.bucket, `models/fashion-mnist/${version}/manifest.json`))!;
    expect(manifest).toMatchObject({ status: 'canary-rolled-back', rollout: { strategy: 'canary', failedEvidence: { verdict: 'fail' } } });
    const email = notifications().at(-1)!;
    expect(email.subject).toContain('canary');
    expect(email.message).toMatch(new RegExp(`canary \\(${version}\\) +stable \\(${stable}\\)`));
    expect(email.message).toMatch(/error rate +\d/);
  });

  it('mlpipe rollback puts the previous version back on the production endpoint and records it', async () => {
    const { current: v2, previous: v1 } = await currentAndPrevious();
    const out: string[] = [];
    const err: string[] = [];
    const code = await mlpipe(['rollback', 'fashion-mnist', '--local', '--state-dir', dir], { out: (l) => out.push(l), err: (l) => err.push(l) });
    expect({ code, err }).toEqual({ code: 0, err: [] });
    // The wording is the CLI's; what matters is that it reports the rollback and names the version now serving.
    expect(out.join('\n')).toMatch(new RegExp(`^rolled back fashion-mnist: .*${v1}`, 'm'));
    expect(await selected()).toBe(v1);
    const record = (await production())!;
    expect(record).toMatchObject({ version: v1, previousVersion: v2 });
    expect(record.history.at(-1)).toMatchObject({ version: v1, action: 'rollback', by: expect.stringMatching(/^local:/) });
    const res = await fetch(`${record.endpoint}/v1/models/fashion-mnist`, { headers: { connection: 'close', authorization: `Bearer ${endpointToken('fashion-mnist')}` } });
    expect(res.status).toBe(200);
  });

  it('a restarted pipeline on the same state directory restores production from the registry', async () => {
    // Arrange: production with a previous version to roll back to
    const { current: v1, previous: v2 } = await currentAndPrevious();
    const [current, previous] = [productionDeploymentName('fashion-mnist', v1), productionDeploymentName('fashion-mnist', v2)];
    expect(await names('deployments', 'mlpipe-production')).toEqual(expect.arrayContaining([current, previous]));
    // Act: stop everything (the local cluster and its pods are gone), start again on the same .mlpipe
    await pipeline.stop();
    lines.length = 0;
    pipeline = await startLocalPipeline(options());
    kc = new k8s.KubeConfig();
    kc.loadFromFile(pipeline.kubeconfigPath);
    // Assess: production.json's version serves again, at the endpoint production.json now records
    const record = (await production())!;
    expect(record.version).toBe(v1);
    const line = lines.find((l) => l.startsWith('production '));
    expect(line).toBe(`production fashion-mnist ${v1} restored at ${record.endpoint}`);
    expect(record.endpoint).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(await selected()).toBe(v1);
    const res = await fetch(`${record.endpoint}/v1/models/fashion-mnist`, { headers: { connection: 'close', authorization: `Bearer ${endpointToken('fashion-mnist')}` } });
    expect(res.status).toBe(200);
    // The previous version is back too, retained at 0 replicas: rollback scales it up, waits, then switches.
    expect((await names('deployments', 'mlpipe-production')).sort()).toEqual([current, previous].sort());
    await expect(pipeline.invoke(pipeline.stack.outputs.RollbackFunctionName!, { modelName: 'fashion-mnist', by: 'e2e' })).resolves.toMatchObject({ fromVersion: v1, toVersion: v2, endpoint: record.endpoint });
    expect(await selected()).toBe(v2);
  });
});
