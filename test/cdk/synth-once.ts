/**
 * The stack as it ships, once per test file that loads its Lambdas: the template (its Environments, with
 * CloudFormation intrinsics resolved to plausible values of the right shape) and each function's bundle,
 * built with the options the stack ships them with (lambda-defaults.ts esbuildOptions, i.e. lambda-bundle.ts)
 * in one esbuild call. Why not `app.synth()` with bundling: it runs esbuild once per function, and on this
 * shared 2-core machine that measured 376 s for the 19 functions (load average 20); one call that parses
 * the shared modules once takes seconds.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { App } from 'aws-cdk-lib';
import { build } from 'esbuild';
import { esbuildOptions, PROJECT_ROOT } from '../../lib/constructs/lambda-defaults';
import { MlPipeStack } from '../../lib/mlpipe-stack';
import type { MlPipelineProps } from '../../lib/mlpipe-pipeline';

export const REGION = 'eu-west-1';
export const ACCOUNT = '123456789012';

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
interface Resource {
  Type: string;
  Properties?: Record<string, Json>;
}
export interface Template {
  Resources: Record<string, Resource>;
}

export interface ShippedFunction {
  logicalId: string;
  /** The handler file it is built from, relative to the repository root. */
  entry: string;
  /** The bundle (index.js). */
  bundle: string;
  /** The template's Environment.Variables, intrinsics resolved. */
  environment: Record<string, string>;
}

export interface Shipped {
  template: Template;
  functions: ShippedFunction[];
  /** Removes the bundles. */
  cleanup(): void;
}

let shipped: Promise<Shipped> | undefined;

/**
 * The template and bundles (cached for the test file). `entries` maps a fragment of each Lambda's logical
 * id to its handler file; every AWS::Lambda::Function must match exactly one.
 */
export function shippedStack(entries: Record<string, string>, props: Partial<MlPipelineProps> = {}): Promise<Shipped> {
  shipped ??= (async () => {
    // Without bundling (context below): the template is the same, the assets are not built.
    const app = new App({ context: { 'aws:cdk:bundling-stacks': [] } });
    const stack = new MlPipeStack(app, 'MlPipeStack', { env: { account: ACCOUNT, region: REGION }, pipeline: { clusterName: 'ml-cluster', ...props } });
    const template = app.synth().getStackByName(stack.stackName).template as Template;
    const dir = mkdtempSync(path.join(tmpdir(), 'mlpipe-shipped-'));
    const { outfile: _one, entryPoints: _all, ...options } = esbuildOptions('', '');
    const names = Object.keys(entries);
    // Source maps change no code and cost seconds here.
    await build({ ...options, sourcemap: false, entryPoints: Object.fromEntries(names.map((n) => [`${n}/index`, path.join(PROJECT_ROOT, entries[n] as string)])), outdir: dir });
    const functions = Object.entries(template.Resources)
      .filter(([, r]) => r.Type === 'AWS::Lambda::Function')
      .map(([logicalId, r]) => {
        const matches = names.filter((n) => logicalId.includes(n));
        if (matches.length !== 1) throw new Error(`shippedStack: Lambda ${logicalId} matches ${matches.length} entries (${matches.join(', ')}); map each Lambda to its handler`);
        const name = matches[0] as string;
        const variables = ((r.Properties?.Environment as { Variables?: Record<string, Json> } | undefined)?.Variables ?? {}) as Record<string, Json>;
        return {
          logicalId,
          entry: entries[name] as string,
          bundle: path.join(dir, name, 'index.js'),
          environment: Object.fromEntries(Object.entries(variables).map(([k, v]) => [k, resolveIntrinsics(v, template, `${logicalId}.${k}`)])),
        };
      });
    return { template, functions, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
  })();
  return shipped;
}

/** What Ref gives for a resource of each type the environments point at. */
function ref(logicalId: string, type: string): string {
  const name = logicalId.toLowerCase().replace(/[^a-z0-9]/g, '').slice(0, 40);
  switch (type) {
    case 'AWS::S3::Bucket': return `mlpipe-${name}`.slice(0, 63);
    case 'AWS::SNS::Topic': return `arn:aws:sns:${REGION}:${ACCOUNT}:${logicalId}`;
    case 'AWS::SecretsManager::Secret': return `arn:aws:secretsmanager:${REGION}:${ACCOUNT}:secret:${logicalId}-AbCdEf`;
    case 'AWS::StepFunctions::StateMachine': return `arn:aws:states:${REGION}:${ACCOUNT}:stateMachine:${logicalId}`;
    case 'AWS::SQS::Queue': return `https://sqs.${REGION}.amazonaws.com/${ACCOUNT}/${logicalId}`;
    case 'AWS::ApiGatewayV2::Api': return name.slice(0, 10);
    default: return logicalId;
  }
}

function getAtt(logicalId: string, type: string, attribute: string): string {
  if (attribute === 'Arn') {
    if (type === 'AWS::SQS::Queue') return `arn:aws:sqs:${REGION}:${ACCOUNT}:${logicalId}`;
    return ref(logicalId, type).startsWith('arn:') ? ref(logicalId, type) : `arn:aws:${type.split('::')[1]?.toLowerCase()}:${REGION}:${ACCOUNT}:${logicalId}`;
  }
  if (attribute === 'ApiEndpoint') return `https://${ref(logicalId, type)}.execute-api.${REGION}.amazonaws.com`;
  if (attribute === 'QueueUrl') return ref(logicalId, type);
  if (attribute === 'QueueName' || attribute === 'TopicName' || attribute === 'Name') return logicalId;
  throw new Error(`synth-once: no stand-in for Fn::GetAtt ${logicalId}.${attribute} (${type})`);
}

const PSEUDO: Record<string, string> = {
  'AWS::Region': REGION,
  'AWS::AccountId': ACCOUNT,
  'AWS::Partition': 'aws',
  'AWS::URLSuffix': 'amazonaws.com',
  'AWS::StackName': 'MlPipeStack',
};

/** A template value with Ref / Fn::GetAtt / Fn::Join / Fn::Select / Fn::Split resolved to text. */
export function resolveIntrinsics(value: Json, template: Template, where: string): string {
  const resolve = (v: Json): Json => {
    if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean' || v === null) return v;
    if (Array.isArray(v)) return v.map(resolve);
    const [fn, arg] = Object.entries(v)[0] ?? [];
    const resource = (id: string) => {
      const r = template.Resources[id];
      if (!r) throw new Error(`synth-once: ${where} refers to ${id}, which is not in the template`);
      return r;
    };
    switch (fn) {
      case 'Ref':
        return typeof arg === 'string' && arg in PSEUDO ? (PSEUDO[arg] as string) : ref(arg as string, resource(arg as string).Type);
      case 'Fn::GetAtt': {
        const [id, attribute] = arg as [string, string];
        return getAtt(id, resource(id).Type, attribute);
      }
      case 'Fn::Join': {
        const [sep, parts] = arg as [string, Json[]];
        return (parts.map(resolve) as string[]).join(sep);
      }
      case 'Fn::Select': {
        const [index, list] = arg as [number, Json];
        return (resolve(list) as Json[])[Number(index)] as Json;
      }
      case 'Fn::Split': {
        const [sep, text] = arg as [string, Json];
        return (resolve(text) as string).split(sep);
      }
      default:
        throw new Error(`synth-once: ${where} holds ${fn}, which this resolver does not know`);
    }
  };
  const out = resolve(value);
  return typeof out === 'string' ? out : JSON.stringify(out);
}
