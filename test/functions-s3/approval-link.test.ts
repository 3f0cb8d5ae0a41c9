/** Signed approval links: what verifies, what does not, and the secret from Secrets Manager. */
import { approvalId, approvalSecret, resetApprovalSecret, signLink, verifyLink } from '../../functions/shared/approval-link';
import { ApprovalLinkError } from '../../functions/shared/errors';
import { LOCAL_AWS_ENV } from '../../local/s3';
import { startFakeSecretsManager } from './fixtures';
import { reloadSettings } from '../../functions/shared/settings';

const SECRET = 'test-secret-0123456789abcdef';
const BASE = 'http://127.0.0.1:8787/';
const ID = approvalId('arn:aws:states:us-east-1:000000000000:execution:mlpipe:run-1');
const NOW = new Date('2026-01-01T00:00:00Z');
const EXP = Math.floor(NOW.getTime() / 1000) + 3600;

function queryOf(url: string) {
  const u = new URL(url);
  return {
    id: u.pathname.split('/').at(-1),
    action: u.searchParams.get('action') ?? undefined,
    exp: u.searchParams.get('exp') ?? undefined,
    sig: u.searchParams.get('sig') ?? undefined,
  };
}

function reasonOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    if (err instanceof ApprovalLinkError) return err.reason;
    throw err;
  }
  return 'accepted';
}

describe('approval links', () => {
  it('derives one 32-hex id per execution', () => {
    expect(ID).toMatch(/^[0-9a-f]{32}$/);
    expect(approvalId('arn:aws:states:us-east-1:000000000000:execution:mlpipe:run-1')).toBe(ID);
    expect(approvalId('arn:aws:states:us-east-1:000000000000:execution:mlpipe:run-2')).not.toBe(ID);
  });

  it('signs a link that verifies, with the documented shape', () => {
    const url = signLink({ baseUrl: BASE, id: ID, action: 'approve', expiresAt: EXP, secret: SECRET });
    expect(url).toMatch(new RegExp(`^http://127\\.0\\.0\\.1:8787/approvals/${ID}\\?action=approve&exp=${EXP}&sig=[0-9a-f]{64}$`));
    expect(verifyLink({ ...queryOf(url), secret: SECRET, now: NOW })).toEqual({ id: ID, action: 'approve', expiresAt: EXP });
  });

  it.each([
    ['a tampered action', (q: ReturnType<typeof queryOf>) => ({ ...q, action: 'reject' }), 'forged'],
    ['a tampered expiry', (q: ReturnType<typeof queryOf>) => ({ ...q, exp: String(EXP + 86400) }), 'forged'],
    ['another approval id', (q: ReturnType<typeof queryOf>) => ({ ...q, id: approvalId('other') }), 'forged'],
    ['a flipped signature digit', (q: ReturnType<typeof queryOf>) => ({ ...q, sig: (q.sig![0] === '0' ? '1' : '0') + q.sig!.slice(1) }), 'forged'],
    ['a short signature', (q: ReturnType<typeof queryOf>) => ({ ...q, sig: q.sig!.slice(2) }), 'malformed'],
    ['no signature', (q: ReturnType<typeof queryOf>) => ({ ...q, sig: undefined }), 'malformed'],
    ['an unknown action', (q: ReturnType<typeof queryOf>) => ({ ...q, action: 'deploy' }), 'malformed'],
    ['a non-numeric expiry', (q: ReturnType<typeof queryOf>) => ({ ...q, exp: '1e10' }), 'malformed'],
  ])('refuses %s', (_what, tamper, reason) => {
    const q = queryOf(signLink({ baseUrl: BASE, id: ID, action: 'approve', expiresAt: EXP, secret: SECRET }));
    expect(reasonOf(() => verifyLink({ ...tamper(q), secret: SECRET, now: NOW }))).toBe(reason);
  });

  it('refuses a link signed with another secret as forged', () => {
    const q = queryOf(signLink({ baseUrl: BASE, id: ID, action: 'approve', expiresAt: EXP, secret: 'another-secret-0123456789' }));
    expect(reasonOf(() => verifyLink({ ...q, secret: SECRET, now: NOW }))).toBe('forged');
  });

  it('refuses a genuine link after its expiry, and accepts it up to that second', () => {
    const q = queryOf(signLink({ baseUrl: BASE, id: ID, action: 'reject', expiresAt: EXP, secret: SECRET }));
    expect(reasonOf(() => verifyLink({ ...q, secret: SECRET, now: new Date(EXP * 1000) }))).toBe('accepted');
    expect(reasonOf(() => verifyLink({ ...q, secret: SECRET, now: new Date(EXP * 1000 + 1000) }))).toBe('expired');
  });
});

describe('approval secret', () => {
  const saved = { ...process.env };
  let sm: Awaited<ReturnType<typeof startFakeSecretsManager>>;
  const ARN = 'arn:aws:secretsmanager:us-east-1:000000000000:secret:mlpipe-approval-AbCdEf';

  beforeAll(async () => {
    sm = await startFakeSecretsManager({ [ARN]: 'secret-from-secrets-manager-42' });
  });
  afterEach(() => {
    process.env = { ...saved };
    reloadSettings();
    resetApprovalSecret();
  });
  afterAll(() => sm.stop());

  it('reads APPROVAL_SECRET_ARN from Secrets Manager once and caches it', async () => {
    Object.assign(process.env, LOCAL_AWS_ENV, { AWS_ENDPOINT_URL_SECRETS_MANAGER: sm.endpoint, APPROVAL_SECRET_ARN: ARN });
    delete process.env.APPROVAL_SECRET;
    reloadSettings();
    expect(await approvalSecret()).toBe('secret-from-secrets-manager-42');
    expect(await approvalSecret()).toBe('secret-from-secrets-manager-42');
    expect(sm.calls).toEqual([`secretsmanager.GetSecretValue ${ARN}`]);
  });

  it('names both settings when neither is set, and refuses a short secret, at load', () => {
    delete process.env.APPROVAL_SECRET;
    delete process.env.APPROVAL_SECRET_ARN;
    expect(() => reloadSettings()).toThrow(/set APPROVAL_SECRET_ARN \(AWS\) or APPROVAL_SECRET \(local mode\)/);
    process.env.APPROVAL_SECRET = 'short';
    expect(() => reloadSettings()).toThrow(/Setting APPROVAL_SECRET is invalid: must be at least 16 characters\.$/);
  });
});
