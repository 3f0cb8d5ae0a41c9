import type { Plugin } from 'esbuild';
/** local/installed-packages.cjs: bare imports left as `require`s of their installed files. */
export declare const installedPackages: Plugin;
