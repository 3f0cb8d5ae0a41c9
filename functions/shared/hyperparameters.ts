/**
 * Hyperparameters checked at Prepare, before any Job exists, against the schema the training image declares
 * (docs/architecture.md, container contract): the image's label `io.mlpipe.hyperparameters` holds a small
 * JSON Schema. Only the subset below is understood, implemented here rather than with ajv to keep the
 * Prepare bundle small; a schema using anything else is refused, naming the keyword, rather than half
 * enforced. An image without the label keeps the old behaviour (its container alone checks its inputs).
 */
import { InvalidInputError } from './errors';
import { ecrImage, localImage, parseImageReference, readImageLabels } from './image-labels';

/** The image label holding the schema (an OCI image config label, set with Dockerfile `LABEL`). */
export const HYPERPARAMETERS_LABEL = 'io.mlpipe.hyperparameters';
/** A label beyond this is not "a small JSON Schema": refused rather than parsed. */
const MAX_SCHEMA_CHARS = 64 * 1024;

export type HyperparameterValue = string | number | boolean;
type ValueType = 'integer' | 'number' | 'string' | 'boolean';

/** One property's rules, as understood from its JSON Schema. */
interface PropertyRules {
  types: ValueType[];
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  exclusiveMaximum?: number;
  enum?: HyperparameterValue[];
  minLength?: number;
  maxLength?: number;
  pattern?: RegExp;
}

export interface HyperparameterSchema {
  properties: Map<string, PropertyRules>;
  required: string[];
  /** `additionalProperties: false`: keys the schema does not name are refused. */
  closed: boolean;
}

/** Keywords that describe and never constrain: accepted anywhere, ignored. */
const ANNOTATIONS = new Set(['$schema', '$id', '$comment', 'title', 'description', 'default', 'examples', 'deprecated', 'readOnly', 'writeOnly']);
const ROOT_KEYWORDS = new Set(['type', 'properties', 'required', 'additionalProperties']);
const PROPERTY_KEYWORDS = new Set(['type', 'minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum', 'enum', 'const', 'minLength', 'maxLength', 'pattern']);
const VALUE_TYPES: readonly ValueType[] = ['integer', 'number', 'string', 'boolean'];

class SchemaProblem extends Error {}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const own = (o: Record<string, unknown>, k: string): boolean => Object.prototype.hasOwnProperty.call(o, k);

function checkKeywords(schema: Record<string, unknown>, allowed: Set<string>, where: string): void {
  for (const key of Object.keys(schema)) {
    if (!allowed.has(key) && !ANNOTATIONS.has(key)) {
      throw new SchemaProblem(`${where}: keyword "${key}" is not supported (supported: ${[...allowed].join(', ')}, and annotations such as description)`);
    }
  }
}

function finiteNumber(schema: Record<string, unknown>, key: string, where: string): number | undefined {
  if (!own(schema, key)) return undefined;
  const v = schema[key];
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new SchemaProblem(`${where}: "${key}" must be a number`);
  return v;
}

function compileProperty(name: string, schema: unknown): PropertyRules {
  const where = `property "${name}"`;
  if (!isObject(schema)) throw new SchemaProblem(`${where}: must be a schema object`);
  checkKeywords(schema, PROPERTY_KEYWORDS, where);
  const rawTypes = schema.type === undefined ? [] : Array.isArray(schema.type) ? schema.type : [schema.type];
  const types = rawTypes.map((t) => {
    if (!VALUE_TYPES.includes(t as ValueType)) throw new SchemaProblem(`${where}: type ${JSON.stringify(t)} is not supported (hyperparameters are ${VALUE_TYPES.join(', ')})`);
    return t as ValueType;
  });
  const rules: PropertyRules = { types };
  for (const key of ['minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum'] as const) {
    const n = finiteNumber(schema, key, where);
    if (n !== undefined) rules[key] = n;
  }
  for (const key of ['minLength', 'maxLength'] as const) {
    const n = finiteNumber(schema, key, where);
    if (n !== undefined && (!Number.isInteger(n) || n < 0)) throw new SchemaProblem(`${where}: "${key}" must be a whole number >= 0`);
    if (n !== undefined) rules[key] = n;
  }
  const primitive = (v: unknown): v is HyperparameterValue => typeof v === 'string' || typeof v === 'boolean' || (typeof v === 'number' && Number.isFinite(v));
  if (own(schema, 'enum')) {
    if (!Array.isArray(schema.enum) || schema.enum.length === 0 || !schema.enum.every(primitive)) throw new SchemaProblem(`${where}: "enum" must be a non-empty array of strings, numbers or booleans`);
    rules.enum = schema.enum;
  }
  if (own(schema, 'const')) {
    if (!primitive(schema.const)) throw new SchemaProblem(`${where}: "const" must be a string, number or boolean`);
    rules.enum = [schema.const];
  }
  if (own(schema, 'pattern')) {
    if (typeof schema.pattern !== 'string') throw new SchemaProblem(`${where}: "pattern" must be a string`);
    try {
      rules.pattern = new RegExp(schema.pattern, 'u');
    } catch (err) {
      throw new SchemaProblem(`${where}: "pattern" is not a valid regular expression (${(err as Error).message})`);
    }
  }
  return rules;
}

