/**
 * MlPipeline props validation and MlPipeStack's context parsing: bad input fails at synth with a
 * message that names the setting and says how to fix it.
 */
import { Duration, Stack } from 'aws-cdk-lib';
import { MlPipeline, type MlPipelineProps } from '../../lib/mlpipe-pipeline';
import { propsFromContext } from '../../lib/context';
import { buildStack, synthStack, testApp } from './helpers';

function construct(props: Partial<MlPipelineProps>): void {
  const app = testApp({ context: { 'aws:cdk:bundling-stacks': [] } });
  new MlPipeline(new Stack(app, 'S'), 'Pipeline', { clusterName: 'ml-cluster', ...props });
}

describe('MlPipeline props validation', () => {
  it.each<[string, Partial<MlPipelineProps>, RegExp]>([
    ['empty clusterName', { clusterName: '' }, /"clusterName" property must be the name of an existing EKS cluster/],
    ['clusterName with spaces', { clusterName: 'my cluster' }, /"clusterName" property must be an EKS cluster name/],
    ['clusterArn of another cluster', { clusterArn: 'arn:aws:eks:eu-west-1:123456789012:cluster/other' }, /names another cluster than "clusterName"/],
    ['malformed clusterArn', { clusterArn: 'ml-cluster' }, /"clusterArn" property must look like arn:aws:eks/],
    ['upper-case namespace', { stagingNamespace: 'Staging' }, /"stagingNamespace" property is not valid: a lowercase RFC 1123 label must consist of .*; got "Staging"\. Fix it \(context key mlpipe:stagingNamespace\); the functions read it as STAGING_NAMESPACE\./],
    ['same namespaces', { stagingNamespace: 'ml', productionNamespace: 'ml' }, /must differ/],
    ['model name too long', { modelName: 'a'.repeat(64) }, /"modelName" property is not valid: must be a valid Service name, because it names the model's Services: must be no more than 63 characters/],
    ['model name with a leading digit', { modelName: '3d-model' }, /"modelName" property is not valid: .*a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character/],
    ['repository with a tag', { trainingRepositoryName: 'team/train:latest' }, /"trainingRepositoryName" property must be an ECR repository name/],
    ['dataUri without trailing slash', { dataUri: 's3://bucket/data' }, /"dataUri" property must be an S3 prefix/],
    ['accuracy as a percentage', { minAccuracy: 85 }, /"minAccuracy" property must be a fraction between 0 and 1 \(e\.g\. 0\.85, not 85\)/],
    ['negative error rate', { maxErrorRate: -0.1 }, /"maxErrorRate" property must be a fraction/],
    ['zero latency budget', { maxP95LatencyMs: 0 }, /"maxP95LatencyMs" property must be a positive number/],
    ['fractional samples', { evalSamples: 10.5 }, /"evalSamples" property must be a whole number/],
    ['batch larger than samples', { evalSamples: 10, evalBatchSize: 100 }, /"evalBatchSize" property \(100\) must not exceed "evalSamples" \(10\)/],
    ['not an email', { approverEmails: ['alice'] }, /"approverEmails" property must hold email addresses; "alice"/],
    ['approval timeout too short', { approvalTimeout: Duration.minutes(1) }, /"approvalTimeout" property must be between 5 minutes and 7 days/],
    ['approval timeout too long', { approvalTimeout: Duration.days(8) }, /"approvalTimeout" property must be between 5 minutes and 7 days/],
    ['watch budget over the Await timeout', { watchBudget: Duration.seconds(290) }, /"watchBudget" property must be between 5 and 270 seconds/],
    ['training deadline below the watch budget', { trainingTimeout: Duration.seconds(60) }, /"trainingTimeout" property \(60 s\) must be at least "watchBudget"/],
    ['bad CPU quantity', { servingCpu: 'half' }, /"servingCpu" property is not valid: quantities must match the regular expression/],
    ['memory in millibytes', { trainingMemory: '500m' }, /"trainingMemory" property is not valid: fractional byte value "500m" is invalid, must be an integer \(did you mean "500Mi"\?\)/],
    ['an annotation key with a space', { serviceAnnotations: { 'mlpipe/model version': 'v3' } }, /"serviceAnnotations" property is not valid: mlpipe\/model version: invalid annotation key: name part must consist of/],
    ['a staging annotation key with two slashes', { stagingServiceAnnotations: { 'a/b/c': 'v3' } }, /"stagingServiceAnnotations" property is not valid: a\/b\/c: invalid annotation key: a qualified name must consist of/],
    ['a fractional GPU count', { trainingPlacement: { gpus: 0.5 } }, /"trainingPlacement" property is not valid: gpus: must be a whole number \(an object like .*\); got .*\. Fix it \(context key mlpipe:trainingPlacement\); the functions read it as TRAINING_PLACEMENT\./],
    ['a node selector value with a space', { servingPlacement: { nodeSelector: { pool: 'gpu nodes' } } }, /"servingPlacement" property is not valid: nodeSelector\.pool: invalid label value "gpu nodes": a valid label must be/],
    ['a toleration without a key that is not Exists', { trainingPlacement: { tolerations: [{ value: 'x' }] } }, /"trainingPlacement" property is not valid: tolerations\.0\.operator: operator must be Exists when `key` is empty/],
    ['an unknown taint effect', { servingPlacement: { tolerations: [{ key: 'gpu', operator: 'Exists', effect: 'NoRun' }] } }, /"servingPlacement" property is not valid: tolerations\.0\.effect: Unsupported value: "NoRun"/],
    ['a priority class with upper case', { trainingPlacement: { priorityClassName: 'High' } }, /"trainingPlacement" property is not valid: priorityClassName: a lowercase RFC 1123 subdomain/],
    ['an unknown placement field', { trainingPlacement: { gpu: 1 } as never }, /"trainingPlacement" property is not valid: .*Unrecognized key: "gpu"/],
    ['too many training retries', { trainingBackoffLimit: 11 }, /"trainingBackoffLimit" property is not valid: must be a whole number >= 0 and <= 10; got "11"/],
    ['a negative retention', { retentionHours: -1 }, /"retentionHours" property is not valid: must be a number >= 0 and <= 8760/],
    ['canary steps that do not end at 100', { rollout: { steps: [10, 50] } }, /"rollout" property is not valid: steps: must end at 100 \(the step that promotes the candidate\), got 50/],
    ['an unknown rollout strategy', { rollout: { strategy: 'linear' as never } }, /"rollout" property is not valid: strategy: must be "canary" or "blueGreen"/],
    ['a predict timeout under 100 ms', { evalRequestTimeout: Duration.millis(50) }, /"evalRequestTimeout" property is not valid: must be a whole number >= 100; got "50"/],
    ['zero replicas', { servingReplicas: 0 }, /"servingReplicas" property must be a whole number of at least 1/],
    ['a drain past 300 s', { servingDrainSeconds: 301 }, /servingDrainSeconds|SERVING_DRAIN_SECONDS/],
    ['data prefix outside datasets/', { dataPrefix: 'uploads/' }, /"dataPrefix" property must be a key prefix under "datasets\/"/],
    ['data prefix beside the training data', { dataPrefix: 'datasets/fashion-mnist/v2/' }, /"dataPrefix" property \("datasets\/fashion-mnist\/v2\/"\) must lie under the training data "datasets\/fashion-mnist\/v1\/"/],
    ['subnets without a VPC', { privateSubnetIds: ['subnet-0123456789abcdef0'] }, /"privateSubnetIds" property needs "vpcId" too/],
    ['a VPC without subnets', { vpcId: 'vpc-0123456789abcdef0' }, /"vpcId" property needs "privateSubnetIds" too/],
    ['security groups without a VPC', { securityGroupIds: ['sg-0123456789abcdef0'] }, /"securityGroupIds" property only applies with "vpcId"/],
    ['a VPC name instead of its id', { vpcId: 'main-vpc', privateSubnetIds: ['subnet-0123456789abcdef0'] }, /"vpcId" property must be a VPC id like vpc-0123456789abcdef0; got "main-vpc"/],
    ['a subnet name instead of its id', { vpcId: 'vpc-0123456789abcdef0', privateSubnetIds: ['private-a'] }, /"privateSubnetIds" property must hold subnet ids like subnet-0123456789abcdef0; "private-a"/],
    ['a security group name', { vpcId: 'vpc-0123456789abcdef0', privateSubnetIds: ['subnet-0123456789abcdef0'], securityGroupIds: ['cluster'] }, /"securityGroupIds" property must hold security group ids/],
    ['schedule in crontab syntax', { schedule: '0 3 * * 1' }, /"schedule" property must be an EventBridge Scheduler expression/],
  ])('rejects %s', (_name, props, message) => {
    expect(() => construct(props)).toThrow(message);
  });

  it('accepts the defaults with only a cluster name', () => {
    expect(() => construct({})).not.toThrow();
  });
});

describe('MlPipeStack context', () => {
  it('reads mlpipe:* keys, including command-line strings for numbers, lists and durations', () => {
    // GIVEN context as `-c key=value` delivers it (strings)
    const { template } = synthStack({
      context: {
        'mlpipe:clusterName': 'prod-eks',
        'mlpipe:minAccuracy': '0.9',
        'mlpipe:approverEmails': 'ana@example.com, bo@example.com',
        'mlpipe:approvalTimeout': 'PT2H',
        'mlpipe:defaultHyperparameters': '{"epochs":5}',
      },
    });
    // THEN
    template.resourceCountIs('AWS::SNS::Subscription', 2);
    const env = JSON.stringify(template.findResources('AWS::Lambda::Function'));
    expect(env).toContain('"MIN_ACCURACY":"0.9"');
    expect(env).toContain('"APPROVAL_TIMEOUT_SECONDS":"7200"');
    expect(env).toContain('"CLUSTER_NAME":"prod-eks"');
    expect(env).toContain('"DEFAULT_HYPERPARAMETERS":"{\\"epochs\\":5}"');
  });

  it('reads JSON-object settings given as strings or as objects (cdk.json)', () => {
    const annotations = { 'service.beta.kubernetes.io/aws-load-balancer-scheme': 'internet-facing' };
    for (const raw of [JSON.stringify(annotations), annotations]) {
      const props = propsFromContext((key) => ({ 'mlpipe:clusterName': 'c', 'mlpipe:serviceAnnotations': raw, 'mlpipe:defaultHyperparameters': { epochs: 5 } })[key]);
      expect(props).toEqual({ clusterName: 'c', serviceAnnotations: annotations, defaultHyperparameters: { epochs: 5 } });
    }
  });

  it('reads placement given as a command-line string or as JSON (cdk.json)', () => {
    const placement = { gpus: 1, nodeSelector: { 'karpenter.sh/nodepool': 'gpu' }, tolerations: [{ key: 'nvidia.com/gpu', operator: 'Exists', effect: 'NoSchedule' }] };
    for (const raw of [JSON.stringify(placement), placement]) {
      const props = propsFromContext((key) => ({ 'mlpipe:clusterName': 'c', 'mlpipe:trainingPlacement': raw })[key]);
      expect(props).toEqual({ clusterName: 'c', trainingPlacement: placement });
    }
  });

  it('an empty value switches a setting off (falls back to the default)', () => {
    const props = propsFromContext((key) => ({ 'mlpipe:clusterName': 'c', 'mlpipe:schedule': '' })[key]);
    expect(props).toEqual({ clusterName: 'c' });
  });

  it.each<[string, Record<string, unknown>, RegExp]>([
    ['missing cluster', {}, /context "mlpipe:clusterName" is required/],
    ['non-numeric threshold', { 'mlpipe:clusterName': 'c', 'mlpipe:minAccuracy': 'high' }, /context "mlpipe:minAccuracy" must be a number, got "high"/],
    ['bad duration', { 'mlpipe:clusterName': 'c', 'mlpipe:approvalTimeout': '1 day' }, /context "mlpipe:approvalTimeout" must be seconds or an ISO 8601 duration/],
    ['hyperparameters not JSON', { 'mlpipe:clusterName': 'c', 'mlpipe:defaultHyperparameters': 'epochs=5' }, /context "mlpipe:defaultHyperparameters" must be a JSON object/],
    ['annotations with a non-string value', { 'mlpipe:clusterName': 'c', 'mlpipe:serviceAnnotations': '{"a":1}' }, /context "mlpipe:serviceAnnotations" must be a JSON object of strings/],
    ['allowImageTags as a word', { 'mlpipe:clusterName': 'c', 'mlpipe:allowImageTags': 'yes' }, /context "mlpipe:allowImageTags" must be true or false/],
    ['a bad training Job TTL', { 'mlpipe:clusterName': 'c', 'mlpipe:trainingJobTtl': 'a week' }, /context "mlpipe:trainingJobTtl" must be seconds or an ISO 8601 duration/],
    ['cluster as a number', { 'mlpipe:clusterName': 42 }, /context "mlpipe:clusterName"/],
    ['placement that is not a JSON object', { 'mlpipe:clusterName': 'c', 'mlpipe:servingPlacement': 'gpus=1' }, /context "mlpipe:servingPlacement" must be a JSON object like/],
  ])('rejects %s, naming the context key', (_name, context, message) => {
    expect(() => buildStack({ context })).toThrow(message);
  });
});
