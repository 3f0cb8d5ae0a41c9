/**
 * The EventBridge patterns taken from the synthesized template, run against real-shaped events: the
 * rules start a run for exactly the events they should.
 */
import { matchesPattern } from './event-pattern';
import type { MlPipelineProps } from '../../lib/mlpipe-pipeline';
import { resourcesOf, synthStack } from './helpers';

type Pattern = Parameters<typeof matchesPattern>[0];

/** An "ECR Image Action" event as EventBridge delivers it. */
function ecrEvent(detail: Record<string, unknown>, overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    version: '0',
    id: '13cde686-328b-6117-af20-0e5566167482',
    'detail-type': 'ECR Image Action',
    source: 'aws.ecr',
    account: '123456789012',
    time: '2025-01-01T12:00:00Z',
    region: 'eu-west-1',
    resources: [],
    detail: {
      result: 'SUCCESS',
      'repository-name': 'team/shoes-train',
      'image-digest': 'sha256:' + 'b'.repeat(64),
      'action-type': 'PUSH',
      'image-tag': 'v7',
      ...detail,
    },
    ...overrides,
  };
}

function s3Event(key: string, bucket = 'the-bucket'): Record<string, unknown> {
  return {
    version: '0',
    id: '17793124-05d4-b198-2fde-7ededc63b103',
    'detail-type': 'Object Created',
    source: 'aws.s3',
    account: '123456789012',
    time: '2025-01-01T12:00:00Z',
    region: 'eu-west-1',
    resources: [`arn:aws:s3:::${bucket}`],
    detail: { version: '0', bucket: { name: bucket }, object: { key, size: 120, etag: 'abc', sequencer: '00617F0' }, reason: 'PutObject' },
  };
}

function rulePatterns(props: Partial<MlPipelineProps>): Pattern[] {
  const { template } = synthStack({ props });
  return Object.values(resourcesOf(template, 'AWS::Events::Rule')).map((r) => r.Properties?.EventPattern as Pattern);
}

/** Replaces `{Ref: ...}` (the bucket name is a token in the template) with a concrete name. */
function resolveRefs(value: unknown, name: string): unknown {
  if (Array.isArray(value)) return value.map((v) => resolveRefs(v, name));
  if (value && typeof value === 'object') {
    if ('Ref' in value) return name;
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, resolveRefs(v, name)]));
  }
  return value;
}

describe('ECR push rule, as synthesized', () => {
  const [pattern] = rulePatterns({ trainingRepositoryName: 'team/shoes-train' });

  it.each<[string, Record<string, unknown>, boolean]>([
    ['a successful push to the configured repository', ecrEvent({}), true],
    ['a push without a tag (by digest)', ecrEvent({ 'image-tag': undefined }), true],
    ['a failed push', ecrEvent({ result: 'FAILURE' }), false],
    ['a push to another repository', ecrEvent({ 'repository-name': 'team/shoes-train-old' }), false],
    ['a repository whose name starts the same', ecrEvent({ 'repository-name': 'team/shoes' }), false],
    ['an image deletion', ecrEvent({ 'action-type': 'DELETE' }), false],
    ['another source', ecrEvent({}, { source: 'custom.ecr' }), false],
    ['another detail-type', ecrEvent({}, { 'detail-type': 'ECR Image Scan' }), false],
    ['an event without detail', ecrEvent({}, { detail: undefined }), false],
    ['a malformed detail (string)', ecrEvent({}, { detail: 'PUSH SUCCESS team/shoes-train' }), false],
  ])('%s -> match %s', (_name, event, expected) => {
    expect(matchesPattern(pattern as Pattern, event)).toBe(expected);
  });
});

describe('data rule, as synthesized', () => {
  const data = rulePatterns({ dataUri: 's3://the-bucket/datasets/shoes/', dataPrefix: 'datasets/shoes/' }).find((p) => JSON.stringify(p).includes('aws.s3'));
  const pattern = resolveRefs(data, 'the-bucket') as Pattern;

  it.each<[string, Record<string, unknown>, boolean]>([
    ['the marker of a new version', s3Event('datasets/shoes/v3/dataset.json'), true],
    ['a data file of that version', s3Event('datasets/shoes/v3/train-images-idx3-ubyte'), false],
    ['a marker under another dataset', s3Event('datasets/hats/v1/dataset.json'), false],
    ['a marker in another bucket', s3Event('datasets/shoes/v3/dataset.json', 'other-bucket'), false],
    ['a model file', s3Event('models/shoes/v3/dataset.json'), false],
  ])('%s -> match %s', (_name, event, expected) => {
    expect(matchesPattern(pattern, event)).toBe(expected);
  });
});

describe('the test matcher itself', () => {
  it('refuses operators it does not implement instead of guessing', () => {
    expect(() => matchesPattern({ detail: { size: [{ numeric: ['>', 0] }] } }, { detail: { size: 3 } })).toThrow(/not supported/);
  });
  it('matches any element of an array-valued field', () => {
    expect(matchesPattern({ resources: ['arn:a'] }, { resources: ['arn:b', 'arn:a'] })).toBe(true);
    expect(matchesPattern({ resources: ['arn:a'] }, { resources: ['arn:b'] })).toBe(false);
  });
});
