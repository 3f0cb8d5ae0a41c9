/**
 * Local S3 for the local mode and the tests: s3rver on 127.0.0.1, files under `dir`.
 * Clients must use forcePathStyle and requestChecksumCalculation WHEN_REQUIRED (functions/shared/clients.ts
 * does when AWS_ENDPOINT_URL_S3 is set).
 */
import { mkdirSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
// s3rver ships CommonJS without types.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const S3rver = require('s3rver') as new (opts: Record<string, unknown>) => {
  run(): Promise<AddressInfo>;
  close(): Promise<void>;
};

export interface LocalS3 {
  /** e.g. http://127.0.0.1:45123 */
  endpoint: string;
  stop(): Promise<void>;
}

export async function startLocalS3(opts: { dir: string; port?: number; buckets: string[] }): Promise<LocalS3> {
  mkdirSync(opts.dir, { recursive: true });
  const server = new S3rver({
    address: '127.0.0.1',
    port: opts.port ?? 0,
    directory: opts.dir,
    silent: true,
    configureBuckets: opts.buckets.map((name) => ({ name })),
  });
  const address = await server.run();
  let stopped = false;
  return {
    endpoint: `http://127.0.0.1:${address.port}`,
    async stop() {
      if (stopped) return;
      stopped = true;
      await server.close();
    },
  };
}

/** Static credentials the local endpoints accept (s3rver's fixed pair); never real ones. */
export const LOCAL_AWS_ENV = {
  AWS_REGION: 'us-east-1',
  AWS_ACCESS_KEY_ID: 'S3RVER',
  AWS_SECRET_ACCESS_KEY: 'S3RVER',
} as const;
