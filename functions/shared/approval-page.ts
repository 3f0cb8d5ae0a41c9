/**
 * The HTML pages of the approval endpoint: the confirmation page a link opens (the model's metrics next to
 * production's and the gate's limits, and a form that POSTs the decision), the result page, and the error
 * pages. Dependency-free inline HTML/CSS that needs no JavaScript and reads on a phone. Every value is
 * HTML-escaped; no page ever contains the task token (ApprovalView has none).
 */
import type { ApprovalView } from './approvals';
import { fmt, formatTime, timeFromNow } from './notifications';

export function escapeHtml(value: unknown): string {
  return String(value).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

// Colours meet WCAG AA contrast on white (text >= 4.5:1, borders of inputs >= 3:1).
const STYLE = `
  body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; line-height: 1.45; max-width: 46rem; margin: 0 auto; padding: 1.5rem 1rem 3rem; color: #1f2328; background: #fff; }
  .brand { color: #57606a; font-size: .85rem; letter-spacing: .04em; text-transform: uppercase; margin: 0 0 .4rem; }
  h1 { font-size: 1.45rem; margin: 0 0 1rem; overflow-wrap: anywhere; } h2 { font-size: 1.05rem; margin: 1.6rem 0 .4rem; }
  code { font-size: .92em; background: #f3f4f6; padding: 0 .25rem; border-radius: 3px; overflow-wrap: anywhere; }
  .scroll { overflow-x: auto; } table { border-collapse: collapse; margin: .6rem 0; min-width: 100%; }
  caption { text-align: left; color: #57606a; font-size: .9rem; padding-bottom: .3rem; }
  th, td { text-align: left; padding: .45rem .9rem .45rem 0; border-bottom: 1px solid #d0d7de; vertical-align: top; }
  thead th { font-size: .9rem; } thead th small { display: block; font-weight: normal; color: #57606a; }
  .better { color: #116329; } .worse { color: #a40e26; }
  dl { display: grid; grid-template-columns: max-content 1fr; gap: .3rem 1rem; margin: .6rem 0; } dt { color: #57606a; } dd { margin: 0; overflow-wrap: anywhere; }
  .banner { border-left: .35rem solid; padding: .7rem 1rem; margin: 0 0 1.2rem; background: #f6f8fa; }
  .banner.ok { border-color: #1a7f37; background: #dafbe1; } .banner.stop { border-color: #cf222e; background: #ffebe9; } .banner.info { border-color: #57606a; }
  .banner p { margin: .2rem 0; }
  label { display: block; font-weight: 600; margin: 1rem 0 .3rem; } label small { font-weight: normal; color: #57606a; }
  input[type=text], textarea { width: 100%; box-sizing: border-box; font: inherit; font-size: 1rem; padding: .5rem .6rem; border: 1px solid #6e7781; border-radius: 6px; }
  button { margin-top: 1.1rem; padding: .7rem 1.6rem; font: inherit; font-size: 1.05rem; font-weight: 600; border: 0; border-radius: 6px; color: #fff; cursor: pointer; }
  input:focus-visible, textarea:focus-visible, button:focus-visible, a:focus-visible { outline: 3px solid #0969da; outline-offset: 2px; }
  .approve { background: #1a7f37; } .reject { background: #cf222e; }
  .note { color: #57606a; font-size: .92rem; } a { color: #0969da; }
  th[scope=row] { white-space: nowrap; }
  @media (max-width: 34rem) {
    dl { grid-template-columns: 1fr; gap: 0; } dt { margin-top: .5rem; }
    th, td { padding-right: .5rem; font-size: .92rem; } h1 { font-size: 1.3rem; }
  }`;

/** A whole page; `brand` names the endpoint's purpose above the title (the retry pages share this look). */
export function page(title: string, body: string, brand = 'model approval'): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex"><title>${escapeHtml(title)} · mlpipe</title><style>${STYLE}</style></head>
<body><main>
<p class="brand">mlpipe · ${escapeHtml(brand)}</p>
${body}
</main></body></html>
`;
}

function time(iso: string): string {
  return `<time datetime="${escapeHtml(iso)}">${escapeHtml(formatTime(iso))}</time>`;
}

/** A signed difference against production, marked better or worse for the reader. */
function delta(mine: number, theirs: number | null, higherIsBetter: boolean, show: (x: number) => string): string {
  if (theirs === null || mine === theirs) return '';
  const better = higherIsBetter ? mine > theirs : mine < theirs;
  return ` <span class="${better ? 'better' : 'worse'}">(${mine > theirs ? '+' : '−'}${escapeHtml(show(Math.abs(mine - theirs)))} ${better ? 'better' : 'worse'})</span>`;
}

function metrics(record: ApprovalView): string {
  const e = record.evaluation;
  const p = record.production;
  const t = e.thresholds;
  const round = (x: number) => Math.round(x * 100) / 100;
  const accuracyGate = `≥ ${fmt.accuracy(t.minAccuracy)}${p?.accuracy != null ? '\u00a0*' : ''}`;
  const rows: [string, string, string, string][] = [
    ['Accuracy', fmt.accuracy(e.accuracy) + delta(e.accuracy, p?.accuracy ?? null, true, (x) => x.toFixed(4)), p ? fmt.accuracy(p.accuracy) : '', accuracyGate],
    ['p95 latency', fmt.ms(e.latencyMsP95) + delta(e.latencyMsP95, p?.latencyMsP95 ?? null, false, (x) => `${round(x)} ms`), p ? fmt.ms(p.latencyMsP95) : '', `≤ ${t.maxP95LatencyMs} ms`],
    ['Error rate', fmt.rate(e.errorRate), p ? fmt.rate(p.errorRate) : '', `≤ ${fmt.rate(t.maxErrorRate)}`],
  ];
  // Values are escaped here, except the delta markup built above from numbers only.
  const cell = (v: string) => (v.includes('<span') ? v : escapeHtml(v));
  const head = `<tr><th scope="col">Metric</th><th scope="col">This model<small>${escapeHtml(record.version)}</small></th>${
    p ? `<th scope="col">In production<small>${escapeHtml(p.version)}</small></th>` : ''
  }<th scope="col">Required</th></tr>`;
  const body = rows
    .map(([name, mine, theirs, gate]) => `<tr><th scope="row">${escapeHtml(name)}</th><td>${cell(mine)}</td>${p ? `<td>${escapeHtml(theirs)}</td>` : ''}<td>${escapeHtml(gate)}</td></tr>`)
    .join('\n');
  return `<div class="scroll"><table>
<caption>Measured over HTTP on ${escapeHtml(e.samples.toLocaleString('en-US'))} held-out images at ${escapeHtml(formatTime(e.evaluatedAt))}</caption>
<thead>${head}</thead>
<tbody>
${body}
</tbody></table></div>
${p?.accuracy != null ? `<p class="note">* and no more than ${escapeHtml(t.maxAccuracyDrop)} below production's accuracy.</p>` : ''}
<p class="note">Evaluation gate: ${escapeHtml(e.summary)}</p>
${p ? '' : '<p>Nothing serves production yet: this would be the first release of this model.</p>'}`;
}

function facts(record: ApprovalView): string {
  return `<dl>
<dt>Model</dt><dd><strong>${escapeHtml(record.modelName)}</strong></dd>
<dt>Version</dt><dd><code>${escapeHtml(record.version)}</code></dd>
<dt>Training image</dt><dd><code>${escapeHtml(record.image)}</code></dd>
<dt>Run</dt><dd><code>${escapeHtml(runName(record))}</code></dd>
</dl>
${metrics(record)}`;
}

/** The execution name: what `mlpipe status` and `mlpipe approve` take. */
export function runName(record: Pick<ApprovalView, 'executionArn'>): string {
  return record.executionArn.split(':').pop() ?? record.executionArn;
}

/** Where a person can follow the run once they have decided. */
export interface RunLinks {
  /** The Step Functions console page of the execution (AWS only). */
  console?: string;
}

function followRun(record: ApprovalView, links: RunLinks): string {
  return `<h2>Follow the run</h2>
<p>${links.console ? `<a href="${escapeHtml(links.console)}" rel="noreferrer">Open the run in the Step Functions console</a>, or run ` : 'Run '}<code>mlpipe status ${escapeHtml(runName(record))}</code>. An email tells everyone how the run ended.</p>`;
}

export interface ConfirmationLinks {
  /** The signed link's own query: the form posts to the page's own URL. */
  formAction: string;
  /** The signed link of the other action, so a person who opened the wrong one can switch. */
  otherAction: string;
}

/** GET: what the link would do, and the button that does it. */
export function confirmationPage(record: ApprovalView, action: 'approve' | 'reject', links: ConfirmationLinks, now = new Date()): string {
  const verb = action === 'approve' ? 'Approve' : 'Reject';
  const consequence =
    action === 'approve'
      ? 'Approving deploys this version to production next to the current one (blue/green), then switches all traffic to it. The version it replaces keeps running, so mlpipe rollback can switch back to it.'
      : 'Rejecting ends this run: staging is cleaned up and production stays exactly as it is.';
  const other = action === 'approve' ? 'reject it instead' : 'approve it instead';
  return page(
    `${verb} ${record.modelName} ${record.version}?`,
    `<h1>${escapeHtml(verb)} ${escapeHtml(record.modelName)} <code>${escapeHtml(record.version)}</code> for production?</h1>
${facts(record)}
<h2>Your decision</h2>
<p>${escapeHtml(consequence)}</p>
<p>This request expires on ${time(record.expiresAt)} (${escapeHtml(timeFromNow(record.expiresAt, now))}); if nobody decides by then, the model is not released.</p>
<form method="post" action="${escapeHtml(links.formAction)}">
<label for="approver">Your name or email <small>(recorded with the decision and sent in the outcome email)</small></label>
<input type="text" id="approver" name="approver" maxlength="100" autocomplete="email" required>
<label for="comment">${action === 'approve' ? 'Comment' : 'Reason'} <small>(optional)</small></label>
<textarea id="comment" name="comment" rows="3" maxlength="1000"></textarea>
<button type="submit" class="${action}">${escapeHtml(verb)} this model</button>
</form>
<p class="note">Opening this page changed nothing; only the button decides. Opened the wrong link? <a href="${escapeHtml(links.otherAction)}">${other}</a>.</p>`,
  );
}

function decider(d: NonNullable<ApprovalView['decision']>): string {
  // `from` is a source IP for links, `iam:<arn>` or `local:<user>` for the CLI.
  const where = /^(iam|local):/.test(d.from) ? `with the mlpipe command (${d.from})` : `from IP address ${d.from}`;
  return `<p>By <strong>${escapeHtml(d.by)}</strong> on ${time(d.at)}, ${escapeHtml(where)}.</p>${
    d.comment ? `<p>Comment: “${escapeHtml(d.comment)}”</p>` : ''
  }`;
}

/** After a decision: the one just made (POST), or the one a later visit of a link finds. */
export function decidedPage(record: ApprovalView, justNow: boolean, links: RunLinks = {}): string {
  const d = record.decision;
  if (!d) return expiredPage(record);
  const approved = d.decision === 'approve';
  const verb = approved ? 'approved' : 'rejected';
  // `deciding`: another decider's claim is being sent to Step Functions this very moment.
  const inFlight = record.status === 'deciding';
  const head = justNow
    ? `You ${verb} ${record.modelName} ${record.version}`
    : inFlight
      ? `${record.modelName} ${record.version} is being ${verb}`
      : `${record.modelName} ${record.version} was already ${verb}`;
  const next = justNow
    ? approved
      ? 'The pipeline now deploys it to production and switches traffic to it; this takes a few minutes. You can close this page.'
      : 'The pipeline stops here and cleans up staging; production is unchanged. You can close this page.'
    : 'This link cannot change the decision any more. Nothing was changed by opening it.';
  return page(
    head,
    `<div class="banner ${approved ? 'ok' : 'stop'}" role="status">
<h1>${escapeHtml(head)}</h1>
${decider(d)}
</div>
<p>${escapeHtml(next)}</p>
${followRun(record, links)}
<h2>What was decided on</h2>
${facts(record)}`,
  );
}

function expiredPage(record: ApprovalView): string {
  const title = `The approval request for ${record.modelName} ${record.version} has expired`;
  return messagePage(title, `Nobody decided before ${formatTime(record.expiresAt)}, so the model was not released and production is unchanged.`, [
    'Nothing was decided by opening this link.',
    'To release this model after all, start a new run of the same image (`mlpipe run <image>`).',
  ]);
}

/** Escapes `text`, then shows `command` spans (already escaped) as code. */
export function prose(text: string): string {
  return escapeHtml(text).replace(/`([^`]+)`/g, '<code>$1</code>');
}

/** A short page: what happened, and what the reader can do about it (`backticks` mark commands). */
export function messagePage(title: string, message: string, next: string[] = [], brand?: string): string {
  return page(
    title,
    `<div class="banner info" role="status"><h1>${escapeHtml(title)}</h1>
<p>${prose(message)}</p></div>
${next.length ? `<ul>\n${next.map((n) => `<li>${prose(n)}</li>`).join('\n')}\n</ul>` : ''}`,
    brand,
  );
}
