/**
 * The pipeline state machine (DESIGN decision 1): statemachine/pipeline.asl.json, inlined into the
 * template with `DefinitionBody.fromString` so the very same file runs locally, with a `${XFunctionArn}`
 * substitution per task. A file definition grants nothing by itself, hence the explicit invoke grants.
 */
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { RemovalPolicy } from 'aws-cdk-lib';
import type * as kms from 'aws-cdk-lib/aws-kms';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import { Construct } from 'constructs';
import { PROJECT_ROOT } from './lambda-defaults';

export const DEFINITION_FILE = path.join(PROJECT_ROOT, 'statemachine', 'pipeline.asl.json');

/** The `${X}` placeholders in an ASL text, in order of first appearance. */
export function placeholdersIn(definition: string): string[] {
  return [...new Set([...definition.matchAll(/\$\{([A-Za-z0-9_]+)\}/g)].map((m) => m[1] as string))];
}

export interface PipelineStateMachineProps {
  /** Placeholder name (without `${}`) → the function it stands for. Must cover every placeholder in the file. */
  readonly functions: Readonly<Record<string, lambda.IFunction>>;
  /** Encrypts the execution log group (its policy must allow the CloudWatch Logs service). */
  readonly logKey: kms.IKey;
  /** @default one month */
  readonly logRetention?: logs.RetentionDays;
  /** @default statemachine/pipeline.asl.json */
  readonly definitionFile?: string;
}

export class PipelineStateMachine extends Construct {
  readonly stateMachine: sfn.StateMachine;
  readonly logGroup: logs.LogGroup;

  constructor(scope: Construct, id: string, props: PipelineStateMachineProps) {
    super(scope, id);
    const definition = readFileSync(props.definitionFile ?? DEFINITION_FILE, 'utf8');

    const missing = placeholdersIn(definition).filter((name) => props.functions[name] === undefined);
    if (missing.length > 0) {
      throw new Error(
        `mlpipe: the state machine definition uses \${${missing.join('}, ${')}} but no function was given for ` +
          `${missing.length === 1 ? 'it' : 'them'}. Add ${missing.length === 1 ? 'an entry' : 'entries'} to FUNCTION_SPECS in ` +
          'lib/constructs/pipeline-functions.ts, or fix the placeholder name in the ASL file.',
      );
    }

    this.logGroup = new logs.LogGroup(this, 'ExecutionLogs', {
      retention: props.logRetention ?? logs.RetentionDays.ONE_MONTH,
      encryptionKey: props.logKey,
      removalPolicy: RemovalPolicy.RETAIN,
    });

    this.stateMachine = new sfn.StateMachine(this, 'Resource', {
      definitionBody: sfn.DefinitionBody.fromString(definition),
      definitionSubstitutions: Object.fromEntries(
        Object.entries(props.functions).map(([name, fn]) => [name, fn.functionArn]),
      ),
      stateMachineType: sfn.StateMachineType.STANDARD,
      tracingEnabled: true,
      // includeExecutionData stays false: RequestApproval's input carries the task token, and the
      // token must never land in a log.
      logs: { destination: this.logGroup, level: sfn.LogLevel.ALL, includeExecutionData: false },
    });

    for (const fn of new Set(Object.values(props.functions))) {
      fn.grantInvoke(this.stateMachine);
    }
  }
}
