/**
 * Prepare reads the training image's hyperparameter schema label from ECR (functions/shared/image-labels.ts):
 * its role may read manifests and config blobs of the training repository and nothing else in ECR, and
 * its environment names that repository (TRAINING_REPOSITORY), from the same prop as the trigger.
 */
import { logicalId, resourcesOf, synthStack } from './helpers';

type Statement = { Action: string | string[]; Resource: unknown; Effect: string };

describe('PrepareRun reads image labels of the training repository only', () => {
  const { template } = synthStack({ props: { trainingRepositoryName: 'team/shoes-train' } });
  const prepareId = logicalId(template, 'AWS::Lambda::Function', 'FunctionsPrepareRun');
  const prepare = resourcesOf(template, 'AWS::Lambda::Function')[prepareId]!;
  const roleRef = JSON.stringify((prepare.Properties?.Role as { 'Fn::GetAtt': [string, string] })['Fn::GetAtt'][0]);
  const statements = Object.values(resourcesOf(template, 'AWS::IAM::Policy'))
    .filter((p) => JSON.stringify(p.Properties?.Roles).includes(roleRef))
    .flatMap((p) => (p.Properties?.PolicyDocument as { Statement: Statement[] }).Statement);

  it('may BatchGetImage and GetDownloadUrlForLayer on that repository, nothing more in ECR', () => {
    const ecr = statements.filter((s) => [s.Action].flat().some((a) => a.startsWith('ecr:')));
    expect(ecr).toHaveLength(1);
    expect([ecr[0]!.Action].flat().sort()).toEqual(['ecr:BatchGetImage', 'ecr:GetDownloadUrlForLayer']);
    expect(ecr[0]!.Effect).toBe('Allow');
    const resource = JSON.stringify(ecr[0]!.Resource);
    expect(resource).toContain(':ecr:eu-west-1:123456789012:repository/team/shoes-train');
    expect(resource).not.toContain('*');
  });

  it('reads manifests under models/ (a retry loads the failed run\'s record) and no other object', () => {
    const reads = statements.filter((st) => [st.Action].flat().some((a) => a === 's3:GetObject'));
    expect(reads).toHaveLength(1);
    expect(JSON.stringify(reads[0]!.Resource)).toMatch(/"\/models\/fashion-mnist\/\*\/manifest\.json"\]\]\}$/);
    expect(statements.filter((st) => [st.Action].flat().some((a) => a.startsWith('s3:Put') || a.startsWith('s3:Delete')))).toEqual([]);
  });

  it('knows which repository that is', () => {
    const variables = (prepare.Properties?.Environment as { Variables: Record<string, unknown> }).Variables;
    expect(variables.TRAINING_REPOSITORY).toBe('team/shoes-train');
    expect(variables.AWS_ENDPOINT_URL_ECR).toBeUndefined();
  });
});
