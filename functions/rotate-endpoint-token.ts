/**
 * RotateEndpointToken: the rotation function of the endpoint token secrets. Secrets Manager invokes it
 * four times per rotation (createSecret, setSecret, testSecret, finishSecret) on the schedule the stack
 * sets (ENDPOINT_TOKEN_ROTATION_DAYS) or on RotateSecret (`mlpipe endpoint <model> --rotate`); locally, the
 * local Secrets Manager invokes it the same way. The steps are in shared/endpoint-token-rotation.ts.
 */
import { FUNCTION_SETTINGS } from './shared/function-settings';
import { rotateStep, type RotationEvent } from './shared/endpoint-token-rotation';
import { withLogContext } from './shared/logger';
import { loadSettings } from './shared/settings';

/** Read and validated once, at init. */
const settings = loadSettings(FUNCTION_SETTINGS.RotateEndpointToken);

export const handler = withLogContext(
  (event: RotationEvent) => ({ state: `RotateEndpointToken.${String(event?.Step)}` }),
  (event: RotationEvent) =>
    rotateStep(event, {
      tokenSecrets: settings.ENDPOINT_TOKEN_SECRETS,
      namespaces: { staging: settings.STAGING_NAMESPACE, production: settings.PRODUCTION_NAMESPACE },
      loadWaitSeconds: settings.ENDPOINT_TOKEN_LOAD_WAIT_SECONDS,
      rotationDays: settings.ENDPOINT_TOKEN_ROTATION_DAYS,
    }),
);
