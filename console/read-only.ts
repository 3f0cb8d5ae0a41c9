/**
 * The console reads; it never writes. Beyond not calling any write API, every AWS client the console uses
 * (the target's Step Functions client and the shared S3 client the registry reads through) refuses any
 * command that is not on these lists, before it is signed or sent. A change that reaches for a write (a
 * StartExecution, a PutObject, SendTaskSuccess) fails loudly instead of acting with the caller's credentials.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import type { SFNClient } from '@aws-sdk/client-sfn';

export const SFN_READS: ReadonlySet<string> = new Set(['ListExecutionsCommand', 'DescribeExecutionCommand', 'GetExecutionHistoryCommand', 'DescribeStateMachineCommand']);
export const S3_READS: ReadonlySet<string> = new Set(['GetObjectCommand', 'HeadObjectCommand', 'ListObjectsV2Command']);

export class WriteRefusedError extends Error {
  override readonly name = 'WriteRefusedError';
}

/** Adds the refusal to a client (once: a second call on the same client does nothing). */
export function readOnly(client: SFNClient | S3Client, allowed: ReadonlySet<string>): void {
  const name = 'mlpipeConsoleReadOnly';
  try {
    (client.middlewareStack as SFNClient['middlewareStack']).add(
      (next, context) => async (args) => {
        const command = context.commandName ?? '(unknown)';
        if (!allowed.has(command)) throw new WriteRefusedError(`The console only reads: ${context.clientName ?? 'AWS'} ${command} refused.`);
        return next(args);
      },
      { step: 'initialize', name },
    );
  } catch (err) {
    if (!/Duplicate middleware name/.test((err as Error).message)) throw err;
  }
}
