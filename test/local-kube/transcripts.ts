/**
 * Replays recorded kube-apiserver v1.32.13 transcripts (test/fixtures/k8s/, README there) against the local
 * Kubernetes API over real HTTP, and compares each answer field by field after ONE normalization, applied
 * to the recorded and the local answer alike (`normalize`). What it normalizes, and why:
 *
 * - values that differ between any two runs of the same request on a real cluster: UUIDs (→ `<uid>`),
 *   resourceVersions (→ `<rv>`, also inside "too old resource version: A (B)"), RFC 3339 timestamps
 *   (→ `<time>`), generated name parts (pod-template-hash, generateName suffixes, event name suffixes →
 *   `<hash>`), allocated clusterIPs / nodePorts, TokenRequest tokens, list `continue` tokens;
 * - timing-dependent counters: event `count` / `deprecatedCount` (the README: "event counts depend on timing");
 * - managedFields are reduced to manager / operation / apiVersion / subresource: the local API does not
 *   compute per-field ownership sets (`fieldsV1`), and no client of the pipeline reads them;
 * - what the recording cluster added that the local API deliberately does not have: the ConfigMaps
 *   `kube-root-ca.crt` (the local API serves plain HTTP on loopback: no CA to publish) and
 *   `openshift-service-ca.crt` (the recording cluster was OpenShift's fork), and the ServiceAccount token
 *   volume `kube-api-access-*` and its mounts (local pods are processes that get no token).
 *
 * Placeholders in recorded request paths and bodies are bound from earlier answers: `<rv:N>` from the
 * resourceVersion the same position had in a previous local answer, `name-<hash>` by listing the
 * collection and taking the one object whose generated name fits.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

export const FIXTURES = join(__dirname, '..', 'fixtures', 'k8s');

export interface RecordedRequest {
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: unknown;
  status: number;
  contentType: string | null;
  response: unknown;
  responseHeaders?: Record<string, string | string[]>;
  stream?: boolean;
  streamEnd?: string;
  arrivalSeconds?: number[];
  note?: string;
}

export interface Transcript {
  case: string;
  why: string;
  notes?: string[];
  requests: RecordedRequest[];
}

export function loadTranscripts(): Array<{ file: string; transcript: Transcript }> {
  return readdirSync(FIXTURES)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((file) => ({ file, transcript: JSON.parse(readFileSync(join(FIXTURES, file), 'utf8')) as Transcript }));
}

const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g;
const TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;
/** ConfigMaps only the recording cluster publishes (see the file comment). */
const CLUSTER_ONLY_CONFIGMAPS = new Set(['kube-root-ca.crt', 'openshift-service-ca.crt']);

/** Names generated in an answer (generateName + suffix, ReplicaSet + pod-template-hash), to rewrite everywhere. */
function generatedNames(value: unknown, out: Map<string, string>): void {
  if (Array.isArray(value)) return value.forEach((v) => generatedNames(v, out));
  if (!value || typeof value !== 'object') return;
  const obj = value as Record<string, unknown>;
  const meta = obj.metadata as { name?: string; generateName?: string; labels?: Record<string, string> } | undefined;
  if (meta?.name && meta.generateName && meta.name.startsWith(meta.generateName) && !meta.name.includes('<hash>')) {
    out.set(meta.name, `${meta.generateName}<hash>`);
  }
  const hash = meta?.labels?.['pod-template-hash'];
  if (hash && hash !== '<hash>') out.set(hash, '<hash>');
  for (const v of Object.values(obj)) generatedNames(v, out);
}

