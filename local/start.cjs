/**
 * `npm start`: local/main.ts from its cached esbuild bundle (local/bundled-start.cjs says why; through
 * tsx's loader the first output line came ~3 s after the command). Plain CommonJS: no TypeScript loader yet.
 */
'use strict';
require('./bundled-start.cjs').runBundled('local/main.ts', 'mlpipe local run');
