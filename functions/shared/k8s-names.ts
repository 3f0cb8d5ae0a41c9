/**
 * The Kubernetes API's own rules for the names, annotation keys and quantities mlpipe puts in objects
 * (k8s.io/apimachinery validation, as a real kube-apiserver v1.32 answers them: test/fixtures/k8s-validation
 * holds the accepted and refused examples). Checked where the values enter — construct props and context
 * at synth, settings at a Lambda's init, the run request in Prepare — so a bad value fails there with the
 * API's rule in the message, not as a 422 halfway through a run. Pure: imported by the CDK app too.
 */
import type { V1Toleration } from '@kubernetes/client-node';

/** DNS-1123 label, ≤ 63 characters: Job, Deployment and namespace names, label values we derive. */
export const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
/** DNS-1035 label, ≤ 63 characters: Service names (no leading digit). */
export const DNS1035_LABEL = /^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$/;
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const QUALIFIED_NAME_PART = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;

export const MAX_LABEL_LENGTH = 63;
const MAX_SUBDOMAIN_LENGTH = 253;

// The API's messages, word for word, so what we say matches what a real cluster would have said.
const DNS1123_LABEL_RULE =
  "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
const DNS1035_LABEL_RULE =
  "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')";
const SUBDOMAIN_RULE =
  "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const NAME_PART_RULE =
  "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
const QUALIFIED_NAME_RULE =
  "a qualified name must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')";
const QUANTITY_RULE = "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'";

const tooLong = (max: number) => `must be no more than ${max} characters`;

/** Why `name` is not a DNS-1123 label, or undefined if it is one. */
export function dns1123LabelProblem(name: string): string | undefined {
  if (name.length > MAX_LABEL_LENGTH) return tooLong(MAX_LABEL_LENGTH);
  return DNS1123_LABEL.test(name) ? undefined : DNS1123_LABEL_RULE;
}

/** Why `name` is not a DNS-1035 label (what a Service name must be), or undefined. */
export function dns1035LabelProblem(name: string): string | undefined {
  if (name.length > MAX_LABEL_LENGTH) return tooLong(MAX_LABEL_LENGTH);
  return DNS1035_LABEL.test(name) ? undefined : DNS1035_LABEL_RULE;
}

/**
 * Why `key` is not a valid annotation key, or undefined: a qualified name, `[prefix/]name`, the prefix a
 * DNS-1123 subdomain (≤ 253), the name ≤ 63. The API lower-cases annotation keys before this check (so
 * `MLPipe.Example.com/Model` is accepted as an annotation, though not as a label key); so do we.
 */
export function annotationKeyProblem(key: string): string | undefined {
  return qualifiedNameProblem(key.toLowerCase());
}

/**
 * Why `key` is not a qualified name (`[prefix/]name`, as a label key, a node selector key or a toleration
 * key must be), or undefined. Unlike annotation keys, these are checked as written (case kept).
 */
export function qualifiedNameProblem(key: string): string | undefined {
  const parts = key.split('/');
  if (parts.length > 2) return QUALIFIED_NAME_RULE;
  const name = parts.length === 2 ? (parts[1] as string) : (parts[0] as string);
  const prefix = parts.length === 2 ? (parts[0] as string) : undefined;
  if (prefix !== undefined) {
    if (prefix.length === 0) return 'prefix part must be non-empty';
    if (prefix.length > MAX_SUBDOMAIN_LENGTH) return `prefix part ${tooLong(MAX_SUBDOMAIN_LENGTH)}`;
    if (!DNS1123_SUBDOMAIN.test(prefix)) return `prefix part ${SUBDOMAIN_RULE}`;
  }
  if (name.length === 0) return 'name part must be non-empty';
  if (name.length > MAX_LABEL_LENGTH) return `name part ${tooLong(MAX_LABEL_LENGTH)}`;
  return QUALIFIED_NAME_PART.test(name) ? undefined : NAME_PART_RULE;
}

const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;
const LABEL_VALUE_RULE =
  "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";

/** Why `value` is not a label value (a node selector's values, a toleration's value), or undefined. */
export function labelValueProblem(value: string): string | undefined {
  if (value.length > MAX_LABEL_LENGTH) return tooLong(MAX_LABEL_LENGTH);
  return LABEL_VALUE.test(value) ? undefined : LABEL_VALUE_RULE;
}

/** Why `name` is not a DNS-1123 subdomain (what a PriorityClass name must be), or undefined. */
export function dns1123SubdomainProblem(name: string): string | undefined {
  if (name.length > MAX_SUBDOMAIN_LENGTH) return tooLong(MAX_SUBDOMAIN_LENGTH);
  return DNS1123_SUBDOMAIN.test(name) ? undefined : SUBDOMAIN_RULE;
}

/** A pod toleration (core/v1 Toleration). */
export type Toleration = V1Toleration;

// In validateTaintEffect's order (field.NotSupported lists them as given, unsorted).
const TAINT_EFFECTS = ['NoSchedule', 'PreferNoSchedule', 'NoExecute'];

/**
 * What is wrong with a toleration, as kube-apiserver v1.32's ValidateTolerations says it (field, message),
 * so a toleration the API would refuse with a 422 on every pod is refused where it is configured.
 */
