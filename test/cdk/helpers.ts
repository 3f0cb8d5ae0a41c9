/**
 * Synthesizes MlPipeStack for tests: no bundling (context `aws:cdk:bundling-stacks: []` makes
 * NodejsFunction skip esbuild), a fresh App and Stack per call.
 */
import { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { MlPipeStack } from '../../lib/mlpipe-stack';
import type { MlPipelineProps } from '../../lib/mlpipe-pipeline';

export const CLUSTER = 'ml-cluster';

export interface StackOptions {
  props?: Partial<MlPipelineProps>;
  /** When given, the pipeline props come from this context (mlpipe:* keys) instead of `props`. */
  context?: Record<string, unknown>;
}

/** A fresh App and MlPipeStack, not yet synthesized (so a test can still add to it). */
export function buildStack(opts: StackOptions = {}): MlPipeStack {
  const app = new App({ context: { 'aws:cdk:bundling-stacks': [], ...(opts.context ?? {}) } });
  return new MlPipeStack(app, 'MlPipeStack', {
    env: { account: '123456789012', region: 'eu-west-1' },
    pipeline: opts.context === undefined ? { clusterName: CLUSTER, ...opts.props } : undefined,
  });
}

export function templateOf(stack: MlPipeStack): Template {
  // The cyclical-dependency check walks the whole template; synth itself already rejects real cycles.
  return Template.fromStack(stack, { skipCyclicalDependenciesCheck: true });
}

export function synthStack(opts: StackOptions = {}): { stack: MlPipeStack; template: Template } {
  const stack = buildStack(opts);
  return { stack, template: templateOf(stack) };
}

type Resources = Record<string, { Type: string; Properties?: Record<string, unknown> }>;

export function resourcesOf(template: Template, type?: string): Resources {
  const all = template.toJSON().Resources as Resources;
  return Object.fromEntries(Object.entries(all).filter(([, r]) => type === undefined || r.Type === type));
}

/** Logical id of the only resource of a type whose id contains `fragment`. */
export function logicalId(template: Template, type: string, fragment: string): string {
  const ids = Object.keys(resourcesOf(template, type)).filter((id) => id.includes(fragment));
  if (ids.length !== 1) throw new Error(`expected one ${type} with "${fragment}" in its id, found ${ids.join(', ') || 'none'}`);
  return ids[0] as string;
}
