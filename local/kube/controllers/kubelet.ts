/**
 * The local kubelet: binds new pods to the one local node, runs each container as a local process from
 * the image → command map, restarts per restartPolicy with back-off (CrashLoopBackOff), reports unknown
 * images as ErrImagePull / ImagePullBackOff, probes readiness over HTTP/TCP, kills a container that grows
 * past its memory limit (OOMKilled, as the cgroup's OOM killer would), writes pod status like the real
 * kubelet (a container's end as exit code, 128 + signal when killed, and reason Completed / Error /
 * OOMKilled), and finishes graceful deletions once the processes are gone.
 *
 * Local stand-ins for what a container sees: `PORT` is the local port of its first declared port and
 * `<NAME>_PORT` that of each other named one (`admin` → ADMIN_PORT); a `secret` volume is written to a
 * directory of the pod's and an env value under its mountPath points there instead. As the real kubelet,
 * a container whose Secret is missing is not started (ContainerCreating, FailedMount), and a Secret's
 * files are replaced in place (write and rename) when the Secret changes.
 */
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { get as httpGet } from 'node:http';
import { createConnection } from 'node:net';
import { constants as osConstants } from 'node:os';
import { join } from 'node:path';
import { now, type KubeApi } from '../api';
import { freePort, startProcess, type RunningProcess } from '../process-runner';
import { typeOf, type KubeObject, type Container, type ContainerState, type ContainerStatus, type Pod, type PodStatus, type Probe } from '../resources';
import { canonical } from '../canonical';
import { setCondition } from './conditions';
import { qosClass } from '../schema';
import { isPodFinished } from './owned';

export interface ImageCommand {
  command: string;
  args: string[];
  cwd?: string;
  env?: Record<string, string>;
}

export interface KubeletOptions {
  images: Record<string, ImageCommand>;
  stateDir: string;
  env: Record<string, string>;
  /** Called when runtime state changed and pods need a status sync. */
  kick: () => void;
  /** Called once when a pod is found unschedulable (the FailedScheduling event). */
  onUnschedulable?: (pod: Pod, message: string) => void;
}

/** The local node's labels, which nodeSelectors are matched against. */
export function nodeLabels(): Record<string, string> {
  return {
    'kubernetes.io/hostname': NODE_NAME,
    'kubernetes.io/os': process.platform === 'win32' ? 'windows' : 'linux',
    'kubernetes.io/arch': process.arch === 'x64' ? 'amd64' : process.arch,
  };
}

export const NODE_NAME = 'mlpipe-local';
export const LOCAL_PORT_ANNOTATION = 'mlpipe.dev/local-port';
export const LOCAL_PORTS_ANNOTATION = 'mlpipe.dev/local-ports';

/** How often readiness is probed: faster than a real kubelet's periodSeconds, to keep local runs quick. */
const PROBE_INTERVAL_MS = 250;
/** Restart back-off: starts at 1 s and doubles to 10 s (the real kubelet: 10 s doubling to 5 min). */
const BACKOFF_START_MS = 1000;
const BACKOFF_MAX_MS = 10000;
/** Image pulls of unknown images fail after this long, then report ImagePullBackOff. */
const PULL_FAIL_MS = 200;
/** Graceful termination is capped locally so that deletes and stop() stay quick. */
const MAX_GRACE_MS = 5000;
/** How often a running container's memory is compared with its limit (the kernel does it on every page). */
const MEMORY_CHECK_MS = 250;

const QUANTITY = /^([0-9]+(?:\.[0-9]+)?)(?:(Ki|Mi|Gi|Ti|Pi|Ei)|(k|M|G|T|P|E)|e([0-9]+))?$/;

/** Bytes of a memory quantity (`512Mi`, `2G`, `1e9`, `1048576`); `undefined` if it is not one. */
export function memoryBytes(quantity: string | number | undefined): number | undefined {
  if (quantity === undefined) return undefined;
  const m = QUANTITY.exec(String(quantity).trim());
  if (!m) return undefined;
  const binary = ['Ki', 'Mi', 'Gi', 'Ti', 'Pi', 'Ei'].indexOf(m[2] ?? '') + 1;
  const decimal = ['k', 'M', 'G', 'T', 'P', 'E'].indexOf(m[3] ?? '') + 1;
  const scale = binary ? 1024 ** binary : decimal ? 1000 ** decimal : m[4] ? 10 ** Number(m[4]) : 1;
  return Math.ceil(Number(m[1]) * scale);
}

