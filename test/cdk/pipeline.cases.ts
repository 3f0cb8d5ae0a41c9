/**
 * MlPipeStack's resources, one concern per test, targeted assertions (run from stack.test.ts; helpers.ts shares one
 * synthesized stack per set of props).
 */
import { Match } from 'aws-cdk-lib/assertions';
import { EDIT_POLICY_SUBRESOURCE_RULES, TASK_SUBRESOURCE_NEEDS } from '../../lib/constructs/cluster-access';
import { LOGGING_ENVIRONMENT } from '../../lib/constructs/lambda-defaults';
import { FUNCTION_SPECS, DEFINITION_SUBSTITUTION_NAMES } from '../../lib/constructs/pipeline-functions';
import { CLUSTER, logicalId, resourcesOf, synthStack } from './helpers';

/** The ARN of `key` (a pattern) in the artifact bucket, as the template spells it. */
const bucketObjects = (template: ReturnType<typeof synthStack>['template'], key: string) => ({
  'Fn::Join': ['', [{ 'Fn::GetAtt': [logicalId(template, 'AWS::S3::Bucket', 'ArtifactsBucket'), 'Arn'] }, key]],
});

/** Every statement of the identity policies attached to the role whose logical id contains `fragment`. */
function statementsOfRole(template: ReturnType<typeof synthStack>['template'], fragment: string): Array<Record<string, unknown>> {
  return Object.values(resourcesOf(template, 'AWS::IAM::Policy'))
    .filter((p) => JSON.stringify(p.Properties?.Roles).includes(fragment))
    .flatMap((p) => (p.Properties?.PolicyDocument as { Statement: Array<Record<string, unknown>> }).Statement);
}

describe('artifact bucket', () => {
  it('is versioned, encrypted, private, retained, with lifecycle rules for old versions and approval records', () => {
    // GIVEN / WHEN
    const { template } = synthStack();
    // THEN
    template.hasResource('AWS::S3::Bucket', {
      DeletionPolicy: 'Retain',
      Properties: Match.objectLike({
        VersioningConfiguration: { Status: 'Enabled' },
        BucketEncryption: { ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } }] },
        PublicAccessBlockConfiguration: { BlockPublicAcls: true, BlockPublicPolicy: true, IgnorePublicAcls: true, RestrictPublicBuckets: true },
        LifecycleConfiguration: {
          Rules: Match.arrayWith([
            Match.objectLike({ NoncurrentVersionExpiration: { NoncurrentDays: 90 }, Status: 'Enabled' }),
            Match.objectLike({ Prefix: 'approvals/', ExpirationInDays: 30, Status: 'Enabled' }),
            Match.objectLike({ Prefix: 'checkpoints/', ExpirationInDays: 14, NoncurrentVersionExpiration: { NoncurrentDays: 1 }, Status: 'Enabled' }),
          ]),
        },
      }),
    });
    expect(resourcesOf(template, 'Custom::S3AutoDeleteObjects')).toEqual({});
  });

  it('denies every request that is not TLS', () => {
    const { template } = synthStack();
    template.hasResourceProperties('AWS::S3::BucketPolicy', {
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({ Effect: 'Deny', Action: 's3:*', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
        ]),
      },
    });
  });

  it('sends events to EventBridge only with a data trigger, natively (no custom resource)', () => {
    const without = synthStack().template;
    const withData = synthStack({ props: { dataPrefix: 'datasets/fashion-mnist/v1/' } }).template;
    expect(JSON.stringify(resourcesOf(without, 'AWS::S3::Bucket'))).not.toContain('EventBridgeConfiguration');
    withData.hasResourceProperties('AWS::S3::Bucket', {
      NotificationConfiguration: { EventBridgeConfiguration: { EventBridgeEnabled: true } },
    });
    expect(resourcesOf(withData, 'Custom::S3BucketNotifications')).toEqual({});
  });
});

