/**
 * The controller manager: runs every controller after each change to the store (coalesced to one pass
 * per tick, repeated while passes keep changing things) and when runtime events or timers call kick().
 */
import type { KubeApi } from '../api';
import { DeploymentController } from './deployment';
import { EventRecorder } from './events';
import { JobController } from './job';
import { Kubelet, type KubeletOptions } from './kubelet';
import { ServiceController } from './service';

export class ControllerManager {
  readonly kubelet: Kubelet;
  private readonly deployments: DeploymentController;
  private readonly jobs: JobController;
  private readonly services: ServiceController;
  private scheduled = false;
  private stopped = false;
  private readonly unsubscribe: () => void;

  constructor(
    api: KubeApi,
    kubeletOptions: Omit<KubeletOptions, 'kick'>,
  ) {
    const kick = () => this.kick();
    const events = new EventRecorder(api);
    this.kubelet = new Kubelet(api, {
      ...kubeletOptions,
      kick,
      onUnschedulable: (pod, message) => events.record(pod, 'Warning', 'FailedScheduling', message, 'default-scheduler'),
    });
    this.deployments = new DeploymentController(api, kick);
    this.jobs = new JobController(api, kick);
    this.services = new ServiceController(api, kick);
    this.unsubscribe = api.store.subscribe(() => this.kick());
  }

  kick(): void {
    if (this.scheduled || this.stopped) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      if (this.stopped) return;
      try {
        this.deployments.reconcile();
        this.jobs.reconcile();
        this.kubelet.reconcile();
        this.services.reconcile();
      } catch (err) {
        // A controller bug must not take the API server down; it is reported and the next change retries.
        console.error('[local-kube] controller error:', err);
      }
    });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.unsubscribe();
    this.jobs.stop();
    this.deployments.stop();
    await Promise.all([this.kubelet.stop(), this.services.stop()]);
  }
}
