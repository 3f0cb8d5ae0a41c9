/**
 * The console's pages, server-rendered from what console/data.ts read: the runs list (with pending
 * approvals), a run (graph, training, evaluation, lineage, decisions, log tail) and a model (what serves,
 * history, versions). Everything rendered goes through html`` (escaped). The little JS the pages carry
 * keeps them live without reloading: the runs list polls /api/runs, a running run's page its own body.
 */
import { accuracyChange } from '../functions/shared/approval-facts';
import type { NodeProgress } from '../cli/graph-model';
import type { GraphModel } from '../cli/graph-model';
import { snapshotLine } from '../functions/shared/serving-monitor';
import type { RunView } from '../cli/run-view';
import type { EvaluationResult } from '../functions/shared/types';
import { graphSvg, seconds } from './graph-svg';
import { href, html, percent, raw, when, type Html } from './html';
import type { ModelPage, PendingApproval, RunPage, RunSummary, RunsSnapshot } from './data';

/** How often the pages ask for news. */
export const POLL_MS = 2000;

function statusCell(status: string): Html {
  return html`<span class="status ${status}">${status}</span>`;
}

function duration(startedAt: string, stoppedAt: string | null, now: Date): string {
  const from = Date.parse(startedAt);
  if (Number.isNaN(from)) return '';
  return seconds(Math.max(0, ((stoppedAt ? Date.parse(stoppedAt) : now.getTime()) - from) / 1000));
}

function runRow(r: RunSummary, now: Date): Html {
  return html`<tr data-run="${r.name}"><td><a href="${href('runs', r.name)}">${r.name}</a></td><td>${statusCell(r.status)}</td><td>${r.step}</td>
<td>${r.model ? html`<a href="${href('models', r.model)}">${r.model}</a>` : ''}</td><td>${r.version}</td><td>${when(r.startedAt)}</td><td class="num">${duration(r.startedAt, r.stoppedAt, now)}</td></tr>`;
}

function approvalItem(a: PendingApproval): Html {
  return html`<li data-approval="${a.run}"><a href="${href('runs', a.run)}">${a.run}</a>: ${a.model} ${a.version}${a.accuracy !== null ? html`, accuracy ${percent(a.accuracy, 2)}` : ''}${a.expiresAt ? html`, expires ${when(a.expiresAt)}` : ''} —
${a.links ? html`<a class="approve" href="${a.links.approve}">approve</a> · <a class="reject" href="${a.links.reject}">reject</a>` : html`<code>${a.commands.approve}</code> or <code>${a.commands.reject}</code>`}</li>`;
}

function approvalsList(approvals: PendingApproval[]): Html {
  return approvals.length ? html`<ul>${approvals.map(approvalItem)}</ul>` : html`<p class="muted">No run is waiting for approval.</p>`;
}

/** The runs list; /api/runs gives the same rows as JSON and the script redraws them when they change. */
export function runsPage(s: RunsSnapshot, models: string[], now = new Date()): Html {
  return html`<h1>Runs</h1>
<section id="approvals"><h2>Waiting for approval</h2><div id="approval-list">${approvalsList(s.approvals)}</div></section>
<section><h2>Models</h2>${models.length ? models.map((m) => html`<a class="model-link" href="${href('models', m)}">${m}</a> `) : html`<span class="muted">none yet</span>`}</section>
<section><table class="grid" id="runs"><thead><tr><th>Run</th><th>Status</th><th>Step</th><th>Model</th><th>Version</th><th>Started (UTC)</th><th class="num">Took</th></tr></thead>
<tbody>${s.runs.length ? s.runs.map((r) => runRow(r, now)) : html`<tr class="empty"><td colspan="7" class="muted">No runs yet.</td></tr>`}</tbody></table></section>`;
}

/**
 * Redraws the runs table and the approvals from /api/runs. Built with the DOM (textContent), so nothing
 * from the JSON is parsed as HTML; only a change redraws, so nothing flickers.
 */
