/**
 * Reads a synthesized cloud assembly (cdk.out) the way SAM CLI's local invoke does: each
 * AWS::Lambda::Function with the asset directory `cdk synth` bundled for it, its Timeout, MemorySize and
 * Environment, and the AWS::StepFunctions::StateMachine definition with its DefinitionSubstitutions.
 * CloudFormation intrinsics (Ref, Fn::GetAtt, Fn::Join, Fn::Sub, Fn::Select, Fn::Split) are resolved to
 * local names and endpoints, so what a template gives a function on AWS is exactly what it gets locally.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

export class TemplateError extends Error {
  override name = 'TemplateError';
}

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

interface Resource {
  Type: string;
  Properties?: Record<string, Json>;
  Metadata?: Record<string, Json>;
}

export interface CfnTemplate {
  Resources: Record<string, Resource>;
  Outputs?: Record<string, { Value: Json }>;
  Parameters?: Record<string, { Default?: Json }>;
}

/** What the local run stands in for: the values CloudFormation would give the stack's resources. */
export interface LocalResources {
  region: string;
  accountId: string;
  stackName: string;
  /** Physical bucket name of the artifact bucket (the stack output ArtifactBucketName). */
  artifactBucket: string;
  /** ARN the local Step Functions engine runs the stack's state machine under. */
  stateMachineArn: string;
  /** Base URL of the local approval endpoint (the HTTP API's ApiEndpoint). */
  approvalUrl: string;
}

/** One AWS::Lambda::Function of the template, as the local runtime runs it. */
export interface TemplateFunction {
  logicalId: string;
  /** Local function name (what Ref gives). */
  name: string;
  arn: string;
  /** The asset directory `cdk synth` bundled for it (undefined when the stack was synthesized without bundling). */
  codeDir?: string;
  /** e.g. `index.handler`. */
  handler: string;
  runtime: string;
  timeoutSeconds: number;
  memoryMb: number;
  /** Exactly the template's Environment.Variables, intrinsics resolved. */
  environment: Record<string, string>;
  logFormat?: string;
  applicationLogLevel?: string;
  logGroupName: string;
}

export interface LocalStack {
  dir: string;
  template: CfnTemplate;
  resources: LocalResources;
  functions: TemplateFunction[];
  /** By logical id, local name or local ARN (with or without a qualifier). */
  findFunction(nameOrArn: string): TemplateFunction | undefined;
  /** The state machine's DefinitionString with its DefinitionSubstitutions applied, parsed. */
  definition: { States: Record<string, { Type: string; Resource?: string; Parameters?: Record<string, unknown> }> } & Record<string, unknown>;
  /** Stack outputs, resolved. */
  outputs: Record<string, string>;
}

/** Lambda's defaults when a template leaves them out. */
const DEFAULT_TIMEOUT_SECONDS = 3;
const DEFAULT_MEMORY_MB = 128;

