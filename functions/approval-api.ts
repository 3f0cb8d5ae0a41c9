/**
 * The approval endpoint (API Gateway HTTP API / Lambda Function URL, payload v2; locally behind
 * local/approval-server.ts). `GET /approvals/{id}?action&exp&sig` verifies the signed link and shows a
 * confirmation page — it changes nothing, because mail scanners prefetch links. `POST` to the same URL
 * decides through decideApproval and shows the result. `/retries/{run}` serves the failure email's retry
 * links the same way (GET asks, POST starts the retry): functions/shared/retry-api.ts.
 */
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, Context } from 'aws-lambda';
import * as z from 'zod';
import { approvalSecret, signLink, verifyLink, type VerifiedLink } from './shared/approval-link';
import { confirmationPage, decidedPage, messagePage, type RunLinks } from './shared/approval-page';
import { decideApproval, getApproval, type ApprovalView } from './shared/approvals';
import { ApprovalLinkError, ConfigurationError, InvalidInputError } from './shared/errors';
import { FUNCTION_SETTINGS } from './shared/function-settings';
import { appendRunKeys, errorFields, executionNameOf, logger, startInvocation } from './shared/logger';
import { formatTime } from './shared/notifications';
import { handleRetryLink } from './shared/retry-api';
import { retryRefusedPage } from './shared/retry-page';
import { loadSettings } from './shared/settings';

type Result = APIGatewayProxyStructuredResultV2;

/** Read and validated once, at init: a bad value fails the Lambda's init naming the variable. */
const settings = loadSettings(FUNCTION_SETTINGS.ApprovalApi);

const HEADERS = {
  'content-type': 'text/html; charset=utf-8',
  'cache-control': 'no-store',
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  // The URL carries the signature: never send it to another site.
  'referrer-policy': 'no-referrer',
  'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'",
};

const html = (statusCode: number, body: string, extra: Record<string, string> = {}): Result => ({
  statusCode,
  headers: { ...HEADERS, ...extra },
  body,
});

const LINK_STATUS: Record<ApprovalLinkError['reason'], number> = { malformed: 400, forged: 403, unknown: 404, decided: 409, expired: 410 };
const LINK_TITLE: Record<ApprovalLinkError['reason'], string> = {
  malformed: 'This approval link is incomplete',
  forged: 'This approval link is not valid',
  unknown: 'No such approval request',
  decided: 'Already decided',
  expired: 'This approval request has expired',
};
/** What the reader can do about each refusal; every page also says that nothing was decided. */
const LINK_HELP: Record<ApprovalLinkError['reason'], string[]> = {
  malformed: [
    'Copy the whole link from the email and open it again: some mail programs break long links over two lines.',
  ],
  forged: [
    'Use the link exactly as it arrived in the email.',
    'If you did, the pipeline\'s approval secret has changed since the email was sent (a redeploy, or a restarted local run): decide with `mlpipe approve <run>` or `mlpipe reject <run>` instead.',
  ],
  unknown: ['The run may have ended, or its approval record was removed. `mlpipe list` shows the runs; `mlpipe status <run>` shows where one is.'],
  decided: ['`mlpipe status <run>` shows where the run is now.'],
  expired: ['The model was not released and production is unchanged. To release it after all, start a new run of the same image (`mlpipe run <image>`).'],
};
const NOTHING_DECIDED = 'Nothing was decided.';

/** AWS mode: the execution's Step Functions console page. Not locally (a custom endpoint), where it would not exist. */
function runLinks(executionArn: string): RunLinks {
  if (settings.AWS_ENDPOINT_URL_SFN !== undefined) return {};
  const region = executionArn.split(':')[3];
  if (!region) return {};
  return { console: `https://${region}.console.aws.amazon.com/states/home?region=${region}#/v2/executions/details/${executionArn}` };
}

const Form = z.object({
  approver: z.string().trim().max(100, 'approver must be at most 100 characters').optional(),
  comment: z.string().trim().max(1000, 'comment must be at most 1000 characters').optional(),
});

/** The one query value named `name`; a repeated parameter is as malformed as a missing one. */
function single(query: URLSearchParams, name: string): string | undefined {
  const values = query.getAll(name);
  return values.length === 1 ? values[0] : undefined;
}

