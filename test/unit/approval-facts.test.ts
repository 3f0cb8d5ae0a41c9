/**
 * What the approval page and email derive from a request: the trigger in words for every starter, each
 * class's row against production's, and production's column — whose latency is shown only when it was
 * measured in the same evaluation as the candidate's.
 */
import { championColumn, classRows, describeTrigger, hyperparameterList, trainingTime } from '../../functions/shared/approval-facts';
import { datasetDigest } from '../../functions/shared/dataset-digest';
import { classTable, confusionTable, metricsTable } from '../../functions/shared/notifications';
import type { EvaluationResult } from '../../functions/shared/types';

const evaluation = (over: Partial<EvaluationResult> = {}): EvaluationResult => ({
  passed: true,
  summary: 'Passed',
  accuracy: 0.9,
  latencyMsP50: 4,
  latencyMsP95: 9,
  errorRate: 0,
  samples: 300,
  thresholds: { minAccuracy: 0.85, maxP95LatencyMs: 250, maxErrorRate: 0.01, maxAccuracyDrop: 0.01 },
  production: null,
  evaluatedAt: '2026-01-01T00:00:00.000Z',
  reportUri: 's3://b/e.json',
  ...over,
});

describe('describeTrigger', () => {
  it.each([
    [{ source: 'ecr-push', detail: { repositoryName: 'fashion-train', imageDigest: 'sha256:1', imageTag: 'v3' } }, 'push of fashion-train:v3 to ECR'],
    [{ source: 'ecr-push', detail: { repositoryName: 'fashion-train', imageDigest: 'sha256:1' } }, 'push of fashion-train to ECR'],
    [{ source: 's3-data', detail: { bucket: 'b', key: 'datasets/shoes/v3/dataset.json', etag: 'e' } }, 'new data: s3://b/datasets/shoes/v3/dataset.json'],
    [{ source: 'schedule', detail: { scheduledTime: '2026-11-29T02:00:00Z' } }, 'schedule (2026-11-29T02:00:00Z)'],
    [{ source: 'cli', detail: { by: 'arn:aws:iam::123456789012:user/alice' } }, 'mlpipe run, by arn:aws:iam::123456789012:user/alice'],
    [{ source: 'cli' }, 'mlpipe run'],
    [{ source: 'retry', detail: { by: 'local:bob', run: 'run-7' } }, 'mlpipe retry of run run-7, by local:bob'],
    [{ source: 'local' }, 'npm start (the local run)'],
    [{ source: 'github-actions', detail: { workflow: 'release', attempt: 2, nested: { x: 1 } } }, 'github-actions (workflow=release, attempt=2)'],
  ])('%j → %s', (trigger, text) => {
    expect(describeTrigger(trigger)).toBe(text);
  });
});

describe('per-class rows and production\'s column', () => {
  it('marks a class worse only when it lost accuracy on the same images, and a weak class below the gate\'s minimum', () => {
    const e = evaluation({
      classes: ['Shirt', 'Bag'],
      perClassAccuracy: [0.64, 0.97, 0.9],
      production: { version: 'v1', accuracy: 0.88, perClassAccuracy: [0.65, 0.97, 0.8] },
    });
    expect(classRows(e)).toEqual([
      { label: 0, name: 'Shirt', accuracy: 0.64, production: 0.65, change: -0.01, worse: true, belowMinimum: true },
      { label: 1, name: 'Bag', accuracy: 0.97, production: 0.97, change: 0, worse: false, belowMinimum: false },
      // More labels than names: the label number names it.
      { label: 2, name: '2', accuracy: 0.9, production: 0.8, change: 0.1, worse: false, belowMinimum: false },
    ]);
    expect(classTable(e)).toMatch(/Shirt\s+0\.6400\s+0\.6500\s+-0\.0100\s+WORSE, below 0\.8500\n/);
    expect(classRows(evaluation())).toEqual([]);
    expect(classTable(evaluation())).toBe('');
    expect(confusionTable(evaluation())).toBe('');
  });

  it('shows production\'s latency only when measured in the same evaluation', () => {
    const measured = evaluation({ production: { version: 'v1', accuracy: 0.88, latencyMsP50: 3, latencyMsP95: 8, errorRate: 0 } });
    expect(championColumn(measured, { version: 'v1', accuracy: 0.5 })).toEqual({ version: 'v1', accuracy: 0.88, errorRate: 0, latency: { p50: 3, p95: 8 } });
    // An older state (no production in the evaluation): the recorded accuracy, never its old latency.
    expect(championColumn(evaluation(), { version: 'v0', accuracy: 0.87 })).toEqual({ version: 'v0', accuracy: 0.87 });
    expect(championColumn(evaluation(), null)).toBeNull();
    expect(metricsTable(evaluation(), { version: 'v0', accuracy: 0.87, latencyMsP95: 2, errorRate: 0, endpoint: null })).toMatch(/p95 latency\s+9 ms\s+n\/a\s+<= 250 ms/);
  });
});

describe('run facts', () => {
  it('lists hyperparameters in order, quoting strings, and says when there are none', () => {
    expect(hyperparameterList({ epochs: 4, schedule: 'linear', fast: true })).toBe('epochs=4, schedule="linear", fast=true');
    expect(hyperparameterList({})).toBe("none (the trainer's defaults)");
  });

  it('says whose training a retry reuses', () => {
    const base = { imageDigest: null, trigger: { source: 'retry' }, data: { uri: 's3://b/d/', evalUri: 's3://b/d/' }, hyperparameters: {} };
    expect(trainingTime({ ...base, trainingSeconds: 250, retryOf: 'arn:aws:states:us-east-1:1:execution:sm:run-7' })).toBe('4 min 10 s (trained by run run-7, reused by this retry)');
    expect(trainingTime(base)).toBe('not known');
  });

  it('digests a dataset as sha256sum would list it, whatever order the manifest names its files in', () => {
    const a = { 'b.bin': { sha256: '1'.repeat(64) }, 'a.bin': { sha256: '2'.repeat(64) } };
    const b = { 'a.bin': { sha256: '2'.repeat(64) }, 'b.bin': { sha256: '1'.repeat(64) } };
    expect(datasetDigest(a)).toBe(datasetDigest(b));
    expect(datasetDigest(a)).not.toBe(datasetDigest({ ...a, 'a.bin': { sha256: '3'.repeat(64) } }));
  });
});
