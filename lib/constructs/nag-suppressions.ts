/**
 * The one place where mlpipe acknowledges cdk-nag (AwsSolutions) findings it keeps on purpose, each with
 * its reason. IAM wildcards are not suppressed wholesale: every identity policy of the pipeline is read
 * back and each wildcard it holds is suppressed by its exact `appliesTo` only if it is one of the kinds
 * below (an object prefix of the S3 layout, a function's versions, an action that takes no resource ARN).
 * Anything else stays a finding, so a new broad grant fails test/cdk/nag.cases.ts (run by test/cdk/stack.test.ts).
 */
import { Stack } from 'aws-cdk-lib';
import type * as apigwv2 from 'aws-cdk-lib/aws-apigatewayv2';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { NagSuppressions } from 'cdk-nag';
import type { IConstruct } from 'constructs';

/** Actions that accept no resource ARN, why each is needed, by family. */
const RESOURCELESS: ReadonlyArray<{ pattern: RegExp; why: string }> = [
  { pattern: /^xray:(PutTraceSegments|PutTelemetryRecords|GetSamplingRules|GetSamplingTargets)$/, why: 'X-Ray tracing (active on every function and the state machine)' },
  {
    pattern: /^ec2:(CreateNetworkInterface|DescribeNetworkInterfaces|DescribeSubnets|DeleteNetworkInterface|AssignPrivateIpAddresses|UnassignPrivateIpAddresses)$/,
    why: 'the network interfaces Lambda creates to run a function in the VPC (vpcId; the actions of AWSLambdaVPCAccessExecutionRole)',
  },
  {
    pattern: /^logs:(CreateLogDelivery|GetLogDelivery|UpdateLogDelivery|DeleteLogDelivery|ListLogDeliveries|PutResourcePolicy|DescribeResourcePolicies|DescribeLogGroups)$/,
    why: 'Step Functions execution logging (vended log delivery)',
  },
  { pattern: /^secretsmanager:GetRandomPassword$/, why: 'the endpoint token rotation draws the new token from Secrets Manager (a generator, not a secret)' },
];

/** Key prefixes of the S3 layout (docs/architecture.md) a grant may be scoped to. */
const S3_PREFIX = /^\/((models|checkpoints|monitor)\/[a-z0-9-]+\/|datasets\/|approvals\/)/;

interface Statement {
  Effect?: string;
  Action?: string | string[];
  Resource?: unknown;
}

/** A resource as cdk-nag spells it in `appliesTo`: `<LogicalId.Arn>/models/x/*`, `<LogicalId>`, or the literal. */
function nagName(resource: unknown): string {
  if (typeof resource === 'string') return resource;
  const r = resource as { 'Fn::Join'?: [string, unknown[]]; 'Fn::GetAtt'?: [string, string]; Ref?: string };
  if (r['Fn::GetAtt']) return `<${r['Fn::GetAtt'][0]}.${r['Fn::GetAtt'][1]}>`;
  if (r.Ref !== undefined) return `<${r.Ref}>`;
  if (r['Fn::Join']) return r['Fn::Join'][1].map(nagName).join(r['Fn::Join'][0]);
  return JSON.stringify(resource);
}