export function tolerationProblems(t: Toleration): Array<{ field: string; message: string }> {
  const problems: Array<{ field: string; message: string }> = [];
  const key = t.key ?? '';
  const operator = t.operator ?? '';
  const value = t.value ?? '';
  if (key !== '') {
    const p = qualifiedNameProblem(key);
    if (p !== undefined) problems.push({ field: 'key', message: p });
  }
  if (key === '' && operator !== 'Exists') {
    problems.push({ field: 'operator', message: 'operator must be Exists when `key` is empty, which means "match all values and all keys"' });
  }
  if (t.tolerationSeconds !== undefined && t.effect !== 'NoExecute') {
    problems.push({ field: 'effect', message: "effect must be 'NoExecute' when `tolerationSeconds` is set" });
  }
  if (operator === '' || operator === 'Equal') {
    const p = labelValueProblem(value);
    if (p !== undefined) problems.push({ field: 'value', message: p });
  } else if (operator === 'Exists') {
    if (value !== '') problems.push({ field: 'value', message: "value must be empty when `operator` is 'Exists'" });
  } else {
    problems.push({ field: 'operator', message: `Unsupported value: "${operator}": supported values: "Equal", "Exists"` });
  }
  if ((t.effect ?? '') !== '' && !TAINT_EFFECTS.includes(t.effect!)) {
    problems.push({ field: 'effect', message: `Unsupported value: "${t.effect}": supported values: ${TAINT_EFFECTS.map((e) => `"${e}"`).join(', ')}` });
  }
  return problems;
}

// ---------------------------------------------------------------------------------------------------
// Quantities (k8s.io/apimachinery/pkg/api/resource ParseQuantity)

const QUANTITY = /^([+-]?[0-9]+(?:\.[0-9]*)?|[+-]?\.[0-9]+)(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E|[eE][-+]?[0-9]+)?$/;
const BINARY: Record<string, number> = { Ki: 1, Mi: 2, Gi: 3, Ti: 4, Pi: 5, Ei: 6 };
const DECIMAL: Record<string, number> = { n: -9, u: -6, m: -3, '': 0, k: 3, M: 6, G: 9, T: 12, P: 15, E: 18 };

/** The exact value of a quantity as a fraction of BigInts, or undefined if it is not one. */
function quantityValue(text: string): { num: bigint; den: bigint } | undefined {
  const m = QUANTITY.exec(text);
  if (!m) return undefined;
  const [, number = '', suffix = ''] = m;
  const negative = number.startsWith('-');
  const digits = number.replace(/^[+-]/, '');
  const [whole = '', fraction = ''] = digits.split('.');
  let num = BigInt(`${whole}${fraction}` || '0') * (negative ? -1n : 1n);
  let den = 10n ** BigInt(fraction.length);
  if (suffix in BINARY) num *= 1024n ** BigInt(BINARY[suffix] as number);
  else {
    const exp = suffix in DECIMAL ? (DECIMAL[suffix] as number) : Number(suffix.slice(1));
    if (exp >= 0) num *= 10n ** BigInt(exp);
    else den *= 10n ** BigInt(-exp);
  }
  return { num, den };
}

/** A CPU quantity in cores (`500m` → 0.5, `2` → 2), for sums and prices; undefined if `text` is not a quantity. */
export function cpuCores(text: string): number | undefined {
  const v = quantityValue(text);
  return v ? Number(v.num) / Number(v.den) : undefined;
}

/** Why `text` is not a Kubernetes quantity usable as a CPU request, or undefined. */
export function cpuQuantityProblem(text: string): string | undefined {
  const v = quantityValue(text);
  if (!v) return QUANTITY_RULE;
  if (v.num <= 0n) return 'must be greater than 0';
  return undefined;
}

/**
 * Why `text` is not a memory quantity, or undefined. A fractional number of bytes (`500m` = half a byte:
 * surely 500Mi was meant) is refused: the real API accepts it with only a Warning header ("fractional
 * byte value "500m" is invalid, must be an integer") and the pod then gets a 1-byte memory limit and
 * can never start — better to stop at synth or init than to fail later with no clear reason.
 */
export function memoryQuantityProblem(text: string): string | undefined {
  const v = quantityValue(text);
  if (!v) return QUANTITY_RULE;
  if (v.num <= 0n) return 'must be greater than 0';
  if (v.num % v.den !== 0n) {
    const hint = text.endsWith('m') ? ` (did you mean "${text.slice(0, -1)}Mi"?)` : '';
    return `fractional byte value "${text}" is invalid, must be an integer${hint}`;
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------------
// Model names

/**
 * Why `name` cannot be a model name, or undefined. The model name names the production Service as it is
 * and starts every staging Service name (names.ts), so it must be a DNS-1035 label: `3d-model` would
 * train and roll out (Job and Deployment names only need DNS-1123) and then fail at ExposeStaging. It is
 * also a label value (≤ 63) and an S3 key segment. Refused, not mapped: a silently renamed model would
 * not match what the user looks for in the cluster, the registry and the CLI.
 */
export function modelNameProblem(name: string): string | undefined {
  const problem = dns1035LabelProblem(name);
  return problem === undefined ? undefined : `must be a valid Service name, because it names the model's Services: ${problem}`;
}
