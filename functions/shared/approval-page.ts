/**
 * The HTML pages of the approval endpoint: the confirmation page a link opens (metrics next to
 * production's, and a form that POSTs the decision), the result page, and the error pages. Every value is
 * HTML-escaped; no page ever contains the task token (ApprovalView has none).
 */
import type { ApprovalView } from './approvals';
import { fmt } from './notifications';

export function escapeHtml(value: unknown): string {
  return String(value).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

const STYLE = `
  body { font-family: system-ui, sans-serif; max-width: 46rem; margin: 2rem auto; padding: 0 1rem; color: #1d1d1f; }
  h1 { font-size: 1.4rem; } table { border-collapse: collapse; margin: 1rem 0; }
  th, td { text-align: left; padding: .35rem .9rem .35rem 0; border-bottom: 1px solid #ddd; }
  code { background: #f3f3f3; padding: 0 .25rem; word-break: break-all; }
  label { display: block; margin: .8rem 0 .2rem; } input[type=text], textarea { width: 100%; box-sizing: border-box; }
  button { margin-top: 1rem; padding: .6rem 1.4rem; font-size: 1rem; border: 0; border-radius: 4px; color: #fff; cursor: pointer; }
  .approve { background: #1a7f37; } .reject { background: #cf222e; } .note { color: #555; font-size: .9rem; }`;

function page(title: string, body: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex"><title>${escapeHtml(title)}</title><style>${STYLE}</style></head>
<body>
${body}
</body></html>
`;
}

function metrics(record: ApprovalView): string {
  const e = record.evaluation;
  const p = record.production;
  const row = (name: string, mine: string, theirs: string) =>
    `<tr><th scope="row">${escapeHtml(name)}</th><td>${escapeHtml(mine)}</td><td>${escapeHtml(theirs)}</td></tr>`;
  return `<table>
<tr><th></th><th>${escapeHtml(record.version)} (this model)</th><th>${escapeHtml(p ? `${p.version} (production)` : 'production')}</th></tr>
${row('accuracy', fmt.accuracy(e.accuracy), p ? fmt.accuracy(p.accuracy) : 'none')}
${row('p95 latency', fmt.ms(e.latencyMsP95), p ? fmt.ms(p.latencyMsP95) : 'none')}
${row('error rate', fmt.rate(e.errorRate), p ? fmt.rate(p.errorRate) : 'none')}
</table>`;
}

function facts(record: ApprovalView): string {
  return `<p>Model <strong>${escapeHtml(record.modelName)}</strong>, version <code>${escapeHtml(record.version)}</code><br>
Image <code>${escapeHtml(record.image)}</code></p>
${metrics(record)}
<p>${escapeHtml(record.evaluation.summary)}</p>`;
}

/** GET: what the link would do, and the button that does it. `formAction` is the signed link's own query. */
export function confirmationPage(record: ApprovalView, action: 'approve' | 'reject', formAction: string): string {
  const verb = action === 'approve' ? 'Approve' : 'Reject';
  const consequence =
    action === 'approve'
      ? 'Approving deploys this version to production (blue/green) and switches traffic to it.'
      : 'Rejecting stops this run; production stays as it is.';
  return page(
    `${verb} ${record.modelName} ${record.version}?`,
    `<h1>${escapeHtml(verb)} ${escapeHtml(record.modelName)} ${escapeHtml(record.version)}?</h1>
${facts(record)}
<p>${escapeHtml(consequence)} This request expires at ${escapeHtml(record.expiresAt)}.</p>
<form method="post" action="${escapeHtml(formAction)}">
<label for="approver">Your name (recorded with the decision)</label>
<input type="text" id="approver" name="approver" maxlength="100" autocomplete="name">
<label for="comment">Comment (optional)</label>
<textarea id="comment" name="comment" rows="3" maxlength="1000"></textarea>
<button type="submit" class="${action}">${escapeHtml(verb)}</button>
</form>
<p class="note">Opening this page changed nothing; only the button above decides.</p>`,
  );
}

export function decidedPage(record: ApprovalView, justNow: boolean): string {
  const d = record.decision;
  if (!d) return messagePage('Approval request expired', `The approval request for ${record.modelName} ${record.version} has expired.`);
  const verb = d.decision === 'approve' ? 'approved' : 'rejected';
  const head = justNow
    ? `You ${verb} ${record.modelName} ${record.version}.`
    : `${record.modelName} ${record.version} was already ${verb}.`;
  const next =
    d.decision === 'approve' ? 'The pipeline continues with the production rollout.' : 'The pipeline stops; production is unchanged.';
  return page(
    head,
    `<h1>${escapeHtml(head)}</h1>
<p>Decided by <strong>${escapeHtml(d.by)}</strong> at ${escapeHtml(d.at)} from ${escapeHtml(d.from)}.${
      d.comment ? `<br>Comment: ${escapeHtml(d.comment)}` : ''
    }</p>
<p>${escapeHtml(next)}</p>
${facts(record)}`,
  );
}

export function messagePage(title: string, message: string): string {
  return page(title, `<h1>${escapeHtml(title)}</h1>\n<p>${escapeHtml(message)}</p>`);
}
