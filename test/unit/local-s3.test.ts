/**
 * The local S3 (s3rver behind local/s3.ts) over real HTTP: JSON round trips through the shared helpers,
 * conditional writes answered as S3 answers them (s3rver alone ignores If-Match / If-None-Match), and
 * objects replaced atomically (s3rver alone truncates the file a reader may be reading).
 */
import { readdirSync, watch } from 'node:fs';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { getJson, getJsonVersioned, putJson, putJsonIf, parseS3Uri, s3Client } from '../../functions/shared/clients';
import './progress-display.cases';
import { useLocalS3 } from '../local-s3-env';

describe('local S3 and the shared S3 helpers', () => {
  const env = useLocalS3(['artifacts']);

  /** An unsigned PUT (s3rver accepts anonymous requests), to see S3's own status and XML body. */
  async function put(key: string, body: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string; etag: string | null }> {
    const res = await fetch(`${env.s3.endpoint}/artifacts/${key}`, { method: 'PUT', body, headers: { 'content-type': 'text/plain', ...headers } });
    return { status: res.status, body: await res.text(), etag: res.headers.get('etag') };
  }
  const read = async (key: string) => (await fetch(`${env.s3.endpoint}/artifacts/${key}`)).text();

  it('round-trips JSON over real HTTP and reports a missing key as undefined', async () => {
    await putJson('artifacts', 'models/m/v1/metrics.json', { accuracy: 0.9 });
    expect(await getJson('artifacts', 'models/m/v1/metrics.json')).toEqual({ accuracy: 0.9 });
    expect(await getJson('artifacts', 'models/m/v1/missing.json')).toBeUndefined();
  });

  it('names the field when an S3 URI is malformed', () => {
    expect(parseS3Uri('s3://bucket/a/b/', 'dataUri')).toEqual({ bucket: 'bucket', key: 'a/b/' });
    expect(() => parseS3Uri('https://bucket/a', 'dataUri')).toThrow(/dataUri must be an S3 URI/);
  });

  describe('conditional writes', () => {
    it('If-None-Match: * creates once, then answers 412 PreconditionFailed and keeps the object', async () => {
      expect((await put('cond/create', 'first', { 'if-none-match': '*' })).status).toBe(200);
      const second = await put('cond/create', 'second', { 'if-none-match': '*' });
      expect(second.status).toBe(412);
      expect(second.body).toContain('<Code>PreconditionFailed</Code>');
      expect(second.body).toContain('<Message>At least one of the pre-conditions you specified did not hold</Message>');
      expect(second.body).toContain('<Condition>If-None-Match</Condition>');
      expect(await read('cond/create')).toBe('first');
    });

    it('If-Match replaces only the version it names: the current ETag wins, a stale one gets 412', async () => {
      const v1 = await put('cond/update', 'v1');
      const v2 = await put('cond/update', 'v2', { 'if-match': v1.etag! });
      expect(v2.status).toBe(200);
      const stale = await put('cond/update', 'v3', { 'if-match': v1.etag! });
      expect(stale.status).toBe(412);
      expect(stale.body).toContain('<Code>PreconditionFailed</Code>');
      expect(stale.body).toContain('<Condition>If-Match</Condition>');
      expect(await read('cond/update')).toBe('v2');
      // The ETag compares with or without its quotes.
      expect((await put('cond/update', 'v4', { 'if-match': v2.etag!.replace(/"/g, '') })).status).toBe(200);
    });

    it('If-Match on a key with no object answers 404 NoSuchKey', async () => {
      const res = await put('cond/absent', 'x', { 'if-match': '"0123456789abcdef0123456789abcdef"' });
      expect(res.status).toBe(404);
      expect(res.body).toContain('<Code>NoSuchKey</Code>');
      expect((await fetch(`${env.s3.endpoint}/artifacts/cond/absent`)).status).toBe(404);
    });

    it('If-None-Match with anything but * on a write is not implemented (501)', async () => {
      const res = await put('cond/etag-none-match', 'x', { 'if-none-match': '"abc"' });
      expect(res.status).toBe(501);
      expect(res.body).toContain('<Code>NotImplemented</Code>');
    });

    it('the SDK helpers: putJsonIf says false on a lost race, true on a win', async () => {
      expect(await putJsonIf('artifacts', 'cond/json', { n: 1 }, { ifNoneMatch: '*' })).toBe(true);
      const first = await getJsonVersioned<{ n: number }>('artifacts', 'cond/json');
      expect(first?.value).toEqual({ n: 1 });
      expect(await putJsonIf('artifacts', 'cond/json', { n: 2 }, { ifMatch: first!.etag })).toBe(true);
      expect(await putJsonIf('artifacts', 'cond/json', { n: 3 }, { ifMatch: first!.etag })).toBe(false); // 412
      expect(await putJsonIf('artifacts', 'cond/json', { n: 4 }, { ifNoneMatch: '*' })).toBe(false); // 412
      expect(await putJsonIf('artifacts', 'cond/gone', { n: 5 }, { ifMatch: first!.etag })).toBe(false); // 404
      expect(await getJson('artifacts', 'cond/json')).toEqual({ n: 2 });
      expect(await getJsonVersioned('artifacts', 'cond/none')).toBeUndefined();
    });
  });

  describe('a write racing other requests', () => {
    /** Resolves once the local S3 is receiving an upload into `objectDir` (its staged file exists). */
    function uploadInProgress(objectDir: string): Promise<void> {
      return new Promise((resolve) => {
        const staged = () => readdirSync(objectDir).some((f) => f.endsWith('.upload'));
        const watcher = watch(objectDir, () => {
          if (staged()) {
            watcher.close();
            resolve();
          }
        });
        if (staged()) {
          watcher.close();
          resolve();
        }
      });
    }

    /** Starts a PutObject whose body arrives in two halves; the second only when `finish` is called. */
    function slowPut(key: string, content: string, condition: { IfMatch?: string } = {}) {
      const body = new PassThrough();
      const sent = s3Client().send(new PutObjectCommand({ Bucket: 'artifacts', Key: key, Body: body, ContentLength: content.length, ...condition }));
      body.write(content.slice(0, content.length / 2));
      return { sent, finish: () => body.end(content.slice(content.length / 2)) };
    }

    it('a reader during an upload gets the whole old object, then the whole new one', async () => {
      const old = 'a'.repeat(256 * 1024);
      const next = 'b'.repeat(256 * 1024);
      await put('race/read', old);
      const upload = slowPut('race/read', next);
      await uploadInProgress(join(env.dir, 'artifacts', 'race'));
      expect(await read('race/read')).toBe(old);
      upload.finish();
      await upload.sent;
      expect(await read('race/read')).toBe(next);
    });

    it('answers 409 ConditionalRequestConflict when another write lands during a conditional upload', async () => {
      const first = await put('race/conflict', 'v1');
      const upload = slowPut('race/conflict', 'x'.repeat(64 * 1024), { IfMatch: first.etag! });
      await uploadInProgress(join(env.dir, 'artifacts', 'race'));
      expect((await put('race/conflict', 'v2-landed-meanwhile')).status).toBe(200);
      // The SDK warns that a streamed body cannot be retried; expected here.
      const warn = jest.spyOn(console, 'warn').mockImplementation(() => undefined);
      upload.finish();
      await expect(upload.sent).rejects.toMatchObject({ name: 'ConditionalRequestConflict', $metadata: { httpStatusCode: 409 } });
      warn.mockRestore();
      expect(await read('race/conflict')).toBe('v2-landed-meanwhile');
      // Nothing half-uploaded is left behind or listed.
      expect(readdirSync(join(env.dir, 'artifacts', 'race')).filter((f) => f.endsWith('.upload'))).toEqual([]);
    });
  });
});