/**
 * Resident memory of a process from /proc (Linux); `undefined` where there is no /proc or it is gone.
 * Read synchronously: /proc answers from memory, and readFile's thread-pool round trips cost 0.23 ms of
 * CPU a read against 0.02 ms (measured), four times a second per container.
 */
async function residentBytes(pid: number): Promise<number | undefined> {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = /^VmRSS:\s+(\d+) kB/m.exec(status)?.[1];
    return kb === undefined ? undefined : Number(kb) * 1024;
  } catch {
    return undefined;
  }
}

/**
 * Image lookup rule: an exact entry wins; otherwise the image without its `@sha256:...` digest; otherwise
 * also without its `:tag`. So `repo:tag@sha256:abc` matches `repo:tag@sha256:abc`, then `repo:tag`, then `repo`.
 */
export function resolveImage(images: Record<string, ImageCommand>, image: string): ImageCommand | undefined {
  if (images[image]) return images[image];
  const noDigest = image.split('@')[0] ?? image;
  if (images[noDigest]) return images[noDigest];
  const slash = noDigest.lastIndexOf('/');
  const colon = noDigest.lastIndexOf(':');
  const noTag = colon > slash ? noDigest.slice(0, colon) : noDigest;
  return images[noTag];
}

interface ContainerRuntime {
  spec: Container;
  state: ContainerState;
  lastState: ContainerState;
  restartCount: number;
  ready: boolean;
  started: boolean;
  imagePulled: boolean;
  process?: RunningProcess;
  timers: Set<NodeJS.Timeout>;
  probeOk: number;
  probeFail: number;
  probing: boolean;
  /** Set when the kubelet killed the container for using more memory than its limit. */
  oomKilled?: boolean;
}

interface PodRuntime {
  uid: string;
  namespace: string;
  name: string;
  restartPolicy: 'Always' | 'OnFailure' | 'Never';
  containers: ContainerRuntime[];
  localPorts: Record<string, number>;
  startTime: string;
  stopping: boolean;
  /** A deleted pod's preStop sleep, before its containers get SIGTERM. */
  preStop?: NodeJS.Timeout;
  ready: boolean;
  logDir: string;
  /** Secret volumes: name → the local directory and the resourceVersion last written there. */
  secretVolumes: Map<string, { dir: string; secretName: string; optional: boolean; items?: Array<{ key: string; path: string }>; written?: string }>;
}

export class Kubelet {
  private readonly pods = new Map<string, PodRuntime>();
  private stopped = false;

  constructor(
    private readonly api: KubeApi,
    private readonly opts: KubeletOptions,
  ) {}

  /** Level-triggered: brings every pod in the store and every runtime in line. */
  reconcile(): void {
    if (this.stopped) return;
    const stored = this.api.store.list('pods');
    const uids = new Set(stored.map((p) => p.metadata.uid));
    for (const rt of this.pods.values()) {
      // Removed without grace (gracePeriodSeconds=0, namespace deletion): stop at once, a preStop sleep included.
      if (!uids.has(rt.uid) && (!rt.stopping || rt.preStop)) void this.terminate(rt, 0).then(() => this.forget(rt));
    }
    for (const obj of stored) this.syncPod(obj as Pod);
  }

