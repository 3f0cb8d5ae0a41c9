/**
 * `npm start -- --retry <run>`: the local way to continue a failed run. A failed `npm start` stops its
 * Step Functions engine, and with it the run's history, but the S3 registry is kept: the run's manifest
 * says what trained its model, so the retry's request is built from it (functions/shared/resume.ts), and
 * Prepare, in its Lambda bundle, checks it again and skips what the run finished. `mlpipe retry <run>`
 * does the same while the engine that ran it is up.
 */
import { userInfo } from 'node:os';
import { resetClients } from '../functions/shared/clients';
import { REGISTRY } from '../functions/shared/function-settings';
import { NotResumableError } from '../functions/shared/errors';
import { describePlan, findRunRecord, loadResume, retryRequestFrom, retryRunName } from '../functions/shared/resume';
import { defineSettings, loadSettings } from '../functions/shared/settings';

export interface LocalRetry {
  /** The retry's execution name, `<run>-retry1`. */
  name: string;
  /** Its execution input. */
  input: Record<string, unknown>;
  /** One line: where it resumes and what it reuses. */
  plan: string;
}

/**
 * The retry of `run` of `modelName` in the local registry (the local S3 in `bucket`, whose endpoint is in
 * this process's environment), or NotResumableError saying why there is none.
 */
export async function localRetry(run: string, modelName: string, bucket: string): Promise<LocalRetry> {
  process.env.ARTIFACT_BUCKET = bucket;
  loadSettings(defineSettings({ ...REGISTRY }));
  resetClients();
  const found = await findRunRecord(modelName, run);
  if (!found) throw new NotResumableError(`No run ${run} of ${modelName} is recorded in the local registry (${bucket}): it cannot be resumed.`);
  const { manifest, executionArn } = found;
  const { plan } = await loadResume({ executionArn, modelName, version: manifest.version }, manifest.image.uri);
  const input = retryRequestFrom(manifest, `local:${userInfo().username}`);
  return { name: retryRunName(run), input, plan: `${modelName} ${manifest.version} resumes at ${plan.from}: ${describePlan(plan)}` };
}
