#!/usr/bin/env node
// The `mlpipe` command: cli/main.ts from its cached esbuild bundle, as `npm run mlpipe` runs it (cli/start.cjs).
require('./start.cjs');
