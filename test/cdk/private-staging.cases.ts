/**
 * Keeping the staging endpoint off the internet (vpcId + privateSubnetIds): exactly the functions that
 * call model endpoints over HTTP run in the VPC, behind their own security group with egress on HTTP,
 * HTTPS and DNS only, and ExposeStaging gets the internal load balancer annotations.
 */
import { Annotations, Match } from 'aws-cdk-lib/assertions';
import { logicalId, resourcesOf, synthStack } from './helpers';

const VPC = 'vpc-0123456789abcdef0';
const SUBNETS = ['subnet-0123456789abcdef0', 'subnet-0fedcba9876543210'];
const EXTRA_SG = 'sg-0123456789abcdef0';
const IN_VPC = ['AwaitProductionEndpoint', 'AwaitStagingEndpoint', 'EvaluateModel'];

type Fn = { Properties?: { VpcConfig?: { SubnetIds: string[]; SecurityGroupIds: unknown[] }; Environment?: { Variables: Record<string, string> } } };

function functionsInVpc(template: ReturnType<typeof synthStack>['template']): string[] {
  return Object.entries(resourcesOf(template, 'AWS::Lambda::Function') as Record<string, Fn>)
    .filter(([, fn]) => fn.Properties?.VpcConfig !== undefined)
    .map(([id]) => /^PipelineFunctions([A-Za-z]+?)[0-9A-F]{8}$/.exec(id)?.[1] ?? id)
    .sort();
}

function stagingAnnotations(template: ReturnType<typeof synthStack>['template']): unknown {
  const fn = resourcesOf(template, 'AWS::Lambda::Function')[logicalId(template, 'AWS::Lambda::Function', 'FunctionsExposeStaging')] as Fn;
  return JSON.parse(fn.Properties?.Environment?.Variables.STAGING_SERVICE_ANNOTATIONS ?? 'null');
}

describe('staging kept private', () => {
  it('without vpcId: no function in a VPC, no security group, no staging annotations', () => {
    const { template } = synthStack();
    expect(functionsInVpc(template)).toEqual([]);
    template.resourceCountIs('AWS::EC2::SecurityGroup', 0);
    expect(stagingAnnotations(template)).toEqual({});
  });

  it('with vpcId: exactly the endpoint-calling functions run in the given subnets', () => {
    // GIVEN / WHEN
    const { template } = synthStack({ props: { vpcId: VPC, privateSubnetIds: SUBNETS, securityGroupIds: [EXTRA_SG] } });
    // THEN
    expect(functionsInVpc(template)).toEqual(IN_VPC);
    const sg = logicalId(template, 'AWS::EC2::SecurityGroup', 'EndpointNetwork');
    for (const fn of Object.values(resourcesOf(template, 'AWS::Lambda::Function') as Record<string, Fn>)) {
      if (fn.Properties?.VpcConfig === undefined) continue;
      expect(fn.Properties.VpcConfig).toEqual({ SubnetIds: SUBNETS, SecurityGroupIds: [{ 'Fn::GetAtt': [sg, 'GroupId'] }, EXTRA_SG] });
    }
  });

  it('outputs their security group (to admit on a private cluster endpoint)', () => {
    const { template } = synthStack({ props: { vpcId: VPC, privateSubnetIds: SUBNETS } });
    const sg = logicalId(template, 'AWS::EC2::SecurityGroup', 'EndpointNetwork');
    expect(template.findOutputs('EndpointSecurityGroupId').EndpointSecurityGroupId?.Value).toEqual({ 'Fn::GetAtt': [sg, 'GroupId'] });
  });

  it('their security group lets them out on 80, 443 and DNS only', () => {
    const { template } = synthStack({ props: { vpcId: VPC, privateSubnetIds: SUBNETS } });
    const groups = Object.values(resourcesOf(template, 'AWS::EC2::SecurityGroup'));
    expect(groups).toHaveLength(1);
    const egress = (groups[0]?.Properties?.SecurityGroupEgress as Array<{ IpProtocol: string; FromPort: number; ToPort: number }>)
      .map((r) => `${r.IpProtocol}/${r.FromPort}-${r.ToPort}`)
      .sort();
    expect(egress).toEqual(['tcp/443-443', 'tcp/53-53', 'tcp/80-80', 'udp/53-53']);
    expect(groups[0]?.Properties?.VpcId).toBe(VPC);
    expect(groups[0]?.Properties?.SecurityGroupIngress).toBeUndefined();
  });

  it('their roles may create the network interfaces Lambda needs', () => {
    const { template } = synthStack({ props: { vpcId: VPC, privateSubnetIds: SUBNETS } });
    for (const role of ['KubernetesTaskRole', 'EvaluateModelServiceRole']) {
      template.hasResourceProperties('AWS::IAM::Policy', {
        Roles: [{ Ref: Match.stringLikeRegexp(role) }],
        PolicyDocument: { Statement: Match.arrayWith([Match.objectLike({ Action: Match.arrayWith(['ec2:CreateNetworkInterface']), Resource: '*' })]) },
      });
    }
  });

  it('ExposeStaging gets the internal load balancer annotations, and no other function does', () => {
    const { template } = synthStack({ props: { vpcId: VPC, privateSubnetIds: SUBNETS } });
    expect(stagingAnnotations(template)).toEqual({
      'service.beta.kubernetes.io/aws-load-balancer-scheme': 'internal',
      'service.beta.kubernetes.io/aws-load-balancer-internal': 'true',
    });
    const withSetting = Object.entries(resourcesOf(template, 'AWS::Lambda::Function') as Record<string, Fn>)
      .filter(([, fn]) => fn.Properties?.Environment?.Variables.STAGING_SERVICE_ANNOTATIONS !== undefined)
      .map(([id]) => id);
    expect(withSetting).toEqual([logicalId(template, 'AWS::Lambda::Function', 'FunctionsExposeStaging')]);
  });

  it('imports the VPC and subnets by id without synth warnings (no lookups)', () => {
    const { stack } = synthStack({ props: { vpcId: VPC, privateSubnetIds: SUBNETS } });
    expect(Annotations.fromStack(stack).findWarning('*', Match.anyValue()).map((m) => m.id)).toEqual([]);
  });

  it('reads the network from context, lists as comma-separated strings', () => {
    const { template } = synthStack({
      context: { 'mlpipe:clusterName': 'c', 'mlpipe:vpcId': VPC, 'mlpipe:privateSubnetIds': SUBNETS.join(',') },
    });
    expect(functionsInVpc(template)).toEqual(IN_VPC);
  });
});
