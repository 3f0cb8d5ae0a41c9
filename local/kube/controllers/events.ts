/**
 * Events as kube-controller-manager records them (transcripts 11, 12): core/v1 Events named
 * `<object>.<16 hex>`, a repeated event (same object, reason, message, component) counted up on the same
 * object rather than duplicated, as client-go's event correlator does; and the events.k8s.io/v1 view the
 * API server converts them to. The pipeline reads both to explain why a workload does not progress.
 */
import { randomBytes } from 'node:crypto';
import { now, type KubeApi } from '../api';
import { typeOf, type KubeObject } from '../resources';

export interface CoreEvent extends KubeObject {
  involvedObject: { kind: string; namespace?: string; name: string; uid: string; apiVersion: string; resourceVersion: string; fieldPath?: string };
  reason: string;
  message: string;
  source: { component: string };
  firstTimestamp: string;
  lastTimestamp: string;
  count: number;
  type: 'Normal' | 'Warning';
  eventTime: null;
  reportingComponent: string;
  reportingInstance: string;
}

export class EventRecorder {
  constructor(private readonly api: KubeApi) {}

  /** Records (or counts up) an event about `about`, written by the controller named `component`. */
  record(about: KubeObject, type: CoreEvent['type'], reason: string, message: string, component: string): void {
    const ns = about.metadata.namespace ?? 'default';
    const same = (this.api.store.list('events', ns) as CoreEvent[]).find(
      (e) => e.involvedObject.uid === about.metadata.uid && e.reason === reason && e.message === message && e.source.component === component,
    );
    try {
      if (same) {
        this.api.update(typeOf('events'), ns, same.metadata.name, { ...same, count: same.count + 1, lastTimestamp: now() }, { fieldManager: 'kube-controller-manager' });
        return;
      }
      const at = now();
      this.api.create(
        typeOf('events'),
        ns,
        {
          metadata: { name: `${about.metadata.name}.${randomBytes(8).toString('hex')}`, namespace: ns },
          involvedObject: {
            kind: about.kind,
            namespace: ns,
            name: about.metadata.name,
            uid: about.metadata.uid,
            apiVersion: about.apiVersion,
            resourceVersion: about.metadata.resourceVersion,
          },
          reason,
          message,
          source: { component },
          firstTimestamp: at,
          lastTimestamp: at,
          count: 1,
          type,
          eventTime: null,
          reportingComponent: component,
          reportingInstance: '',
        },
        { fieldManager: 'kube-controller-manager' },
      );
    } catch {
      // The namespace is going away; an event is never worth failing a controller for.
    }
  }
}

/** The events.k8s.io/v1 form of a stored core/v1 Event, field for field as kube-apiserver converts it. */
export function toEventsV1(obj: KubeObject): KubeObject {
  const e = obj as CoreEvent;
  return {
    kind: 'Event',
    apiVersion: 'events.k8s.io/v1',
    metadata: e.metadata,
    eventTime: e.eventTime ?? null,
    ...(e.reportingComponent ? { reportingController: e.reportingComponent } : {}),
    ...(e.reportingInstance ? { reportingInstance: e.reportingInstance } : {}),
    reason: e.reason,
    regarding: e.involvedObject,
    note: e.message,
    type: e.type,
    ...(e.source ? { deprecatedSource: e.source } : {}),
    deprecatedFirstTimestamp: e.firstTimestamp,
    deprecatedLastTimestamp: e.lastTimestamp,
    deprecatedCount: e.count,
  };
}
