/**
 * `mlpipe rollback <model>`: production back to the previous (or a named) version. Replaced versions are
 * kept scaled to 0 replicas, so the function scales the target up, waits until it is ready, then switches;
 * this prints how long that took.
 */
import { InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { DNS1123_LABEL } from '../../functions/shared/names';
import { readProduction } from '../../functions/shared/registry';
import { CliError, UsageError } from '../io';
import type { Command } from '../command';
import { callerIdentity } from '../identity';
import { LOCAL_AWS_ENV } from '../../local/s3';

interface RollbackResult {
  modelName: string;
  fromVersion: string | null;
  toVersion: string;
  endpoint: string | null;
  switchedAt: string;
  scaledFrom?: number;
  replicas?: number;
  readySeconds?: number;
  tookSeconds?: number;
  retired?: string | null;
}

/**
 * A refusal in the registry's words: which versions there are to go back to. Undefined when the registry
 * cannot tell (then the function's own message stands).
 */
async function refusalFromRegistry(modelName: string): Promise<string | undefined> {
  const record = await readProduction(modelName).catch(() => undefined);
  if (!record) return undefined;
  const earlier = [...new Set(record.history.map((h) => h.version))].filter((v) => v !== record.version).reverse();
  return earlier.length
    ? `${modelName} serves ${record.version} and has no usable previous version recorded. Versions released before: ${earlier.slice(0, 5).join(', ')}${earlier.length > 5 ? ', …' : ''}; pick one with --to <version>.`
    : `only ${record.version} of ${modelName} has ever been released, so there is no earlier version to go back to.`;
}

export const rollbackCommand: Command = {
  name: 'rollback',
  usage: 'mlpipe rollback <model> [--to <version>]',
  summary: 'Switch production back to the previous version (or --to a given one)',
  help: [
    '<model> is the model name, e.g. fashion-mnist. The switch is recorded in models/<model>/production.json.',
    'The version switched to must still have its production Deployment: replaced versions are kept scaled to 0 replicas',
    'for the retention window (retentionHours, default 72 h; the last one always). It is scaled back up and the switch',
    'waits until it is ready; the version rolled back from is scaled to 0 in turn.',
    'On AWS this invokes the stack\'s rollback function; locally, the same function of the local run (from its bundle).',
    '  --to <version>      the version to serve (default: the one before the current)',
  ],
  options: { to: { type: 'string' } },
  positionals: [1, 1],
  async run({ target, args, values, io }) {
    const modelName = args[0]!;
    if (!DNS1123_LABEL.test(modelName)) throw new UsageError(`"${modelName}" is not a model name: use lower-case letters, digits and "-", e.g. fashion-mnist.`);
    const by = await callerIdentity(target);
    const event = { modelName, by, ...(typeof values.to === 'string' ? { toVersion: values.to } : {}) };
    let result: RollbackResult | undefined;
    let failure: { name: string; message: string } | undefined;
    if (target.mode === 'local' && !target.lambdaEndpoint) {
      try {
        // Loaded now, not with the CLI: the handler reads its settings at load, and the target set them.
        const { handler: rollbackLocally } = require('../../functions/rollback') as typeof import('../../functions/rollback'); // eslint-disable-line @typescript-eslint/no-require-imports
        result = await rollbackLocally(event);
      } catch (err) {
        failure = { name: (err as Error).name, message: (err as Error).message };
      }
    } else {
      if (!target.rollbackFunctionName) throw new CliError('The stack has no RollbackFunctionName output; redeploy it with this version of mlpipe.');
      // Locally, the local run's Lambda Invoke endpoint runs the same function from its bundle.
      const lambda = new LambdaClient(
        target.lambdaEndpoint
          ? { region: target.region, endpoint: target.lambdaEndpoint, credentials: { accessKeyId: LOCAL_AWS_ENV.AWS_ACCESS_KEY_ID, secretAccessKey: LOCAL_AWS_ENV.AWS_SECRET_ACCESS_KEY } }
          : { region: target.region },
      );
      const out = await lambda.send(new InvokeCommand({ FunctionName: target.rollbackFunctionName, Payload: Buffer.from(JSON.stringify(event)) }));
      const payload = JSON.parse(Buffer.from(out.Payload ?? new Uint8Array()).toString('utf8') || 'null') as unknown;
      if (out.FunctionError) {
        const e = payload as { errorType?: string; errorMessage?: string } | null;
        failure = { name: e?.errorType ?? out.FunctionError, message: e?.errorMessage ?? 'rollback failed' };
      }
      result = payload as RollbackResult;
    }
    if (failure) {
      // A RollbackError is a refusal that explains itself; anything else keeps its name for the operator.
      if (failure.name === 'RollbackError') {
        const noPrevious = typeof values.to !== 'string' && /no previous production version/.test(failure.message);
        throw new CliError(`cannot roll back: ${(noPrevious && (await refusalFromRegistry(modelName))) || failure.message}`);
      }
      throw new CliError(`${failure.name}: ${failure.message}`);
    }
    if (!result) throw new CliError('The rollback function returned nothing.');
    io.out(`rolled back ${result.modelName}: production now serves ${result.toVersion} (was ${result.fromVersion ?? 'nothing'}), switched at ${result.switchedAt}`);
    if (result.readySeconds !== undefined && result.tookSeconds !== undefined) {
      const scaled = result.scaledFrom === 0 ? `scaled up from 0 to ${result.replicas} replicas, ready in ${result.readySeconds.toFixed(1)} s` : `already running (${result.replicas} replicas)`;
      io.out(`took        ${result.tookSeconds.toFixed(1)} s (${scaled})`);
    }
    if (result.retired) io.out(`retired     ${result.retired} (scaled to 0 replicas, kept for rollback)`);
    if (result.endpoint) io.out(`endpoint    ${result.endpoint}`);
    io.out(`undo        mlpipe rollback ${result.modelName} --to ${result.fromVersion ?? '<version>'}`);
  },
};
