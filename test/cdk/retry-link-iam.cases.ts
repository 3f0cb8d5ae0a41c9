/**
 * The failure email's retry link (issue 9 item 6): Notify signs it (it may read the link key and no other
 * secret), and the approval endpoint starts the retry (StartExecution on the pipeline's state machine
 * alone, DescribeExecution on its executions alone, nothing else of Step Functions beyond deciding
 * approvals). The `/retries/{run}` route exists beside `/approvals/{id}`.
 */
import { logicalId, resourcesOf, synthStack } from './helpers';

type Statement = { Action: string | string[]; Resource: unknown; Effect: string };

describe('retry link IAM', () => {
  const { template } = synthStack();
  const functions = resourcesOf(template, 'AWS::Lambda::Function');

  function statementsOf(fragment: string): Statement[] {
    const fn = functions[logicalId(template, 'AWS::Lambda::Function', fragment)]!;
    const roleRef = JSON.stringify((fn.Properties?.Role as { 'Fn::GetAtt': [string, string] })['Fn::GetAtt'][0]);
    return Object.values(resourcesOf(template, 'AWS::IAM::Policy'))
      .filter((p) => JSON.stringify(p.Properties?.Roles).includes(roleRef))
      .flatMap((p) => (p.Properties?.PolicyDocument as { Statement: Statement[] }).Statement);
  }
  const actions = (s: Statement) => [s.Action].flat();
  const machineId = logicalId(template, 'AWS::StepFunctions::StateMachine', 'StateMachine');
  const secretId = logicalId(template, 'AWS::SecretsManager::Secret', 'LinkSigningKey');

  it('the approval endpoint may StartExecution on the pipeline state machine only', () => {
    const starts = statementsOf('ApprovalApiFunction').filter((s) => actions(s).includes('states:StartExecution'));
    expect(starts).toHaveLength(1);
    expect(actions(starts[0]!)).toEqual(['states:StartExecution']);
    expect(starts[0]!.Resource).toEqual({ Ref: machineId });
  });

  it('the approval endpoint may DescribeExecution on that state machine\'s executions only', () => {
    const describes = statementsOf('ApprovalApiFunction').filter((s) => actions(s).includes('states:DescribeExecution'));
    expect(describes).toHaveLength(1);
    expect(actions(describes[0]!)).toEqual(['states:DescribeExecution']);
    const resource = JSON.stringify(describes[0]!.Resource);
    // arn:<partition>:states:<region>:<account>:execution:<the machine's name>:*
    expect(resource).toContain(':execution:');
    expect(resource).toContain(machineId);
    expect(resource).toMatch(/:\*"\]\]\}$/);
  });

  it('the approval endpoint\'s Step Functions actions are exactly decide + retry', () => {
    const sfnActions = statementsOf('ApprovalApiFunction').flatMap(actions).filter((a) => a.startsWith('states:')).sort();
    expect(sfnActions).toEqual(['states:DescribeExecution', 'states:SendTaskFailure', 'states:SendTaskSuccess', 'states:StartExecution']);
  });

  it('Notify may read the link key (it signs the retry link) and nothing else but publish', () => {
    const statements = statementsOf('FunctionsNotify');
    const secretReads = statements.filter((s) => actions(s).some((a) => a.startsWith('secretsmanager:')));
    expect(secretReads).toHaveLength(1);
    expect(secretReads[0]!.Resource).toEqual({ Ref: secretId });
    expect(statements.flatMap(actions).filter((a) => a.startsWith('states:') || a.startsWith('s3:'))).toEqual([]);
    const variables = (functions[logicalId(template, 'AWS::Lambda::Function', 'FunctionsNotify')]!.Properties?.Environment as { Variables: Record<string, unknown> }).Variables;
    expect(variables.APPROVAL_SECRET_ARN).toEqual({ Ref: secretId });
    expect(variables.APPROVAL_BASE_URL).toBeDefined();
    expect(variables.APPROVAL_SECRET).toBeUndefined();
  });

  it('the HTTP API routes /retries/{run} (GET and POST) to the approval function', () => {
    const routes = Object.values(resourcesOf(template, 'AWS::ApiGatewayV2::Route')).map((r) => r.Properties?.RouteKey).sort();
    expect(routes).toEqual(['GET /approvals/{id}', 'GET /retries/{run}', 'POST /approvals/{id}', 'POST /retries/{run}']);
  });
});
