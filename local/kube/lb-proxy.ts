/**
 * The local stand-in for a cloud load balancer: a TCP proxy on 127.0.0.1 that sends each new connection
 * to one ready endpoint, chosen when the connection arrives (round-robin). The endpoint list is read at
 * connect time, so changing a Service's selector switches new traffic at once — blue/green relies on it.
 */
import { createConnection, createServer, type Server, type Socket } from 'node:net';

export interface Endpoint {
  host: string;
  port: number;
}

export class LoadBalancerProxy {
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();
  private next = 0;
  port = 0;

  constructor(private readonly endpoints: () => Endpoint[]) {
    this.server = createServer((client) => this.forward(client));
  }

  listen(): Promise<number> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(0, '127.0.0.1', () => {
        const address = this.server.address();
        this.port = typeof address === 'object' && address ? address.port : 0;
        resolve(this.port);
      });
    });
  }

  private forward(client: Socket): void {
    this.track(client);
    const candidates = this.endpoints();
    if (candidates.length === 0) {
      // No ready endpoint: refuse like a load balancer with no healthy targets.
      client.destroy();
      return;
    }
    const target = candidates[this.next++ % candidates.length]!;
    const upstream = createConnection({ host: target.host, port: target.port });
    this.track(upstream);
    client.pipe(upstream);
    upstream.pipe(client);
    const close = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', close);
    upstream.on('error', close);
    client.on('close', close);
    upstream.on('close', close);
  }

  private track(socket: Socket): void {
    this.sockets.add(socket);
    socket.on('close', () => this.sockets.delete(socket));
  }

  close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}
