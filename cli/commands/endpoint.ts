/**
 * `mlpipe endpoint [model]`: where production serves a model and how to call it (a curl line with a
 * placeholder for the token). `--show-token` prints the token alone (for `TOKEN=$(mlpipe endpoint
 * --show-token)`), and only to a caller allowed to read its secret: on AWS, GetSecretValue must succeed
 * with the caller's credentials; locally, the local run's Secrets Manager answers. The token is never
 * printed otherwise.
 */
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { readProduction } from '../../functions/shared/registry';
import { DNS1123_LABEL } from '../../functions/shared/names';
import type { Command } from '../command';
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

export const endpointCommand: Command = {
  name: 'endpoint',
  usage: 'mlpipe endpoint [model] [--show-token]',
  summary: "Show a model's production endpoint and how to call it; --show-token prints its bearer token (if you may read it)",
  help: [
    "[model] is the model name (default: the local pipeline's model). The endpoint is what production.json records.",
    '--show-token prints only the token, for TOKEN=$(mlpipe endpoint <model> --show-token). On AWS it needs',
    'secretsmanager:GetSecretValue on the model\'s token secret (and kms:Decrypt through Secrets Manager); locally it reads',
    "the local run's secrets store.",
  ],
  options: { 'show-token': { type: 'boolean' } },
  positionals: [0, 1],
  validate(args) {
    if (args[0] !== undefined && !DNS1123_LABEL.test(args[0])) throw new UsageError(`"${args[0].slice(0, 80)}" is not a model name: use lower-case letters, digits and "-", e.g. fashion-mnist.`);
  },
  async run({ target, args, values, io }) {
    const model = args[0] ?? target.modelName;
    if (!model) throw new UsageError('which model? Name it: mlpipe endpoint <model>.');
    const secretArn = target.endpointTokenSecrets?.[model];
    if (values['show-token'] === true) {
      if (secretArn === undefined) {
        throw new CliError(`Model ${model} has no endpoint token${target.endpointTokenSecrets ? ` (the stack has tokens for: ${Object.keys(target.endpointTokenSecrets).join(', ') || 'none'})` : ': endpoint auth is off, or the stack predates it'}.`);
      }
      let token: string | undefined;
      try {
        token = (await new SecretsManagerClient({ region: target.region }).send(new GetSecretValueCommand({ SecretId: secretArn }))).SecretString;
      } catch (err) {
        const e = err as Error;
        const denied = /AccessDenied|not authorized|KMS/i.test(`${e.name} ${e.message}`);
        throw new CliError(
          denied
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