  private syncPod(pod: Pod): void {
    const uid = pod.metadata.uid;
    let rt = this.pods.get(uid);
    if (pod.metadata.deletionTimestamp) {
      if (!rt || rt.containers.every((c) => !c.process)) {
        // As the real kubelet (1.27+): a deleted pod whose containers ran reaches a terminal phase (Failed
        // for exit 143 after SIGTERM) before it goes, so the Job controller can count it and match its pod
        // failure policy (exit codes, a DisruptionTarget condition). It goes at the next pass.
        if (rt && !isPodFinished(pod) && rt.containers.some((c) => c.state.terminated)) {
          this.writeStatus(pod, rt);
          return;
        }
        if (rt) this.forget(rt);
        this.api.store.remove('pods', pod.metadata.namespace, pod.metadata.name);
        return;
      }
      if (!rt.stopping) {
        const grace = Math.min((pod.metadata.deletionGracePeriodSeconds ?? 30) * 1000, MAX_GRACE_MS);
        // As the kubelet: a container's `lifecycle.preStop.sleep` (1.30+) runs first, inside the grace
        // period; the pod keeps serving meanwhile (it is already out of the Service's endpoints), then
        // SIGTERM, with what is left of the grace period (2 s at least, as the kubelet gives an overrun hook).
        // Simplified: the longest sleep of the pod's containers, then SIGTERM to all (the kubelet times each
        // container on its own; serving pods have one); and the grace is capped locally (MAX_GRACE_MS).
        const sleepMs = Math.min(Math.max(0, ...pod.spec.containers.map((c) => (c as Container & { lifecycle?: { preStop?: { sleep?: { seconds?: number } } } }).lifecycle?.preStop?.sleep?.seconds ?? 0)) * 1000, grace);
        const stop = () => void this.terminate(rt!, Math.max(grace - sleepMs, 2000)).then(() => this.opts.kick());
        if (sleepMs > 0) {
          rt.stopping = true;
          rt.preStop = setTimeout(stop, sleepMs);
        } else stop();
      }
      return;
    }
    if (!rt) {
      const phase = pod.status?.phase;
      if (phase === 'Succeeded' || phase === 'Failed') return; // finished before we (re)started
      if (!pod.spec.nodeName && !this.schedulable(pod)) return;
      rt = this.admit(pod);
    }
    this.syncSecretVolumes(rt);
    this.writeStatus(pod, rt);
  }

  /**
   * The scheduler's part for the one local node: a pod whose nodeSelector the node's labels do not
   * satisfy stays Pending, unbound, with PodScheduled=False/Unschedulable and the real scheduler's message
   * (so pods/log answers 204, as for any pod without a node).
   */
  private schedulable(pod: Pod): boolean {
    const labels = nodeLabels();
    const fits = Object.entries(pod.spec.nodeSelector ?? {}).every(([k, v]) => labels[k] === v);
    // The local node has no GPUs (no device plugin advertises nvidia.com/gpu): a pod asking for one waits,
    // as on a cluster without a GPU node. It has no taints, so tolerations change nothing here.
    const gpus = (pod.spec.containers ?? []).some((c) => Number((c as Container & { resources?: { limits?: Record<string, string> } }).resources?.limits?.['nvidia.com/gpu'] ?? 0) > 0);
    if (fits && !gpus) return true;
    const message = !fits
      ? "0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector. preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling."
      : '0/1 nodes are available: 1 Insufficient nvidia.com/gpu. preemption: 0/1 nodes are available: 1 No preemption victims found for incoming pod.';
    const current = pod.status?.conditions?.find((c) => c.type === 'PodScheduled');
    if (current?.reason === 'Unschedulable' && current.message === message) return false;
    const conditions = setCondition(pod.status?.conditions, 'PodScheduled', 'False', 'Unschedulable', message, { probeTime: true });
    try {
      this.api.update(typeOf('pods'), pod.metadata.namespace, pod.metadata.name, { ...pod, status: { ...pod.status, phase: 'Pending', conditions } }, { subresource: 'status', fieldManager: 'kube-scheduler' });
      this.opts.onUnschedulable?.(pod, message);
    } catch {
      // gone meanwhile
    }
    return false;
  }

  private admit(pod: Pod): PodRuntime {
    const ns = pod.metadata.namespace ?? 'default';
    if (!pod.spec.nodeName) {
      pod.spec.nodeName = NODE_NAME; // the scheduler's binding
      pod = this.api.store.replace('pods', pod) as Pod;
    }
    const rt: PodRuntime = {
      uid: pod.metadata.uid,
      namespace: ns,
      name: pod.metadata.name,
      restartPolicy: pod.spec.restartPolicy ?? 'Always',
      containers: pod.spec.containers.map((spec) => ({
        spec,
        state: { waiting: { reason: 'ContainerCreating' } },
        lastState: {},
        restartCount: 0,
        ready: false,
        started: false,
        imagePulled: false,
        timers: new Set(),
        probeOk: 0,
        probeFail: 0,
        probing: false,
      })),
      localPorts: {},
      startTime: now(),
      stopping: false,
      ready: false,
      logDir: join(this.opts.stateDir, 'pods', `${ns}_${pod.metadata.name}_${pod.metadata.uid}`),
      secretVolumes: new Map(),
    };
    for (const v of pod.spec.volumes ?? []) {
      if (v.secret) rt.secretVolumes.set(v.name, { dir: join(rt.logDir, 'volumes', v.name), secretName: v.secret.secretName ?? '', optional: v.secret.optional === true, items: v.secret.items });
    }
    this.pods.set(rt.uid, rt);
    void this.prepare(rt).catch(() => undefined);
    return rt;
  }

