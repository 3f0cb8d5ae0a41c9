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
import { workloadSettings } from '../../functions/shared/manifests';
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

  it('rejects a setting that is not a JSON object of strings, naming it', () => {
    const saved = process.env.STAGING_SERVICE_ANNOTATIONS;
    process.env.STAGING_SERVICE_ANNOTATIONS = '{"internal": true}';
    try {
      expect(() => workloadSettings()).toThrow(/STAGING_SERVICE_ANNOTATIONS must be a JSON object of strings/);
    } finally {
      process.env.STAGING_SERVICE_ANNOTATIONS = saved;
    }
  });
});