function parseForm(event: APIGatewayProxyEventV2): z.infer<typeof Form> {
  const raw = event.body ? (event.isBase64Encoded ? Buffer.from(event.body, 'base64').toString('utf8') : event.body) : '';
  const fields = new URLSearchParams(raw);
  // `approver` is the page's field; `name` is accepted too for hand-made forms and scripts.
  const approver = fields.get('approver') ?? fields.get('name') ?? undefined;
  const parsed = Form.safeParse({ approver, comment: fields.get('comment') ?? undefined });
  if (!parsed.success) throw new InvalidInputError(parsed.error.issues.map((i) => i.message).join('; '));
  return parsed.data;
}

async function linkErrorPage(err: ApprovalLinkError, id: string | undefined, method: string): Promise<Result> {
  let message = err.message;
  if ((err.reason === 'decided' || err.reason === 'expired') && id) {
    // Best effort: the record says who decided, or when the request ran out; the refusal stands without it.
    const record = await getApproval(id).catch(() => undefined);
    // Looking at a decided request is fine (200); trying to decide it again is a conflict (409).
    if (record?.decision) return html(method === 'GET' ? 200 : 409, decidedPage(record, false, runLinks(record.executionArn)));
    if (record && err.reason === 'expired' && Date.now() > Date.parse(record.expiresAt)) {
      message = `Nobody decided on ${record.modelName} ${record.version} before ${formatTime(record.expiresAt)}, so the run ended without releasing it.`;
    }
  }
  return html(LINK_STATUS[err.reason], messagePage(LINK_TITLE[err.reason], message, [NOTHING_DECIDED, ...LINK_HELP[err.reason]]));
}

/**
 * From here on the lines of this request belong to the run: a decision completes the run's RequestApproval
 * state, so they carry that state's name next to the execution, model and version.
 */
function logAsRun(record: ApprovalView): void {
  appendRunKeys({ executionName: executionNameOf(record.executionArn), model: record.modelName, version: record.version, state: 'RequestApproval' });
}

async function pendingRecord(link: VerifiedLink): Promise<ApprovalView> {
  const record = await getApproval(link.id);
  if (!record) throw new ApprovalLinkError('This approval request does not exist (or was removed).', 'unknown');
  logAsRun(record);
  if (record.status === 'expired' || Date.now() > Date.parse(record.expiresAt)) {
    throw new ApprovalLinkError(`The approval request for ${record.modelName} ${record.version} expired on ${formatTime(record.expiresAt)}.`, 'expired');
  }
  if (record.status !== 'pending') throw new ApprovalLinkError('Already decided.', 'decided');
  return record;
}

function formOf(event: APIGatewayProxyEventV2): URLSearchParams {
  return new URLSearchParams(event.body ? (event.isBase64Encoded ? Buffer.from(event.body, 'base64').toString('utf8') : event.body) : '');
}

/** `/retries/{run}`: a failure email's retry link (functions/shared/retry-api.ts). */
async function retryRoute(event: APIGatewayProxyEventV2, method: string, rawRun: string): Promise<Result> {
  if (method !== 'GET' && method !== 'POST') {
    return html(405, retryRefusedPage('Method not allowed', 'Open the link in a browser (GET) and confirm with the button on the page (POST).', []), { allow: 'GET, POST' });
  }
  let run: string | undefined;
  try {
    run = event.pathParameters?.run ?? decodeURIComponent(rawRun);
  } catch {
    run = undefined; // a broken %-escape: the link is malformed, which handleRetryLink says
  }
  try {
    const page = await handleRetryLink({
      method,
      run,
      query: new URLSearchParams(event.rawQueryString ?? ''),
      form: method === 'POST' ? formOf(event) : new URLSearchParams(),
      sourceIp: event.requestContext.http.sourceIp,
      secret: await approvalSecret(),
      consoleLink: (arn) => runLinks(arn).console,
    });
    return html(page.statusCode, page.body);
  } catch (err) {
    if (err instanceof ConfigurationError) {
      logger.error('approval endpoint misconfigured', { error: errorFields(err) });
      return html(500, retryRefusedPage('The retry link cannot be checked', 'The pipeline cannot check links right now.', ['Tell the pipeline operator; meanwhile `mlpipe retry <run>` still works.']));
    }
    // Errors from S3 or Step Functions quote no link; log the name and message only.
    logger.error('retry link failed', { run: run?.slice(0, 80), error: errorFields(err) });
    return html(502, retryRefusedPage('Could not start the retry', 'The pipeline could not be reached just now.', ['Go back and press the button again in a minute; the link stays valid until it expires.']));
  }
}

