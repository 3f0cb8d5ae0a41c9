/** `mlpipe rollback <model>`: production back to the previous (or a named) version. */
import { InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { handler as rollbackLocally } from '../../functions/rollback';
import { CliError } from '../io';
import type { Command } from '../main';
import { callerIdentity } from '../identity';

interface RollbackResult {
  modelName: string;
  fromVersion: string | null;
  toVersion: string;
  endpoint: string | null;
  switchedAt: string;
}

export const rollbackCommand: Command = {
  name: 'rollback',
  usage: 'mlpipe rollback <model> [--to <version>]',
  summary: 'Switch production back to the previous version (or --to a given one)',
  help: [
    'On AWS this invokes the stack\'s rollback function; locally it runs functions/rollback.ts in this process.',
    '  --to <version>      the version to serve (default: the one before the current)',
  ],
  options: { to: { type: 'string' } },
  positionals: [1, 1],
  async run({ target, args, values, io }) {
    const by = await callerIdentity(target);
    const event = { modelName: args[0]!, by, ...(typeof values.to === 'string' ? { toVersion: values.to } : {}) };
    let result: RollbackResult;
    if (target.mode === 'local') {
      try {
        result = await rollbackLocally(event);
      } catch (err) {
        throw new CliError(`${(err as Error).name}: ${(err as Error).message}`);
      }
    } else {
      if (!target.rollbackFunctionName) throw new CliError('The stack has no RollbackFunctionName output.');
      const lambda = new LambdaClient({ region: target.region });
      const out = await lambda.send(new InvokeCommand({ FunctionName: target.rollbackFunctionName, Payload: Buffer.from(JSON.stringify(event)) }));
      const payload = JSON.parse(Buffer.from(out.Payload ?? new Uint8Array()).toString('utf8') || 'null') as unknown;
      if (out.FunctionError) {
        const e = payload as { errorType?: string; errorMessage?: string } | null;
        throw new CliError(`${e?.errorType ?? out.FunctionError}: ${e?.errorMessage ?? 'rollback failed'}`);
      }
      result = payload as RollbackResult;
    }
    io.out(`rolled back ${result.modelName}: ${result.fromVersion ?? '(none)'} → ${result.toVersion} at ${result.switchedAt}`);
    if (result.endpoint) io.out(`endpoint    ${result.endpoint}`);
  },
};
