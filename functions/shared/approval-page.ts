/**
 * The HTML pages of the approval endpoint: the confirmation page a link opens (the model's metrics next to
 * production's and the gate's limits, accuracy per class with the classes that got worse marked, the
 * confusion matrix, the run's facts, and a form that POSTs the decision), the result page, and the error
 * pages. Dependency-free inline HTML/CSS that needs no JavaScript and reads on a phone. Every value is
 * HTML-escaped; no page ever contains the task token (ApprovalView has none).
 */
import { championColumn, className, classRows, describeTrigger, hyperparameterList, trainingTime } from './approval-facts';
import type { ApprovalView } from './approvals';
import { fmt, formatTime, timeFromNow } from './notifications';
import type { EvaluationResult } from './types';

export function escapeHtml(value: unknown): string {
  return String(value).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

// Colours meet WCAG AA contrast on white (text >= 4.5:1, borders of inputs >= 3:1).
const STYLE = `
  body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; line-height: 1.45; margin: 0; padding: 1.5rem 1rem 3rem; color: #1f2328; background: #fff; }
  main { max-width: 46rem; margin: 0 auto; } main.wide { max-width: 64rem; } main.wide p { max-width: 46rem; }
  .brand { color: #57606a; font-size: .85rem; letter-spacing: .04em; text-transform: uppercase; margin: 0 0 .4rem; }
  h1 { font-size: 1.45rem; margin: 0 0 1rem; overflow-wrap: anywhere; } h2 { font-size: 1.05rem; margin: 1.6rem 0 .4rem; }
  code { font-size: .92em; background: #f3f4f6; padding: 0 .25rem; border-radius: 3px; overflow-wrap: anywhere; }
  .scroll { overflow-x: auto; } table { border-collapse: collapse; margin: .6rem 0; min-width: 100%; }
  caption { text-align: left; color: #57606a; font-size: .9rem; padding-bottom: .3rem; }
  th, td { text-align: left; padding: .45rem .9rem .45rem 0; border-bottom: 1px solid #d0d7de; vertical-align: top; }
  thead th { font-size: .9rem; } thead th small { display: block; font-weight: normal; color: #57606a; }
  .better { color: #116329; } .worse { color: #a40e26; }
  .tag { display: inline-block; font-size: .8rem; font-weight: 600; padding: 0 .4rem; border-radius: 1rem; border: 1px solid; white-space: nowrap; }
  .tag.worse { background: #ffebe9; } .tag.weak { color: #7d4e00; background: #fff8c5; }
  tr.got-worse th, tr.got-worse td { background: #fff5f5; }
  .matrix th, .matrix td { text-align: right; padding: .3rem .45rem; font-variant-numeric: tabular-nums; } .matrix thead th { font-size: .8rem; vertical-align: bottom; }
  .matrix th[scope=row] { text-align: left; } .matrix td.zero { color: #8c959f; }
  .sr { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); }
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

/**
 * A whole page; `brand` names the endpoint's purpose above the title (the retry pages share this look).
 * `wide` pages hold tables (the confusion matrix) that want more than a reading column.
 */
export function page(title: string, body: string, brand = 'model approval', wide = false): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex"><title>${escapeHtml(title)} · mlpipe</title><style>${STYLE}</style></head>
<body><main${wide ? ' class="wide"' : ''}>
<p class="brand">mlpipe · ${escapeHtml(brand)}</p>
${body}
</main></body></html>
`;
}

function time(iso: string): string {
  return `<time datetime="${escapeHtml(iso)}">${escapeHtml(formatTime(iso))}</time>`;
}

/**
 * Latency differences smaller than this share of the larger value (or 1 ms) are not called better or worse:
 * even measured interleaved, p50/p95 of ~100 requests move by that much between identical models (measured:
 * p95 −40 to +34 ms of 150–346 ms across four local runs of two same-size models).
 */
const LATENCY_NOISE = { share: 0.15, minMs: 1 };

/** A signed difference against production, marked better or worse for the reader; within `noise`, "same within noise". */
function delta(mine: number, theirs: number | undefined, higherIsBetter: boolean, show: (x: number) => string, noise = 0): string {
  if (theirs === undefined || mine === theirs) return '';
  if (Math.abs(mine - theirs) < noise) return ` <span class="same">(${mine > theirs ? '+' : '−'}${escapeHtml(show(Math.abs(mine - theirs)))}, same within noise)</span>`;
  const better = higherIsBetter ? mine > theirs : mine < theirs;
  return ` <span class="${better ? 'better' : 'worse'}">(${mine > theirs ? '+' : '−'}${escapeHtml(show(Math.abs(mine - theirs)))} ${better ? 'better' : 'worse'})</span>`;
}

