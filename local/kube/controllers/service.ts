/**
 * The Service controller: endpoints of a Service (ready pods matching its selector, resolved to the
 * local ports the kubelet gave them) and, for `type: LoadBalancer`, a local TCP proxy per port standing
 * in for the cloud load balancer, reported in `status.loadBalancer.ingress` once it listens.
 */
import type { KubeApi } from '../api';
import { LoadBalancerProxy, type Endpoint } from '../lb-proxy';
import { typeOf, type Pod, type Service, type ServicePort } from '../resources';
import { matchesRequirements } from '../selectors';
import { canonical } from '../canonical';
import { Kubelet, LOCAL_PORTS_ANNOTATION } from './kubelet';
import { isPodReady } from './owned';

interface Balancer {
  uid: string;
  proxies: LoadBalancerProxy[];
  ports: number[];
  ready: boolean;
}

/** Ready endpoints of one Service port, read from the store at call time. */
export function serviceEndpoints(api: KubeApi, namespace: string, name: string, port: ServicePort | undefined): Endpoint[] {
  const svc = api.store.get('services', namespace, name) as Service | undefined;
  const selector = svc?.spec.selector;
  if (!svc || !selector || Object.keys(selector).length === 0) return [];
  const reqs = Object.entries(selector).map(([key, v]) => ({ key, operator: '=' as const, values: [v] }));
  const target = port?.targetPort ?? port?.port ?? 80;
  const out: Endpoint[] = [];
  for (const pod of api.store.list('pods', namespace) as Pod[]) {
    if (pod.metadata.deletionTimestamp || !isPodReady(pod) || !matchesRequirements(pod.metadata.labels, reqs)) continue;
    let ports: Record<string, number> = {};
    try {
      ports = JSON.parse(pod.metadata.annotations?.[LOCAL_PORTS_ANNOTATION] ?? '{}') as Record<string, number>;
    } catch {
      // no local ports recorded
    }
    const local = Kubelet.localPortFor(ports, pod.spec.containers, target);
    if (local) out.push({ host: '127.0.0.1', port: local });
  }
  return out;
}

export class ServiceController {
  private readonly balancers = new Map<string, Balancer>();

  constructor(
    private readonly api: KubeApi,
    private readonly kick: () => void,
  ) {}

  reconcile(): void {
    const services = this.api.store.list('services') as Service[];
    const wanted = new Map(services.filter((s) => s.spec.type === 'LoadBalancer').map((s) => [s.metadata.uid, s]));
    for (const [uid, lb] of this.balancers) {
      if (!wanted.has(uid)) {
        this.balancers.delete(uid);
        for (const p of lb.proxies) void p.close();
      }
    }
    for (const svc of wanted.values()) this.syncLoadBalancer(svc);
  }

  private syncLoadBalancer(svc: Service): void {
    const uid = svc.metadata.uid;
    const ns = svc.metadata.namespace!;
    const name = svc.metadata.name;
    let lb = this.balancers.get(uid);
    const portNames = (svc.spec.ports ?? []).map((p) => p.name ?? String(p.port));
    if (lb && lb.proxies.length !== portNames.length) {
      this.balancers.delete(uid);
      for (const p of lb.proxies) void p.close();
      lb = undefined;
    }
    if (!lb) {
      const created: Balancer = { uid, proxies: [], ports: [], ready: false };
      this.balancers.set(uid, created);
      created.proxies = (svc.spec.ports ?? []).map((_p, i) => new LoadBalancerProxy(() => {
        // The port is looked up again at connect time: ports and selector may have changed since.
        const current = this.api.store.get('services', ns, name) as Service | undefined;
        if (!current || current.metadata.uid !== uid) return [];
        return serviceEndpoints(this.api, ns, name, current.spec.ports?.[i]);
      }));
      void Promise.all(created.proxies.map((p) => p.listen())).then((ports) => {
        created.ports = ports;
        created.ready = true;
        if (this.balancers.get(uid) === created) this.kick();
        else for (const p of created.proxies) void p.close();
      });
      return;
    }
    if (!lb.ready) return;
    const status = {
      loadBalancer: { ingress: [{ ip: '127.0.0.1', ipMode: 'VIP', ports: lb.ports.map((port) => ({ port, protocol: 'TCP' })) }] },
    };
    if (canonical(status) === canonical(svc.status ?? {})) return;
    try {
      this.api.update(typeOf('services'), ns, name, { ...svc, status }, { subresource: 'status', fieldManager: 'service-controller' });
    } catch {
      // deleted meanwhile
    }
  }

  async stop(): Promise<void> {
    const all = [...this.balancers.values()];
    this.balancers.clear();
    await Promise.all(all.flatMap((lb) => lb.proxies.map((p) => p.close())));
  }
}