  /** Allocates local ports for declared containerPorts, records them on the pod, then starts containers. */
  private async prepare(rt: PodRuntime): Promise<void> {
    for (const c of rt.containers) {
      for (const p of c.spec.ports ?? []) {
        rt.localPorts[String(p.containerPort)] ??= await freePort();
      }
    }
    if (rt.stopping || this.stopped) return;
    const pod = this.api.store.get('pods', rt.namespace, rt.name) as Pod | undefined;
    if (!pod || pod.metadata.uid !== rt.uid) return;
    const first = rt.containers[0]?.spec.ports?.[0];
    if (first) {
      pod.metadata.annotations = {
        ...pod.metadata.annotations,
        [LOCAL_PORT_ANNOTATION]: String(rt.localPorts[String(first.containerPort)]),
        [LOCAL_PORTS_ANNOTATION]: JSON.stringify(rt.localPorts),
      };
      this.api.store.replace('pods', pod);
    }
    for (const c of rt.containers) this.startContainer(rt, c);
  }

  private timer(c: ContainerRuntime, ms: number, fn: () => void): void {
    const t = setTimeout(() => {
      c.timers.delete(t);
      fn();
    }, ms);
    c.timers.add(t);
  }

  /**
   * Writes each Secret volume's keys as files when the Secret is new or changed (each file written aside
   * and renamed over, as the kubelet's atomic writer swaps them). Whether every required Secret is there.
   */
  private syncSecretVolumes(rt: PodRuntime): boolean {
    let ready = true;
    for (const v of rt.secretVolumes.values()) {
      const secret = this.api.store.get('secrets', rt.namespace, v.secretName) as (KubeObject & { data?: Record<string, string> }) | undefined;
      if (!secret) {
        if (!v.optional) ready = false;
        continue;
      }
      if (v.written === secret.metadata.resourceVersion) continue;
      mkdirSync(v.dir, { recursive: true, mode: 0o700 });
      const files = v.items ?? Object.keys(secret.data ?? {}).map((key) => ({ key, path: key }));
      for (const { key, path } of files) {
        const value = secret.data?.[key];
        if (value === undefined) continue;
        const file = join(v.dir, path);
        writeFileSync(`${file}.tmp`, Buffer.from(value, 'base64'), { mode: 0o400 });
        renameSync(`${file}.tmp`, file);
      }
      v.written = secret.metadata.resourceVersion;
    }
    return ready;
  }

  /** An env value under a volume's mountPath, pointed at the volume's local directory. */
  private localPath(rt: PodRuntime, c: Container, value: string): string {
    for (const m of c.volumeMounts ?? []) {
      const v = rt.secretVolumes.get(m.name);
      const mount = m.mountPath.replace(/\/+$/, '');
      if (v && (value === mount || value.startsWith(`${mount}/`))) return v.dir + value.slice(mount.length);
    }
    return value;
  }

