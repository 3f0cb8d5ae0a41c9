/**
 * The HTML pages of a failure email's retry link (functions/approval-api.ts `/retries/<run>`): the
 * confirmation page GET shows (what the retry reuses and redoes, and the button that starts it), the page
 * after POST (started, or the retry that already exists), in the approval pages' look (approval-page.ts).
 * Every value is HTML-escaped; no page contains the link's signature except as the form's own target.
 */
import { escapeHtml, messagePage, page, prose } from './approval-page';
import { describePlan, type ResumePlan } from './resume';
import { formatTime } from './notifications';

export const RETRY_BRAND = 'retry a failed run';

export interface RetryPageRun {
  run: string;
  modelName: string;
  version: string;
}

function facts(r: RetryPageRun): string {
  return `<dl>
<dt>Run</dt><dd><code>${escapeHtml(r.run)}</code></dd>
<dt>Model</dt><dd>${escapeHtml(r.modelName)} <code>${escapeHtml(r.version)}</code></dd>
</dl>`;
}

/** GET: what the retry would do, and the button that starts it (a POST to the same signed link). */
export function retryConfirmationPage(r: RetryPageRun & { retryName: string; plan: ResumePlan; expiresAt: number; formAction: string }): string {
  const title = `Retry ${r.run}?`;
  return page(
    title,
    `<h1>Retry run <code>${escapeHtml(r.run)}</code>?</h1>
${facts(r)}
<h2>What the retry does</h2>
<p>It continues the run at <strong>${escapeHtml(r.plan.from)}</strong>: it ${escapeHtml(describePlan(r.plan))}. No training runs again. It runs as <code>${escapeHtml(r.retryName)}</code>; a model it brings to production is still approved by a person first.</p>
<p>This link works until ${escapeHtml(formatTime(new Date(r.expiresAt * 1000).toISOString()))}.</p>
<form method="post" action="${escapeHtml(r.formAction)}">
<label for="by">Your name or email <small>(recorded as who started the retry)</small></label>
<input type="text" id="by" name="by" maxlength="100" autocomplete="email" required>
<button type="submit" class="approve">Retry this run</button>
</form>
<p class="note">Opening this page started nothing; only the button does. The same command: <code>mlpipe retry ${escapeHtml(r.run)}</code>.</p>`,
    RETRY_BRAND,
  );
}

/** POST (or a later GET): the retry that runs, just started or found. */
export function retryStartedPage(r: RetryPageRun & { retryName: string; status: string; justNow: boolean; console?: string }): string {
  const head = r.justNow ? `Retry started: ${r.retryName}` : `${r.run} was already retried as ${r.retryName}`;
  const state = r.status === 'RUNNING' ? 'It is running.' : `It ended ${r.status}.`;
  const next = r.justNow
    ? 'The pipeline continues the run; an email says how it ends. You can close this page.'
    : `${state} Nothing was started by this link.${r.status === 'FAILED' ? ` If it can be resumed, its own failure email has a retry link (or \`mlpipe retry ${r.retryName}\`).` : ''}`;
  return page(
    head,
    `<div class="banner ${r.justNow ? 'ok' : 'info'}" role="status">
<h1>${escapeHtml(head)}</h1>
</div>
<p>${prose(next)}</p>
${facts(r)}
<h2>Follow the run</h2>
<p>${r.console ? `<a href="${escapeHtml(r.console)}" rel="noreferrer">Open the retry in the Step Functions console</a>, or run ` : 'Run '}<code>mlpipe status ${escapeHtml(r.retryName)}</code>.</p>`,
    RETRY_BRAND,
  );
}

/** A refusal: what is wrong with the link or the run, and that nothing was started. */
export function retryRefusedPage(title: string, message: string, next: string[]): string {
  return messagePage(title, message, ['Nothing was started.', ...next], RETRY_BRAND);
}
