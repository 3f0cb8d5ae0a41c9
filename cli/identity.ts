/** Who is running the CLI, for the record: the IAM identity on AWS, `local:<os user>` locally. */
import { userInfo } from 'node:os';
import { STSClient, GetCallerIdentityCommand } from '@aws-sdk/client-sts';
import type { Target } from './target';

export async function callerIdentity(target: Target): Promise<string> {
  if (target.mode === 'local') return `local:${userInfo().username}`;
  const { Arn } = await new STSClient({ region: target.region }).send(new GetCallerIdentityCommand({}));
  return Arn ?? 'unknown';
}