  private startContainer(rt: PodRuntime, c: ContainerRuntime): void {
    if (rt.stopping || this.stopped) return;
    if (!this.syncSecretVolumes(rt)) {
      // As the real kubelet: FailedMount, the container waits in ContainerCreating; tried again shortly.
      c.state = { waiting: { reason: 'ContainerCreating' } };
      this.timer(c, PULL_FAIL_MS, () => this.startContainer(rt, c));
      return;
    }
    const image = resolveImage(this.opts.images, c.spec.image);
    if (!image) {
      c.state = { waiting: { reason: 'ContainerCreating' } };
      this.timer(c, PULL_FAIL_MS, () => {
        c.state = {
          waiting: {
            reason: 'ErrImagePull',
            message: `failed to pull and unpack image "${c.spec.image}": not found: the image is not in the local image map`,
          },
        };
        this.opts.kick();
        this.timer(c, PULL_FAIL_MS * 2, () => {
          c.state = { waiting: { reason: 'ImagePullBackOff', message: `Back-off pulling image "${c.spec.image}"` } };
          this.opts.kick();
        });
      });
      return;
    }
    c.imagePulled = true;
    // Container command replaces the image's entrypoint, container args its default args, as in Docker.
    const [command, ...commandArgs] = c.spec.command?.length ? c.spec.command : [image.command, ...(c.spec.args ? [] : image.args)];
    const args = c.spec.command?.length ? [...commandArgs, ...(c.spec.args ?? [])] : [...commandArgs, ...(c.spec.args ?? [])];
    const env: Record<string, string> = {};
    for (const k of ['PATH', 'HOME', 'TMPDIR', 'LANG', 'SYSTEMROOT']) {
      const v = process.env[k];
      if (v !== undefined) env[k] = v;
    }
    Object.assign(env, { HOSTNAME: rt.name, KUBERNETES_NAMESPACE: rt.namespace }, this.opts.env, image.env ?? {});
    for (const e of c.spec.env ?? []) if (e.value !== undefined) env[e.name] = this.localPath(rt, c.spec, e.value);
    else if (e.valueFrom === undefined) env[e.name] = '';
    const [firstPort, ...otherPorts] = c.spec.ports ?? [];
    if (firstPort) env.PORT = String(rt.localPorts[String(firstPort.containerPort)]);
    for (const p of otherPorts) if (p.name) env[`${p.name.toUpperCase().replace(/-/g, '_')}_PORT`] = String(rt.localPorts[String(p.containerPort)]);
    const startedAt = now();
    const proc = startProcess({
      command: command ?? image.command,
      args,
      cwd: image.cwd,
      env,
      logFile: this.logFile(rt, c.spec.name, c.restartCount),
    });
    c.process = proc;
    c.state = { running: { startedAt } };
    c.started = true;
    c.probeOk = 0;
    c.probeFail = 0;
    c.ready = !c.spec.readinessProbe;
    if (c.spec.readinessProbe) {
      const delay = (c.spec.readinessProbe.initialDelaySeconds ?? 0) * 1000;
      this.timer(c, delay, () => this.probeLoop(rt, c, proc));
    }
    c.oomKilled = false;
    const limit = memoryBytes((c.spec as Container & { resources?: { limits?: Record<string, string> } }).resources?.limits?.memory);
    if (limit !== undefined) this.timer(c, MEMORY_CHECK_MS, () => this.memoryLoop(c, proc, limit));
    this.opts.kick();
    void proc.exited.then((exit) => {
      if (c.process !== proc) return;
      c.process = undefined;
      c.ready = false;
      c.started = false;
      // As the real kubelet reports it: a process killed by a signal exits with 128 + its number, and
      // `signal` stays unset (the kubelet copies exit code, reason, message and times from the runtime).
      const signalNumber = exit.signal ? osConstants.signals[exit.signal] : undefined;
      const terminated = {
        exitCode: signalNumber ? 128 + signalNumber : exit.exitCode,
        reason: c.oomKilled ? 'OOMKilled' : exit.exitCode === 0 && !exit.signal ? 'Completed' : 'Error',
        startedAt,
        finishedAt: now(),
        containerID: `local://${proc.pid}`,
      };
      const restart = !rt.stopping && !this.stopped && (rt.restartPolicy === 'Always' || (rt.restartPolicy === 'OnFailure' && exit.exitCode !== 0));
      if (!restart) {
        c.state = { terminated };
      } else {
        const backoff = Math.min(BACKOFF_START_MS * 2 ** c.restartCount, BACKOFF_MAX_MS);
        c.lastState = { terminated };
        c.state = {
          waiting: {
            reason: 'CrashLoopBackOff',
            message: `back-off ${Math.round(backoff / 1000)}s restarting failed container=${c.spec.name} pod=${rt.name}_${rt.namespace}(${rt.uid})`,
          },
        };
        this.timer(c, backoff, () => {
          c.restartCount++;
          this.startContainer(rt, c);
        });
      }
      this.opts.kick();
    });
  }

  /**
   * The memory limit, as the cgroup's OOM killer enforces it: a container whose resident memory passes
   * its limit is killed at once (SIGKILL, no grace) and reported as OOMKilled with exit code 137.
   */
  private memoryLoop(c: ContainerRuntime, proc: RunningProcess, limit: number): void {
    if (c.process !== proc || this.stopped) return;
    void residentBytes(proc.pid).then((rss) => {
      if (c.process !== proc) return;
      if (rss === undefined) return; // no /proc here (macOS): limits are not enforced locally
      if (rss > limit) {
        c.oomKilled = true;
        try {
          process.kill(-proc.pid, 'SIGKILL');
        } catch {
          // already gone
        }
        return;
      }
      this.timer(c, MEMORY_CHECK_MS, () => this.memoryLoop(c, proc, limit));
    });
  }

