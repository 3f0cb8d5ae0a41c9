/**
 * `mlpipe endpoint [model]`: where production serves a model and how to call it (a curl line with a
 * placeholder for the token). `--show-token` prints the token alone (for `TOKEN=$(mlpipe endpoint
 * --show-token)`), and only to a caller allowed to read its secret: on AWS, GetSecretValue must succeed
 * with the caller's credentials; locally, the local run's Secrets Manager answers. The token is never
 * printed otherwise. `--rotate` starts a rotation now (RotateSecret, RotateImmediately) and waits until the
 * new token is current: on AWS Secrets Manager runs the stack's rotation function; locally the local
 * Secrets Manager runs the synthesized bundle of the same function through the same four steps.
 */
import { DescribeSecretCommand, GetSecretValueCommand, RotateSecretCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { versionWith, type VersionStages } from '../../functions/shared/endpoint-auth';
import { readProduction } from '../../functions/shared/registry';
import { DNS1123_LABEL } from '../../functions/shared/names';
import type { Clock, Command } from '../command';
import { CliError, UsageError } from '../io';

/** The lines `mlpipe endpoint` prints (no token in them). */
export function endpointLines(model: string, endpoint: string | undefined, secretArn: string | undefined): string[] {
  if (!endpoint) return [`model     ${model}`, 'endpoint  none: no version of this model serves production (mlpipe production shows its history)'];
  const predict = `${endpoint.replace(/\/+$/, '')}/v1/models/${model}:predict`;
  const auth = secretArn !== undefined;
  return [
    `model     ${model}`,
    `endpoint  ${endpoint}`,
    auth
      ? `auth      Authorization: Bearer <token>; the token is the secret ${secretArn} (mlpipe endpoint ${model} --show-token prints it if you may read it)`
      : 'auth      none (the stack was deployed with endpointAuth: false)',
    'call      ' +
      (auth ? 'TOKEN=$(mlpipe endpoint ' + model + ' --show-token); ' : '') +
      `curl -sS ${auth ? '-H "Authorization: Bearer $TOKEN" ' : ''}-H 'content-type: application/json' -d '{"instances": [[<784 pixel values 0..1>]]}' ${predict}`,
  ];
}

/**
 * How long `--rotate` waits for the new token to become current. Secrets Manager's API reports no failed
 * rotation: a failure shows only as AWSPENDING staying on the new version while Secrets Manager retries the
 * whole rotation (a few times; testSecret alone waits up to ENDPOINT_TOKEN_LOAD_WAIT_SECONDS, 3 min by
 * default, per try). So the wait covers a few tries, then names where the reason is (the function's log, its
 * Errors alarm); the next --rotate says whether the label is stuck.
 */
const ROTATION_WAIT_MS = 10 * 60_000;
const ROTATION_POLL_MS = 5000;

const denied = (e: Error): boolean => /AccessDenied|not authorized|KMS/i.test(`${e.name} ${e.message}`);

/** The secret's versions by staging label (DescribeSecret), or a CliError saying what failed. */
async function stagesOf(client: SecretsManagerClient, model: string, secretArn: string): Promise<VersionStages> {
  try {
    return (await client.send(new DescribeSecretCommand({ SecretId: secretArn }))).VersionIdsToStages ?? {};
  } catch (err) {
    const e = err as Error;
    throw new CliError(
      denied(e)
        ? `You may not read the rotation state of ${model}'s endpoint token: DescribeSecret on ${secretArn} was denied (${e.name}). Ask for secretsmanager:DescribeSecret on that secret.`
        : `Cannot read the rotation state of ${model}'s endpoint token (DescribeSecret on ${secretArn}): ${e.name}: ${e.message}`,
    );
  }
}

/**
 * A failed rotation leaves AWSPENDING on its version, and Secrets Manager then refuses every RotateSecret
 * ("A previous rotation isn't complete") until the label is removed: the message with the command that does it.
 */
async function stuckRotation(client: SecretsManagerClient, model: string, secretArn: string): Promise<string> {
  const stages = await stagesOf(client, model, secretArn);
  const pending = versionWith(stages, 'AWSPENDING', 'AWSCURRENT');
  if (pending === undefined) return `A rotation of ${model}'s endpoint token is still running: wait for it (Secrets Manager retries a failed one a few times), then run --rotate again if you still need to.`;
  return [
    `A previous rotation of ${model}'s endpoint token did not finish: version ${pending} still carries AWSPENDING, so Secrets Manager refuses a new rotation.`,
    "The current token is unchanged. Read the rotation function's log for why (usually a serving pod that never loaded the new token), fix that, then remove the label and rotate again:",
    `  aws secretsmanager update-secret-version-stage --secret-id ${secretArn} --version-stage AWSPENDING --remove-from-version-id ${pending}`,
    `  mlpipe endpoint ${model} --rotate`,
  ].join('\n');
}

/** RotateSecret now, then waits (on `clock`, the CLI's) until the new version is AWSCURRENT; the lines to print (no token in them). */
export async function rotateToken(client: SecretsManagerClient, model: string, secretArn: string, clock: Clock): Promise<string[]> {
  let versionId: string | undefined;
  try {
    versionId = (await client.send(new RotateSecretCommand({ SecretId: secretArn, RotateImmediately: true }))).VersionId;
  } catch (err) {
    const e = err as Error;
    if (e.name === 'InvalidRequestException' && /previous rotation isn't complete/i.test(e.message)) throw new CliError(await stuckRotation(client, model, secretArn));
    throw new CliError(
      denied(e)
        ? `You may not rotate the endpoint token of ${model}: RotateSecret on ${secretArn} was denied (${e.name}). Ask for secretsmanager:RotateSecret on that secret and lambda:InvokeFunction on its rotation function.`
        : `Cannot rotate the endpoint token of ${model} (${secretArn}): ${e.name}: ${e.message}`,
    );
  }
  if (!versionId) throw new CliError(`RotateSecret on ${secretArn} returned no version id.`);
  const until = clock.now().getTime() + ROTATION_WAIT_MS;
  for (;;) {
    const stages = await stagesOf(client, model, secretArn);
    if (stages[versionId]?.includes('AWSCURRENT')) {
      const previous = versionWith(stages, 'AWSPREVIOUS');
      return [
        `rotated   the endpoint token of ${model}: version ${versionId} is current, and every serving pod (staging and production) accepts it`,
        `still ok  the replaced token${previous ? ` (version ${previous}, AWSPREVIOUS)` : ''} keeps working until the next rotation; older ones stop once the pods reread the Secret (about a minute)`,
        `callers   fetch the new one: TOKEN=$(mlpipe endpoint ${model} --show-token)`,
      ];
    }
    if (!stages[versionId]?.includes('AWSPENDING')) throw new CliError(`The rotation of ${model}'s token to version ${versionId} was replaced or abandoned (the version is neither pending nor current); run --rotate again.`);
    if (clock.now().getTime() >= until) {
      throw new CliError(
        `The rotation of ${model}'s token (version ${versionId}) is not finished after ${ROTATION_WAIT_MS / 60_000} minutes: the current token stays current. ` +
          "Secrets Manager's API does not say whether a rotation failed: the rotation function's log (and its Errors alarm) says why, usually a serving pod that has not loaded the new token. " +
          `Secrets Manager retries a failed rotation a few times; if it keeps failing, version ${versionId} keeps AWSPENDING and mlpipe endpoint ${model} --rotate prints the command that clears it.`,
      );
    }
    await clock.sleep(ROTATION_POLL_MS);
  }
}

export const endpointCommand: Command = {
  name: 'endpoint',
  usage: 'mlpipe endpoint [model] [--show-token | --rotate]',
  summary: "Show a model's production endpoint and how to call it; --show-token prints its bearer token (if you may read it); --rotate rotates it now",
  help: [
    "[model] is the model name (default: the local pipeline's model). The endpoint is what production.json records.",
    '--show-token prints only the token, for TOKEN=$(mlpipe endpoint <model> --show-token). On AWS it needs',
    'secretsmanager:GetSecretValue on the model\'s token secret (and kms:Decrypt through Secrets Manager); locally it reads',
    "the local run's secrets store.",
    '--rotate rotates the token now, without downtime, and waits (up to 10 minutes) until the new one is current. On AWS it',
    'needs secretsmanager:RotateSecret and secretsmanager:DescribeSecret on the secret and lambda:InvokeFunction on its',
    'rotation function. The replaced token keeps working until the next rotation. A failed earlier rotation blocks new ones',
    'until its AWSPENDING label is removed: --rotate then prints the exact command. Locally the local run\'s Secrets Manager',
    "runs the stack's rotation function from its bundle (docs/deploy.md, Endpoint authentication).",
  ],
  options: { 'show-token': { type: 'boolean' }, rotate: { type: 'boolean' } },
  positionals: [0, 1],
  validate(args, values) {
    if (values['show-token'] === true && values.rotate === true) throw new UsageError('--show-token and --rotate go separately: rotate first, then print the new token.');
    if (args[0] !== undefined && !DNS1123_LABEL.test(args[0])) throw new UsageError(`"${args[0].slice(0, 80)}" is not a model name: use lower-case letters, digits and "-", e.g. fashion-mnist.`);
  },
  async run({ target, args, values, io, clock }) {
    const model = args[0] ?? target.modelName;
    if (!model) throw new UsageError('which model? Name it: mlpipe endpoint <model>.');
    const secretArn = target.endpointTokenSecrets?.[model];
    if (values['show-token'] === true || values.rotate === true) {
      if (secretArn === undefined) {
        throw new CliError(`Model ${model} has no endpoint token${target.endpointTokenSecrets ? ` (the stack has tokens for: ${Object.keys(target.endpointTokenSecrets).join(', ') || 'none'})` : ': endpoint auth is off, or the stack predates it'}.`);
      }
      const client = new SecretsManagerClient({ region: target.region });
      if (values.rotate === true) {
        for (const line of await rotateToken(client, model, secretArn, clock)) io.out(line);
        return;
      }
      let token: string | undefined;
      try {
        token = (await client.send(new GetSecretValueCommand({ SecretId: secretArn }))).SecretString;
      } catch (err) {
        const e = err as Error;
        throw new CliError(
          denied(e)
            ? `You may not read the endpoint token of ${model}: GetSecretValue on ${secretArn} was denied (${e.name}). Ask for secretsmanager:GetSecretValue on that secret.`
            : `Cannot read the endpoint token of ${model} from ${secretArn}: ${e.name}: ${e.message}`,
        );
      }
      if (!token) throw new CliError(`The endpoint token secret ${secretArn} of ${model} has no value.`);
      io.out(token.trim());
      return;
    }
    const record = await readProduction(model);
    for (const line of endpointLines(model, record?.endpoint ?? undefined, secretArn)) io.out(line);
  },
};