const ms2 = (x: number) => `${Math.round(x * 100) / 100} ms`;
const latencyNoise = (mine: number, theirs: number | undefined) => Math.max(LATENCY_NOISE.minMs, LATENCY_NOISE.share * Math.max(mine, theirs ?? 0));

function metrics(record: ApprovalView): string {
  const e = record.evaluation;
  const p = championColumn(e, record.production);
  const t = e.thresholds;
  const accuracyGate = `≥ ${escapeHtml(fmt.accuracy(t.minAccuracy))}${p?.accuracy !== undefined ? '\u00a0*' : ''}`;
  // Cells are HTML: values escaped here, delta markup built from numbers only.
  const rows: [string, string, string, string][] = [
    ['Accuracy', escapeHtml(fmt.accuracy(e.accuracy)) + delta(e.accuracy, p?.accuracy, true, (x) => x.toFixed(4)), escapeHtml(fmt.accuracy(p?.accuracy)), accuracyGate],
    ['p50 latency', escapeHtml(fmt.ms(e.latencyMsP50)) + delta(e.latencyMsP50, p?.latency?.p50, false, ms2, latencyNoise(e.latencyMsP50, p?.latency?.p50)), escapeHtml(fmt.ms(p?.latency?.p50)), ''],
    ['p95 latency', escapeHtml(fmt.ms(e.latencyMsP95)) + delta(e.latencyMsP95, p?.latency?.p95, false, ms2, latencyNoise(e.latencyMsP95, p?.latency?.p95)), escapeHtml(fmt.ms(p?.latency?.p95)), `≤ ${escapeHtml(t.maxP95LatencyMs)} ms`],
    ['Error rate', escapeHtml(fmt.rate(e.errorRate)), escapeHtml(fmt.rate(p?.errorRate)), `≤ ${escapeHtml(fmt.rate(t.maxErrorRate))}`],
  ];
  const head = `<tr><th scope="col">Metric</th><th scope="col">This model<small>${escapeHtml(record.version)}</small></th>${
    p ? `<th scope="col">In production<small>${escapeHtml(p.version)}</small></th>` : ''
  }<th scope="col">Required</th></tr>`;
  const body = rows
    .map(([name, mine, theirs, gate]) => `<tr data-metric="${escapeHtml(name)}"><th scope="row">${escapeHtml(name)}</th><td>${mine}</td>${p ? `<td>${theirs}</td>` : ''}<td>${gate}</td></tr>`)
    .join('\n');
  const latencyNote = !p
    ? ''
    : p.latency
      ? '<p class="note">Both models got the same images in this evaluation, their requests interleaved, so the load of the moment weighs on both alike and a difference is not an artifact of measuring them at different times. It still includes chance: over about 100 requests, p95 moves by tens of milliseconds from one evaluation to the next on a busy machine.</p>'
      : '<p class="note">Production\'s latency was not measured alongside this model, and numbers measured at another time are not compared.</p>';
  return `<div class="scroll"><table id="metrics">
<caption>Measured over HTTP on ${escapeHtml(e.samples.toLocaleString('en-US'))} held-out images at ${escapeHtml(formatTime(e.evaluatedAt))}</caption>
<thead>${head}</thead>
<tbody>
${body}
</tbody></table></div>
${p?.accuracy !== undefined ? `<p class="note">* and no more than ${escapeHtml(t.maxAccuracyDrop)} below production's accuracy.</p>` : ''}
${latencyNote}
<p class="note">Evaluation gate: ${escapeHtml(e.summary)}</p>
${p ? '' : '<p>Nothing serves production yet: this would be the first release of this model.</p>'}`;
}

/** Each class's accuracy against production's, the classes that got worse marked in words and colour. */
function classes(e: EvaluationResult): string {
  const rows = classRows(e);
  if (rows.length === 0) return '';
  const p = e.production?.perClassAccuracy ? e.production : undefined;
  const worse = rows.filter((r) => r.worse).length;
  const min = fmt.accuracy(e.thresholds.minAccuracy);
  const body = rows
    .map((r) => {
      const marks = [
        r.worse ? '<span class="tag worse">worse</span>' : '',
        r.belowMinimum ? `<span class="tag weak">below ${escapeHtml(min)}</span>` : '',
      ].join(' ');
      const change = r.change === undefined || r.change === 0 ? '' : `<span class="${r.change < 0 ? 'worse' : 'better'}">${r.change > 0 ? '+' : '−'}${escapeHtml(Math.abs(r.change).toFixed(4))}</span>`;
      return `<tr${r.worse ? ' class="got-worse"' : ''}><th scope="row">${escapeHtml(r.name)}</th><td>${escapeHtml(fmt.accuracy(r.accuracy))}</td>${
        p ? `<td>${escapeHtml(fmt.accuracy(r.production))}</td><td>${change}</td>` : ''
      }<td>${marks}</td></tr>`;
    })
    .join('\n');
  const caption = p
    ? `${worse === 0 ? 'No class' : worse === 1 ? '1 class' : `${worse} classes`} got worse than production ${escapeHtml(p.version)} on the same images`
    : 'No production model measured alongside: accuracy of this model only';
  return `<h2>Accuracy per class</h2>
<div class="scroll"><table id="per-class">
<caption>${caption}</caption>
<thead><tr><th scope="col">Class</th><th scope="col">This model</th>${p ? `<th scope="col">In production<small>${escapeHtml(p.version)}</small></th><th scope="col">Change</th>` : ''}<th scope="col"><span class="sr">Marks</span></th></tr></thead>
<tbody>
${body}
</tbody></table></div>`;
}

/**
 * The confusion matrix: rows are true classes, columns predicted ones. The diagonal (right answers) is
 * shaded green, the rest red in proportion to the row's count, so the confusions that matter stand out.
 */
function confusion(e: EvaluationResult): string {
  const m = e.confusion;
  if (!m || m.length === 0) return '';
  const head = m.map((_, c) => `<th scope="col" title="${escapeHtml(className(e, c))}">${escapeHtml(className(e, c))}</th>`).join('');
  const body = m
    .map((row, t) => {
      const total = row.reduce((a, b) => a + b, 0) || 1;
      const cells = row
        .map((n, c) => {
          const share = n / total;
          const kind = c === t ? 'hit' : n > 0 ? 'miss' : 'zero';
          // Shade only: the count is the cell's text, so nothing depends on seeing the colour.
          const alpha = kind === 'zero' ? 0 : Math.round((0.12 + 0.6 * share) * 100) / 100;
          const style = kind === 'zero' ? '' : ` style="background: rgba(${c === t ? '26, 127, 55' : '207, 34, 46'}, ${alpha})"`;
          return `<td class="${kind}"${style}>${escapeHtml(n)}</td>`;
        })
        .join('');
      return `<tr><th scope="row">${escapeHtml(className(e, t))}</th>${cells}</tr>`;
    })
    .join('\n');
  return `<h2>Confusion matrix</h2>
<div class="scroll"><table id="confusion" class="matrix">
<caption>Rows: the true class; columns: the class this model predicted (counts of held-out images)</caption>
<thead><tr><th scope="col">True class ↓ · predicted →</th>${head}</tr></thead>
<tbody>
${body}
</tbody></table></div>`;
}

function runFactsList(record: ApprovalView): string {
  const f = record.facts;
  if (!f) return '';
  const sha = f.data.sha256 ? `<code>${escapeHtml(f.data.sha256)}</code>` : 'not recorded (no dataset.json next to the data)';
  const hp = Object.entries(f.hyperparameters);
  return `<dt>Triggered by</dt><dd>${escapeHtml(describeTrigger(f.trigger))}</dd>
<dt>Image digest</dt><dd>${f.imageDigest ? `<code>${escapeHtml(f.imageDigest)}</code>` : 'not pinned (a tag)'}</dd>
<dt>Training data</dt><dd><code>${escapeHtml(f.data.uri)}</code>${f.data.version ? ` version <strong>${escapeHtml(f.data.version)}</strong>` : ''}</dd>
<dt>Data sha256</dt><dd>${sha}</dd>
<dt>Held-out data</dt><dd><code>${escapeHtml(f.data.evalUri)}</code></dd>
<dt>Hyperparameters</dt><dd id="hyperparameters">${hp.length ? hp.map(([k, v]) => `<code>${escapeHtml(k)}=${escapeHtml(typeof v === 'string' ? JSON.stringify(v) : v)}</code>`).join(' ') : escapeHtml(hyperparameterList(f.hyperparameters))}</dd>
<dt>Training time</dt><dd>${escapeHtml(trainingTime(f))}</dd>`;
}

function facts(record: ApprovalView): string {
  return `<dl id="facts">
<dt>Model</dt><dd><strong>${escapeHtml(record.modelName)}</strong></dd>
<dt>Version</dt><dd><code>${escapeHtml(record.version)}</code></dd>
<dt>Training image</dt><dd><code>${escapeHtml(record.image)}</code></dd>
<dt>Run</dt><dd><code>${escapeHtml(runName(record))}</code></dd>
${runFactsList(record)}
</dl>
${metrics(record)}
${classes(record.evaluation)}
${confusion(record.evaluation)}`;
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
      ? 'Approving deploys this version to production next to the current one and moves traffic to it (step by step as a canary, rolled back by itself if it errs or slows down, when the stack rolls out that way). The version it replaces is kept, so mlpipe rollback can switch back to it.'
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
    undefined,
    true,
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
    undefined,
    true,
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