export const RUNS_SCRIPT = `
(() => {
  let last = '';
  const el = (tag, text, cls) => { const e = document.createElement(tag); if (text !== undefined && text !== null) e.textContent = text; if (cls) e.className = cls; return e; };
  const link = (path, text) => { const a = el('a', text); a.href = path; return a; };
  const secs = (s) => s < 10 ? s.toFixed(1) + ' s' : s < 120 ? Math.round(s) + ' s' : s < 3600 ? Math.floor(s / 60) + ' min ' + Math.round(s % 60) + ' s' : Math.floor(s / 3600) + ' h ' + Math.floor(s / 60) % 60 + ' min';
  const when = (iso) => iso ? iso.replace('T', ' ').replace(/\\.\\d+Z$/, 'Z') : '';
  async function poll() {
    try {
      const res = await fetch('/api/runs', { cache: 'no-store' });
      if (!res.ok) return;
      const text = await res.text();
      if (text === last) return;
      last = text;
      const { runs, approvals } = JSON.parse(text);
      const body = document.querySelector('#runs tbody');
      const rows = runs.map((r) => {
        const tr = el('tr'); tr.dataset.run = r.name;
        const name = el('td'); name.append(link('/runs/' + encodeURIComponent(r.name), r.name)); tr.append(name);
        const st = el('td'); st.append(el('span', r.status, 'status ' + r.status)); tr.append(st);
        tr.append(el('td', r.step));
        const model = el('td'); if (r.model) model.append(link('/models/' + encodeURIComponent(r.model), r.model)); tr.append(model);
        tr.append(el('td', r.version), el('td', when(r.startedAt)));
        const took = (Date.parse(r.stoppedAt || new Date().toISOString()) - Date.parse(r.startedAt)) / 1000;
        tr.append(el('td', isNaN(took) ? '' : secs(Math.max(0, took)), 'num'));
        return tr;
      });
      body.replaceChildren(...rows);
      const list = document.getElementById('approval-list');
      if (!approvals.length) { list.replaceChildren(el('p', 'No run is waiting for approval.', 'muted')); return; }
      const ul = el('ul');
      for (const a of approvals) {
        const li = el('li'); li.dataset.approval = a.run;
        li.append(link('/runs/' + encodeURIComponent(a.run), a.run), ': ' + [a.model, a.version].join(' ') + (a.accuracy !== null ? ', accuracy ' + (a.accuracy * 100).toFixed(2) + ' %' : '') + (a.expiresAt ? ', expires ' + when(a.expiresAt) : '') + ' — ');
        if (a.links) { const y = link(a.links.approve, 'approve'); y.className = 'approve'; const n = link(a.links.reject, 'reject'); n.className = 'reject'; li.append(y, ' · ', n); }
        else li.append(el('code', a.commands.approve), ' or ', el('code', a.commands.reject));
        ul.append(li);
      }
      list.replaceChildren(ul);
    } catch { /* the next poll tries again */ }
  }
  setInterval(poll, ${POLL_MS});
})();`;

/** While the run is running, its page re-reads its own body and swaps it in when it changed. */
export const RUN_SCRIPT = `
(() => {
  let last = document.getElementById('run').outerHTML;
  async function poll() {
    const current = document.getElementById('run');
    if (current.dataset.status !== 'RUNNING') return;
    try {
      const res = await fetch(location.pathname + '?part=run', { cache: 'no-store' });
      if (!res.ok) return;
      const text = await res.text();
      if (text === last) return;
      last = text;
      current.outerHTML = text;
    } catch { /* the next poll tries again */ }
  }
  setInterval(poll, ${POLL_MS});
})();`;

/** The run's steps as the graph's marks: a stopped run's last state is where it failed. */
export function stepMarks(view: RunView): Record<string, NodeProgress> {
  const marks: Record<string, NodeProgress> = {};
  for (const s of view.steps) {
    const mark = s.status === 'running' ? 'current' : s.status === 'succeeded' ? 'done' : 'failed';
    marks[s.name] = { mark, seconds: s.seconds, visits: s.entries };
  }
  return marks;
}

function kv(rows: Array<[string, unknown]>): Html {
  return html`<table class="kv">${rows.filter(([, v]) => v !== undefined && v !== null && v !== '').map(([k, v]) => html`<tr><th>${k}</th><td>${v}</td></tr>`)}</table>`;
}

function trainingSection(view: RunView): Html {
  const t = view.training;
  if (!t) return html`<section id="training"><h2>Training</h2><p class="muted">Not started.</p></section>`;
  const p = t.progress;
  return html`<section id="training"><h2>Training</h2>
${p && t.status !== 'succeeded' ? html`<p><progress max="1" value="${p.fraction}"></progress> ${percent(p.fraction, 0)}${p.epoch !== undefined && p.epochs ? html`, epoch ${p.epoch}/${p.epochs}` : ''}${p.etaSeconds ? html`, about ${seconds(p.etaSeconds)} left` : ''}</p>` : ''}
${kv([
  ['status', t.status],
  ['job', t.jobName],
  ['took', t.seconds !== null ? seconds(t.seconds) : null],
  ...Object.entries(t.metrics ?? p?.metrics ?? {}).map(([k, v]): [string, unknown] => [k, Number.isInteger(v) ? v : v.toFixed(4)]),
])}</section>`;
}