function isObject(v: Json | undefined): v is { [key: string]: Json } {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Reads `<dir>/manifest.json` → the one CloudFormation stack's template and file assets. */
export function readAssembly(dir: string): { template: CfnTemplate; stackName: string; assetDirs: Map<string, string> } {
  const manifestFile = join(dir, 'manifest.json');
  if (!existsSync(manifestFile)) throw new TemplateError(`${dir} is not a cloud assembly: it has no manifest.json.`);
  const manifest = JSON.parse(readFileSync(manifestFile, 'utf8')) as {
    artifacts?: Record<string, { type: string; properties?: { templateFile?: string } }>;
  };
  const stacks = Object.entries(manifest.artifacts ?? {}).filter(([, a]) => a.type === 'aws:cloudformation:stack');
  if (stacks.length !== 1) throw new TemplateError(`${dir}: expected one stack in the cloud assembly, found ${stacks.length}.`);
  const [stackName, artifact] = stacks[0]!;
  const templateFile = artifact.properties?.templateFile ?? `${stackName}.template.json`;
  const template = JSON.parse(readFileSync(join(dir, templateFile), 'utf8')) as CfnTemplate;

  // The Code.S3Key of a function is the objectKey its asset is published under; assets.json maps it back
  // to the directory in cdk.out.
  const assetDirs = new Map<string, string>();
  const assetsFile = join(dir, `${stackName}.assets.json`);
  if (existsSync(assetsFile)) {
    const assets = JSON.parse(readFileSync(assetsFile, 'utf8')) as {
      files?: Record<string, { source: { path?: string }; destinations: Record<string, { objectKey: string }> }>;
    };
    for (const file of Object.values(assets.files ?? {})) {
      if (!file.source.path) continue;
      for (const d of Object.values(file.destinations)) assetDirs.set(d.objectKey, join(dir, file.source.path));
    }
  }
  return { template, stackName, assetDirs };
}

/**
 * Resolves CloudFormation intrinsics against local stand-ins. Anything without a local value (an
 * import, a condition, an attribute no stand-in has) fails with the path that uses it.
 */
export class IntrinsicResolver {
  constructor(
    private readonly template: CfnTemplate,
    private readonly local: LocalResources,
    private readonly functionNames: Map<string, string>,
  ) {}

  private pseudo(name: string): string | undefined {
    const { region, accountId, stackName } = this.local;
    const values: Record<string, string> = {
      'AWS::Region': region,
      'AWS::AccountId': accountId,
      'AWS::Partition': 'aws',
      'AWS::URLSuffix': 'amazonaws.com',
      'AWS::StackName': stackName,
      'AWS::StackId': `arn:aws:cloudformation:${region}:${accountId}:stack/${stackName}/00000000-0000-0000-0000-000000000000`,
    };
    return values[name];
  }

  private arn(service: string, resource: string): string {
    return `arn:aws:${service}:${this.local.region}:${this.local.accountId}:${resource}`;
  }

  /** What `Ref` gives for a resource of this template (its physical id). */
  ref(logicalId: string, where: string): string {
    const pseudo = this.pseudo(logicalId);
    if (pseudo !== undefined) return pseudo;
    const param = this.template.Parameters?.[logicalId];
    if (param) return typeof param.Default === 'string' ? param.Default : String(param.Default ?? '');
    const resource = this.template.Resources[logicalId];
    if (!resource) throw new TemplateError(`${where}: Ref to "${logicalId}", which is not in the template.`);
    switch (resource.Type) {
      case 'AWS::S3::Bucket':
        return this.isArtifactBucket(logicalId) ? this.local.artifactBucket : `${this.local.stackName}-${logicalId}`.toLowerCase().slice(0, 63);
      case 'AWS::SNS::Topic':
        return this.arn('sns', `${this.local.stackName}-${logicalId}`);
      case 'AWS::SecretsManager::Secret':
        return this.arn('secretsmanager', `secret:${logicalId}-local`);
      case 'AWS::StepFunctions::StateMachine':
        return this.local.stateMachineArn;
      case 'AWS::Lambda::Function':
        return this.functionNames.get(logicalId)!;
      case 'AWS::SQS::Queue':
        return `https://sqs.${this.local.region}.amazonaws.com/${this.local.accountId}/${this.local.stackName}-${logicalId}`;
      case 'AWS::Logs::LogGroup':
        return `/aws/local/${this.local.stackName}/${logicalId}`;
      default:
        // Roles, policies, keys, APIs...: their physical id is only a name locally.
        return `${this.local.stackName}-${logicalId}`;
    }
  }

  private isArtifactBucket(logicalId: string): boolean {
    const out = this.template.Outputs?.ArtifactBucketName?.Value;
    return isObject(out) && out.Ref === logicalId;
  }

  getAtt(logicalId: string, attribute: string, where: string): string {
    const resource = this.template.Resources[logicalId];
    if (!resource) throw new TemplateError(`${where}: Fn::GetAtt of "${logicalId}", which is not in the template.`);
    const key = `${resource.Type}.${attribute}`;
    switch (key) {
      case 'AWS::Lambda::Function.Arn':
        return this.arn('lambda', `function:${this.ref(logicalId, where)}`);
      case 'AWS::S3::Bucket.Arn':
        return `arn:aws:s3:::${this.ref(logicalId, where)}`;
      case 'AWS::SNS::Topic.TopicArn':
      case 'AWS::SecretsManager::Secret.Id':
        return this.ref(logicalId, where);
      case 'AWS::StepFunctions::StateMachine.Arn':
        return this.local.stateMachineArn;
      case 'AWS::StepFunctions::StateMachine.Name':
        return this.local.stateMachineArn.split(':').pop()!;
      case 'AWS::ApiGatewayV2::Api.ApiEndpoint':
        return this.local.approvalUrl;
      case 'AWS::SQS::Queue.Arn':
        return this.arn('sqs', `${this.local.stackName}-${logicalId}`);
      case 'AWS::SQS::Queue.QueueUrl':
        return this.ref(logicalId, where);
      case 'AWS::Logs::LogGroup.Arn':
        return this.arn('logs', `log-group:${this.ref(logicalId, where)}:*`);
      default:
        throw new TemplateError(`${where}: Fn::GetAtt ${logicalId}.${attribute} (${resource.Type}) has no local value.`);
    }
  }

  resolve(value: Json | undefined, where: string): Json {
    if (value === undefined) return null;
    if (Array.isArray(value)) return value.map((v, i) => this.resolve(v, `${where}[${i}]`));
    if (!isObject(value)) return value;
    const keys = Object.keys(value);
    if (keys.length === 1 && (keys[0] === 'Ref' || keys[0]!.startsWith('Fn::'))) return this.intrinsic(keys[0]!, value[keys[0]!]!, where);
    return Object.fromEntries(keys.map((k) => [k, this.resolve(value[k], `${where}.${k}`)]));
  }

  resolveString(value: Json | undefined, where: string): string {
    const v = this.resolve(value, where);
    if (typeof v === 'string') return v;
    if (typeof v === 'number' || typeof v === 'boolean') return String(v);
    throw new TemplateError(`${where}: expected a string, got ${JSON.stringify(v)}.`);
  }

  private intrinsic(fn: string, arg: Json, where: string): Json {
    const at = `${where} (${fn})`;
    switch (fn) {
      case 'Ref':
        if (typeof arg !== 'string') throw new TemplateError(`${at}: Ref takes a logical id.`);
        return this.ref(arg, where);
      case 'Fn::GetAtt': {
        const [id, attr] = typeof arg === 'string' ? arg.split('.') : (arg as Json[]);
        if (typeof id !== 'string' || typeof attr !== 'string') throw new TemplateError(`${at}: Fn::GetAtt takes [logicalId, attribute].`);
        return this.getAtt(id, attr, where);
      }
      case 'Fn::Join': {
        const [sep, parts] = arg as [Json, Json];
        if (typeof sep !== 'string' || !Array.isArray(parts)) throw new TemplateError(`${at}: Fn::Join takes [separator, [values]].`);
        return parts.map((p, i) => this.resolveString(p, `${where}[${i}]`)).join(sep);
      }
      case 'Fn::Select': {
        const [index, list] = arg as [Json, Json];
        const items = this.resolve(list, where);
        const i = Number(this.resolve(index, where));
        if (!Array.isArray(items) || !Number.isInteger(i) || i < 0 || i >= items.length) {
          throw new TemplateError(`${at}: index ${String(index)} is outside the list.`);
        }
        return items[i]!;
      }
      case 'Fn::Split': {
        const [sep, source] = arg as [Json, Json];
        if (typeof sep !== 'string') throw new TemplateError(`${at}: Fn::Split takes [separator, string].`);
        return this.resolveString(source, where).split(sep);
      }
      case 'Fn::Sub': {
        const [text, vars]: [Json, Json] = typeof arg === 'string' ? [arg, {}] : (arg as [Json, Json]);
        if (typeof text !== 'string' || !isObject(vars)) throw new TemplateError(`${at}: Fn::Sub takes a string or [string, {variables}].`);
        const variables: Record<string, Json> = vars;
        return text.replace(/\$\{([^}!][^}]*)\}/g, (_, name: string) => {
          if (name in variables) return this.resolveString(variables[name], `${where}.${name}`);
          const [id, attr] = name.split('.');
          return attr === undefined ? this.ref(id!, where) : this.getAtt(id!, attr, where);
        }).replace(/\$\{!/g, '${');
      }
      case 'Fn::Base64':
        return Buffer.from(this.resolveString(arg, where)).toString('base64');
      default:
        throw new TemplateError(`${at}: ${fn} has no local equivalent.`);
    }
  }
}