describe('Lambda functions', () => {
  it('every function: Node 24 runtime, arm64, active tracing, JSON logs at one level (Lambda and Powertools) to its own retained log group, explicit timeout', () => {
    const { template } = synthStack();
    const functions = resourcesOf(template, 'AWS::Lambda::Function');
    // the task/rollback functions + approval-api + start-pipeline + the serving monitor + the token rotation
    expect(Object.keys(functions)).toHaveLength(FUNCTION_SPECS.length + 4);
    for (const [id, fn] of Object.entries(functions)) {
      expect({ id, ...fn.Properties }).toMatchObject({
        id,
        Runtime: 'nodejs24.x',
        Architectures: ['arm64'],
        TracingConfig: { Mode: 'Active' },
        LoggingConfig: { LogFormat: 'JSON', LogGroup: { Ref: expect.stringContaining('Logs') } },
        Handler: 'index.handler',
        Timeout: expect.any(Number),
      });
      // Powertools Logger and Lambda filter lines by the same level, so neither drops what the other keeps.
      const props = fn.Properties as { LoggingConfig: { ApplicationLogLevel?: string }; Environment: { Variables: Record<string, unknown> } };
      expect({ id, level: props.Environment.Variables.POWERTOOLS_LOG_LEVEL, service: props.Environment.Variables.POWERTOOLS_SERVICE_NAME }).toEqual({
        id,
        level: props.LoggingConfig.ApplicationLogLevel,
        service: 'mlpipe',
      });
    }
    template.allResources('AWS::Logs::LogGroup', { DeletionPolicy: 'Retain', Properties: Match.objectLike({ RetentionInDays: Match.anyValue() }) });
  });

  it('settings carry the props (thresholds, namespaces, cluster, approval timeout)', () => {
    const { template } = synthStack({
      props: { minAccuracy: 0.9, maxP95LatencyMs: 120, stagingNamespace: 'ml-stage', approvalTimeout: undefined },
    });
    template.hasResourceProperties('AWS::Lambda::Function', {
      Environment: { Variables: Match.objectLike({ MIN_ACCURACY: '0.9', MAX_P95_LATENCY_MS: '120', MAX_ERROR_RATE: '0.01', MAX_ACCURACY_DROP: '0.01' }) },
    });
    template.hasResourceProperties('AWS::Lambda::Function', {
      Environment: { Variables: Match.objectLike({ STAGING_NAMESPACE: 'ml-stage', PRODUCTION_NAMESPACE: 'mlpipe-production', APPROVAL_TIMEOUT_SECONDS: '86400' }) },
    });
    template.hasResourceProperties('AWS::Lambda::Function', { Environment: { Variables: Match.objectLike({ CLUSTER_NAME: CLUSTER }) } });
  });

  it('request-approval links point at the approval API', () => {
    const { template } = synthStack();
    template.hasResourceProperties('AWS::Lambda::Function', {
      Environment: {
        Variables: Match.objectLike({ APPROVAL_BASE_URL: { 'Fn::GetAtt': [Match.stringLikeRegexp('ApprovalApi'), 'ApiEndpoint'] } }),
      },
    });
  });
});

describe('state machine', () => {
  it('is STANDARD, traced, logs ALL without execution data to an encrypted log group', () => {
    const { template } = synthStack();
    template.hasResourceProperties('AWS::StepFunctions::StateMachine', {
      StateMachineType: 'STANDARD',
      TracingConfiguration: { Enabled: true },
      LoggingConfiguration: Match.objectLike({ Level: 'ALL', IncludeExecutionData: false }),
    });
    template.hasResourceProperties('AWS::Logs::LogGroup', { KmsKeyId: { 'Fn::GetAtt': [Match.stringLikeRegexp('Key'), 'Arn'] } });
  });

  it('substitutes every placeholder with a function ARN and leaves no ${ in the definition', () => {
    const { template } = synthStack();
    const [machine] = Object.values(resourcesOf(template, 'AWS::StepFunctions::StateMachine'));
    const props = machine?.Properties as { DefinitionString: string; DefinitionSubstitutions: Record<string, unknown> };
    expect(typeof props.DefinitionString).toBe('string');
    // CloudFormation fills in ${X} from DefinitionSubstitutions; nothing else may look like a placeholder.
    const left = [...props.DefinitionString.matchAll(/\$\{([A-Za-z0-9_]+)\}/g)].map((m) => m[1]);
    expect(new Set(left)).toEqual(new Set(DEFINITION_SUBSTITUTION_NAMES));
    expect(Object.keys(props.DefinitionSubstitutions).sort()).toEqual([...DEFINITION_SUBSTITUTION_NAMES].sort());
    for (const spec of FUNCTION_SPECS.filter((s) => s.placeholder)) {
      expect(props.DefinitionSubstitutions[spec.placeholder as string]).toEqual({
        'Fn::GetAtt': [logicalId(template, 'AWS::Lambda::Function', `Functions${spec.id}`), 'Arn'],
      });
    }
    // Once substituted, the definition has no ${ left.
    const substituted = props.DefinitionString.replace(/\$\{([A-Za-z0-9_]+)\}/g, (_m, n: string) => (n in props.DefinitionSubstitutions ? 'arn' : _m));
    expect(substituted).not.toContain('${');
  });

  it('may invoke each task function, and only those', () => {
    const { template } = synthStack();
    const policy = Object.values(resourcesOf(template, 'AWS::IAM::Policy')).find((p) =>
      JSON.stringify(p.Properties?.Roles).includes('StateMachineRole'),
    );
    const invokes = (policy?.Properties?.PolicyDocument as { Statement: Array<{ Action: unknown; Resource: unknown[] }> }).Statement
      .filter((s) => s.Action === 'lambda:InvokeFunction');
    const invoked = invokes.map((s) => (s.Resource[0] as { 'Fn::GetAtt': [string] })['Fn::GetAtt'][0]).sort();
    const expected = FUNCTION_SPECS.filter((s) => s.placeholder).map((s) => logicalId(template, 'AWS::Lambda::Function', `Functions${s.id}`)).sort();
    expect(invoked).toEqual(expected);
  });
});

