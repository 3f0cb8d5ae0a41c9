/**
 * The Kubernetes API's own rules (functions/shared/k8s-names.ts) against what a real kube-apiserver
 * v1.32.13 accepted and refused (test/fixtures/k8s-validation.json, copied from the recorded transcripts
 * 04, 05 and 06): we accept what it accepted and refuse what it refused, in its own words.
 */
import validation from '../fixtures/k8s-validation.json';
import {
  annotationKeyProblem,
  cpuQuantityProblem,
  dns1035LabelProblem,
  dns1123LabelProblem,
  memoryQuantityProblem,
  modelNameProblem,
} from '../../functions/shared/k8s-names';

interface Example {
  value: string;
  accepted: boolean;
  message: string | null;
  warning?: string | null;
}

/** What the API said about `value`: the text after `Invalid value: "<value>": `, up to the next cause. */
function apiProblem(e: Example): string {
  const marker = `Invalid value: ${JSON.stringify(e.value)}: `;
  const at = e.message!.indexOf(marker);
  if (at < 0) return e.message!;
  return e.message!.slice(at + marker.length).split(/, metadata\.|, spec\.|\]$/)[0] as string;
}

const cases = (examples: Example[]) => examples.map((e) => [e.value.length > 40 ? `${e.value.slice(0, 20)}… (${e.value.length} chars)` : e.value, e] as const);

describe('Service names: DNS-1035 labels', () => {
  it.each(cases(validation.serviceNames))('%s', (_name, e) => {
    expect(dns1035LabelProblem(e.value)).toBe(e.accepted ? undefined : apiProblem(e));
  });
});

describe('Job and Deployment names: DNS-1123 labels (≤ 63, as our names are)', () => {
  it.each(cases([...validation.jobNames, ...validation.deploymentNames.filter((e) => !e.value.includes('.'))]))('%s', (_name, e) => {
    // The 64-character Job is refused for its label (the Job controller copies the name into one): the same rule.
    expect(dns1123LabelProblem(e.value)).toBe(e.accepted ? undefined : 'must be no more than 63 characters');
  });

  it('a model name must make a valid Service name, so 3d-model is refused although its Deployment would be accepted', () => {
    expect(dns1123LabelProblem('3d-model-staging')).toBeUndefined();
    expect(modelNameProblem('3d-model')).toMatch(/^must be a valid Service name, because it names the model's Services: a DNS-1035 label must consist of/);
    expect(modelNameProblem('fashion-mnist')).toBeUndefined();
  });
});

describe('annotation keys: qualified names', () => {
  it.each(cases(validation.annotationKeys))('%s', (_name, e) => {
    expect(annotationKeyProblem(e.value)).toBe(e.accepted ? undefined : apiProblem(e));
  });

  it.each([
    ['service.beta.kubernetes.io/aws-load-balancer-scheme', undefined],
    ['example.com/team', undefined],
    ['plain-name_1.x', undefined],
    [`${'a'.repeat(254)}/x`, 'prefix part must be no more than 253 characters'],
    ['/x', 'prefix part must be non-empty'],
    ['x/', 'name part must be non-empty'],
  ])('%s', (key, problem) => {
    expect(annotationKeyProblem(key)).toBe(problem);
  });
});

describe('quantities', () => {
  it.each(cases(validation.memory))('memory %s', (_name, e) => {
    const problem = memoryQuantityProblem(e.value);
    if (e.warning) {
      // Accepted by the API with only a Warning; refused here with the API's own words (see k8s-names.ts).
      expect(problem).toContain(/fractional byte value "500m" is invalid, must be an integer/.exec(e.warning.replace(/\\"/g, '"'))![0]);
    } else if (e.accepted) {
      expect(problem).toBeUndefined();
    } else {
      expect(e.message).toContain(problem);
    }
  });

  it.each(cases(validation.cpu))('cpu %s', (_name, e) => {
    expect(cpuQuantityProblem(e.value)).toBeUndefined();
  });

  it.each([
    ['2Gi', undefined],
    ['512Mi', undefined],
    ['1.5Gi', undefined],
    ['1e9', undefined],
    ['1500k', undefined],
    ['0.5', 'fractional byte value "0.5" is invalid, must be an integer'],
    ['500m', 'fractional byte value "500m" is invalid, must be an integer (did you mean "500Mi"?)'],
    ['0', 'must be greater than 0'],
    ['-1Gi', 'must be greater than 0'],
    ['2GB', "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"],
  ])('memory %s', (value, problem) => {
    expect(memoryQuantityProblem(value)).toBe(problem);
  });

  it.each([
    ['1', undefined],
    ['250m', undefined],
    ['0.5', undefined],
    ['half', "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"],
    ['0', 'must be greater than 0'],
  ])('cpu %s', (value, problem) => {
    expect(cpuQuantityProblem(value)).toBe(problem);
  });
});
