import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startLocalS3, LOCAL_AWS_ENV, type LocalS3 } from '../../local/s3';
import { getJson, putJson, resetClients, parseS3Uri } from '../../functions/shared/clients';

describe('local S3 and the shared S3 helpers', () => {
  let s3: LocalS3;
  let dir: string;
  const saved = { ...process.env };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'mlpipe-s3-'));
    s3 = await startLocalS3({ dir, buckets: ['artifacts'] });
    Object.assign(process.env, LOCAL_AWS_ENV, { AWS_ENDPOINT_URL_S3: s3.endpoint });
    resetClients();
  });
  afterAll(async () => {
    await s3.stop();
    rmSync(dir, { recursive: true, force: true });
    process.env = saved;
    resetClients();
  });

  it('round-trips JSON over real HTTP and reports a missing key as undefined', async () => {
    await putJson('artifacts', 'models/m/v1/metrics.json', { accuracy: 0.9 });
    expect(await getJson('artifacts', 'models/m/v1/metrics.json')).toEqual({ accuracy: 0.9 });
    expect(await getJson('artifacts', 'models/m/v1/missing.json')).toBeUndefined();
  });

  it('names the field when an S3 URI is malformed', () => {
    expect(parseS3Uri('s3://bucket/a/b/', 'dataUri')).toEqual({ bucket: 'bucket', key: 'a/b/' });
    expect(() => parseS3Uri('https://bucket/a', 'dataUri')).toThrow(/dataUri must be an S3 URI/);
  });
});