describe('cluster access', () => {
  const editPolicy = { 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':eks::aws:cluster-access-policy/AmazonEKSEditPolicy']] };

  it('an access entry (STANDARD) for the tasks role, edit policy scoped to the two namespaces', () => {
    const { template } = synthStack({ props: { stagingNamespace: 'ml-stage', productionNamespace: 'ml-prod' } });
    template.resourceCountIs('AWS::EKS::AccessEntry', 4); // tasks, rollback, the serving monitor, the token rotation
    template.hasResourceProperties('AWS::EKS::AccessEntry', {
      ClusterName: CLUSTER,
      Type: 'STANDARD',
      PrincipalArn: { 'Fn::GetAtt': [Match.stringLikeRegexp('KubernetesTaskRole'), 'Arn'] },
      AccessPolicies: [{ PolicyArn: editPolicy, AccessScope: { Type: 'namespace', Namespaces: ['ml-stage', 'ml-prod'] } }],
    });
  });

  it('the tasks may read pods/proxy (canary metrics) and pods/log in production: the edit policy grants them there', () => {
    const { template } = synthStack({ props: { stagingNamespace: 'ml-stage', productionNamespace: 'ml-prod' } });
    const entry = Object.values(resourcesOf(template, 'AWS::EKS::AccessEntry')).find((e) => JSON.stringify(e.Properties?.PrincipalArn).includes('KubernetesTaskRole'));
    const policies = entry?.Properties?.AccessPolicies as Array<{ PolicyArn: unknown; AccessScope: { Namespaces: string[] } }>;
    const edit = policies.find((p) => JSON.stringify(p.PolicyArn) === JSON.stringify(editPolicy));
    expect(edit?.AccessScope.Namespaces).toContain('ml-prod');
    expect(TASK_SUBRESOURCE_NEEDS.map((n) => n.resource)).toContain('pods/proxy');
    for (const need of TASK_SUBRESOURCE_NEEDS) {
      expect(EDIT_POLICY_SUBRESOURCE_RULES.some((r) => r.resources.includes(need.resource) && r.verbs.includes(need.verb))).toBe(true);
    }
  });

  it('rollback has its own role and access entry, scoped to the production namespace only', () => {
    const { template } = synthStack({ props: { stagingNamespace: 'ml-stage', productionNamespace: 'ml-prod' } });
    template.hasResourceProperties('AWS::EKS::AccessEntry', {
      ClusterName: CLUSTER,
      Type: 'STANDARD',
      PrincipalArn: { 'Fn::GetAtt': [Match.stringLikeRegexp('RollbackRole'), 'Arn'] },
      AccessPolicies: [{ PolicyArn: editPolicy, AccessScope: { Type: 'namespace', Namespaces: ['ml-prod'] } }],
    });
    const roleId = logicalId(template, 'AWS::IAM::Role', 'RollbackRole');
    const users = Object.entries(resourcesOf(template, 'AWS::Lambda::Function')).filter(([, f]) => JSON.stringify(f.Properties?.Role).includes(roleId));
    expect(users.map(([id]) => id)).toEqual([logicalId(template, 'AWS::Lambda::Function', 'FunctionsRollback')]);
  });

  it('only rollback may rewrite production.json; the tasks role reads the registry and writes nothing to S3', () => {
    const { template } = synthStack({ props: { modelName: 'shoes' } });
    const policyOf = (fragment: string) =>
      JSON.stringify(Object.values(resourcesOf(template, 'AWS::IAM::Policy')).filter((p) => JSON.stringify(p.Properties?.Roles).includes(fragment)));
    expect(policyOf('KubernetesTaskRole')).toContain('/models/shoes/*');
    expect(policyOf('KubernetesTaskRole')).not.toContain('s3:PutObject');
    const rollback = statementsOfRole(template, 'RollbackRole');
    expect(rollback).toEqual(expect.arrayContaining([
      expect.objectContaining({ Action: 's3:PutObject', Resource: bucketObjects(template, '/models/shoes/production.json') }),
    ]));
    expect(JSON.stringify(rollback.filter((s) => JSON.stringify(s).includes('s3:PutObject')))).not.toContain('manifest.json');
  });

  it('the Kubernetes-calling tasks (and only they) use the tasks role', () => {
    const { template } = synthStack();
    const roleId = logicalId(template, 'AWS::IAM::Role', 'KubernetesTaskRole');
    const functions = resourcesOf(template, 'AWS::Lambda::Function');
    const users = Object.entries(functions)
      .filter(([, f]) => JSON.stringify(f.Properties?.Role).includes(roleId))
      .map(([id]) => id);
    const expected = FUNCTION_SPECS.filter((s) => s.access === 'kubernetes').map((s) => logicalId(template, 'AWS::Lambda::Function', `Functions${s.id}`));
    expect(users.sort()).toEqual(expected.sort());
    expect(expected.length).toBeGreaterThanOrEqual(11);
  });

  it('describes the one cluster only', () => {
    const { template } = synthStack();
    template.hasResourceProperties('AWS::IAM::Policy', {
      PolicyDocument: {
        Statement: Match.arrayWith([
          {
            Action: 'eks:DescribeCluster',
            Effect: 'Allow',
            Resource: { 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, `:eks:eu-west-1:123456789012:cluster/${CLUSTER}`]] },
          },
        ]),
      },
    });
  });

  it('pod identity: trainer in staging, server in staging and production, roles trusted by pods.eks.amazonaws.com', () => {
    const { template } = synthStack();
    template.resourceCountIs('AWS::EKS::PodIdentityAssociation', 3);
    const assoc = Object.values(resourcesOf(template, 'AWS::EKS::PodIdentityAssociation')).map((r) => {
      const p = r.Properties as { Namespace: string; ServiceAccount: string; RoleArn: { 'Fn::GetAtt': [string] }; ClusterName: string };
      return `${p.ClusterName}/${p.Namespace}/${p.ServiceAccount}->${p.RoleArn['Fn::GetAtt'][0].replace(/[0-9A-F]{8}$/, '')}`;
    });
    expect(assoc.sort()).toEqual([
      `${CLUSTER}/mlpipe-production/mlpipe-server->PipelineClusterAccessServerRole`,
      `${CLUSTER}/mlpipe-staging/mlpipe-server->PipelineClusterAccessServerRole`,
      `${CLUSTER}/mlpipe-staging/mlpipe-trainer->PipelineClusterAccessTrainerRole`,
    ]);
    for (const fragment of ['TrainerRole', 'ServerRole']) {
      const role = resourcesOf(template, 'AWS::IAM::Role')[logicalId(template, 'AWS::IAM::Role', fragment)];
      expect(role?.Properties?.AssumeRolePolicyDocument).toEqual({
        Version: '2012-10-17',
        Statement: [{ Action: ['sts:AssumeRole', 'sts:TagSession'], Effect: 'Allow', Principal: { Service: 'pods.eks.amazonaws.com' } }],
      });
    }
  });

  it('the trainer reads datasets, writes its model and reads+writes its checkpoints; the server only reads the model', () => {
    const { template } = synthStack({ props: { modelName: 'shoes' } });
    const statementsOf = (fragment: string) => statementsOfRole(template, fragment);
    expect(statementsOf('TrainerRole')).toEqual(expect.arrayContaining([
      expect.objectContaining({ Action: ['s3:GetObject', 's3:GetObjectVersion'], Resource: [bucketObjects(template, '/datasets/*'), bucketObjects(template, '/checkpoints/shoes/*')] }),
      expect.objectContaining({ Action: 's3:PutObject', Resource: [bucketObjects(template, '/models/shoes/*'), bucketObjects(template, '/checkpoints/shoes/*')] }),
    ]));
    const server = JSON.stringify(statementsOf('ServerRole'));
    expect(server).toContain('/models/shoes/*');
    expect(server).not.toContain('s3:PutObject');
    expect(server).not.toContain('/datasets/');
    expect(server).not.toContain('/checkpoints/');
    // Nothing but the trainer touches checkpoints.
    const others = Object.values(resourcesOf(template, 'AWS::IAM::Policy')).filter((p) => !JSON.stringify(p.Properties?.Roles).includes('TrainerRole'));
    expect(JSON.stringify(others)).not.toContain('/checkpoints/');
  });

  it('the Kubernetes tasks read only the trainer\'s reports (metrics.json, progress.json), never model files or the registry', () => {
    const { template } = synthStack({ props: { modelName: 'shoes' } });
    const reads = statementsOfRole(template, 'KubernetesTaskRole').filter((st) => JSON.stringify(st.Action).includes('s3:GetObject'));
    expect(reads).toEqual([
      expect.objectContaining({ Resource: [bucketObjects(template, '/models/shoes/*/metrics.json'), bucketObjects(template, '/models/shoes/*/progress.json')] }),
    ]);
  });

  it('RequestApproval reads the datasets\' dataset.json (version and sha256 for the approver), never the data itself', () => {
    const { template } = synthStack({ props: { modelName: 'shoes' } });
    const reads = JSON.stringify(statementsOfRole(template, 'RequestApproval').filter((st) => JSON.stringify(st.Action).includes('s3:GetObject')));
    expect(reads).toContain(JSON.stringify(bucketObjects(template, '/datasets/*/dataset.json')));
    expect(reads).not.toContain(JSON.stringify(bucketObjects(template, '/datasets/*')));
  });

  it('the trainer (user code) may not write the registry records under its model prefix', () => {
    const { template } = synthStack({ props: { modelName: 'shoes' } });
    expect(statementsOfRole(template, 'TrainerRole')).toEqual(expect.arrayContaining([
      expect.objectContaining({
        Effect: 'Deny',
        Action: 's3:PutObject',
        Resource: [
          bucketObjects(template, '/models/shoes/production.json'),
          bucketObjects(template, '/models/shoes/*/manifest.json'),
          bucketObjects(template, '/models/shoes/*/evaluation.json'),
        ],
      }),
    ]));
  });
});

