/**
 * The network of the functions that call model endpoints over HTTP (EvaluateModel and the Await*Endpoint
 * probes) when the staging endpoint is kept off the internet: an existing VPC and private subnets,
 * imported by id so synth needs no lookups (and no AWS account), and a security group of their own that
 * lets them out only on HTTP (the LoadBalancer Services listen on 80), HTTPS (the Kubernetes API, AWS
 * APIs) and DNS. The staging Services get internal load balancers (`INTERNAL_LOAD_BALANCER_ANNOTATIONS`).
 */
import { Annotations, Fn } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import { Construct } from 'constructs';
import type { FunctionNetwork } from './lambda-defaults';

/**
 * What makes a LoadBalancer Service internal: the AWS Load Balancer Controller reads the scheme, the
 * legacy in-tree cloud provider the `internal` flag; both are set so either controller obeys.
 */
export const INTERNAL_LOAD_BALANCER_ANNOTATIONS: Readonly<Record<string, string>> = {
  'service.beta.kubernetes.io/aws-load-balancer-scheme': 'internal',
  'service.beta.kubernetes.io/aws-load-balancer-internal': 'true',
};

export interface EndpointNetworkProps {
  /** The VPC of the EKS cluster (or one routed to it), e.g. `vpc-0abc...`. */
  readonly vpcId: string;
  /** Private subnets of that VPC, e.g. `subnet-0abc...`; they need a NAT gateway or VPC endpoints for S3 and EKS. */
  readonly privateSubnetIds: readonly string[];
  /** Extra security groups, e.g. one the cluster's security group admits on 443. @default none */
  readonly securityGroupIds?: readonly string[];
}

export class EndpointNetwork extends Construct implements FunctionNetwork {
  readonly vpc: ec2.IVpc;
  readonly subnets: readonly ec2.ISubnet[];
  /** The functions' own group; allow it in the cluster's and the load balancers' inbound rules. */
  readonly securityGroup: ec2.SecurityGroup;
  readonly securityGroups: readonly ec2.ISecurityGroup[];

  constructor(scope: Construct, id: string, props: EndpointNetworkProps) {
    super(scope, id);
    // The subnets come by id below, not through the VPC, so its zones are never read; the attribute is
    // required, and a literal list would cost a lookup or a guess.
    this.vpc = ec2.Vpc.fromVpcAttributes(this, 'Vpc', { vpcId: props.vpcId, availabilityZones: Fn.getAzs() });
    Annotations.of(this.vpc).acknowledgeWarning('@aws-cdk/aws-ec2:vpcAttributeIsListTokenavailabilityZones', 'The VPC\'s own subnet lists are never used: the functions get their subnets by id.');
    this.subnets = props.privateSubnetIds.map((subnetId, i) => {
      const subnet = ec2.Subnet.fromSubnetId(this, `Subnet${i}`, subnetId);
      Annotations.of(subnet).acknowledgeWarning('@aws-cdk/aws-ec2:noSubnetRouteTableId', 'Lambda needs only the subnet id; its route table is never read.');
      return subnet;
    });

    this.securityGroup = new ec2.SecurityGroup(this, 'SecurityGroup', {
      vpc: this.vpc,
      description: 'mlpipe functions that call model endpoints: out on HTTP, HTTPS and DNS only',
      allowAllOutbound: false,
    });
    const anywhere = ec2.Peer.anyIpv4();
    this.securityGroup.addEgressRule(anywhere, ec2.Port.tcp(80), 'model endpoints (LoadBalancer Services listen on 80)');
    this.securityGroup.addEgressRule(anywhere, ec2.Port.tcp(443), 'Kubernetes API, AWS APIs, HTTPS endpoints');
    this.securityGroup.addEgressRule(anywhere, ec2.Port.udp(53), 'DNS');
    this.securityGroup.addEgressRule(anywhere, ec2.Port.tcp(53), 'DNS over TCP (large answers)');

    this.securityGroups = [
      this.securityGroup,
      ...(props.securityGroupIds ?? []).map((sgId, i) =>
        ec2.SecurityGroup.fromSecurityGroupId(this, `ExtraSecurityGroup${i}`, sgId, { mutable: false }),
      ),
    ];
  }

  /**
   * What Lambda needs to attach a function to the subnets (the actions of AWSLambdaVPCAccessExecutionRole,
   * inline: a given role gets no managed policy from CDK, and these actions take no narrower resource).
   */
  grantNetworkInterfaces(grantee: iam.IGrantable): void {
    grantee.grantPrincipal.addToPrincipalPolicy(
      new iam.PolicyStatement({
        actions: [
          'ec2:CreateNetworkInterface',
          'ec2:DescribeNetworkInterfaces',
          'ec2:DescribeSubnets',
          'ec2:DeleteNetworkInterface',
          'ec2:AssignPrivateIpAddresses',
          'ec2:UnassignPrivateIpAddresses',
        ],
        resources: ['*'],
      }),
    );
  }
}
