/**
 * An esbuild plugin for bundles of the project's own code that run from outside the repository (a state
 * directory, a build cache): bare imports (npm packages) stay outside the bundle, as `require`s of the
 * absolute file they resolve to from the importing source, so the bundle loads them from wherever it is
 * written and only the project's TypeScript is compiled. Plain CommonJS: local/start.cjs uses it before
 * any TypeScript loader runs; local/images.ts (the pods' bundles) uses it too.
 */
'use strict';
const { createRequire } = require('node:module');
const { isAbsolute, join } = require('node:path');

/** @type {import('esbuild').Plugin} */
const installedPackages = {
  name: 'installed-packages',
  setup(b) {
    b.onResolve({ filter: /^[^./]/ }, (args) => {
      if (args.path.startsWith('node:') || isAbsolute(args.path)) return { path: args.path, external: true };
      try {
        return { path: createRequire(join(args.resolveDir, 'x.js')).resolve(args.path), external: true };
      } catch {
        return undefined; // esbuild reports it, naming the import
      }
    });
  },
};

module.exports = { installedPackages };
