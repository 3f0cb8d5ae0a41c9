/**
 * The console's HTML building blocks: escaping (every value rendered comes from a run, a model name, a
 * log line — user input), the page frame with its style, and small formatters. Plain strings: the pages
 * are server-rendered, no front-end build.
 */
const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

export function escapeHtml(value: unknown): string {
  return String(value ?? '').replace(/[&<>"']/g, (c) => ESCAPES[c]!);
}

/** A tagged template that escapes every interpolated value, except Html (already built markup). */
export class Html {
  constructor(readonly markup: string) {}
  toString(): string {
    return this.markup;
  }
}

export function html(strings: TemplateStringsArray, ...values: unknown[]): Html {
  let out = strings[0]!;
  values.forEach((v, i) => {
    out += render(v) + strings[i + 1]!;
  });
  return new Html(out);
}

function render(v: unknown): string {
  if (v instanceof Html) return v.markup;
  if (Array.isArray(v)) return v.map(render).join('');
  if (v === undefined || v === null || v === false) return '';
  return escapeHtml(v);
}

/** Markup that is already safe (the SVG graph builds its own escaped markup). */
export function raw(markup: string): Html {
  return new Html(markup);
}

/** A link inside the console: path segments are URI-encoded. */
export function href(...segments: string[]): string {
  return '/' + segments.map(encodeURIComponent).join('/');
}

export function when(iso: string | null | undefined): string {
  if (!iso) return '';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z');
}

export function percent(v: number | undefined | null, digits = 1): string {
  return typeof v === 'number' ? `${(v * 100).toFixed(digits)} %` : '–';
}

const CSS = `
body { font: 14px/1.45 system-ui, sans-serif; margin: 0; color: #212529; background: #f8f9fa; }
header { background: #212529; color: #fff; padding: 8px 20px; display: flex; gap: 20px; align-items: baseline; }
header a { color: #fff; text-decoration: none; } header .target { color: #adb5bd; font-size: 12px; margin-left: auto; }
main { padding: 12px 20px; max-width: 1240px; }
h1 { font-size: 20px; margin: 8px 0; } h2 { font-size: 16px; margin: 18px 0 6px; }
section { background: #fff; border: 1px solid #dee2e6; border-radius: 6px; padding: 8px 14px; margin: 10px 0; }
table { border-collapse: collapse; } th, td { padding: 3px 10px 3px 0; text-align: left; vertical-align: top; }
th { color: #495057; font-weight: 600; } td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
table.grid td, table.grid th { border-bottom: 1px solid #e9ecef; padding: 3px 8px; }
.status { font-weight: 600; } .status.SUCCEEDED { color: #1e7e34; } .status.FAILED, .status.TIMED_OUT, .status.ABORTED { color: #c82333; }
.status.RUNNING { color: #b8860b; }
.worse { color: #c82333; } .better { color: #1e7e34; }
table.kv td { overflow-wrap: anywhere; }
table.grid.confusion td, table.grid.confusion th { padding: 2px 5px; font-size: 12px; }
table.confusion td { text-align: right; min-width: 30px; font-variant-numeric: tabular-nums; }
table.confusion td.diagonal { font-weight: 700; }
pre.log { background: #212529; color: #e9ecef; padding: 8px; overflow: auto; max-height: 360px; font-size: 12px; }
.columns { display: flex; gap: 16px; align-items: flex-start; } .columns > div { flex: 1; min-width: 0; } .columns > div.fixed { flex: 0 0 auto; }
.graph-wrap { overflow: auto; } .muted { color: #868e96; } .error { color: #c82333; }
progress { width: 240px; }`;

export interface Frame {
  title: string;
  /** What the console reads, in the header: `local` or the stack's region. */
  target: string;
  body: Html;
  /** A script for the page (inline, no build step). */
  script?: string;
}

export function page(f: Frame): string {
  return html`<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${f.title} · mlpipe</title>
<meta name="viewport" content="width=device-width, initial-scale=1"><style>${raw(CSS)}</style></head>
<body><header><a href="/"><b>mlpipe</b></a><a href="/">Runs</a><span class="target">${f.target} · read-only</span></header>
<main>${f.body}</main>${f.script ? raw(`<script>${f.script}</script>`) : ''}</body></html>`.markup;
}