describe('approval', () => {
  it('KMS-encrypted topic with one email subscription per approver', () => {
    const { template } = synthStack({ props: { approverEmails: ['ana@example.com', 'bo@example.com'] } });
    template.hasResourceProperties('AWS::SNS::Topic', { KmsMasterKeyId: Match.anyValue() });
    template.resourceCountIs('AWS::SNS::Subscription', 2);
    template.hasResourceProperties('AWS::SNS::Subscription', { Protocol: 'email', Endpoint: 'ana@example.com' });
    template.hasResourceProperties('AWS::SNS::Subscription', { Protocol: 'email', Endpoint: 'bo@example.com' });
  });

  it('the key lets CloudWatch alarms publish to the topic', () => {
    const { template } = synthStack();
    template.hasResourceProperties('AWS::KMS::Key', {
      EnableKeyRotation: true,
      KeyPolicy: { Statement: Match.arrayWith([Match.objectLike({ Principal: { Service: 'cloudwatch.amazonaws.com' } })]) },
    });
  });

  it('HTTP API with GET and POST /approvals/{id} and /retries/{run} to the approval function, throttled', () => {
    const { template } = synthStack();
    template.hasResourceProperties('AWS::ApiGatewayV2::Api', { ProtocolType: 'HTTP' });
    for (const method of ['GET', 'POST']) {
      template.hasResourceProperties('AWS::ApiGatewayV2::Route', { RouteKey: `${method} /approvals/{id}` });
      template.hasResourceProperties('AWS::ApiGatewayV2::Route', { RouteKey: `${method} /retries/{run}` });
    }
    template.resourceCountIs('AWS::ApiGatewayV2::Route', 4);
    template.hasResourceProperties('AWS::ApiGatewayV2::Integration', {
      IntegrationType: 'AWS_PROXY',
      PayloadFormatVersion: '2.0',
      IntegrationUri: { 'Fn::GetAtt': [Match.stringLikeRegexp('ApprovalApiFunction'), 'Arn'] },
    });
    template.hasResourceProperties('AWS::ApiGatewayV2::Stage', {
      StageName: '$default',
      AutoDeploy: true,
      DefaultRouteSettings: { ThrottlingRateLimit: 5, ThrottlingBurstLimit: 10 },
    });
  });

  it('the link-signing key is a generated secret only the approval functions and Notify (retry links) can read', () => {
    const { template } = synthStack();
    template.hasResourceProperties('AWS::SecretsManager::Secret', { GenerateSecretString: Match.objectLike({ PasswordLength: 64 }) });
    const readers = Object.values(resourcesOf(template, 'AWS::IAM::Policy'))
      .filter((p) => JSON.stringify(p.Properties?.PolicyDocument).includes('secretsmanager:GetSecretValue'))
      // The endpoint token's readers are endpoint-auth.cases.ts's concern.
      .filter((p) => JSON.stringify(p.Properties?.PolicyDocument).includes('LinkSigningKey'))
      .map((p) => JSON.stringify(p.Properties?.Roles));
    expect(readers).toHaveLength(3);
    expect(readers.join()).toMatch(/ApprovalApiFunction/);
    expect(readers.join()).toMatch(/RequestApproval/);
    expect(readers.join()).toMatch(/FunctionsNotify/);
  });

  it('only the approval function may send task results, and only to this state machine', () => {
    const { template } = synthStack();
    const senders = Object.values(resourcesOf(template, 'AWS::IAM::Policy')).filter((p) =>
      JSON.stringify(p.Properties?.PolicyDocument).includes('states:SendTask'),
    );
    expect(senders).toHaveLength(1);
    expect(JSON.stringify(senders[0]?.Properties?.Roles)).toMatch(/ApprovalApiFunction/);
    expect(senders[0]?.Properties?.PolicyDocument).toMatchObject({
      Statement: expect.arrayContaining([
        { Action: ['states:SendTaskSuccess', 'states:SendTaskFailure'], Effect: 'Allow', Resource: { Ref: logicalId(template, 'AWS::StepFunctions::StateMachine', 'StateMachine') } },
      ]),
    });
  });
});

