/**
 * DESIGN decision 13: the local run executes the synthesized template, not a map of its own. These tests
 * read a synthesized MlPipeStack (without bundling: no code is run here) the way the local run does and
 * check what it derives: each Task state invokes the function the template substitutes for it, every
 * function's environment is plain strings with CloudFormation intrinsics resolved to the local stand-ins,
 * and the resolver refuses what has no local value, naming where it is used. Run from
 * test/cdk/stack.test.ts, which synthesizes the same default stack.
 */
import { readFileSync } from 'node:fs';
import { FUNCTION_SPECS } from '../../lib/constructs/pipeline-functions';
import { DEFINITION_FILE } from '../../lib/constructs/state-machine';
import { IntrinsicResolver, loadLocalStack, taskFunctions, TemplateError, type CfnTemplate, type LocalStack } from '../../local/lambda/template';
import { synthStack } from '../cdk/helpers';

const LOCAL = {
  region: 'us-east-1',
  accountId: '000000000000',
  artifactBucket: 'mlpipe-local',
  stateMachineArn: 'arn:aws:states:us-east-1:000000000000:stateMachine:mlpipe-local',
  approvalUrl: 'http://127.0.0.1:8787',
};

describe('the local run reads the synthesized template', () => {
  let template: CfnTemplate;
  let stack: LocalStack;

  beforeAll(() => {
    template = synthStack().template.toJSON() as CfnTemplate;
    stack = loadLocalStack('(in memory)', LOCAL, { template, stackName: 'MlPipeStack', assetDirs: new Map() });
  });

  it('maps every Task state to the function the template substitutes for its placeholder', () => {
    // GIVEN the ASL file's Task states and their ${XFunctionArn} placeholders
    const asl = JSON.parse(readFileSync(DEFINITION_FILE, 'utf8')) as { States: Record<string, { Type: string; Resource?: string; Parameters?: { FunctionName?: string } }> };
    const expected = Object.fromEntries(
      Object.entries(asl.States)
        .filter(([, s]) => s.Type === 'Task')
        .map(([name, s]) => {
          const placeholder = /\$\{(\w+)\}/.exec(s.Parameters?.FunctionName ?? s.Resource ?? '')![1];
          return [name, FUNCTION_SPECS.find((f) => f.placeholder === placeholder)!.id];
        }),
    );
    // WHEN the local run maps the template's resolved definition
    const mapped = taskFunctions(stack);
    // THEN each state runs the function built from that spec (its logical id carries the construct id)
    expect(Object.keys(mapped).sort()).toEqual(Object.keys(expected).sort());
    for (const [state, id] of Object.entries(expected)) expect({ state, fn: mapped[state]!.logicalId }).toEqual({ state, fn: expect.stringContaining(`Functions${id}`) });
    expect(JSON.stringify(stack.definition)).not.toMatch(/\$\{\w+\}/);
  });

  it('resolves every function environment to local values, adding nothing', () => {
    const fn = (id: string) => stack.functions.find((f) => f.logicalId.includes(id))!;
    const requestApproval = fn('RequestApproval');
    expect(requestApproval.environment).toEqual({
      NODE_OPTIONS: '--enable-source-maps',
      ARTIFACT_BUCKET: 'mlpipe-local',
      NOTIFICATION_TOPIC_ARN: expect.stringMatching(/^arn:aws:sns:us-east-1:000000000000:MlPipeStack-PipelineApprovalTopic/),
      APPROVAL_BASE_URL: 'http://127.0.0.1:8787',
      APPROVAL_SECRET_ARN: expect.stringMatching(/^arn:aws:secretsmanager:us-east-1:000000000000:secret:PipelineApprovalLinkSigningKey/),
      POWERTOOLS_LOG_LEVEL: 'INFO',
      POWERTOOLS_SERVICE_NAME: 'mlpipe',
    });
    expect(fn('PrepareRun').environment.DATA_URI).toBe('s3://mlpipe-local/datasets/fashion-mnist/v1/');
    expect(fn('PrepareRun').environment.SERVING_IMAGE).toBe('000000000000.dkr.ecr.us-east-1.amazonaws.com/mlpipe/fashion-mnist-serve:latest');
    expect(fn('StartPipeline').environment.STATE_MACHINE_ARN).toBe(LOCAL.stateMachineArn);
    // Exactly the template's keys: the runtime's additions come later, in the worker.
    for (const f of stack.functions) {
      const raw = template.Resources[f.logicalId]!.Properties!.Environment as { Variables: Record<string, unknown> };
      expect(Object.keys(f.environment).sort()).toEqual(Object.keys(raw.Variables).sort());
      for (const v of Object.values(f.environment)) expect(typeof v).toBe('string');
    }
    expect(fn('AwaitTraining').timeoutSeconds).toBe(300);
    expect(stack.outputs.RollbackFunctionName).toBe(fn('Rollback').name);
  });

  it('finds a function by logical id, name, ARN and qualified ARN', () => {
    const f = stack.functions[0]!;
    for (const key of [f.logicalId, f.name, f.arn, `${f.arn}:$LATEST`]) expect(stack.findFunction(key)).toBe(f);
    expect(stack.findFunction('arn:aws:lambda:us-east-1:000000000000:function:nope')).toBeUndefined();
  });
});

describe('IntrinsicResolver', () => {
  const template: CfnTemplate = {
    Resources: {
      Bucket: { Type: 'AWS::S3::Bucket' },
      Topic: { Type: 'AWS::SNS::Topic' },
      Key: { Type: 'AWS::KMS::Key' },
    },
    Outputs: { ArtifactBucketName: { Value: { Ref: 'Bucket' } } },
  };
  const resolver = new IntrinsicResolver(template, { ...LOCAL, stackName: 'S' }, new Map());

  it.each([
    [{ 'Fn::Sub': 'arn:${AWS::Partition}:s3:::${Bucket}/${!Literal}' }, 'arn:aws:s3:::mlpipe-local/${Literal}'],
    [{ 'Fn::Sub': ['${A}-${Bucket.Arn}', { A: { Ref: 'AWS::Region' } }] }, 'us-east-1-arn:aws:s3:::mlpipe-local'],
    [{ 'Fn::Select': [1, { 'Fn::Split': ['/', 'a/b/c'] }] }, 'b'],
    [{ 'Fn::Join': [':', [{ Ref: 'AWS::AccountId' }, { 'Fn::GetAtt': ['Topic', 'TopicArn'] }]] }, '000000000000:arn:aws:sns:us-east-1:000000000000:S-Topic'],
  ])('resolves %j', (value, expected) => {
    expect(resolver.resolve(value as never, 'X')).toBe(expected);
  });

  it.each([
    [{ 'Fn::ImportValue': 'Shared' }, /X \(Fn::ImportValue\): Fn::ImportValue has no local equivalent/],
    [{ 'Fn::GetAtt': ['Key', 'Arn'] }, /X: Fn::GetAtt Key\.Arn \(AWS::KMS::Key\) has no local value/],
    [{ Ref: 'Missing' }, /X: Ref to "Missing", which is not in the template/],
  ])('refuses %j, naming where it is used', (value, message) => {
    expect(() => resolver.resolve(value as never, 'X')).toThrow(TemplateError);
    expect(() => resolver.resolve(value as never, 'X')).toThrow(message);
  });
});
