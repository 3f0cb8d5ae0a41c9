/**
 * RequestApproval (lambda:invoke.waitForTaskToken): stores the approval request with its task token and
 * what the approver weighs (the evaluation, and the run's facts: trigger, data and its sha256,
 * hyperparameters, training time — approval-facts.ts),
 * signs approve/reject links that expire with the approval timeout, and emails them through SNS. The
 * execution then waits until the approval page or `mlpipe approve` calls decideApproval.
 * The task token is a bearer credential: it goes to S3 and nowhere else — no log, no error message.
 */
import * as z from 'zod';
import { openApproval, markNotified } from './shared/approvals';
import { approvalSecret, signLink } from './shared/approval-link';
import { FUNCTION_SETTINGS } from './shared/function-settings';
import { logger, withLogContext } from './shared/logger';
import { approvalEmail, publish } from './shared/notifications';
import { productionComparison } from './shared/registry';
import { loadSettings } from './shared/settings';
import { runFacts } from './shared/approval-facts';
import { EvaluationSchema, RunSchema, TrainingSchema, parseInput } from './shared/state';

/** Read and validated once, at init: a bad value fails the Lambda's init naming the variable. */
const settings = loadSettings(FUNCTION_SETTINGS.RequestApproval);
const baseUrl = settings.APPROVAL_BASE_URL;

// Only models that passed the gate are sent for approval.
const PassedEvaluation = EvaluationSchema.extend({ passed: z.literal(true, 'must be true: only models that passed the gate are sent for approval') });

const Input = z.object({
  taskToken: z.string().min(1, 'is required').max(8192, 'is too long'),
  state: z.object({
    run: RunSchema.pick({
      modelName: true,
      version: true,
      image: true,
      imageDigest: true,
      executionArn: true,
      dataUri: true,
      evalDataUri: true,
      hyperparameters: true,
      trigger: true,
      retry: true,
    }).extend({ approvalTimeoutSeconds: z.number().int().positive() }),
    // Absent in a hand-made state; a retry resumed at RequestApproval carries the training it reuses.
    training: TrainingSchema.pick({ submittedAt: true, completedAt: true }).optional(),
    evaluation: PassedEvaluation,
  }),
});

/** The event holds the task token: it is never logged (withLogContext reads only `state.run`'s names). */
async function requestApproval(event: unknown): Promise<void> {
  // Issue messages never quote the input, so the token cannot leak through here.
  const { taskToken, state } = parseInput(Input, event, 'RequestApproval input');
  const { run, evaluation } = state;
  const now = new Date();
  const facts = await runFacts(run, state.training);
  const expiresAtSeconds = Math.floor(now.getTime() / 1000) + run.approvalTimeoutSeconds;

  const { record, alreadyNotified } = await openApproval({
    executionArn: run.executionArn,
    modelName: run.modelName,
    version: run.version,
    image: run.image,
    taskToken,
    createdAt: now.toISOString(),
    expiresAt: new Date(expiresAtSeconds * 1000).toISOString(),
    evaluation,
    production: await productionComparison(run.modelName, run.version),
    facts,
  });
  if (alreadyNotified) {
    logger.info('approval already requested', { approvalId: record.id });
    return;
  }

  // A retried invocation keeps the record's original expiry, so links always match it.
  const exp = Math.floor(Date.parse(record.expiresAt) / 1000);
  const secret = await approvalSecret();
  const link = (action: 'approve' | 'reject') => signLink({ baseUrl, id: record.id, action, expiresAt: exp, secret });
  const email = approvalEmail({
    modelName: run.modelName,
    version: run.version,
    image: run.image,
    evaluation,
    production: record.production,
    facts: record.facts ?? facts,
    approveUrl: link('approve'),
    rejectUrl: link('reject'),
    expiresAt: record.expiresAt,
    executionArn: run.executionArn,
  });
  const messageId = await publish(email.subject, email.message);
  await markNotified(record.id, taskToken, messageId);
  logger.info('approval requested', { approvalId: record.id, messageId, expiresAt: record.expiresAt });
}

export const handler = withLogContext('RequestApproval', requestApproval);