/** The schema text of the label, compiled; throws naming the problem. */
function compileSchema(text: string): HyperparameterSchema {
  if (text.length > MAX_SCHEMA_CHARS) throw new SchemaProblem(`is ${text.length} characters, more than ${MAX_SCHEMA_CHARS}`);
  let schema: unknown;
  try {
    schema = JSON.parse(text);
  } catch (err) {
    throw new SchemaProblem(`is not JSON (${(err as Error).message})`);
  }
  if (!isObject(schema)) throw new SchemaProblem('must be a JSON object (a JSON Schema of type "object")');
  checkKeywords(schema, ROOT_KEYWORDS, 'the schema');
  if (schema.type !== undefined && schema.type !== 'object') throw new SchemaProblem('the schema: "type" must be "object" (hyperparameters are an object)');
  const properties = new Map<string, PropertyRules>();
  if (own(schema, 'properties')) {
    if (!isObject(schema.properties)) throw new SchemaProblem('the schema: "properties" must be an object');
    for (const [name, sub] of Object.entries(schema.properties)) properties.set(name, compileProperty(name, sub));
  }
  const required = own(schema, 'required') ? schema.required : [];
  if (!Array.isArray(required) || !required.every((r): r is string => typeof r === 'string')) throw new SchemaProblem('the schema: "required" must be an array of property names');
  const additional = own(schema, 'additionalProperties') ? schema.additionalProperties : true;
  if (typeof additional !== 'boolean') throw new SchemaProblem('the schema: only "additionalProperties": true or false is supported');
  return { properties, required, closed: !additional };
}

/**
 * Parses the schema an image declares. `image` names the image in the message: a bad declaration is the
 * image's problem, reported as an input error so the run fails at Prepare with the reason.
 */
export function parseHyperparameterSchema(text: string, image: string): HyperparameterSchema {
  try {
    return compileSchema(text);
  } catch (err) {
    if (!(err instanceof SchemaProblem)) throw err;
    throw new InvalidInputError(`image: ${image} declares an invalid hyperparameter schema (label ${HYPERPARAMETERS_LABEL}): ${err.message}.`);
  }
}

/** A JSON number written as text: pipeline hyperparameters may be strings (`defaultHyperparameters` props are). */
const NUMERIC_TEXT = /^-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?$/;

/** The value as the type, if it is one (numbers and booleans may arrive as their text). */
function asType(value: HyperparameterValue, type: ValueType): HyperparameterValue | undefined {
  switch (type) {
    case 'string':
      return typeof value === 'string' ? value : undefined;
    case 'boolean':
      if (typeof value === 'boolean') return value;
      return value === 'true' ? true : value === 'false' ? false : undefined;
    case 'number':
    case 'integer': {
      const n = typeof value === 'number' ? value : typeof value === 'string' && NUMERIC_TEXT.test(value) ? Number(value) : undefined;
      if (n === undefined || !Number.isFinite(n)) return undefined;
      return type === 'integer' && !Number.isInteger(n) ? undefined : n;
    }
  }
}

const show = (v: HyperparameterValue): string => JSON.stringify(v);

/** The one rule `value` breaks, or undefined. */
function problemOf(value: HyperparameterValue, rules: PropertyRules): string | undefined {
  let typed: HyperparameterValue = value;
  if (rules.types.length > 0) {
    const match = rules.types.map((t) => asType(value, t)).find((v) => v !== undefined);
    if (match === undefined) return `${show(value)} is not ${rules.types.map((t) => (t === 'integer' ? 'an integer' : `a ${t}`)).join(' or ')}`;
    typed = match;
  }
  if (rules.enum && !rules.enum.some((e) => e === typed || (typeof e !== 'string' && String(e) === value))) {
    return `${show(value)} is not one of ${rules.enum.map(show).join(', ')}`;
  }
  if (typeof typed === 'number') {
    if (rules.minimum !== undefined && typed < rules.minimum) return `${show(value)} is below the minimum ${rules.minimum}`;
    if (rules.maximum !== undefined && typed > rules.maximum) return `${show(value)} is above the maximum ${rules.maximum}`;
    if (rules.exclusiveMinimum !== undefined && typed <= rules.exclusiveMinimum) return `${show(value)} must be greater than ${rules.exclusiveMinimum}`;
    if (rules.exclusiveMaximum !== undefined && typed >= rules.exclusiveMaximum) return `${show(value)} must be less than ${rules.exclusiveMaximum}`;
  }
  if (typeof typed === 'string') {
    const length = [...typed].length;
    if (rules.minLength !== undefined && length < rules.minLength) return `${show(value)} is shorter than ${rules.minLength} characters`;
    if (rules.maxLength !== undefined && length > rules.maxLength) return `${show(value)} is longer than ${rules.maxLength} characters`;
    if (rules.pattern && !rules.pattern.test(typed)) return `${show(value)} does not match the pattern ${rules.pattern.source}`;
  }
  return undefined;
}