export async function handler(event: APIGatewayProxyEventV2, context?: Context): Promise<Result> {
  startInvocation({}, context);
  const method = event.requestContext.http.method.toUpperCase();
  const path = event.rawPath || event.requestContext.http.path;
  const retry = /\/retries\/([^/]+)\/?$/.exec(path);
  if (retry) return retryRoute(event, method, retry[1]!);
  // Match the end of the path so a stage or custom-domain prefix does not matter.
  const match = /\/approvals\/([^/]+)\/?$/.exec(path);
  if (!match) {
    return html(404, messagePage('Not found', 'There is nothing here.', ['Approval links come by email and look like …/approvals/<id>?action=approve&exp=…&sig=….']));
  }
  if (method !== 'GET' && method !== 'POST') {
    return html(405, messagePage('Method not allowed', 'Open the link in a browser (GET) and confirm with the button on the page (POST).', [NOTHING_DECIDED]), {
      allow: 'GET, POST',
    });
  }
  let id: string;
  try {
    id = event.pathParameters?.id ?? decodeURIComponent(match[1]!);
  } catch {
    return html(400, messagePage(LINK_TITLE.malformed, 'The approval id in the link is not valid.', [NOTHING_DECIDED, ...LINK_HELP.malformed]));
  }
  const query = new URLSearchParams(event.rawQueryString ?? '');

  try {
    const link = verifyLink({
      id,
      action: single(query, 'action'),
      exp: single(query, 'exp'),
      sig: single(query, 'sig'),
      secret: await approvalSecret(),
    });
    if (method === 'GET') {
      const record = await pendingRecord(link);
      logger.info('approval page shown', { approvalId: link.id, action: link.action });
      // Both links are relative (the query only), so a stage or custom-domain prefix is kept: the form
      // posts to this very link, and the other action's link lets a person who opened the wrong one switch.
      const other = link.action === 'approve' ? 'reject' : 'approve';
      const otherLink = signLink({ baseUrl: '', id: link.id, action: other, expiresAt: link.expiresAt, secret: await approvalSecret() });
      return html(
        200,
        confirmationPage(record, link.action, {
          formAction: `?${new URLSearchParams({ action: link.action, exp: String(link.expiresAt), sig: single(query, 'sig')! })}`,
          otherAction: otherLink.slice(otherLink.indexOf('?')),
        }),
      );
    }
    const form = parseForm(event);
    // decideApproval reads the record too; reading it here first puts the run on this request's every line.
    const record = await getApproval(link.id);
    if (record) logAsRun(record);
    const decided = await decideApproval({
      id: link.id,
      decision: link.action,
      // The page requires a name; a hand-made POST without one is still recorded as coming from a link.
      by: form.approver || 'someone with the approval link',
      from: event.requestContext.http.sourceIp,
      ...(form.comment ? { comment: form.comment } : {}),
    });
    logger.info('approval decided', { approvalId: link.id, decision: link.action, by: decided.decision?.by, from: event.requestContext.http.sourceIp });
    return html(200, decidedPage(decided, true, runLinks(decided.executionArn)));
  } catch (err) {
    if (err instanceof ApprovalLinkError) {
      logger.info('approval link refused', { approvalId: id.slice(0, 64), reason: err.reason, method });
      return linkErrorPage(err, id, method);
    }
    if (err instanceof InvalidInputError) return html(400, messagePage('The form could not be read', err.message, [NOTHING_DECIDED, 'Go back, correct the field, and press the button again.']));
    if (err instanceof ConfigurationError) {
      logger.error('approval endpoint misconfigured', { error: errorFields(err) });
      return html(500, messagePage('The approval endpoint is misconfigured', 'The pipeline cannot check approval links right now.', [NOTHING_DECIDED, 'Tell the pipeline operator; meanwhile `mlpipe approve <run>` still works.']));
    }
    // Errors from S3 or Step Functions name no token; log the name and message only.
    logger.error('approval failed', { approvalId: id.slice(0, 64), error: errorFields(err) });
    return html(502, messagePage('Could not record the decision', 'The pipeline could not be reached just now.', [NOTHING_DECIDED, 'Go back and press the button again in a minute; the link stays valid until it expires.']));
  }
}