  private probeLoop(rt: PodRuntime, c: ContainerRuntime, proc: RunningProcess): void {
    if (c.process !== proc || rt.stopping || this.stopped) return;
    const probe = c.spec.readinessProbe!;
    void this.runProbe(rt, c, probe).then((ok) => {
      if (c.process !== proc) return;
      if (ok) {
        c.probeOk++;
        c.probeFail = 0;
        if (!c.ready && c.probeOk >= (probe.successThreshold ?? 1)) {
          c.ready = true;
          this.opts.kick();
        }
      } else {
        c.probeFail++;
        c.probeOk = 0;
        if (c.ready && c.probeFail >= (probe.failureThreshold ?? 3)) {
          c.ready = false;
          this.opts.kick();
        }
      }
      this.timer(c, PROBE_INTERVAL_MS, () => this.probeLoop(rt, c, proc));
    });
  }

  /** The local port a probe or Service targetPort means: a declared containerPort (by number or name). */
  static localPortFor(ports: Record<string, number>, containers: Container[], port: number | string): number | undefined {
    let number: number | undefined = typeof port === 'number' ? port : /^\d+$/.test(port) ? Number(port) : undefined;
    if (number === undefined) {
      for (const c of containers) {
        const named = c.ports?.find((p) => p.name === port);
        if (named) number = named.containerPort;
      }
    }
    if (number === undefined) return undefined;
    return ports[String(number)] ?? number;
  }

