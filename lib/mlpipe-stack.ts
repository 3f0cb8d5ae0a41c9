/**
 * MlPipeStack: the deployable app stack. Props come from CDK context (`mlpipe:*`, see lib/context.ts and
 * docs/deploy.md); the outputs are what the `mlpipe` CLI reads with DescribeStacks, so their names are a
 * contract.
 */
import { CfnOutput, Stack, type StackProps } from 'aws-cdk-lib';
import { Construct } from 'constructs';
import { propsFromContext } from './context';
import { MlPipeline, type MlPipelineProps } from './mlpipe-pipeline';

export interface MlPipeStackProps extends StackProps {
  /** @default read from context (`mlpipe:*` keys) */
  readonly pipeline?: MlPipelineProps;
}

export class MlPipeStack extends Stack {
  readonly pipeline: MlPipeline;

  constructor(scope: Construct, id: string, props: MlPipeStackProps = {}) {
    super(scope, id, { description: 'mlpipe: ECR push -> training on EKS -> evaluation -> human approval -> production', ...props });
    const pipelineProps = props.pipeline ?? propsFromContext((key) => this.node.tryGetContext(key));
    this.pipeline = new MlPipeline(this, 'Pipeline', pipelineProps);

    const outputs: Record<string, [string, string]> = {
      StateMachineArn: [this.pipeline.stateMachine.stateMachineArn, 'The pipeline state machine'],
      ArtifactBucketName: [this.pipeline.bucket.bucketName, 'Models, datasets, registry and approval records'],
      ApprovalUrl: [this.pipeline.approvalUrl, 'Base URL of the approval links'],
      NotificationTopicArn: [this.pipeline.topic.topicArn, 'Approval requests and run notifications'],
      RollbackFunctionName: [this.pipeline.rollbackFunction.functionName, 'Invoked by `mlpipe rollback`'],
      QueueUrl: [this.pipeline.queue.queueUrl, 'Trigger queue (ECR pushes, data, schedule) of the starter'],
      ClusterName: [pipelineProps.clusterName, 'The EKS cluster the pipeline drives (`mlpipe logs` reads pods there)'],
      StagingNamespace: [this.pipeline.namespaces.staging, 'Namespace of the staging Deployments and Services'],
      ProductionNamespace: [this.pipeline.namespaces.production, 'Namespace of production (`mlpipe production` and the console list the retained versions there)'],
    };
    if (Object.keys(this.pipeline.endpointTokenSecrets).length > 0) {
      outputs.EndpointTokenSecrets = [
        Stack.of(this).toJsonString(Object.fromEntries(Object.entries(this.pipeline.endpointTokenSecrets).map(([model, s]) => [model, s.secretArn]))),
        'Model name to the ARN of its endpoint token secret (`mlpipe endpoint <model> --show-token` reads it)',
      ];
    }
    if (this.pipeline.endpointSecurityGroup !== undefined) {
      outputs.EndpointSecurityGroupId = [
        this.pipeline.endpointSecurityGroup.securityGroupId,
        'Security group of the functions that call model endpoints (vpcId): admit it on 443 to a private cluster endpoint',
      ];
    }
    for (const [name, [value, description]] of Object.entries(outputs)) {
      new CfnOutput(this, name, { value, description });
    }
  }
}
