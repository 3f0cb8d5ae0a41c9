/**
 * Each Lambda of the synthesized stack ships its own bundle, built from its own handler. CDK stages an asset
 * once per cache key (source path + bundling options; a local bundling closure is not part of it), so a key
 * that did not name the entry once gave all 19 functions the first function's bundle; only running the
 * synthesized stack showed it. Checked on the end-to-end tests' synthesized assembly (shared cache).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { FUNCTION_SPECS } from '../../lib/constructs/pipeline-functions';
import { loadLocalStack } from '../../local/lambda/template';
import { synthesizeE2eStack } from './shared-synth';

// The first test run on a fresh clone synthesizes the stack (esbuild bundles every function).
jest.setTimeout(600_000);

describe('the synthesized stack’s function code', () => {
  it('gives every function its own asset, bundled from its own entry file', async () => {
    // GIVEN the synthesized assembly the local run and the end-to-end tests use
    const { dir } = await synthesizeE2eStack();
    const stack = loadLocalStack(dir, {
      region: 'us-east-1',
      accountId: '000000000000',
      artifactBucket: 'mlpipe-local',
      stateMachineArn: 'arn:aws:states:us-east-1:000000000000:stateMachine:mlpipe-local',
      approvalUrl: 'http://127.0.0.1:1',
    });
    // WHEN each pipeline function's code directory is read
    const pipelineFunctions = FUNCTION_SPECS.map((spec) => {
      const fn = stack.functions.find((f) => f.logicalId.startsWith(`PipelineFunctions${spec.id}`) || f.logicalId.includes(`Functions${spec.id}`));
      if (!fn?.codeDir) throw new Error(`no bundled function for ${spec.id} in the template`);
      return { spec, fn, codeDir: fn.codeDir };
    });
    // THEN no two share a code directory, and each bundle's source map lists its own handler as a source
    const dirs = pipelineFunctions.map(({ codeDir }) => codeDir);
    expect(new Set(dirs).size).toBe(dirs.length);
    for (const { spec, codeDir } of pipelineFunctions) {
      const map = JSON.parse(readFileSync(join(codeDir, 'index.js.map'), 'utf8')) as { sources: string[] };
      const own = map.sources.filter((s) => /(^|\/)functions\/[^/]+\.ts$/.test(s)).map((s) => s.replace(/^.*functions\//, 'functions/'));
      expect({ id: spec.id, handlers: own }).toEqual({ id: spec.id, handlers: [spec.entry] });
    }
  });
});