function evaluationSection(page: RunPage): Html {
  const e = page.view.evaluation as EvaluationResult | null; // RunView passes $.evaluation through (loose)
  if (!e) return html`<section id="evaluation"><h2>Evaluation</h2><p class="muted">Not evaluated yet.</p></section>`;
  const prod = e.production;
  // Per class: the state's arrays; evaluation.json's when the state left them out (too many classes for it).
  const report = page.report;
  const accuracies = e.perClassAccuracy ?? report?.details.perClassAccuracy ?? [];
  const matrix = e.confusion ?? report?.details.confusion;
  const classes = e.classes ?? report?.classes ?? accuracies.map((_, i) => String(i));
  const champion = prod?.perClassAccuracy;
  const delta = (a: number, b: number | undefined) => (b === undefined ? '' : `${a - b >= 0 ? '+' : '−'}${(Math.abs(a - b) * 100).toFixed(1)}`);
  const perClass = accuracies.length
    ? html`<h2>Per class</h2><table class="grid" id="per-class"><thead><tr><th>Class</th><th class="num">Accuracy</th>${champion ? html`<th class="num">Production ${prod!.version}</th><th class="num">Δ points</th>` : ''}</tr></thead><tbody>
${accuracies.map((a, i) => {
  const c = champion?.[i];
  // The approval page's rule (accuracyChange): any change at four decimals, measured on the same images.
  const change = c === undefined ? 0 : accuracyChange(a, c);
  const cls = change < 0 ? 'worse' : change > 0 ? 'better' : '';
  return html`<tr data-class="${classes[i] ?? i}"><td>${classes[i] ?? i}</td><td class="num accuracy">${percent(a)}</td>${champion ? html`<td class="num">${percent(c)}</td><td class="num ${cls}">${c === undefined ? '' : delta(a, c)}</td>` : ''}</tr>`;
})}</tbody></table>`
    : '';
  const confusion = matrix?.length
    ? html`<h2>Confusion matrix</h2><p class="muted">Rows: true class; columns: predicted.</p><table class="grid confusion" id="confusion"><thead><tr><th></th>${matrix.map((_, j) => html`<th class="num" title="${classes[j] ?? j}">${abbreviate(classes[j] ?? String(j))}</th>`)}</tr></thead><tbody>
${matrix.map((row, i) => {
  const total = row.reduce((s, v) => s + v, 0) || 1;
  return html`<tr><th>${classes[i] ?? i}</th>${row.map((v, j) => html`<td class="${i === j ? 'diagonal' : ''}" style="background: rgba(${i === j ? '40,167,69' : '220,53,69'},${(Math.min(1, v / total) * 0.8).toFixed(2)})">${v}</td>`)}</tr>`;
})}</tbody></table>`
    : '';
  return html`<section id="evaluation"><h2>Evaluation</h2>
<p class="${e.passed ? 'better' : 'worse'}">${e.passed ? 'Passed' : 'Failed'}: ${e.summary}</p>
${kv([
  ['accuracy', html`${percent(e.accuracy, 2)}${prod ? html` (production ${prod.version}: ${percent(prod.accuracy, 2)})` : ''}`],
  ['latency p50 / p95', html`${e.latencyMsP50.toFixed(1)} / ${e.latencyMsP95.toFixed(1)} ms${prod?.latencyMsP50 !== undefined && prod.latencyMsP95 !== undefined ? html` (production, measured alongside: ${prod.latencyMsP50.toFixed(1)} / ${prod.latencyMsP95.toFixed(1)} ms)` : ''}`],
  ['error rate', percent(e.errorRate, 2)],
  ['samples', e.samples],
  ['gate', `accuracy ≥ ${percent(e.thresholds.minAccuracy)}, p95 ≤ ${e.thresholds.maxP95LatencyMs} ms, errors ≤ ${percent(e.thresholds.maxErrorRate)}, drop ≤ ${percent(e.thresholds.maxAccuracyDrop)}`],
])}
<div class="columns"><div class="fixed">${perClass}</div><div>${confusion}</div></div></section>`;
}

