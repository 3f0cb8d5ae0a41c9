/**
 * What a Lambda lacks on AWS fails locally too: the local run gives each function exactly the
 * environment its synthesized template gives it, so a template whose function lacks a setting its
 * handler requires makes the local invocation of that function's real bundle fail, naming the setting.
 * Uses the end-to-end tests' synthesized stack (shared cache: synthesized once).
 */
import { LocalLambdaRuntime } from '../../local/lambda/runtime';
import { loadLocalStack, readAssembly, type CfnTemplate, type TemplateFunction } from '../../local/lambda/template';
import { synthesizeE2eStack } from './shared-synth';

// The first test run on a fresh clone synthesizes the stack (esbuild bundles every function).
jest.setTimeout(600_000);

const LOCAL = {
  region: 'us-east-1',
  accountId: '000000000000',
  artifactBucket: 'mlpipe-local',
  stateMachineArn: 'arn:aws:states:us-east-1:000000000000:stateMachine:mlpipe-local',
  approvalUrl: 'http://127.0.0.1:1',
};

const PREPARE_EVENT = {
  input: { image: 'mlpipe/fashion-mnist-train:local' },
  executionArn: 'arn:aws:states:us-east-1:000000000000:execution:mlpipe-local:run-1',
  executionName: 'run-1',
  startTime: '2026-01-02T03:04:05.000Z',
};

describe('a function whose template lacks a setting it requires', () => {
  const runtimes: LocalLambdaRuntime[] = [];
  let dir: string;

  beforeAll(async () => {
    dir = (await synthesizeE2eStack()).dir;
  });

  afterAll(async () => {
    await Promise.all(runtimes.map((r) => r.stop()));
  });

  /** The synthesized stack, with `edit` applied to its template first. */
  function runtimeFor(edit: (template: CfnTemplate) => void): { runtime: LocalLambdaRuntime; prepare: TemplateFunction } {
    const assembly = readAssembly(dir);
    edit(assembly.template);
    const stack = loadLocalStack(dir, LOCAL, assembly);
    const runtime = new LocalLambdaRuntime({ stack, runtimeEnv: {} });
    runtimes.push(runtime);
    return { runtime, prepare: stack.functions.find((f) => f.logicalId.includes('FunctionsPrepareRun'))! };
  }

  const prepareVariables = (t: CfnTemplate): Record<string, unknown> => {
    const id = Object.keys(t.Resources).find((k) => k.includes('FunctionsPrepareRun') && t.Resources[k]!.Type === 'AWS::Lambda::Function')!;
    return (t.Resources[id]!.Properties!.Environment as { Variables: Record<string, unknown> }).Variables;
  };

  it('runs from the template as synthesized', async () => {
    const { runtime, prepare } = runtimeFor(() => undefined);
    await expect(runtime.invoke(prepare.arn, PREPARE_EVENT)).resolves.toMatchObject({ run: { modelName: 'fashion-mnist', namespaces: { staging: 'mlpipe-staging' } } });
  });

  it('fails locally, naming the setting, when the template does not give it', async () => {
    // GIVEN PrepareRun's template environment without STAGING_NAMESPACE (the CDK forgot to pass it)
    const { runtime, prepare } = runtimeFor((t) => delete prepareVariables(t).STAGING_NAMESPACE);
    // WHEN the local run invokes its bundle, THEN the invocation fails and says which setting is missing
    await expect(runtime.invoke(prepare.arn, PREPARE_EVENT)).rejects.toThrow(/STAGING_NAMESPACE/);
    // ... although this process has it: nothing leaks from the runner's environment into a function's
    process.env.STAGING_NAMESPACE = 'mlpipe-staging';
    try {
      await expect(runtime.invoke(prepare.arn, PREPARE_EVENT)).rejects.toThrow(/STAGING_NAMESPACE/);
    } finally {
      delete process.env.STAGING_NAMESPACE;
    }
  });
});
