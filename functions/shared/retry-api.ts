/**
 * The retry link's route on the approval endpoint (functions/approval-api.ts): `/retries/<run>?execution&
 * model&version&exp&sig`. GET checks the link and that the run can still be resumed, and shows what the
 * retry would do with a button — it starts nothing, because mail scanners prefetch links. POST starts
 * the retry (retry-start.ts, as `mlpipe retry` does) under its deterministic name, so a second click, or a
 * click after the retry ran, reports that retry and starts nothing. A malformed, forged or expired link,
 * an unknown run, or a run that cannot be resumed gets a 4xx page naming the problem. The signature is
 * never logged; the log lines name the run.
 */
import { DescribeExecutionCommand } from '@aws-sdk/client-sfn';
import { sfnClient } from './clients';
import { NotResumableError, RetryLinkError } from './errors';
import { logger } from './logger';
import { verifyRetryLink, type VerifiedRetryLink } from './retry-link';
import { retryConfirmationPage, retryRefusedPage, retryStartedPage } from './retry-page';
import { existingRetry, prepareRetry, RetryExistsError, startRetry } from './retry-start';

export interface RetryRequest {
  method: 'GET' | 'POST';
  /** The path's run name (URL-decoded), or undefined when it did not decode. */
  run: string | undefined;
  query: URLSearchParams;
  /** The form fields of a POST. */
  form: URLSearchParams;
  sourceIp: string;
  secret: string;
  /** The execution's console page (AWS only). */
  consoleLink: (executionArn: string) => string | undefined;
}

export interface PageResult {
  statusCode: number;
  body: string;
}

const LINK_STATUS: Record<RetryLinkError['reason'], number> = { malformed: 400, forged: 403, expired: 410 };
const LINK_TITLE: Record<RetryLinkError['reason'], string> = {
  malformed: 'This retry link is incomplete',
  forged: 'This retry link is not valid',
  expired: 'This retry link has expired',
};
const LINK_HELP: Record<RetryLinkError['reason'], string[]> = {
  malformed: ['Copy the whole link from the email and open it again: some mail programs break long links over two lines.'],
  forged: [
    'Use the link exactly as it arrived in the email.',
    'If you did, the pipeline\'s link key has changed since the email was sent (a redeploy, or a restarted local run): retry with `mlpipe retry <run>` instead.',
  ],
  expired: ['`mlpipe retry <run>` still retries the run, if it can be resumed.'],
};

/** The one query value named `name`; a repeated parameter is as malformed as a missing one. */
function single(query: URLSearchParams, name: string): string | undefined {
  const values = query.getAll(name);
  return values.length === 1 ? values[0] : undefined;
}

export async function handleRetryLink(req: RetryRequest): Promise<PageResult> {
  let link: VerifiedRetryLink;
  try {
    link = verifyRetryLink({
      run: req.run,
      execution: single(req.query, 'execution'),
      model: single(req.query, 'model'),
      version: single(req.query, 'version'),
      exp: single(req.query, 'exp'),
      sig: single(req.query, 'sig'),
      secret: req.secret,
    });
  } catch (err) {
    if (!(err instanceof RetryLinkError)) throw err;
    logger.info('retry link refused', { run: req.run?.slice(0, 80), reason: err.reason, method: req.method });
    return { statusCode: LINK_STATUS[err.reason], body: retryRefusedPage(LINK_TITLE[err.reason], err.message, LINK_HELP[err.reason]) };
  }
  const facts = { run: link.run, modelName: link.modelName, version: link.version };
  const sfn = sfnClient();

  // A retry that exists is the answer, whoever started it (this link, a second click, `mlpipe retry`).
  const found = await existingRetry(sfn, link.executionArn);
  if (found) {
    logger.info('retry link: already retried', { run: link.run, retry: found.name, status: found.status, method: req.method });
    return { statusCode: 200, body: retryStartedPage({ ...facts, retryName: found.name, status: found.status, justNow: false, console: req.consoleLink(found.executionArn) }) };
  }

  let failed;
  try {
    failed = await sfn.send(new DescribeExecutionCommand({ executionArn: link.executionArn }));
  } catch (err) {
    if ((err as Error).name !== 'ExecutionDoesNotExist') throw err;
    return {
      statusCode: 404,
      body: retryRefusedPage('No such run', `Run ${link.run} is not known to the pipeline any more (its history is gone).`, ['`mlpipe list` shows the runs; start a new one with `mlpipe run <image>`.']),
    };
  }
  const form = req.form;
  const by = (form.get('by') ?? '').trim().slice(0, 100) || 'someone with the retry link';
  try {
    const retry = await prepareRetry(
      { executionArn: link.executionArn, status: failed.status, input: failed.input },
      { modelName: link.modelName, version: link.version },
      { by, from: req.sourceIp, via: 'retry link' },
    );
    if (req.method === 'GET') {
      logger.info('retry page shown', { run: link.run, from: retry.plan.from });
      const formAction = `?${req.query.toString()}`;
      return { statusCode: 200, body: retryConfirmationPage({ ...facts, retryName: retry.name, plan: retry.plan, expiresAt: link.expiresAt, formAction }) };
    }
    try {
      const { executionArn } = await startRetry(sfn, retry);
      logger.info('retry started from a link', { run: link.run, retry: retry.name, from: retry.plan.from, by, sourceIp: req.sourceIp });
      return { statusCode: 200, body: retryStartedPage({ ...facts, retryName: retry.name, status: 'RUNNING', justNow: true, console: req.consoleLink(executionArn) }) };
    } catch (err) {
      if (!(err instanceof RetryExistsError)) throw err;
      // Another click won the race between our check and StartExecution: report its retry.
      const raced = await existingRetry(sfn, link.executionArn);
      return {
        statusCode: 200,
        body: retryStartedPage({ ...facts, retryName: retry.name, status: raced?.status ?? 'RUNNING', justNow: false, console: req.consoleLink(err.executionArn) }),
      };
    }
  } catch (err) {
    if (!(err instanceof NotResumableError)) throw err;
    logger.info('retry link: run not resumable', { run: link.run, method: req.method });
    return { statusCode: 409, body: retryRefusedPage(`${link.run} cannot be retried`, err.message, ['`mlpipe status <run>` shows where the run ended.']) };
  }
}