/** The one normalization both sides go through (see the file comment for what and why). */
export function normalize(value: unknown): unknown {
  const names = new Map<string, string>();
  generatedNames(value, names);
  // Longest first, so a pod name is rewritten before the hash inside it.
  const rewrites = [...names.entries()].sort((a, b) => b[0].length - a[0].length);
  const text = (s: string): string => {
    if (TIME.test(s)) return '<time>';
    let out = s.replace(UUID, '<uid>');
    for (const [from, to] of rewrites) out = out.split(from).join(to);
    out = out.replace(/too old resource version: (\S+) \((\S+)\)/g, 'too old resource version: <rv> (<rv>)');
    out = out.replace(/<rv:\d+>/g, '<rv>');
    out = out.replace(/\.[0-9a-f]{16}$/, '.<hash>');
    // pod-template-hash values (the controller's "safe" alphabet) inside ReplicaSet and pod names.
    out = out.replace(/(?<=-)[bcdfghjklmnpqrstvwxz2456789]{8,10}(?=$|[-".\s])/g, '<hash>');
    out = out.replace(/kube-api-access-[a-z0-9]{5}/g, 'kube-api-access-<hash>');
    return out;
  };
  const walk = (v: unknown, key: string): unknown => {
    if (typeof v === 'string') {
      if (key === 'resourceVersion' && /^(\d+|<rv(:\d+)?>)$/.test(v)) return '<rv>';
      if (key === 'clusterIP') return '<clusterIP>';
      if (key === 'token') return '<token>';
      if (key === 'continue') return '<continue>';
      return text(v);
    }
    if (typeof v === 'number' && key === 'nodePort') return '<nodePort>';
    if (Array.isArray(v)) {
      let items = v;
      if (key === 'clusterIPs') return v.map(() => '<clusterIP>');
      if (key === 'managedFields') {
        items = v.map((m: Record<string, unknown>) => ({ manager: m.manager, operation: m.operation, apiVersion: m.apiVersion, ...(m.subresource ? { subresource: m.subresource } : {}) }));
      }
      if (key === 'items' || key === '') {
        items = items.filter((i) => {
          const o = (i as { object?: { kind?: string; metadata?: { name?: string } }; kind?: string; metadata?: { name?: string } }) ?? {};
          const obj = o.object ?? o;
          return !(CLUSTER_ONLY_CONFIGMAPS.has(obj?.metadata?.name ?? '') && (obj.kind === 'ConfigMap' || obj.kind === undefined));
        });
      }
      if (key === 'volumes' || key === 'volumeMounts') items = items.filter((i) => !String((i as { name?: string }).name).startsWith('kube-api-access-'));
      return items.map((x) => walk(x, key === 'managedFields' ? 'managedFields[]' : ''));
    }
    if (v && typeof v === 'object') {
      const out: Record<string, unknown> = {};
      for (const [k, x] of Object.entries(v)) {
        if (k === 'count' || k === 'deprecatedCount') continue;
        if ((k === 'volumes' || k === 'volumeMounts') && Array.isArray(x) && x.every((i) => String((i as { name?: string }).name).startsWith('kube-api-access-'))) continue;
        out[k] = walk(x, k);
      }
      return out;
    }
    return v;
  };
  return walk(value, '');
}

/** Field-by-field differences of two normalized answers, as `path: recorded … local …` lines. */
export function differences(expected: unknown, actual: unknown, path = '$'): string[] {
  if (Array.isArray(expected) && Array.isArray(actual)) {
    const out: string[] = [];
    if (expected.length !== actual.length) out.push(`${path}: ${expected.length} items recorded, ${actual.length} local`);
    for (let i = 0; i < Math.min(expected.length, actual.length); i++) out.push(...differences(expected[i], actual[i], `${path}[${i}]`));
    return out;
  }
  if (expected && actual && typeof expected === 'object' && typeof actual === 'object' && !Array.isArray(expected) && !Array.isArray(actual)) {
    const out: string[] = [];
    const e = expected as Record<string, unknown>;
    const a = actual as Record<string, unknown>;
    for (const k of new Set([...Object.keys(e), ...Object.keys(a)])) {
      if (!(k in a)) out.push(`${path}.${k}: recorded ${JSON.stringify(e[k])?.slice(0, 200)}, missing locally`);
      else if (!(k in e)) out.push(`${path}.${k}: not recorded, local ${JSON.stringify(a[k])?.slice(0, 200)}`);
      else out.push(...differences(e[k], a[k], `${path}.${k}`));
    }
    return out;
  }
  return JSON.stringify(expected) === JSON.stringify(actual) ? [] : [`${path}: recorded ${JSON.stringify(expected)?.slice(0, 300)}, local ${JSON.stringify(actual)?.slice(0, 300)}`];
}

/** Learns `<rv:N>` bindings from a recorded answer and the local answer at the same positions. */
export function learnBindings(expected: unknown, actual: unknown, bindings: Map<string, string>): void {
  if (typeof expected === 'string' && typeof actual === 'string') {
    if (/^<rv:\d+>$/.test(expected) && /^\d+$/.test(actual) && !bindings.has(expected)) bindings.set(expected, actual);
    return;
  }
  if (Array.isArray(expected) && Array.isArray(actual)) {
    expected.forEach((e, i) => learnBindings(e, actual[i], bindings));
    return;
  }
  if (expected && actual && typeof expected === 'object' && typeof actual === 'object') {
    for (const [k, v] of Object.entries(expected)) learnBindings(v, (actual as Record<string, unknown>)[k], bindings);
  }
}
