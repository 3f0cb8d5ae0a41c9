/**
 * Source-mapped stack traces for the local bundles (the Lambda bundles in their worker threads, the
 * images' bundles in the pods), paid for only when a trace is written. `node --enable-source-maps` reads
 * and parses the source map of every module it loads, at load: ~0.45 s of CPU per process for
 * TensorFlow.js's maps alone (measured: importing tfjs took 0.42 s of CPU without the flag, 0.9 s with it;
 * a repeat local run starts about ten pods), ~1 s for the 24 Lambda bundles' 1.3 MB maps. Here a frame in
 * one of the bundles under `dir` names its TypeScript file and line as the flag would; a bundle's map is
 * read the first time one of its frames is formatted. Frames elsewhere (npm packages) stay as V8 writes them.
 * Plain CommonJS: it is loaded before any TypeScript loader (`node --require`, or bootstrap.cjs).
 */
'use strict';
const { readFileSync } = require('node:fs');
const { SourceMap } = require('node:module');
const path = require('node:path');
const { fileURLToPath } = require('node:url');

/** Maps frames of the bundles (files with a `<file>.map` beside them) in `dir`; returns nothing. */
function mapStackTraces(dir) {
  const root = path.resolve(dir) + path.sep;
  /** file → its SourceMap, or null when it has none (or it cannot be read). */
  const maps = new Map();
  const mapOf = (file) => {
    if (!maps.has(file)) {
      let map = null;
      try {
        map = { sourceMap: new SourceMap(JSON.parse(readFileSync(`${file}.map`, 'utf8'))), dir: path.dirname(file) };
      } catch {
        // no map beside it, or unreadable: the frame stays as it is
      }
      maps.set(file, map);
    }
    return maps.get(file);
  };
  const frameText = (frame) => {
    const text = String(frame);
    const name = frame.getFileName();
    const line = frame.getLineNumber();
    const column = frame.getColumnNumber();
    if (!name || line == null || column == null) return text;
    const file = name.startsWith('file:') ? fileURLToPath(name) : name;
    if (!file.startsWith(root)) return text;
    const map = mapOf(file);
    if (!map) return text;
    const entry = map.sourceMap.findEntry(line - 1, column - 1);
    if (!entry || entry.originalSource === undefined) return text;
    const source = /^[a-z]+:/i.test(entry.originalSource) && !entry.originalSource.startsWith('file:')
      ? entry.originalSource
      : path.resolve(map.dir, entry.originalSource.startsWith('file:') ? fileURLToPath(entry.originalSource) : entry.originalSource);
    const where = `${name}:${line}:${column}`;
    const mapped = `${source}:${entry.originalLine + 1}:${entry.originalColumn + 1}`;
    return text.includes(where) ? text.replace(where, mapped) : text;
  };
  // Node's own formatter, called with no frames, writes the first line as Node does (`TypeError
  // [ERR_INVALID_ARG_VALUE]: …`, with the code Error.prototype.toString leaves out).
  const nodeFormat = Error.prepareStackTrace;
  Error.prepareStackTrace = (error, frames) => {
    let head;
    try {
      head = nodeFormat ? nodeFormat(error, []) : Error.prototype.toString.call(error);
    } catch {
      head = '<error>';
    }
    return head + frames.map((frame) => `\n    at ${frameText(frame)}`).join('');
  };
}

module.exports = { mapStackTraces };

// `node --require local/lazy-source-maps.cjs <bundle>` (no main module yet): the bundles beside the program.
// A worker thread the program starts runs this preload too, before its argv names anything: it maps the
// directory its main thread chose, passed on in the environment workers inherit.
const DIR_ENV = 'MLPIPE_SOURCE_MAP_DIR';
if (require.main === undefined && process.argv[1]) {
  const dir = path.dirname(path.resolve(process.argv[1]));
  process.env[DIR_ENV] = dir;
  mapStackTraces(dir);
} else if (!require('node:worker_threads').isMainThread && process.env[DIR_ENV]) {
  mapStackTraces(process.env[DIR_ENV]);
}
