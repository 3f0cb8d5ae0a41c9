/**
 * The hyperparameter schema subset (functions/shared/hyperparameters.ts) and the example trainer's
 * declaration: the label in examples/fashion-mnist/Dockerfile.train, read as the local ECR reads it, must
 * accept exactly what train.ts's own zod schema accepts, so Prepare refuses what the pod would refuse.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { hyperparametersSchema } from '../../examples/fashion-mnist/hyperparameters';
import { InvalidInputError } from '../../functions/shared/errors';
import {
  HYPERPARAMETERS_LABEL,
  checkHyperparameters,
  hyperparameterProblems,
  parseHyperparameterSchema,
  type HyperparameterValue,
} from '../../functions/shared/hyperparameters';
import { dockerfileLabels } from '../../local/ecr';

const IMAGE = 'mlpipe/fashion-mnist-train:local';
const labelText = dockerfileLabels(readFileSync(join(__dirname, '../../examples/fashion-mnist/Dockerfile.train'), 'utf8'))[HYPERPARAMETERS_LABEL];
const declared = parseHyperparameterSchema(labelText ?? 'missing', IMAGE);

function refusal(values: Record<string, HyperparameterValue>): string {
  try {
    checkHyperparameters(declared, values, IMAGE);
  } catch (err) {
    expect(err).toBeInstanceOf(InvalidInputError);
    return (err as Error).message;
  }
  throw new Error(`accepted ${JSON.stringify(values)}`);
}

describe('the example training image declares its hyperparameters', () => {
  it('has the label, in its final stage', () => {
    expect(labelText).toBeDefined();
    expect([...declared.properties.keys()].sort()).toEqual(Object.keys(hyperparametersSchema.shape).sort());
    expect(declared.closed).toBe(true);
  });

  // The values, refused in one line naming the key and the rule.
  it.each([
    [{ epochs: 1e9 }, 'epochs: 1000000000 is above the maximum 1000'],
    [{ epochs: -1 }, 'epochs: -1 is below the minimum 1'],
    [{ epochs: 'abc' }, 'epochs: "abc" is not an integer'],
    [{ epochs: 2.5 }, 'epochs: 2.5 is not an integer'],
    [{ batchSize: 0 }, 'batchSize: 0 is below the minimum 1'],
    [{ learningRate: 0 }, 'learningRate: 0 must be greater than 0'],
    [{ learningRateSchedule: 'cosine' }, 'learningRateSchedule: "cosine" is not one of "linear", "constant"'],
    [{ epoch: 3 }, 'epoch: unknown hyperparameter (the image accepts batchSize, epochs, failWith,'],
  ])('refuses %j: %s', (values, expected) => {
    const message = refusal(values as Record<string, HyperparameterValue>);
    expect(message).toContain(expected);
    expect(message).toContain(`(schema of ${IMAGE}, label ${HYPERPARAMETERS_LABEL}).`);
    expect(message).not.toContain('\n');
  });

  it('names every problem in one line', () => {
    const message = refusal({ epochs: 0, batchSize: 'x', bogus: true });
    expect(message.split('\n')).toHaveLength(1);
    expect(message).toMatch(/^hyperparameters: batchSize: "x" is not an integer; bogus: unknown hyperparameter .*; epochs: 0 is below the minimum 1 \(schema of/);
  });

  it('accepts the defaults, the README examples and numbers given as text', () => {
    expect(hyperparameterProblems(declared, {})).toEqual([]);
    expect(hyperparameterProblems(declared, { epochs: 3, batchSize: 128, learningRate: 0.003, learningRateSchedule: 'linear' })).toEqual([]);
    expect(hyperparameterProblems(declared, { epochs: '3', maxTrainSamples: '2000', threads: 1, failWith: 'boom' })).toEqual([]);
  });

  // Boundaries and types of every declared key: the label and train.ts agree on each.
  const probes: Record<string, HyperparameterValue[]> = {
    epochs: [0, 1, 1000, 1001, 1.5, '2', 'abc'],
    batchSize: [0, 1, 60000, 60001, '64', -3],
    learningRate: [0, 0.002, 1, 1.01, '0.1', -0.1],
    learningRateSchedule: ['linear', 'constant', 'cosine', 3],
    finalLearningRateFraction: [-0.1, 0, 1, 1.1, '0.5'],
    hiddenUnits: [0, 1, 4096, 4097],
    seed: [-1, 0, 2147483647, 2147483648, '42'],
    validationSplit: [0, 0.1, 0.5, 0.51],
    maxTrainSamples: [9, 10, 10000000, 10000001],
    threads: [0, 1, 64, 65],
    failWith: ['boom', ''],
  };
  const cases = Object.entries(probes).flatMap(([key, values]) => values.map((v) => [key, v] as const));
  it.each(cases)('%s = %j: Prepare and the trainer agree', (key, value) => {
    const trainer = hyperparametersSchema.safeParse({ [key]: value }).success;
    const prepare = hyperparameterProblems(declared, { [key]: value }).length === 0;
    expect(prepare).toBe(trainer);
  });
});

describe('schemas an image may declare', () => {
  const parse = (schema: unknown) => parseHyperparameterSchema(JSON.stringify(schema), 'x/y:1');

  it('open schemas let unknown keys through; required keys are required', () => {
    const schema = parse({ type: 'object', properties: { rate: { type: 'number' } }, required: ['rate'] });
    expect(hyperparameterProblems(schema, { rate: 1, other: 'x' })).toEqual([]);
    expect(hyperparameterProblems(schema, {})).toEqual(['rate: required by the image']);
  });

  it('understands const, string lengths, patterns, boolean text and type lists', () => {
    const schema = parse({
      properties: {
        mode: { const: 'fast' },
        name: { type: 'string', minLength: 2, maxLength: 4, pattern: '^[a-z]+$' },
        flag: { type: 'boolean' },
        size: { type: ['integer', 'string'] },
      },
      additionalProperties: false,
    });
    expect(hyperparameterProblems(schema, { mode: 'fast', name: 'abc', flag: 'true', size: 'big' })).toEqual([]);
    expect(hyperparameterProblems(schema, { mode: 'slow', name: 'a', flag: 'yes', size: false })).toEqual([
      'flag: "yes" is not a boolean',
      'mode: "slow" is not one of "fast"',
      'name: "a" is shorter than 2 characters',
      'size: false is not an integer or a string',
    ]);
    expect(hyperparameterProblems(schema, { name: 'ABC' })).toEqual(['name: "ABC" does not match the pattern ^[a-z]+$']);
  });

  it('does not treat prototype names as declared properties', () => {
    const schema = parse({ properties: { rate: { type: 'number' } }, additionalProperties: false });
    expect(hyperparameterProblems(schema, JSON.parse('{"__proto__": 1, "constructor": 2}') as Record<string, number>)).toEqual([
      '__proto__: unknown hyperparameter (the image accepts rate)',
      'constructor: unknown hyperparameter (the image accepts rate)',
    ]);
  });

  // A declaration Prepare cannot fully enforce is refused, naming the problem, rather than half applied.
  it.each([
    ['not json', 'is not JSON'],
    ['[]', 'must be a JSON object'],
    [JSON.stringify({ type: 'array' }), '"type" must be "object"'],
    [JSON.stringify({ oneOf: [] }), 'keyword "oneOf" is not supported'],
    [JSON.stringify({ properties: { a: { type: 'object' } } }), 'property "a": type "object" is not supported'],
    [JSON.stringify({ properties: { a: { multipleOf: 2 } } }), 'property "a": keyword "multipleOf" is not supported'],
    [JSON.stringify({ properties: { a: { minimum: '1' } } }), 'property "a": "minimum" must be a number'],
    [JSON.stringify({ properties: { a: { pattern: '(' } } }), 'property "a": "pattern" is not a valid regular expression'],
    [JSON.stringify({ additionalProperties: { type: 'string' } }), 'only "additionalProperties": true or false'],
    ['{"description":"<70,000 characters>"}'.replace('<70,000 characters>', 'x'.repeat(70_000)), 'more than 65536'],
  ])('refuses the declaration %.60s', (text, expected) => {
    expect(() => parseHyperparameterSchema(text, 'x/y:1')).toThrow(InvalidInputError);
    expect(() => parseHyperparameterSchema(text, 'x/y:1')).toThrow(`image: x/y:1 declares an invalid hyperparameter schema (label ${HYPERPARAMETERS_LABEL}): `);
    expect(() => parseHyperparameterSchema(text, 'x/y:1')).toThrow(expected);
  });
});