function abbreviate(name: string): string {
  return name.length > 6 ? `${name.slice(0, 5)}…` : name;
}

function dataset(d: unknown): Array<[string, unknown]> {
  if (!d || typeof d !== 'object') return [];
  const o = d as Record<string, unknown>;
  return [
    ['data version', typeof o.version === 'string' || typeof o.version === 'number' ? o.version : undefined],
    ['data sha256', typeof o.sha256 === 'string' ? o.sha256 : undefined],
  ];
}

function lineageSection(page: RunPage): Html {
  const v = page.view;
  const m = page.manifest;
  const trigger = m?.execution.trigger ?? v.trigger;
  const by = trigger?.detail && typeof trigger.detail.by === 'string' ? ` by ${trigger.detail.by}` : '';
  const hyper = m?.hyperparameters;
  return html`<section id="lineage"><h2>Lineage</h2>${kv([
    ['model', v.model ? html`<a href="${href('models', v.model)}">${v.model}</a> ${v.version}` : null],
    ['image', m?.image.uri ?? v.image],
    ['digest', m?.image.digest ?? v.imageDigest],
    ['trigger', trigger ? `${trigger.source}${by}` : null],
    ['data', m?.data.uri],
    ['held-out data', m?.data.evalUri],
    ...dataset(m?.data.dataset),
    ['hyperparameters', hyper && Object.keys(hyper).length ? Object.entries(hyper).map(([k, val]) => `${k}=${val}`).join(', ') : m ? '(the trainer\'s defaults)' : null],
    ['model URI', m?.modelUri],
    ['previous version', m?.production?.previousVersion ?? v.evaluation?.production?.version],
    ['retry of', m?.retryOf ? `${m.retryOf.executionArn.split(':').pop()} from ${m.retryOf.fromState}` : null],
  ])}${m ? '' : html`<p class="muted">Data, hyperparameters and the model URI are in the release manifest, written when the run ends.</p>`}</section>`;
}

function decisionsSection(page: RunPage): Html {
  const v = page.view;
  const a = page.manifest?.approval;
  const rows: Html[] = [];
  if (v.approval?.status === 'pending') {
    rows.push(html`<li id="pending-approval">Waiting for approval${v.approval.expiresAt ? html` until ${when(v.approval.expiresAt)}` : ''}: ${v.approval.links ? html`<a class="approve" href="${v.approval.links.approve}">approve</a> · <a class="reject" href="${v.approval.links.reject}">reject</a>` : html`<code>${v.approval.commands.approve}</code> or <code>${v.approval.commands.reject}</code>`}</li>`);
  } else if (v.approval?.status === 'decided') {
    rows.push(html`<li class="approval">${v.approval.decision === 'approve' ? 'Approved' : 'Rejected'} by ${v.approval.by} at ${when(v.approval.at)}${a?.from ? html` from ${a.from}` : ''}${v.approval.comment ? html`: “${v.approval.comment}”` : ''}</li>`);
  }
  if (v.production?.serving) rows.push(html`<li>Serves production${v.production.since ? html` since ${when(v.production.since)}` : ''}${v.production.endpoint ? html` at <code>${v.production.endpoint}</code>` : ''}.</li>`);
  if (v.monitor) {
    const firing = v.monitor.alarms.filter((x) => x.state === 'ALARM');
    rows.push(html`<li id="serving-monitor"${firing.length ? html` class="error"` : ''}>Serving monitor: ${snapshotLine(v.monitor)}${firing.map((x) => html`<br>${x.reason}`)}</li>`);
  }
  else if (v.production && !v.production.serving && v.production.replacedBy) {
    const r = v.production.replacedBy;
    rows.push(html`<li>Served production; ${r.action === 'release' ? 'replaced by' : r.action === 'rollback' ? 'rolled back to' : 'canary rolled back to'} ${r.version} at ${when(r.at)}${r.by ? html` by ${r.by}` : ''}.</li>`);
  }
  const mine = (page.production?.history ?? []).filter((h) => h.action === 'canary-rollback' && h.canary?.version === v.version);
  for (const h of mine) rows.push(html`<li>Canary rolled back at ${when(h.at)}: ${h.canary?.reasons.join('; ')}</li>`);
  const switched = page.manifest?.cleanup?.switchedBack;
  if (switched) rows.push(html`<li>Production traffic switched back from ${switched.from} to ${switched.to}.</li>`);
  if (v.staging) rows.push(html`<li>Staging endpoint: <code>${v.staging.endpoint}</code></li>`);
  return html`<section id="decisions"><h2>Decisions</h2>${rows.length ? html`<ul>${rows}</ul>` : html`<p class="muted">None yet.</p>`}</section>`;
}

