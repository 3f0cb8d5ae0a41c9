/**
 * A small EventBridge event-pattern matcher for the tests, honestly limited to the operators mlpipe's
 * rules use: exact values (strings, numbers, booleans) and `prefix`, `suffix` and `wildcard` (`*` only)
 * objects. Nested objects match nested fields; every field in the pattern must match; an array of
 * values matches when any one does, including against an array-valued event field. Any other operator
 * throws, so a pattern this matcher cannot judge fails the test instead of passing it.
 */
type Pattern = { [key: string]: Pattern | unknown[] };

export function matchesPattern(pattern: Pattern, event: unknown): boolean {
  if (typeof event !== 'object' || event === null || Array.isArray(event)) return false;
  const record = event as Record<string, unknown>;
  return Object.entries(pattern).every(([key, expected]) => {
    const actual = record[key];
    if (Array.isArray(expected)) return matchesValues(expected, actual);
    if (typeof expected === 'object' && expected !== null) return matchesPattern(expected as Pattern, actual);
    throw new Error(`pattern field "${key}" must be an array of values or a nested object`);
  });
}

function matchesValues(expected: unknown[], actual: unknown): boolean {
  const candidates = Array.isArray(actual) ? actual : [actual];
  return candidates.some((value) => value !== undefined && expected.some((e) => matchesOne(e, value)));
}

function matchesOne(expected: unknown, value: unknown): boolean {
  if (expected === null || ['string', 'number', 'boolean'].includes(typeof expected)) return expected === value;
  const ops = Object.entries(expected as Record<string, unknown>);
  if (ops.length !== 1) throw new Error(`unsupported matcher ${JSON.stringify(expected)}`);
  const [op, arg] = ops[0] as [string, unknown];
  if (!['prefix', 'suffix', 'wildcard'].includes(op)) throw new Error(`operator "${op}" is not supported by this test matcher`);
  if (typeof value !== 'string' || typeof arg !== 'string') return false;
  switch (op) {
    case 'prefix':
      return value.startsWith(arg);
    case 'suffix':
      return value.endsWith(arg);
    case 'wildcard': {
      const regex = new RegExp(`^${arg.split('*').map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`, 's');
      return regex.test(value);
    }
    default:
      throw new Error(`operator "${op}" is not supported by this test matcher`);
  }
}
