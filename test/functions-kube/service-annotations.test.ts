/**
 * Staging-only Service annotations (STAGING_SERVICE_ANNOTATIONS): ExposeStaging applies them over
 * SERVICE_ANNOTATIONS, so a private deployment's staging load balancer is internal even where the shared
 * annotations say internet-facing; the production Service (SwitchProductionTraffic) never gets them.
 * Against the local Kubernetes API over HTTP.
 */
import type { V1Service } from '@kubernetes/client-node';
import { handler as deployStaging } from '../../functions/deploy-staging';
import { handler as exposeStaging } from '../../functions/expose-staging';
import { handler as deployProduction } from '../../functions/deploy-production';
import { handler as switchProductionTraffic } from '../../functions/switch-production-traffic';
import { readObject } from '../../functions/shared/kube';
import { FUNCTION_SETTINGS } from '../../functions/shared/function-settings';
import { readSettings } from '../../functions/shared/settings';
import { startTestEnv, type TestEnv } from './env';

const SCHEME = 'service.beta.kubernetes.io/aws-load-balancer-scheme';
const LEGACY_INTERNAL = 'service.beta.kubernetes.io/aws-load-balancer-internal';

let env: TestEnv;

beforeAll(async () => {
  env = await startTestEnv({
    SERVICE_ANNOTATIONS: JSON.stringify({ [SCHEME]: 'internet-facing', 'example.com/team': 'ml' }),
    STAGING_SERVICE_ANNOTATIONS: JSON.stringify({ [SCHEME]: 'internal', [LEGACY_INTERNAL]: 'true' }),
  });
});
afterAll(async () => {
  await env?.stop();
});

const annotationsOf = async (namespace: string, name: string) =>
  (await readObject<V1Service>({ kind: 'Service', namespace, name }))?.metadata?.annotations;

describe('staging-only Service annotations', () => {
  it('ExposeStaging applies them over SERVICE_ANNOTATIONS', async () => {
    // Prepare
    const run = await env.prepare('2026-02-01T10:00:00Z');
    const deployed = await deployStaging({ run });
    // Act
    await exposeStaging({ run, staging: deployed });
    // Assess
    expect(await annotationsOf('mlpipe-staging', run.names.stagingService)).toEqual({
      [SCHEME]: 'internal',
      [LEGACY_INTERNAL]: 'true',
      'example.com/team': 'ml',
    });
  });

  it('the production Service keeps SERVICE_ANNOTATIONS only', async () => {
    // Prepare
    const run = await env.prepare('2026-02-01T11:00:00Z');
    const deployed = await deployProduction({ run });
    // Act
    await switchProductionTraffic({ run, production: deployed });
    // Assess
    expect(await annotationsOf('mlpipe-production', run.names.productionService)).toEqual({
      [SCHEME]: 'internet-facing',
      'example.com/team': 'ml',
    });
  });

  it.each([
    ['a value that is not a string', '{"internal": true}', /STAGING_SERVICE_ANNOTATIONS is invalid: internal: values must be strings/],
    ['a key that is not a qualified name', '{"mlpipe/model version": "v3"}', /STAGING_SERVICE_ANNOTATIONS is invalid: .*name part must consist of/],
  ])('fails ExposeStaging\'s init on %s, naming the setting', (_what, value, message) => {
    expect(() => readSettings(FUNCTION_SETTINGS.ExposeStaging, { ...process.env, STAGING_SERVICE_ANNOTATIONS: value })).toThrow(message);
  });
});