/** Local function names look like CloudFormation's `<stack>-<logicalId>` (64 characters at most). */
function localFunctionName(stackName: string, logicalId: string): string {
  return `${stackName}-${logicalId}`.slice(0, 64);
}

/** A Lambda handler file the way the Node.js runtime looks for it: `<module>.js`, `.mjs` or `.cjs`. */
export function handlerFile(fn: Pick<TemplateFunction, 'logicalId' | 'codeDir' | 'handler'>): { file: string; exportName: string } {
  const { codeDir, handler } = fn;
  if (codeDir === undefined) throw new TemplateError(`${fn.logicalId}: its code asset is not in the cloud assembly; synthesize the stack with bundling.`);
  const dot = handler.lastIndexOf('.');
  if (dot <= 0) throw new TemplateError(`Handler "${handler}" is not <module>.<export>.`);
  const base = join(codeDir, handler.slice(0, dot));
  const file = ['.js', '.mjs', '.cjs'].map((ext) => base + ext).find((f) => existsSync(f));
  if (!file) throw new TemplateError(`Handler "${handler}": no ${base}.js, .mjs or .cjs in the function's asset ${codeDir}.`);
  return { file, exportName: handler.slice(dot + 1) };
}

/** The stack in `dir` (a cloud assembly), with every function and the state machine resolved locally. */
export function loadLocalStack(dir: string, resources: Omit<LocalResources, 'stackName'>, assembly = readAssembly(dir)): LocalStack {
  const { template, stackName, assetDirs } = assembly;
  const local: LocalResources = { ...resources, stackName };
  const lambdas = Object.entries(template.Resources).filter(([, r]) => r.Type === 'AWS::Lambda::Function');
  const names = new Map(lambdas.map(([id]) => [id, localFunctionName(stackName, id)]));
  const resolver = new IntrinsicResolver(template, local, names);

  const functions: TemplateFunction[] = lambdas.map(([logicalId, r]) => {
    const p = r.Properties ?? {};
    const where = `${logicalId}.Properties`;
    const code = isObject(p.Code) ? p.Code : ({} as Record<string, Json>);
    const s3Key = typeof code.S3Key === 'string' ? code.S3Key : undefined;
    const metaPath = r.Metadata?.['aws:asset:path'];
    const found = (s3Key && assetDirs.get(s3Key)) ?? (typeof metaPath === 'string' ? join(dir, metaPath) : undefined);
    const codeDir = found !== undefined && existsSync(found) ? found : undefined;
    const envVars = isObject(p.Environment) && isObject(p.Environment.Variables) ? p.Environment.Variables : ({} as Record<string, Json>);
    const environment = Object.fromEntries(
      Object.entries(envVars).map(([k, v]) => [k, resolver.resolveString(v, `${where}.Environment.Variables.${k}`)]),
    );
    const logging = isObject(p.LoggingConfig) ? p.LoggingConfig : ({} as Record<string, Json>);
    const name = names.get(logicalId)!;
    return {
      logicalId,
      name,
      arn: resolver.getAtt(logicalId, 'Arn', where),
      codeDir,
      handler: resolver.resolveString(p.Handler ?? 'index.handler', `${where}.Handler`),
      runtime: typeof p.Runtime === 'string' ? p.Runtime : 'nodejs22.x',
      timeoutSeconds: typeof p.Timeout === 'number' ? p.Timeout : DEFAULT_TIMEOUT_SECONDS,
      memoryMb: typeof p.MemorySize === 'number' ? p.MemorySize : DEFAULT_MEMORY_MB,
      environment,
      logFormat: typeof logging.LogFormat === 'string' ? logging.LogFormat : undefined,
      applicationLogLevel: typeof logging.ApplicationLogLevel === 'string' ? logging.ApplicationLogLevel : undefined,
      logGroupName: logging.LogGroup !== undefined ? resolver.resolveString(logging.LogGroup, `${where}.LoggingConfig.LogGroup`) : `/aws/lambda/${name}`,
    };
  });

  const byKey = new Map<string, TemplateFunction>();
  for (const f of functions) for (const k of [f.logicalId, f.name, f.arn]) byKey.set(k, f);
  const findFunction = (nameOrArn: string) => {
    const unqualified = /^arn:[^:]+:lambda:/.test(nameOrArn) ? nameOrArn.split(':').slice(0, 7).join(':') : nameOrArn;
    return byKey.get(unqualified);
  };

  const machines = Object.entries(template.Resources).filter(([, r]) => r.Type === 'AWS::StepFunctions::StateMachine');
  if (machines.length !== 1) throw new TemplateError(`expected one AWS::StepFunctions::StateMachine in the template, found ${machines.length}.`);
  const [machineId, machine] = machines[0]!;
  const mp = machine.Properties ?? {};
  const text = resolver.resolveString(mp.DefinitionString, `${machineId}.Properties.DefinitionString`);
  const substitutions = isObject(mp.DefinitionSubstitutions) ? mp.DefinitionSubstitutions : ({} as Record<string, Json>);
  const substituted = text.replace(/\$\{([A-Za-z0-9_]+)\}/g, (whole, key: string) =>
    key in substitutions ? resolver.resolveString(substitutions[key], `${machineId}.Properties.DefinitionSubstitutions.${key}`) : whole,
  );
  const definition = JSON.parse(substituted) as LocalStack['definition'];

  const outputs = Object.fromEntries(
    Object.entries(template.Outputs ?? {}).map(([k, o]) => [k, resolver.resolveString(o.Value, `Outputs.${k}`)]),
  );
  return { dir, template, resources: local, functions, findFunction, definition, outputs };
}

/** Task state → the template function it invokes (Resource, or Parameters.FunctionName of lambda:invoke). */
export function taskFunctions(stack: LocalStack): Record<string, TemplateFunction> {
  const out: Record<string, TemplateFunction> = {};
  for (const [name, state] of Object.entries(stack.definition.States)) {
    if (state.Type !== 'Task') continue;
    const target = state.Resource?.startsWith('arn:aws:states:::') ? state.Parameters?.FunctionName : state.Resource;
    const fn = typeof target === 'string' ? stack.findFunction(target) : undefined;
    if (!fn) throw new TemplateError(`Task state ${name} invokes ${String(target)}, which is no function of the template.`);
    out[name] = fn;
  }
  return out;
}
