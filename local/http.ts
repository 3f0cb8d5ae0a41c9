/**
 * The small HTTP plumbing every local stand-in (SNS, SQS, the Step Functions endpoint, the approval
 * server) shares: reading a request body with a size cap, and listening on 127.0.0.1 only (nothing local
 * is reachable from another machine) with a stop() that also ends kept-alive connections, so a test's
 * afterAll leaves no open handle.
 */
import type { IncomingMessage, Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** What the local endpoints accept by default: larger than any AWS request they stand in for (SFN input ≤ 256 KiB). */
export const DEFAULT_MAX_BODY_BYTES = 1024 * 1024;

/** The whole request body, or `undefined` once it exceeds `maxBytes` (answer 413). */
export async function readBody(req: IncomingMessage, maxBytes = DEFAULT_MAX_BODY_BYTES): Promise<Buffer | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  let tooLarge = false;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    // Keep draining (without storing) so the client sees the answer rather than a reset connection.
    if (size > maxBytes) tooLarge = true;
    if (!tooLarge) chunks.push(chunk as Buffer);
  }
  return tooLarge ? undefined : Buffer.concat(chunks);
}

export interface LoopbackListener {
  /** `http://127.0.0.1:<port>` */
  endpoint: string;
  port: number;
  /** Closes the server and every open connection; safe to call twice. */
  stop(): Promise<void>;
}

/** Listens on 127.0.0.1 (`port` 0: an ephemeral port). */
export async function listenOnLoopback(server: Server, port = 0): Promise<LoopbackListener> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const actual = (server.address() as AddressInfo).port;
  let stopped: Promise<void> | undefined;
  return {
    endpoint: `http://127.0.0.1:${actual}`,
    port: actual,
    stop() {
      stopped ??= new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      });
      return stopped;
    },
  };
}
