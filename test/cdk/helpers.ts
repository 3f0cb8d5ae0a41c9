/**
 * Synthesizes MlPipeStack for tests: no bundling (context `aws:cdk:bundling-stacks: []` makes
 * NodejsFunction skip esbuild), a fresh App and Stack per call.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { App, type AppProps } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { MlPipeStack } from '../../lib/mlpipe-stack';
import type { MlPipelineProps } from '../../lib/mlpipe-pipeline';

export const CLUSTER = 'ml-cluster';

/**
 * Without an `outdir` every App synthesizes into a new `cdk.outXXXXXX` under the system temp directory that
 * nothing removes: a full test run left ~100 of them (~70 MB). Test Apps write under one directory per test
 * file instead, removed after it (this module is loaded afresh for each test file, while jest collects it).
 */
const OUT_ROOT = mkdtempSync(path.join(tmpdir(), 'mlpipe-cdk-test-'));
afterAll(() => rmSync(OUT_ROOT, { recursive: true, force: true }));

/** A test App, synthesizing under this test file's temporary directory. */
export function testApp(props: Omit<AppProps, 'outdir'> = {}): App {
  return new App({ ...props, outdir: mkdtempSync(path.join(OUT_ROOT, 'app-')) });
}

export interface StackOptions {
  props?: Partial<MlPipelineProps>;
  /** When given, the pipeline props come from this context (mlpipe:* keys) instead of `props`. */
  context?: Record<string, unknown>;
}

/** A fresh App and MlPipeStack, not yet synthesized (so a test can still add to it). */
export function buildStack(opts: StackOptions = {}): MlPipeStack {
  const app = testApp({ context: { 'aws:cdk:bundling-stacks': [], ...(opts.context ?? {}) } });
  return new MlPipeStack(app, 'MlPipeStack', {
    env: { account: '123456789012', region: 'eu-west-1' },
    pipeline: opts.context === undefined ? { clusterName: CLUSTER, ...opts.props } : undefined,
  });
}

export function templateOf(stack: MlPipeStack): Template {
  // The cyclical-dependency check walks the whole template; synth itself already rejects real cycles.
  return Template.fromStack(stack, { skipCyclicalDependenciesCheck: true });
}

/** Plain JSON (no Durations, tokens or classes): options that can key the cache below. */
function plainJson(value: unknown): boolean {
  if (value === null || ['string', 'number', 'boolean'].includes(typeof value)) return true;
  if (Array.isArray(value)) return value.every(plainJson);
  if (typeof value !== 'object' || Object.getPrototypeOf(value) !== Object.prototype) return false;
  return Object.values(value as object).every(plainJson);
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value as object)) deepFreeze(v);
  }
  return value;
}

const synthesized = new Map<string, { stack: MlPipeStack; template: Template }>();

/**
 * A synthesized stack. Synthesis is the bulk of a CDK test's time, and most tests read the same few
 * stacks, so one synthesized per distinct plain-JSON `opts` is shared within a test file; its template
 * JSON is frozen, so a test cannot change what the next one reads. A test that adds to a stack uses
 * buildStack (always fresh).
 */
export function synthStack(opts: StackOptions = {}): { stack: MlPipeStack; template: Template } {
  const key = plainJson(opts) ? JSON.stringify(opts) : undefined;
  const cached = key === undefined ? undefined : synthesized.get(key);
  if (cached) return cached;
  const stack = buildStack(opts);
  const result = { stack, template: templateOf(stack) };
  deepFreeze(result.template.toJSON());
  if (key !== undefined) synthesized.set(key, result);
  return result;
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