/** Every problem of `values` under `schema`, one `key: rule` each, in key order (empty: valid). */
export function hyperparameterProblems(schema: HyperparameterSchema, values: Readonly<Record<string, HyperparameterValue>>): string[] {
  const problems: string[] = [];
  for (const key of Object.keys(values).sort()) {
    const rules = schema.properties.get(key);
    if (!rules) {
      if (schema.closed) problems.push(`${key}: unknown hyperparameter (the image accepts ${[...schema.properties.keys()].sort().join(', ') || 'none'})`);
      continue;
    }
    const problem = problemOf(values[key]!, rules);
    if (problem !== undefined) problems.push(`${key}: ${problem}`);
  }
  for (const key of schema.required) {
    if (!own(values, key)) problems.push(`${key}: required by the image`);
  }
  return problems;
}

/** Throws one InvalidInputError line naming every key and the rule it breaks. */
export function checkHyperparameters(schema: HyperparameterSchema, values: Readonly<Record<string, HyperparameterValue>>, image: string): void {
  const problems = hyperparameterProblems(schema, values);
  if (problems.length === 0) return;
  throw new InvalidInputError(`hyperparameters: ${problems.join('; ')} (schema of ${image}, label ${HYPERPARAMETERS_LABEL}).`);
}

/** Where Prepare looks for a schema: the one training repository it may read, in its own account and region. */
export interface SchemaLookup {
  trainingRepository: string;
  /** From the execution ARN: the account and region whose ECR registry the IAM grant covers. */
  account: string;
  region: string;
  /** Local mode (AWS_ENDPOINT_URL_ECR): images named without a registry host are in the local ECR. */
  localRegistry: boolean;
}

export type DeclaredSchema = { schema: HyperparameterSchema; note?: undefined } | { schema?: undefined; note: string };

/**
 * The schema the training image declares, or why there is none to check against (the old behaviour then
 * holds). Throws InvalidInputError when ECR has no such image or the declaration is malformed.
 */
export async function declaredSchema(image: string, where: SchemaLookup): Promise<DeclaredSchema> {
  const ref = parseImageReference(image);
  if (!ref) return { note: 'not a reference Prepare can read' };
  const ecr = ecrImage(ref) ?? (where.localRegistry && ref.host === undefined ? localImage(ref) : undefined);
  if (!ecr) return { note: 'not in an ECR registry' };
  if (ecr.repositoryName !== where.trainingRepository) return { note: `not in the training repository ${where.trainingRepository}` };
  if (ecr.registryId !== undefined && (ecr.registryId !== where.account || ecr.region !== where.region)) {
    return { note: `in another account's or region's registry than ${where.account} ${where.region}` };
  }
  const labels = await readImageLabels(ecr, image);
  const text = labels[HYPERPARAMETERS_LABEL];
  if (text === undefined) return { note: `declares no label ${HYPERPARAMETERS_LABEL}` };
  return { schema: parseHyperparameterSchema(text, image) };
}

/**
 * Prepare's check: refuses, in one line naming each key and rule, hyperparameters the training image's
 * declared schema does not accept; an image that declares none (or that Prepare may not read) is not checked.
 * Returns what was done, for the "run prepared" line (one log line per fact).
 */
export async function checkImageHyperparameters(
  image: string,
  values: Readonly<Record<string, HyperparameterValue>>,
  opts: { trainingRepository: string; executionArn: string; localRegistry: boolean },
): Promise<string> {
  // arn:<partition>:states:<region>:<account>:execution:<machine>:<name>
  const [, , , region = '', account = ''] = opts.executionArn.split(':');
  const declared = await declaredSchema(image, { trainingRepository: opts.trainingRepository, account, region, localRegistry: opts.localRegistry });
  if (declared.schema === undefined) return `not checked (image ${declared.note})`;
  checkHyperparameters(declared.schema, values, image);
  return `match the training image's ${HYPERPARAMETERS_LABEL} schema`;
}
