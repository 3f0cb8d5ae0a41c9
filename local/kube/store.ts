/**
 * In-memory object store of the local API server: objects by resource/namespace/name, a global
 * resourceVersion counter, a per-resource watch window of change events (what kube-apiserver's watch
 * cache keeps: a watch from a resourceVersion inside it replays, an older one gets 410 Expired) and change
 * listeners. It knows nothing of REST semantics; api.ts does.
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

/**
 * The watch cache window, per resource type, as kube-apiserver sizes it: at least WINDOW_MIN_EVENTS
 * events, and every event younger than WINDOW_FRESH_MS (its eventFreshDuration, 75 s), up to a hard cap.
 * An older resourceVersion answers 410 Expired (transcript 09).
 */
const WINDOW_MIN_EVENTS = 100;
const WINDOW_FRESH_MS = 75_000;
const WINDOW_MAX_EVENTS = 100 * 1024;

interface WatchWindow {
  /** The oldest resourceVersion a watch may start from (exclusive of older ones). */
  start: number;
  events: Array<StoreEvent & { at: number }>;
}

/** Why a watch cannot start from the resourceVersion it asked for: what "too old resource version: A (B)" says. */
export interface Expired {
  expired: true;
  /** B in the message: the oldest resourceVersion the window still serves. */
  oldest: number;
}

function key(namespace: string | undefined, name: string): string {
  return `${namespace ?? ''}/${name}`;
}

export class ObjectStore {
  private rv = 1;
  private readonly objects = new Map<string, Map<string, KubeObject>>();
  private readonly windows = new Map<string, WatchWindow>();
  /** Where a resource type's window starts before it saw any event: the watch cache's initial list. */
  private cacheStart = 1;
  private readonly listeners = new Set<(event: StoreEvent) => void>();

  /** `clock` is injectable so tests can age the watch window without waiting. */
  constructor(private readonly clock: () => number = Date.now) {}

  /**
   * Starts the watch caches at the current resourceVersion, as an API server does when it starts: any
   * older resourceVersion (rv=1 included) then answers 410 Expired. Events seen so far are forgotten.
   * startLocalKube calls it once the bootstrap objects exist; tests call it to simulate a restart (case 09).
   */
  startWatchCache(): void {
    // A starting API server writes (leases, endpoints) before it serves: the window starts past every rv seen.
    this.cacheStart = ++this.rv;
    this.windows.clear();
  }

  /** The resourceVersion of the newest change to one resource type (what a BOOKMARK carries). */
  latestResourceVersion(resource: string): number {
    const w = this.windows.get(resource);
    return w?.events[w.events.length - 1]?.rv ?? w?.start ?? this.cacheStart;
  }

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

  /**
   * Objects of a resource, in one namespace or (namespace undefined) all, sorted like etcd keys. `keep` (which
   * must not change what it is given) picks among the stored objects before they are copied: the controllers
   * look for the few a Deployment or ReplicaSet owns, and copying every object of the namespace on each
   * reconcile was most of the local API server's CPU once a namespace held a few dozen.
   */
  list(resource: string, namespace?: string, keep?: (obj: KubeObject) => boolean): KubeObject[] {
    const out: KubeObject[] = [];
    for (const obj of this.bucket(resource).values()) {
      if ((namespace === undefined || obj.metadata.namespace === namespace) && (!keep || keep(obj))) out.push(structuredClone(obj));
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

  /** A resource type's events after `rv`, or Expired when its watch window no longer reaches back that far. */
  eventsSince(resource: string, rv: number): StoreEvent[] | Expired {
    const w = this.window(resource);
    if (rv < w.start) return { expired: true, oldest: w.start };
    return w.events.filter((e) => e.rv > rv);
  }

  private window(resource: string): WatchWindow {
    let w = this.windows.get(resource);
    if (!w) {
      w = { start: this.cacheStart, events: [] };
      this.windows.set(resource, w);
    }
    return w;
  }

  subscribe(listener: (event: StoreEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private emit(event: StoreEvent): void {
    const w = this.window(event.resource);
    const at = this.clock();
    w.events.push({ ...event, at });
    while (w.events.length > WINDOW_MIN_EVENTS && (w.events.length > WINDOW_MAX_EVENTS || at - w.events[0]!.at > WINDOW_FRESH_MS)) {
      w.start = w.events.shift()!.rv;
    }
    for (const listener of [...this.listeners]) listener(event);
  }
}