function logSection(page: RunPage): Html {
  const log = page.log;
  return html`<section id="log"><h2>Training log</h2>${'error' in log ? html`<p class="muted">${log.error}</p>` : html`<p class="muted">${log.source}, last ${log.lines.length} lines</p><pre class="log">${log.lines.join('\n')}</pre>`}</section>`;
}

/** The run page's live part (the script swaps it in while the run runs). */
export function runBody(page: RunPage, graph: GraphModel): Html {
  const v = page.view;
  return html`<div id="run" data-status="${v.status}">
<h1>${v.name} ${statusCell(v.status)}</h1>
<p>${v.model ? html`<a href="${href('models', v.model)}">${v.model}</a> ${v.version} · ` : ''}started ${when(v.startedAt)} · ${seconds(v.seconds)}${v.currentStep ? html` · in <b>${v.currentStep}</b>` : v.lastStep ? html` · ended in ${v.lastStep}` : ''}${v.consoleLink ? html` · <a href="${v.consoleLink}">Step Functions console</a>` : ''}</p>
${v.error ? html`<p class="error" id="run-error">${v.error}</p>` : ''}
<div class="columns"><div class="graph-wrap fixed">${raw(graphSvg(graph, stepMarks(v)))}</div>
<div>${trainingSection(v)}${lineageSection(page)}${decisionsSection(page)}</div></div>
${evaluationSection(page)}${logSection(page)}</div>`;
}

export function modelPage(m: ModelPage): Html {
  const p = m.production;
  const s = p.serving;
  return html`<h1>Model ${p.model}</h1>
<section id="serving"><h2>Production</h2>${s
    ? kv([
        ['serves', html`<b class="version">${s.version}</b>`],
        ['endpoint', s.endpoint ? html`<code>${s.endpoint}</code>` : null],
        ['since', `${when(s.since)} (${s.how}${s.by ? ` by ${s.by}` : ''})`],
        ['previous version', s.previousVersion],
      ])
    : html`<p class="muted">Nothing serves production: no version was released yet.</p>`}</section>
<section id="history"><h2>Releases and rollbacks</h2>${p.history.length
    ? html`<table class="grid"><thead><tr><th>At (UTC)</th><th>What</th><th>Version</th><th>By</th><th>Run</th></tr></thead><tbody>${p.history.map(
        (h) => html`<tr data-action="${h.action}"><td>${when(h.at)}</td><td>${h.action}${h.canary ? html`: canary ${h.canary.version} failed (${h.canary.reasons.join('; ')})` : ''}</td><td>${h.version}</td><td>${h.by}</td><td>${h.run ? html`<a href="${href('runs', h.run)}">${h.run}</a>` : ''}</td></tr>`,
      )}</tbody></table>`
    : html`<p class="muted">No history.</p>`}</section>
<section id="retained"><h2>Retained versions</h2>${p.retained === null
    ? html`<p class="muted">Kept as scaled-down Deployments in the production namespace (the cluster could not be read with these credentials, or the stack predates its ProductionNamespace output; <code>kubectl get deploy -n &lt;production namespace&gt;</code> shows them).</p>`
    : p.retained.length
      ? html`<table class="grid"><thead><tr><th>Version</th><th class="num">Replicas</th><th>Retired (UTC)</th></tr></thead><tbody>${p.retained.map((r) => html`<tr><td>${r.version}</td><td class="num">${r.replicas}</td><td>${when(r.retiredAt)}</td></tr>`)}</tbody></table>`
      : html`<p class="muted">None: only the serving version is deployed.</p>`}</section>
<section id="versions"><h2>Versions in the registry</h2><table class="grid"><thead><tr><th>Version</th><th>Outcome</th><th class="num">Accuracy</th><th>Run</th><th>Recorded (UTC)</th></tr></thead><tbody>
${m.versions.map((v) => html`<tr><td>${v.version}</td><td>${v.status ?? html`<span class="muted">running or not recorded</span>`}</td><td class="num">${percent(v.accuracy, 2)}</td><td>${v.run ? html`<a href="${href('runs', v.run)}">${v.run}</a>` : ''}</td><td>${when(v.recordedAt)}</td></tr>`)}</tbody></table></section>`;
}
