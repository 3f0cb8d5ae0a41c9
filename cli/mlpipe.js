#!/usr/bin/env node
// The `mlpipe` command: registers tsx so the TypeScript CLI runs as is, then hands over to cli/main.ts.
require('tsx/cjs');
const { main } = require('./main.ts');

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err) => {
    console.error(`mlpipe: ${err && err.message ? err.message : err}`);
    process.exitCode = 1;
  },
);
