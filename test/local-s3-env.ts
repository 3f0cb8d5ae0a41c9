/**
 * A local S3 (local/s3.ts, s3rver) for the duration of a describe block, with this process's AWS settings
 * pointed at it and put back afterwards. Call inside a `describe`; read `.s3` in tests.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startLocalS3, LOCAL_AWS_ENV, type LocalS3 } from '../local/s3';
import { resetClients } from '../functions/shared/clients';
import { reloadSettings } from '../functions/shared/settings';

export function useLocalS3(buckets: string[], prefix = 'mlpipe-s3-'): { readonly s3: LocalS3; readonly dir: string } {
  const env = { s3: undefined as unknown as LocalS3, dir: '' };
  const saved = { ...process.env };
  beforeAll(async () => {
    env.dir = mkdtempSync(join(tmpdir(), prefix));
    env.s3 = await startLocalS3({ dir: env.dir, buckets });
    Object.assign(process.env, LOCAL_AWS_ENV, { AWS_ENDPOINT_URL_S3: env.s3.endpoint });
    reloadSettings();
    resetClients();
  });
  afterAll(async () => {
    await env.s3?.stop();
    if (env.dir) rmSync(env.dir, { recursive: true, force: true });
    process.env = saved;
    reloadSettings();
    resetClients();
  });
  return env;
}