describe('triggers', () => {
  it('ECR push rule for the configured repository sends to the queue', () => {
    const { template } = synthStack({ props: { trainingRepositoryName: 'team/shoes-train' } });
    template.hasResourceProperties('AWS::Events::Rule', {
      EventPattern: {
        source: ['aws.ecr'],
        'detail-type': ['ECR Image Action'],
        detail: { 'action-type': ['PUSH'], result: ['SUCCESS'], 'repository-name': ['team/shoes-train'] },
      },
      Targets: [Match.objectLike({ Arn: { 'Fn::GetAtt': [Match.stringLikeRegexp('TriggersQueue'), 'Arn'] } })],
    });
  });

  it('queue: encrypted, 14 days, visibility >= 6x the starter timeout, DLQ after 5 receives', () => {
    const { template } = synthStack();
    const starter = resourcesOf(template, 'AWS::Lambda::Function')[logicalId(template, 'AWS::Lambda::Function', 'StartPipeline')];
    const timeout = starter?.Properties?.Timeout as number;
    template.hasResourceProperties('AWS::SQS::Queue', {
      SqsManagedSseEnabled: true,
      MessageRetentionPeriod: 1209600,
      VisibilityTimeout: Match.anyValue(),
      RedrivePolicy: { deadLetterTargetArn: { 'Fn::GetAtt': [Match.stringLikeRegexp('DeadLetterQueue'), 'Arn'] }, maxReceiveCount: 5 },
    });
    const queue = resourcesOf(template, 'AWS::SQS::Queue')[logicalId(template, 'AWS::SQS::Queue', 'TriggersQueue')];
    expect(queue?.Properties?.VisibilityTimeout as number).toBeGreaterThanOrEqual(6 * timeout);
    template.hasResourceProperties('AWS::SQS::Queue', { SqsManagedSseEnabled: true, MessageRetentionPeriod: 1209600, RedrivePolicy: Match.absent() });
  });

  it('alarms (to the topic) when anything sits in the DLQ', () => {
    const { template } = synthStack();
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      MetricName: 'ApproximateNumberOfMessagesVisible',
      Namespace: 'AWS/SQS',
      Dimensions: [{ Name: 'QueueName', Value: { 'Fn::GetAtt': [Match.stringLikeRegexp('DeadLetterQueue'), 'QueueName'] } }],
      ComparisonOperator: 'GreaterThanThreshold',
      Threshold: 0,
      AlarmActions: [{ Ref: Match.stringLikeRegexp('ApprovalTopic') }],
    });
  });

  it('starter: SQS batches of 10 with partial batch failures; env names the state machine, pipelines and DLQ', () => {
    const { template } = synthStack();
    template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      BatchSize: 10,
      MaximumBatchingWindowInSeconds: 5,
      FunctionResponseTypes: ['ReportBatchItemFailures'],
      EventSourceArn: { 'Fn::GetAtt': [Match.stringLikeRegexp('TriggersQueue'), 'Arn'] },
    });
    const starter = resourcesOf(template, 'AWS::Lambda::Function')[logicalId(template, 'AWS::Lambda::Function', 'StartPipeline')];
    const env = (starter?.Properties?.Environment as { Variables: Record<string, unknown> }).Variables;
    expect(Object.keys(env).sort()).toEqual(['DEAD_LETTER_QUEUE_URL', 'NODE_OPTIONS', 'PIPELINES', 'POWERTOOLS_LOG_LEVEL', 'POWERTOOLS_SERVICE_NAME', 'STARTER_MAX_ATTEMPTS', 'STARTER_RETRY_BASE_MS', 'STATE_MACHINE_ARN']);
    expect(env.STATE_MACHINE_ARN).toEqual({ Ref: logicalId(template, 'AWS::StepFunctions::StateMachine', 'StateMachine') });
    expect(env.DEAD_LETTER_QUEUE_URL).toEqual({ Ref: logicalId(template, 'AWS::SQS::Queue', 'DeadLetterQueue') });
  });

  it('PIPELINES maps the repository to the model and its data', () => {
    const { template } = synthStack({ props: { modelName: 'shoes', trainingRepositoryName: 'team/shoes-train', dataUri: 's3://data-bucket/shoes/v2/', defaultHyperparameters: { epochs: 3 } } });
    const starter = resourcesOf(template, 'AWS::Lambda::Function')[logicalId(template, 'AWS::Lambda::Function', 'StartPipeline')];
    const raw = (starter?.Properties?.Environment as { Variables: { PIPELINES: unknown } }).Variables.PIPELINES;
    expect(typeof raw).toBe('string');
    expect(JSON.parse(raw as string)).toEqual({
      'team/shoes-train': { modelName: 'shoes', dataUri: 's3://data-bucket/shoes/v2/', evalDataUri: 's3://data-bucket/shoes/v2/', hyperparameters: { epochs: 3 } },
    });
  });

  it('starter may start this state machine, send to its DLQ and describe images of its repository — nothing more', () => {
    const { template } = synthStack();
    const policy = Object.values(resourcesOf(template, 'AWS::IAM::Policy')).find((p) => JSON.stringify(p.Properties?.Roles).includes('StartPipeline'));
    const statements = (policy?.Properties?.PolicyDocument as { Statement: Array<{ Action: string | string[]; Resource: unknown }> }).Statement;
    const byAction = Object.fromEntries(statements.flatMap((s) => [s.Action].flat().map((a) => [a, JSON.stringify(s.Resource)])));
    expect(byAction['states:StartExecution']).toContain('StateMachine');
    expect(byAction['sqs:SendMessage']).toContain('DeadLetterQueue');
    expect(byAction['ecr:DescribeImages']).toContain(':repository/mlpipe/fashion-mnist-train');
    expect(byAction['sqs:ReceiveMessage']).toContain('TriggersQueue');
    expect(byAction['sqs:ReceiveMessage']).not.toContain('DeadLetterQueue');
  });

  it('optional data rule and schedule send to the same queue', () => {
    const { template } = synthStack({ props: { dataPrefix: 'datasets/fashion-mnist/v1/', schedule: 'rate(7 days)' } });
    template.hasResourceProperties('AWS::Events::Rule', {
      EventPattern: {
        source: ['aws.s3'],
        'detail-type': ['Object Created'],
        detail: { bucket: { name: [{ Ref: Match.stringLikeRegexp('ArtifactsBucket') }] }, object: { key: [{ wildcard: 'datasets/fashion-mnist/v1/*dataset.json' }] } },
      },
      Targets: [Match.objectLike({ Arn: { 'Fn::GetAtt': [Match.stringLikeRegexp('TriggersQueue'), 'Arn'] } })],
    });
    template.hasResourceProperties('AWS::Scheduler::Schedule', {
      ScheduleExpression: 'rate(7 days)',
      Target: Match.objectLike({
        Arn: { 'Fn::GetAtt': [Match.stringLikeRegexp('TriggersQueue'), 'Arn'] },
        Input: JSON.stringify({ mlpipe: 'schedule', repositoryName: 'mlpipe/fashion-mnist-train', scheduledTime: '<aws.scheduler.scheduled-time>' }),
      }),
    });
  });

  it('no data rule or schedule unless asked for', () => {
    const { template } = synthStack();
    template.resourceCountIs('AWS::Events::Rule', 1);
    // The serving monitor's schedule only (serving-monitor.cases.ts).
    expect(Object.values(resourcesOf(template, 'AWS::Scheduler::Schedule')).map((r) => r.Properties?.Description)).toEqual(['mlpipe: serving monitor of fashion-mnist']);
  });
});

