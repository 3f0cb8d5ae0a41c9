/**
 * The local run maps every Task state of statemachine/pipeline.asl.json to the same handler module
 * the CDK deploys as that state's Lambda (docs/architecture.md). Modules load lazily: settings are read
 * at module load, so the local runner sets the environment first.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

type Handler = (input: unknown) => Promise<unknown>;

/** ASL placeholder → handler module (relative to functions/). */
export const FUNCTION_MODULES: Record<string, string> = {
  PrepareRunFunctionArn: 'prepare-run',
  SubmitTrainingFunctionArn: 'submit-training',
  AwaitTrainingFunctionArn: 'await-training',
  DeployStagingFunctionArn: 'deploy-staging',
  AwaitStagingRolloutFunctionArn: 'await-staging-rollout',
  ExposeStagingFunctionArn: 'expose-staging',
  AwaitStagingEndpointFunctionArn: 'await-staging-endpoint',
  EvaluateModelFunctionArn: 'evaluate-model',
  RequestApprovalFunctionArn: 'request-approval',
  DeployProductionFunctionArn: 'deploy-production',
  AwaitProductionRolloutFunctionArn: 'await-production-rollout',
  SwitchProductionTrafficFunctionArn: 'switch-production-traffic',
  AwaitProductionEndpointFunctionArn: 'await-production-endpoint',
  RecordReleaseFunctionArn: 'record-release',
  CleanupFunctionArn: 'cleanup',
  NotifyFunctionArn: 'notify',
};

export const ASL_PATH = join(__dirname, '..', 'statemachine', 'pipeline.asl.json');

export function localFunctionArn(placeholder: string): string {
  return `arn:aws:lambda:us-east-1:000000000000:function:mlpipe-local-${placeholder.replace(/FunctionArn$/, '')}`;
}

/** The ASL with every `${X}` replaced by a local function ARN, as CDK's definitionSubstitutions would. */
export function loadLocalDefinition(): { definition: Record<string, unknown>; stateModules: Record<string, string> } {
  const text = readFileSync(ASL_PATH, 'utf8').replace(/\$\{([A-Za-z0-9]+)\}/g, (_, name: string) => {
    if (!(name in FUNCTION_MODULES)) throw new Error(`statemachine/pipeline.asl.json: no handler for placeholder \${${name}}`);
    return localFunctionArn(name);
  });
  const definition = JSON.parse(text) as { States: Record<string, { Type: string; Resource?: string; Parameters?: { FunctionName?: string } }> };
  const byArn = new Map(Object.entries(FUNCTION_MODULES).map(([p, m]) => [localFunctionArn(p), m]));
  const stateModules: Record<string, string> = {};
  for (const [name, state] of Object.entries(definition.States)) {
    if (state.Type !== 'Task') continue;
    const arn = state.Resource?.startsWith('arn:aws:states:::') ? state.Parameters?.FunctionName : state.Resource;
    const mod = arn ? byArn.get(arn) : undefined;
    if (!mod) throw new Error(`Task state ${name} has no local handler`);
    stateModules[name] = mod;
  }
  return { definition, stateModules };
}

const loaded = new Map<string, Promise<Handler>>();

export function loadHandler(moduleName: string): Promise<Handler> {
  let p = loaded.get(moduleName);
  if (!p) {
    // require, not import(): the project is CommonJS under tsx and jest alike.
    p = Promise.resolve().then(() => {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const m = require(join(__dirname, '..', 'functions', moduleName)) as { handler?: Handler; default?: { handler?: Handler } };
      const h = m.handler ?? m.default?.handler;
      if (typeof h !== 'function') throw new Error(`functions/${moduleName} does not export handler`);
      return h;
    });
    loaded.set(moduleName, p);
  }
  return p;
}
