/**
 * cdk-nag AwsSolutions checks over a synthesized MlPipeStack (no bundling), with and without the private
 * staging network: no unsuppressed error or warning. The suppressions (lib/constructs/nag-suppressions.ts)
 * are exact: a new broad grant is still reported, and every suppression says why.
 */
import { Aspects, CfnResource, Stack } from 'aws-cdk-lib';
import { Annotations, Match } from 'aws-cdk-lib/assertions';
import * as iam from 'aws-cdk-lib/aws-iam';
import { AwsSolutionsChecks } from 'cdk-nag';
import type { MlPipeStack } from '../../lib/mlpipe-stack';
import { buildStack } from './helpers';

const NAG = Match.stringLikeRegexp('AwsSolutions-.*');

/** Applies the checks and returns the unsuppressed findings as "path: message" lines. */
function findings(stack: MlPipeStack): { errors: string[]; warnings: string[] } {
  Aspects.of(stack).add(new AwsSolutionsChecks());
  const annotations = Annotations.fromStack(stack);
  const lines = (found: ReturnType<typeof annotations.findError>) => found.map((m) => `${m.id}: ${String(m.entry.data).split('\n')[0]}`);
  return { errors: lines(annotations.findError('*', NAG)), warnings: lines(annotations.findWarning('*', NAG)) };
}

const PRIVATE = { vpcId: 'vpc-0123456789abcdef0', privateSubnetIds: ['subnet-0123456789abcdef0', 'subnet-0fedcba9876543210'], securityGroupIds: ['sg-0123456789abcdef0'] };

describe('cdk-nag AwsSolutions', () => {
  it.each([
    ['default', {}],
    ['staging kept private (vpcId)', PRIVATE],
    ['with data trigger and schedule', { dataPrefix: 'datasets/fashion-mnist/v1/', schedule: 'rate(7 days)', approverEmails: ['a@example.com'] }],
  ])('%s: no unsuppressed errors or warnings', (_name, props) => {
    // GIVEN / WHEN
    const { errors, warnings } = findings(buildStack({ props }));
    // THEN
    expect(errors).toEqual([]);
    expect(warnings).toEqual([]);
  });

  it('still reports a broad grant added to a pipeline role (suppressions are exact)', () => {
    // GIVEN a grant on every object of the bucket, which no mlpipe role has
    const stack = buildStack();
    stack.pipeline.kubernetesRole.addToPrincipalPolicy(
      new iam.PolicyStatement({ actions: ['s3:GetObject'], resources: [stack.pipeline.bucket.arnForObjects('*')] }),
    );
    // WHEN
    const { errors } = findings(stack);
    // THEN
    expect(errors).toEqual([expect.stringMatching(/KubernetesTaskRole\/DefaultPolicy\/Resource: AwsSolutions-IAM5\[Resource::<PipelineArtifactsBucket[A-F0-9]+\.Arn>\/\*\]/)]);
  });

  it('every suppression names its rule and gives a reason', () => {
    const stack = buildStack({ props: PRIVATE });
    type NagMetadata = { cdk_nag?: { rules_to_suppress: Array<{ id: string; reason: string }> } } | undefined;
    const suppressions = stack.node
      .findAll()
      .filter((c): c is CfnResource => c instanceof CfnResource)
      .flatMap((c) => (Stack.of(c).resolve(c.cfnOptions.metadata) as NagMetadata)?.cdk_nag?.rules_to_suppress ?? []);
    expect(suppressions.length).toBeGreaterThan(10);
    for (const s of suppressions) {
      expect(s.id).toMatch(/^AwsSolutions-/);
      expect(s.reason.length).toBeGreaterThan(40);
    }
  });
});
