/**
 * In-memory object store of the local API server: objects by resource/namespace/name, a global
 * resourceVersion counter, a bounded history of change events (so a watch from an older
 * resourceVersion replays, and a too-old one gets 410 like etcd compaction) and change listeners.
 * It knows nothing of REST semantics; api.ts does.
 */
import type { KubeObject } from './resources';

export type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED';

export interface StoreEvent {
  rv: number;
  type: WatchEventType;
  resource: string;
  object: KubeObject;
  /** For MODIFIED: the object before, so a selector-filtered watch can turn it into ADDED/DELETED. */
  previous?: KubeObject;
}

const HISTORY_LIMIT = 20000;

function key(namespace: string | undefined, name: string): string {
  return `${namespace ?? ''}/${name}`;
}

export class ObjectStore {
  private rv = 1;
  private readonly objects = new Map<string, Map<string, KubeObject>>();
  private readonly history: StoreEvent[] = [];
  private readonly listeners = new Set<(event: StoreEvent) => void>();

  currentResourceVersion(): string {
    return String(this.rv);
  }

  private bucket(resource: string): Map<string, KubeObject> {
    let b = this.objects.get(resource);
    if (!b) {
      b = new Map();
      this.objects.set(resource, b);
    }
    return b;
  }

  get(resource: string, namespace: string | undefined, name: string): KubeObject | undefined {
    const obj = this.bucket(resource).get(key(namespace, name));
    return obj ? structuredClone(obj) : undefined;
  }

  /** Objects of a resource, in one namespace or (namespace undefined) all, sorted like etcd keys. */
  list(resource: string, namespace?: string): KubeObject[] {
    const out: KubeObject[] = [];
    for (const obj of this.bucket(resource).values()) {
      if (namespace === undefined || obj.metadata.namespace === namespace) out.push(structuredClone(obj));
    }
    return out.sort((a, b) => key(a.metadata.namespace, a.metadata.name).localeCompare(key(b.metadata.namespace, b.metadata.name)));
  }

  /** Stores a new object (metadata already complete except resourceVersion) and emits ADDED. */
  insert(resource: string, obj: KubeObject): KubeObject {
    const stored = structuredClone(obj);
    stored.metadata.resourceVersion = String(++this.rv);
    this.bucket(resource).set(key(stored.metadata.namespace, stored.metadata.name), stored);
    this.emit({ rv: this.rv, type: 'ADDED', resource, object: structuredClone(stored) });
    return structuredClone(stored);
  }

  /** Replaces an existing object and emits MODIFIED. Callers decide whether anything changed. */
  replace(resource: string, obj: KubeObject): KubeObject {
    const k = key(obj.metadata.namespace, obj.metadata.name);
    const previous = this.bucket(resource).get(k);
    const stored = structuredClone(obj);
    stored.metadata.resourceVersion = String(++this.rv);
    this.bucket(resource).set(k, stored);
    this.emit({
      rv: this.rv,
      type: 'MODIFIED',
      resource,
      object: structuredClone(stored),
      ...(previous ? { previous: structuredClone(previous) } : {}),
    });
    return structuredClone(stored);
  }

  /** Removes an object; the DELETED event carries it with a new resourceVersion, as etcd's does. */
  remove(resource: string, namespace: string | undefined, name: string): KubeObject | undefined {
    const k = key(namespace, name);
    const existing = this.bucket(resource).get(k);
    if (!existing) return undefined;
    this.bucket(resource).delete(k);
    const gone = structuredClone(existing);
    gone.metadata.resourceVersion = String(++this.rv);
    this.emit({ rv: this.rv, type: 'DELETED', resource, object: structuredClone(gone) });
    return gone;
  }

  /** Events after `rv`, or 'expired' when history no longer reaches back that far. */
  eventsSince(rv: number): StoreEvent[] | 'expired' {
    const oldest = this.history[0];
    if (oldest && rv < oldest.rv - 1) return 'expired';
    return this.history.filter((e) => e.rv > rv);
  }

  subscribe(listener: (event: StoreEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private emit(event: StoreEvent): void {
    this.history.push(event);
    if (this.history.length > HISTORY_LIMIT) this.history.splice(0, this.history.length - HISTORY_LIMIT);
    for (const listener of [...this.listeners]) listener(event);
  }
}
