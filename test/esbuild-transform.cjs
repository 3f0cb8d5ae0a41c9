// Jest transformer: TypeScript, and the ESM-only packages @kubernetes/client-node 2.x pulls in, to
// CommonJS with esbuild. Type checking is tsc's job (`npm test` runs `tsc --noEmit` first).
const { transformSync } = require('esbuild');

const ESM_SYNTAX = /^\s*(import\s|import\{|export\s|export\{)/m;

module.exports = {
  process(source, filename) {
    const isTs = filename.endsWith('.ts');
    if (!isTs && filename.includes('/node_modules/') && !ESM_SYNTAX.test(source)) {
      return { code: source }; // already CommonJS
    }
    const result = transformSync(source, {
      loader: isTs ? 'ts' : 'js',
      format: 'cjs',
      target: 'node22',
      sourcemap: 'inline',
      sourcefile: filename,
    });
    return { code: result.code };
  },
};
