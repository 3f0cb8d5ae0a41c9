/**
 * Kubernetes access for the task handlers, one module per concern: ./config (which cluster, as whom),
 * ./transport (HTTP with the KubeConfig's credentials), ./errors (API failures → named errors, one line
 * each), ./objects (apply, delete, read, list, log tails), ./watch (list-then-watch waits with a budget,
 * resuming through 410 and dropped streams), ./proxy (GET a pod's own HTTP endpoint through pods/proxy).
 * Import from here.
 */
export { getKubeConfig, kubeApis, resetKube } from './config';
export { isNotFound, toKubeError } from './errors';
export {
  applyObject,
  collectionPath,
  deleteObject,
  listObjects,
  NO_LOG_NOT_SCHEDULED,
  patchObject,
  podLogTail,
  readObject,
  type ManagedKind,
  type ObjectRef,
} from './objects';
export { firstOf, sleep, watchUntil, type WatchEventType, type WatchOptions } from './watch';
export { PodProxyError, podProxyPath, proxyGet } from './proxy';