  private runProbe(rt: PodRuntime, c: ContainerRuntime, probe: Probe): Promise<boolean> {
    const timeoutMs = (probe.timeoutSeconds ?? 1) * 1000;
    const containers = rt.containers.map((x) => x.spec);
    if (probe.httpGet) {
      const port = Kubelet.localPortFor(rt.localPorts, containers, probe.httpGet.port);
      if (!port) return Promise.resolve(false);
      const path = probe.httpGet.path ?? '/';
      // node:http, not fetch: a probe four times a second per container cost 1.9 ms of CPU through fetch
      // against ~0.3 ms (measured, server included).
      return new Promise((resolve) => {
        const req = httpGet({ host: '127.0.0.1', port, path: path.startsWith('/') ? path : `/${path}` }, (res) => {
          const ok = res.statusCode !== undefined && res.statusCode >= 200 && res.statusCode < 400;
          res.on('end', () => (clearTimeout(timer), resolve(ok)));
          res.on('error', () => (clearTimeout(timer), resolve(false)));
          res.resume();
        });
        const timer = setTimeout(() => req.destroy(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
        req.on('error', () => (clearTimeout(timer), resolve(false)));
      });
    }
    if (probe.tcpSocket) {
      const port = Kubelet.localPortFor(rt.localPorts, containers, probe.tcpSocket.port);
      if (!port) return Promise.resolve(false);
      return new Promise((resolve) => {
        const socket = createConnection({ host: '127.0.0.1', port });
        socket.setTimeout(timeoutMs, () => {
          socket.destroy();
          resolve(false);
        });
        socket.once('connect', () => {
          socket.destroy();
          resolve(true);
        });
        socket.once('error', () => resolve(false));
      });
    }
    return Promise.resolve(c.process !== undefined); // exec probes are not supported locally: running means ready
  }

  logFile(rt: { logDir: string }, container: string, restart: number): string {
    return join(rt.logDir, `${container}.${restart}.log`);
  }

  /** The log file of a pod's container (current or previous instance), for pods/log. */
  logFor(uid: string, container: string, previous: boolean): { file?: string; running: boolean; waiting?: string } {
    const rt = this.pods.get(uid);
    const c = rt?.containers.find((x) => x.spec.name === container);
    if (!rt || !c) return { running: false };
    const index = previous ? c.restartCount - 1 : c.restartCount;
    if (index < 0) return { running: false };
    if (!previous && !c.imagePulled) {
      const reason = c.state.waiting?.reason ?? 'ContainerCreating';
      return { running: false, waiting: reason };
    }
    return { file: this.logFile(rt, container, index), running: !previous && c.process !== undefined };
  }

  private computeStatus(pod: Pod, rt: PodRuntime): PodStatus {
    const old = pod.status ?? {};
    const statuses: ContainerStatus[] = rt.containers.map((c) => ({
      name: c.spec.name,
      image: c.spec.image,
      imageID: c.imagePulled ? `local://${c.spec.image}` : '',
      ...(c.process ? { containerID: `local://${c.process.pid}` } : {}),
      ready: c.ready,
      started: c.started,
      restartCount: c.restartCount,
      state: c.state,
      lastState: c.lastState,
    }));
    const terminated = rt.containers.every((c) => c.state.terminated);
    const everStarted = rt.containers.some((c) => c.state.running || c.state.terminated || c.restartCount > 0 || c.lastState.terminated);
    let phase: PodStatus['phase'] = 'Pending';
    if (terminated) phase = rt.containers.every((c) => c.state.terminated?.exitCode === 0) ? 'Succeeded' : 'Failed';
    else if (everStarted) phase = 'Running';
    const allReady = rt.containers.every((c) => c.ready);
    const notReady = rt.containers.filter((c) => !c.ready).map((c) => c.spec.name);
    const unreadyMsg = `containers with unready status: [${notReady.join(' ')}]`;
    let conditions = old.conditions;
    conditions = setCondition(conditions, 'PodReadyToStartContainers', 'True', undefined, undefined, { probeTime: true });
    conditions = setCondition(conditions, 'Initialized', 'True', undefined, undefined, { probeTime: true });
    const readyReason = terminated ? 'PodCompleted' : allReady ? undefined : 'ContainersNotReady';
    conditions = setCondition(conditions, 'Ready', allReady && !terminated ? 'True' : 'False', readyReason, readyReason === 'ContainersNotReady' ? unreadyMsg : undefined, { probeTime: true });
    conditions = setCondition(conditions, 'ContainersReady', allReady && !terminated ? 'True' : 'False', readyReason, readyReason === 'ContainersNotReady' ? unreadyMsg : undefined, { probeTime: true });
    conditions = setCondition(conditions, 'PodScheduled', 'True', undefined, undefined, { probeTime: true });
    const order = ['PodReadyToStartContainers', 'Initialized', 'Ready', 'ContainersReady', 'PodScheduled'];
    conditions.sort((a, b) => order.indexOf(a.type) - order.indexOf(b.type));
    return {
      phase,
      conditions,
      hostIP: '127.0.0.1',
      hostIPs: [{ ip: '127.0.0.1' }],
      podIP: '127.0.0.1',
      podIPs: [{ ip: '127.0.0.1' }],
      startTime: rt.startTime,
      containerStatuses: statuses,
      qosClass: qosClass(pod.spec),
    } as PodStatus;
  }

  private writeStatus(pod: Pod, rt: PodRuntime): void {
    const status = this.computeStatus(pod, rt);
    if (canonical(status) === canonical(pod.status)) return;
    try {
      this.api.update(typeOf('pods'), rt.namespace, rt.name, { ...pod, status }, { subresource: 'status', fieldManager: 'kubelet' });
    } catch {
      // the pod went away meanwhile; the next reconcile sees it
    }
  }

  /** Stops a pod's processes (SIGTERM, SIGKILL after graceMs) and forgets its runtime. */
  private async terminate(rt: PodRuntime, graceMs: number): Promise<void> {
    rt.stopping = true;
    clearTimeout(rt.preStop);
    rt.preStop = undefined;
    for (const c of rt.containers) for (const t of c.timers) clearTimeout(t);
    await Promise.all(rt.containers.map((c) => c.process?.stop(graceMs)));
    for (const c of rt.containers) c.process = undefined;
  }

  private forget(rt: PodRuntime): void {
    clearTimeout(rt.preStop);
    for (const c of rt.containers) for (const t of c.timers) clearTimeout(t);
    this.pods.delete(rt.uid);
  }

  /** Pods whose processes still run (for tests and stop()). */
  runningPids(): number[] {
    return [...this.pods.values()].flatMap((rt) => rt.containers.flatMap((c) => (c.process ? [c.process.pid] : [])));
  }

  /** Kills every process (SIGTERM, SIGKILL after a moment) and waits for them all to exit. */
  async stop(): Promise<void> {
    this.stopped = true;
    await Promise.all([...this.pods.values()].map((rt) => this.terminate(rt, 1000)));
    for (const rt of this.pods.values()) this.forget(rt);
  }
}
