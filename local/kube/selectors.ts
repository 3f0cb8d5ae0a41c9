/**
 * Label and field selectors as kube-apiserver parses them: the `labelSelector` / `fieldSelector` query
 * strings of list and watch, and the structured `LabelSelector` of Deployments, ReplicaSets and Jobs.
 */
import type { KubeObject, LabelSelector } from './resources';
import { errors } from './status';

export interface Requirement {
  key: string;
  operator: 'in' | 'notin' | 'exists' | '!exists' | '=' | '!=';
  values: string[];
}

/** Split on commas that are not inside `( )`, as `a in (x,y),b` has one comma that separates. */
function splitTopLevel(text: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let current = '';
  for (const ch of text) {
    if (ch === '(') depth++;
    if (ch === ')') depth--;
    if (ch === ',' && depth === 0) {
      parts.push(current);
      current = '';
    } else {
      current += ch;
    }
  }
  parts.push(current);
  return parts.map((p) => p.trim()).filter((p) => p.length > 0);
}

const KEY = String.raw`[A-Za-z0-9]([-A-Za-z0-9_./]*[A-Za-z0-9])?`;
const VALUE = String.raw`([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?`;
const SET_RE = new RegExp(String.raw`^(${KEY})\s+(in|notin)\s*\(([^)]*)\)$`);
const EQ_RE = new RegExp(String.raw`^(${KEY})\s*(==|=|!=)\s*(${VALUE})$`);
const EXISTS_RE = new RegExp(String.raw`^(!?)\s*(${KEY})$`);

/** Parses a `labelSelector` query value; a malformed one is a 400 like the real server's. */
export function parseLabelSelector(text: string | null | undefined): Requirement[] {
  if (!text) return [];
  return splitTopLevel(text).map((part) => {
    let m = SET_RE.exec(part);
    if (m) {
      const values = (m[4] ?? '').split(',').map((v) => v.trim()).filter((v) => v.length > 0);
      return { key: m[1] ?? '', operator: m[3] as 'in' | 'notin', values };
    }
    m = EQ_RE.exec(part);
    if (m) {
      const op = m[3] === '!=' ? '!=' : '=';
      return { key: m[1] ?? '', operator: op, values: [m[4] ?? ''] };
    }
    m = EXISTS_RE.exec(part);
    if (m) return { key: m[2] ?? '', operator: m[1] === '!' ? '!exists' : 'exists', values: [] };
    throw errors.badRequest(`unable to parse requirement: found '${part}', expected: in, notin, =, ==, !=, gt, lt`);
  });
}

export function matchesRequirements(labels: Record<string, string> | undefined, reqs: Requirement[]): boolean {
  const l = labels ?? {};
  return reqs.every((r) => {
    const has = Object.prototype.hasOwnProperty.call(l, r.key);
    const value = l[r.key];
    switch (r.operator) {
      case 'exists':
        return has;
      case '!exists':
        return !has;
      case '=':
        return has && value === r.values[0];
      case '!=':
        return !has || value !== r.values[0];
      case 'in':
        return has && r.values.includes(value ?? '');
      case 'notin':
        return !has || !r.values.includes(value ?? '');
    }
  });
}

/** The structured selector of workload specs, converted to requirements. */
export function selectorRequirements(selector: LabelSelector | undefined): Requirement[] {
  const reqs: Requirement[] = Object.entries(selector?.matchLabels ?? {}).map(([key, v]) => ({
    key,
    operator: '=' as const,
    values: [v],
  }));
  for (const e of selector?.matchExpressions ?? []) {
    const op = e.operator === 'In' ? 'in' : e.operator === 'NotIn' ? 'notin' : e.operator === 'Exists' ? 'exists' : '!exists';
    reqs.push({ key: e.key, operator: op, values: e.values ?? [] });
  }
  return reqs;
}

export function matchesLabelSelector(labels: Record<string, string> | undefined, selector: LabelSelector | undefined): boolean {
  // An empty structured selector matches everything, like the real API (callers refuse empty ones where needed).
  return matchesRequirements(labels, selectorRequirements(selector));
}

export interface FieldRequirement {
  field: string;
  negate: boolean;
  value: string;
}

/** Parses a `fieldSelector`; only the fields the resource allows are accepted, as on a real server. */
export function parseFieldSelector(text: string | null | undefined, allowed: string[]): FieldRequirement[] {
  if (!text) return [];
  const fields = ['metadata.name', 'metadata.namespace', ...allowed];
  return text
    .split(',')
    .map((p) => p.trim())
    .filter((p) => p.length > 0)
    .map((part) => {
      const m = /^([A-Za-z0-9.]+)\s*(==|=|!=)\s*(.*)$/.exec(part);
      if (!m) throw errors.badRequest(`invalid selector: '${text}'; can't understand '${part}'`);
      const field = m[1] ?? '';
      if (!fields.includes(field)) {
        throw errors.badRequest(`field label not supported: ${field}`);
      }
      return { field, negate: m[2] === '!=', value: m[3] ?? '' };
    });
}

/** Event field selector names (events.k8s.io's included) → the stored core/v1 fields they select on. */
function eventFieldPath(field: string): string {
  if (field.startsWith('regarding.')) return `involvedObject.${field.slice('regarding.'.length)}`;
  if (field === 'reportingController') return 'reportingComponent';
  if (field === 'source') return 'source.component';
  return field;
}

function fieldValue(obj: KubeObject, field: string): string {
  const path = obj.kind === 'Event' ? eventFieldPath(field) : field;
  let cur: unknown = obj;
  for (const part of path.split('.')) {
    if (cur === null || typeof cur !== 'object') return '';
    cur = (cur as Record<string, unknown>)[part];
  }
  return cur === undefined || cur === null ? '' : String(cur);
}

export function matchesFields(obj: KubeObject, reqs: FieldRequirement[]): boolean {
  return reqs.every((r) => (fieldValue(obj, r.field) === r.value) !== r.negate);
}
