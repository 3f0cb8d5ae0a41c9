/**
 * The web console's HTTP server: 127.0.0.1 only, GET (and HEAD) only, server-rendered pages over
 * console/data.ts. Routes:
 *   /                     runs (live: the page polls /api/runs), pending approvals, models
 *   /api/runs             the runs list and pending approvals as JSON
 *   /runs/<run>           a run: graph, training, evaluation, lineage, decisions, log tail (?part=run: its live part)
 *   /api/runs/<run>       the run's RunView (what `mlpipe status -o json` prints)
 *   /models/<model>       what serves production, releases and rollbacks, versions
 * The AWS clients it reads through are read-only (console/read-only.ts).
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { s3Client } from '../functions/shared/clients';
import { listenOnLoopback } from '../local/http';
import type { Target } from '../cli/target';
import { CliError } from '../cli/io';
import { ConsoleData } from './data';
import { html, page } from './html';
import { modelPage, RUN_SCRIPT, runBody, RUNS_SCRIPT, runsPage } from './pages';
import { readOnly, S3_READS, SFN_READS } from './read-only';

export interface ConsoleServer {
  /** `http://127.0.0.1:<port>` */
  url: string;
  close(): Promise<void>;
}

/** A run or model name in a path: what names may be (execution names, model names), nothing else. */
const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,79}$/;

class NotFound extends Error {}

/**
 * Serves the console for `target`; its Step Functions client becomes read-only. `guardS3`: the shared S3
 * client (functions/shared/clients.ts, which the registry reads through) too — for a process that only
 * serves the console (`mlpipe console`), not for one that also writes through it (a test, the local run).
 */
export async function startConsole(target: Target, opts: { port?: number; guardS3?: boolean } = {}): Promise<ConsoleServer> {
  readOnly(target.sfn, SFN_READS);
  if (opts.guardS3) readOnly(s3Client(), S3_READS);
  const data = new ConsoleData(target);
  const where = target.mode === 'local' ? `local pipeline (${target.stateDir ?? '.mlpipe'})` : `AWS ${target.region}`;
  const models = (names: Array<string | null>) => [...new Set([target.modelName ?? null, ...names].filter((m): m is string => !!m))].sort();

  const send = (res: ServerResponse, status: number, type: string, body: string) => {
    res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store', 'x-content-type-options': 'nosniff', 'content-security-policy': "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src 'self' data:" });
    res.end(body);
  };
  const sendPage = (res: ServerResponse, status: number, title: string, body: ReturnType<typeof html>, script?: string) =>
    send(res, status, 'text/html; charset=utf-8', page({ title, target: where, body, ...(script ? { script } : {}) }));
  const json = (res: ServerResponse, value: unknown) => send(res, 200, 'application/json', JSON.stringify(value));
  const name = (segment: string | undefined): string => {
    let decoded: string;
    try {
      decoded = decodeURIComponent(segment ?? '');
    } catch {
      throw new NotFound(`"${segment}" is not a name.`);
    }
    if (!NAME.test(decoded)) throw new NotFound(`"${decoded.slice(0, 80)}" is not a run or model name.`);
    return decoded;
  };

  const LOOPBACK_HOST = /^(127\.0\.0\.1|localhost|\[::1\])(:\d+)?$/i;
  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    // Loopback names only: a page on another site that points its own name at 127.0.0.1 (DNS rebinding)
    // would otherwise read the console, approval links included, as if it were that site.
    if (!LOOPBACK_HOST.test(req.headers.host ?? '')) {
      res.writeHead(421, { 'content-type': 'text/plain', 'x-content-type-options': 'nosniff' });
      res.end('The console answers only requests addressed to 127.0.0.1, localhost or [::1].\n');
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain' });
      res.end('The console only reads: GET or HEAD.\n');
      return;
    }
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const parts = url.pathname.split('/').filter(Boolean);
    try {
      if (parts.length === 0) {
        const snapshot = await data.runs();
        return sendPage(res, 200, 'Runs', runsPage(snapshot, models(snapshot.runs.map((r) => r.model))), RUNS_SCRIPT);
      }
      if (parts[0] === 'api' && parts[1] === 'runs' && parts.length === 2) return json(res, await data.runs());
      if (parts[0] === 'api' && parts[1] === 'runs' && parts.length === 3) return json(res, (await data.run(name(parts[2]))).view);
      if (parts[0] === 'runs' && parts.length === 2) {
        const run = name(parts[1]);
        const [p, graph] = await Promise.all([data.run(run), data.graphModel()]);
        if (url.searchParams.get('part') === 'run') return send(res, 200, 'text/html; charset=utf-8', runBody(p, graph).markup);
        return sendPage(res, 200, `Run ${run}`, runBody(p, graph), RUN_SCRIPT);
      }
      if (parts[0] === 'models' && parts.length === 2) {
        const model = name(parts[1]);
        return sendPage(res, 200, `Model ${model}`, modelPage(await data.model(model)));
      }
      throw new NotFound(`There is no page ${url.pathname}.`);
    } catch (err) {
      const e = err as Error;
      // A run that does not exist is the user's mistake (404); anything else is the console's or AWS's (500).
      const notFound = err instanceof NotFound || (err instanceof CliError && /There is no run/.test(e.message));
      const status = notFound ? 404 : 500;
      if (parts[0] === 'api') {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: e.message }));
        return;
      }
      sendPage(res, status, notFound ? 'Not found' : 'Error', html`<h1>${notFound ? 'Not found' : 'Error'}</h1><p class="error">${e.name && e.name !== 'Error' && !notFound ? `${e.name}: ` : ''}${e.message}</p><p><a href="/">All runs</a></p>`);
    }
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((err: Error) => {
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain', 'x-content-type-options': 'nosniff' });
      res.end(String(err.message));
    });
  });
  const listener = await listenOnLoopback(server, opts.port ?? 0);
  return { url: listener.endpoint, close: () => listener.stop() };
}
