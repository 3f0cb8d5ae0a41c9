/**
 * `npm run mlpipe`, and the console `npm start` runs beside it: cli/main.ts from its cached esbuild bundle
 * (local/bundled-start.cjs), not through tsx's loader, which compiles each module as it loads.
 */
'use strict';
require('../local/bundled-start.cjs').runBundled('cli/main.ts', 'mlpipe', ({ main }) =>
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (err) => {
      console.error(`mlpipe: ${err && err.message ? err.message : err}`);
      process.exitCode = 1;
    },
  ),
);
