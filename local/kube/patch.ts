/**
 * PATCH bodies: JSON patch (RFC 6902), merge patch (RFC 7386; strategic merge patch is treated the same,
 * lists replaced whole), and server-side apply reduced to what a single field manager needs: fields the
 * manager set before and no longer sends are removed, the sent fields are merged in.
 */
import { errors } from './status';

export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };
type JsonObject = { [key: string]: JsonValue };

function isObject(v: unknown): v is JsonObject {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

export function mergePatch(target: JsonValue | undefined, patch: JsonValue): JsonValue {
  if (!isObject(patch)) return structuredClone(patch);
  const result: JsonObject = isObject(target) ? { ...target } : {};
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete result[key];
    else result[key] = mergePatch(result[key], value);
  }
  return result;
}

function decodePointer(pointer: string): string[] {
  if (pointer === '') return [];
  if (!pointer.startsWith('/')) throw errors.badRequest(`invalid JSON pointer "${pointer}"`);
  return pointer
    .slice(1)
    .split('/')
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
}

function parentOf(doc: JsonValue, path: string[], pointer: string): { parent: JsonObject | JsonValue[]; key: string } {
  let cur: JsonValue = doc;
  for (const part of path.slice(0, -1)) {
    const next: JsonValue | undefined = Array.isArray(cur) ? cur[Number(part)] : isObject(cur) ? cur[part] : undefined;
    if (next === undefined) throw errors.unprocessable(`jsonpatch: path "${pointer}" does not exist`);
    cur = next;
  }
  if (!Array.isArray(cur) && !isObject(cur)) throw errors.unprocessable(`jsonpatch: path "${pointer}" does not exist`);
  return { parent: cur, key: path[path.length - 1] ?? '' };
}

function getAt(doc: JsonValue, pointer: string): JsonValue {
  let cur: JsonValue | undefined = doc;
  for (const part of decodePointer(pointer)) {
    cur = Array.isArray(cur) ? cur[Number(part)] : isObject(cur) ? cur[part] : undefined;
    if (cur === undefined) throw errors.unprocessable(`jsonpatch: path "${pointer}" does not exist`);
  }
  return cur;
}

function removeAt(doc: JsonValue, pointer: string): JsonValue {
  const { parent, key } = parentOf(doc, decodePointer(pointer), pointer);
  if (Array.isArray(parent)) {
    const i = Number(key);
    if (!(i >= 0 && i < parent.length)) throw errors.unprocessable(`jsonpatch: path "${pointer}" does not exist`);
    return parent.splice(i, 1)[0] ?? null;
  }
  if (!(key in parent)) throw errors.unprocessable(`jsonpatch: path "${pointer}" does not exist`);
  const old = parent[key] ?? null;
  delete parent[key];
  return old;
}

function addAt(doc: JsonValue, pointer: string, value: JsonValue, replace: boolean): JsonValue {
  const path = decodePointer(pointer);
  if (path.length === 0) return value;
  const { parent, key } = parentOf(doc, path, pointer);
  if (Array.isArray(parent)) {
    const i = key === '-' ? parent.length : Number(key);
    if (!(i >= 0 && i <= parent.length)) throw errors.unprocessable(`jsonpatch: path "${pointer}" out of range`);
    if (replace) parent[i] = value;
    else parent.splice(i, 0, value);
  } else {
    if (replace && !(key in parent)) throw errors.unprocessable(`jsonpatch: path "${pointer}" does not exist`);
    parent[key] = value;
  }
  return doc;
}

interface JsonPatchOp {
  op: string;
  path: string;
  from?: string;
  value?: JsonValue;
}

export function jsonPatch(target: JsonValue, ops: unknown): JsonValue {
  if (!Array.isArray(ops)) throw errors.badRequest('json patch must be an array of operations');
  let doc = structuredClone(target);
  for (const raw of ops as JsonPatchOp[]) {
    if (!isObject(raw as unknown) || typeof raw.path !== 'string') throw errors.badRequest('json patch operation needs "op" and "path"');
    switch (raw.op) {
      case 'add':
        doc = addAt(doc, raw.path, structuredClone(raw.value ?? null), false);
        break;
      case 'replace':
        doc = addAt(doc, raw.path, structuredClone(raw.value ?? null), true);
        break;
      case 'remove':
        removeAt(doc, raw.path);
        break;
      case 'move': {
        const value = removeAt(doc, raw.from ?? '');
        doc = addAt(doc, raw.path, value, false);
        break;
      }
      case 'copy':
        doc = addAt(doc, raw.path, structuredClone(getAt(doc, raw.from ?? '')), false);
        break;
      case 'test':
        if (JSON.stringify(getAt(doc, raw.path)) !== JSON.stringify(raw.value)) {
          throw errors.unprocessable(`jsonpatch: test failed for path "${raw.path}"`);
        }
        break;
      default:
        throw errors.badRequest(`unknown json patch operation "${String(raw.op)}"`);
    }
  }
  return doc;
}

/**
 * Removes from `target` the leaves present in `previous` but absent from `next` (both are the same
 * manager's applied configurations), so that dropping a field from an applied manifest deletes it.
 * Lists are owned whole (atomic), which is how a single manager experiences them.
 */
export function pruneDropped(target: JsonValue, previous: JsonValue, next: JsonValue | undefined): JsonValue {
  if (!isObject(target) || !isObject(previous)) return target;
  const result: JsonObject = { ...target };
  for (const [key, prevValue] of Object.entries(previous)) {
    const nextValue = isObject(next) ? next[key] : undefined;
    if (nextValue === undefined) delete result[key];
    else if (isObject(prevValue) && isObject(nextValue) && isObject(result[key])) {
      result[key] = pruneDropped(result[key] as JsonValue, prevValue, nextValue);
    }
  }
  return result;
}