describe('monitoring and outputs', () => {
  it('alarms on UNEXPECTED run failures (Notify\'s metric), timeouts, failures nobody notified and errors of every function, to the topic', () => {
    const { template } = synthStack();
    const machine = logicalId(template, 'AWS::StepFunctions::StateMachine', 'StateMachine');
    // The state machine's name, as the alarm's dimension: the one Notify gives its metric (pipeline-metrics.ts).
    const machineName = { 'Fn::Select': [6, { 'Fn::Split': [':', { Ref: machine }] }] };
    const alarms = Object.values(resourcesOf(template, 'AWS::CloudWatch::Alarm')).map((a) => a.Properties as Record<string, unknown>);
    const topic = [{ Ref: Match.stringLikeRegexp('ApprovalTopic') }];
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      Namespace: 'mlpipe/Pipeline', MetricName: 'UnexpectedFailures', Statistic: 'Sum', Dimensions: [{ Name: 'StateMachine', Value: machineName }], Threshold: 0, AlarmActions: topic,
    });
    // A deliberate end (rejection, expiry, gate) fails the execution too: no alarm watches ExecutionsFailed alone.
    expect(alarms.filter((a) => a.MetricName === 'ExecutionsFailed')).toEqual([]);
    template.hasResourceProperties('AWS::CloudWatch::Alarm', { MetricName: 'ExecutionsTimedOut', Namespace: 'AWS/States', AlarmActions: topic });
    // The backstop: failed executions minus the failures Notify reported (Notify failed, or States.Runtime).
    const backstop = alarms.find((a) => JSON.stringify(a.Metrics ?? []).includes('FailuresNotified'));
    expect(backstop).toMatchObject({ AlarmActions: [{ Ref: expect.stringMatching('ApprovalTopic') }], Metrics: expect.arrayContaining([expect.objectContaining({ Expression: 'FILL(failed, 0) - FILL(notified, 0)' })]) });
    expect(JSON.stringify(backstop!.Metrics)).toContain('"MetricName":"ExecutionsFailed"');
    const errorAlarms = alarms.filter((a) => a.MetricName === 'Errors');
    expect(errorAlarms).toHaveLength(FUNCTION_SPECS.length + 4);
  });

  it('has a dashboard of runs, step durations, approval wait, cost, and the serving metrics of its model', () => {
    const { template } = synthStack();
    const [dashboard] = Object.values(resourcesOf(template, 'AWS::CloudWatch::Dashboard'));
    const body = JSON.stringify(dashboard?.Properties?.DashboardBody);
    for (const metric of ['ExecutionsStarted', 'ExecutionsSucceeded', 'ExecutionsFailed', 'ExecutionTime', 'UnexpectedFailures', 'RunsEnded', 'ApprovalWaitSeconds', 'TrainingSeconds', 'RunCostUSD', 'Duration']) {
      expect({ metric, onDashboard: body.includes(`\\"${metric}\\"`) }).toEqual({ metric, onDashboard: true });
    }
    // Serving (the Monitor function's metrics), for the configured model by its name.
    for (const metric of ['Requests', 'ErrorRate', 'LatencyP50', 'LatencyP95', 'PredictionDrift']) {
      expect(body).toContain(`[\\"mlpipe/Serving\\",\\"${metric}\\",\\"Model\\",\\"fashion-mnist\\"`);
    }
  });

  it('gives RecordRelease the memory behind each Task state and its run\'s history, nothing more', () => {
    const { template } = synthStack();
    template.hasResourceProperties('AWS::Lambda::Function', {
      Description: Match.stringLikeRegexp('Write the manifest'),
      Environment: { Variables: Match.objectLike({ TASK_MEMORY_MB: JSON.stringify({ '*': 256, CheckTraining: 192, EvaluateModel: 1024 }) }) },
    });
    const machine = logicalId(template, 'AWS::StepFunctions::StateMachine', 'StateMachine');
    const history = statementsOfRole(template, 'RecordRelease').filter((st) => JSON.stringify(st.Action).includes('states:'));
    expect(history).toEqual([expect.objectContaining({ Action: 'states:GetExecutionHistory' })]);
    expect(JSON.stringify(history[0]!.Resource)).toContain(`{"Ref":"${machine}"}`);
    expect(JSON.stringify(history[0]!.Resource)).toMatch(/:execution:.*:\*"\]\]\}$/);
  });

  it.each(['StateMachineArn', 'ArtifactBucketName', 'ApprovalUrl', 'NotificationTopicArn', 'RollbackFunctionName', 'QueueUrl', 'ClusterName', 'StagingNamespace', 'ProductionNamespace'])(
    'outputs %s (the CLI reads it)',
    (name) => {
      const { template } = synthStack();
      expect(Object.keys(template.findOutputs(name))).toEqual([name]);
    },
  );

  it('outputs the cluster name as given, and no EndpointSecurityGroupId without vpcId', () => {
    const { template } = synthStack();
    expect(template.findOutputs('ClusterName').ClusterName?.Value).toBe(CLUSTER);
    expect(template.findOutputs('EndpointSecurityGroupId')).toEqual({});
  });
});
