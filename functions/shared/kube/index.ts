/**
 * Kubernetes access for the task handlers, one module per concern: ./config (which cluster, as whom),
 * ./errors (API failures → named errors), ./objects (apply, delete, read, list, log tails), ./watch
 * (list-then-watch waits with a budget). Import from here.
 */
export { getKubeConfig, kubeApis, resetKube, type KubeApis } from './config';
export { isNotFound, toKubeError } from './errors';
export {
  applyObject,
  collectionPath,
  deleteObject,
  listObjects,
  podLogTail,
  readObject,
  type ManagedKind,
  type ObjectRef,
} from './objects';
export { firstOf, sleep, watchUntil, type WatchEventType } from './watch';