/** The deliberate wildcards of this statement (cdk-nag `appliesTo` -> reason); any other wildcard is left out. */
function wildcardReasons(statement: Statement): Map<string, string> {
  const reasons = new Map<string, string>();
  const actions = [statement.Action ?? []].flat();
  for (const resource of [statement.Resource ?? []].flat()) {
    const name = nagName(resource);
    if (name === '*') {
      const families = actions.map((a) => RESOURCELESS.find((f) => f.pattern.test(a)));
      if (families.every((f) => f !== undefined)) {
        const whys = [...new Set(families.map((f) => f.why))];
        reasons.set('Resource::*', `${actions.join(', ')}: ${whys.join('; ')}; these actions accept no resource ARN.`);
      }
      continue;
    }
    const bucketObjects = /^<[A-Za-z0-9]+Bucket[A-Za-z0-9]*\.Arn>(\/.*\*.*)$/.exec(name);
    if (bucketObjects && S3_PREFIX.test(bucketObjects[1] as string)) {
      reasons.set(`Resource::${name}`, `Objects under ${bucketObjects[1]} of the artifact bucket only (${actions.join(', ')}): a prefix of the S3 layout in docs/architecture.md, never the whole bucket.`);
      continue;
    }
    // Executions of the pipeline's own state machine (arn:…:execution:<state machine name>:*): a retry link names
    // a run that only exists at run time, so its ARN cannot be listed; reads only, one state machine only.
    if (/:states:[^:]*:[^:]*:execution:.*PipelineStateMachine[^:]*:\*$/.test(name) && actions.every((a) => a === 'states:DescribeExecution')) {
      reasons.set(`Resource::${name}`, 'DescribeExecution on the executions of this pipeline\'s state machine only (retry links name a run known only at run time).');
      continue;
    }
    // The same executions, for a run's cost estimate: RecordRelease reads the history of the run it records.
    if (/:states:[^:]*:[^:]*:execution:.*PipelineStateMachine[^:]*:\*$/.test(name) && actions.every((a) => a === 'states:GetExecutionHistory')) {
      reasons.set(`Resource::${name}`, 'GetExecutionHistory on the executions of this pipeline\'s state machine only: RecordRelease reads the run it records (known only at run time) for its cost estimate.');
      continue;
    }
    if (/^<[A-Za-z0-9]+\.Arn>:\*$/.test(name) && actions.every((a) => a === 'lambda:InvokeFunction')) {
      reasons.set(`Resource::${name}`, 'Versions and aliases of one pipeline function (grantInvoke): the state machine, and the serving monitor\'s schedule, invoke their own functions only.');
    }
  }
  for (const action of actions) {
    // Publishing to the encrypted topic: KMS grants on the pipeline's own key (never on *).
    if (action === 'kms:GenerateDataKey*' && [statement.Resource ?? []].flat().every((r) => r !== '*')) {
      reasons.set('Action::kms:GenerateDataKey*', 'Publishing to the KMS-encrypted notification topic needs a data key from the pipeline\'s own key; the grant names that key only.');
    }
  }
  return reasons;
}

/** Suppresses the deliberate IAM5 wildcards of every identity policy under `scope`. */
export function acknowledgeScopedWildcards(scope: IConstruct): void {
  const stack = Stack.of(scope);
  for (const node of scope.node.findAll()) {
    if (!(node instanceof iam.CfnPolicy)) continue;
    const document = stack.resolve(node.policyDocument) as { Statement?: Statement[] };
    const reasons = new Map<string, string>();
    for (const statement of document.Statement ?? []) {
      if (statement.Effect !== 'Allow') continue;
      for (const [appliesTo, reason] of wildcardReasons(statement)) reasons.set(appliesTo, reason);
    }
    for (const [appliesTo, reason] of reasons) {
      NagSuppressions.addResourceSuppressions(node, [{ id: 'AwsSolutions-IAM5', reason, appliesTo: [appliesTo] }]);
    }
  }
}

/** The approval endpoint: public by design, authorized by signed links. */
export function acknowledgeApprovalEndpoint(api: apigwv2.HttpApi, secret: secretsmanager.Secret): void {
  NagSuppressions.addResourceSuppressions(
    api,
    [
      {
        id: 'AwsSolutions-APIG4',
        reason:
          'Approval links are opened from an email by people without AWS credentials. Every request is authorized by the ' +
          "link's HMAC signature and expiry (functions/shared/approval-link.ts); GET changes nothing, POST decides one approval.",
      },
    ],
    true,
  );
  NagSuppressions.addResourceSuppressions(secret, [
    {
      id: 'AwsSolutions-SMG4',
      reason:
        'The key signs approval links that stay valid for the whole approval timeout (up to 7 days); automatic rotation ' +
        'would invalidate every outstanding link. Rotate it by hand when no approval is waiting (docs/deploy.md).',
    },
  ]);
}
