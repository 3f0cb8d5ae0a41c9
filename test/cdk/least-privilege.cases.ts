/**
 * Least privilege, checked over every identity policy in the template (inline role policies and
 * AWS::IAM::Policy): no `*` or `service:*` action, and no S3 object action on `*` or the whole bucket.
 * Resource policies (the KMS key policy's account delegation, the bucket's TLS Deny) are not identity
 * grants and are checked in pipeline.test.ts.
 */
import { buildStack, resourcesOf, synthStack, templateOf } from './helpers';

interface Statement {
  Effect: string;
  Action: string | string[];
  Resource?: unknown;
  Sid?: string;
}

function identityStatements(template: ReturnType<typeof synthStack>['template']): Array<{ policy: string; statement: Statement }> {
  const out: Array<{ policy: string; statement: Statement }> = [];
  for (const [id, r] of Object.entries(resourcesOf(template, 'AWS::IAM::Policy'))) {
    for (const s of (r.Properties?.PolicyDocument as { Statement: Statement[] }).Statement) out.push({ policy: id, statement: s });
  }
  for (const [id, r] of Object.entries(resourcesOf(template, 'AWS::IAM::Role'))) {
    for (const p of (r.Properties?.Policies as Array<{ PolicyDocument: { Statement: Statement[] } }> | undefined) ?? []) {
      for (const s of p.PolicyDocument.Statement) out.push({ policy: id, statement: s });
    }
  }
  for (const [id, r] of Object.entries(resourcesOf(template, 'AWS::IAM::ManagedPolicy'))) {
    for (const s of (r.Properties?.PolicyDocument as { Statement: Statement[] }).Statement) out.push({ policy: id, statement: s });
  }
  return out.filter((x) => x.statement.Effect === 'Allow');
}

const actionsOf = (s: Statement) => [s.Action].flat();
const resourcesOfStatement = (s: Statement) => [s.Resource].flat();

/** S3 actions that read or write object data (config/listing actions excluded). */
const S3_OBJECT_ACTION = /^s3:(Get|Put|Delete|Restore|Abort)Object/;

/** What the bucket-wide object pattern looks like in the template: `<bucket arn>/*`. */
function isWholeBucket(resource: unknown): boolean {
  const join = (resource as { 'Fn::Join'?: [string, unknown[]] })['Fn::Join'];
  if (!join) return false;
  const parts = join[1];
  return parts.length === 2 && JSON.stringify(parts[0]).includes('Bucket') && parts[1] === '/*';
}

function problems(template: ReturnType<typeof synthStack>['template']): string[] {
  const found: string[] = [];
  for (const { policy, statement } of identityStatements(template)) {
    for (const action of actionsOf(statement)) {
      if (action === '*' || /^[a-z0-9-]+:\*$/.test(action)) found.push(`${policy}: action ${action}`);
      if (S3_OBJECT_ACTION.test(action)) {
        for (const resource of resourcesOfStatement(statement)) {
          if (resource === '*') found.push(`${policy}: ${action} on *`);
          if (isWholeBucket(resource)) found.push(`${policy}: ${action} on the whole bucket`);
        }
      }
    }
  }
  return found;
}

describe('least privilege', () => {
  it.each([
    ['defaults', {}],
    ['with data trigger and schedule', { dataPrefix: 'datasets/fashion-mnist/v1/', schedule: 'rate(1 day)' }],
  ])('no wildcard actions, no S3 object access to * or the whole bucket (%s)', (_name, props) => {
    // GIVEN
    const { template } = synthStack({ props });
    // WHEN
    const statements = identityStatements(template);
    // THEN
    expect(statements.length).toBeGreaterThan(20);
    expect(problems(template)).toEqual([]);
  });

  it('the check itself catches a bucket-wide grant', () => {
    // GIVEN a stack where someone grants the whole bucket to the Notify function
    const stack = buildStack();
    const notify = stack.pipeline.functions.Notify;
    if (!notify) throw new Error('no Notify function');
    stack.pipeline.bucket.grantReadWrite(notify);
    // WHEN / THEN
    expect(problems(templateOf(stack))).toEqual(
      expect.arrayContaining([expect.stringMatching(/s3:GetObject\* on the whole bucket|s3:PutObject on the whole bucket/)]),
    );
  });

  it('actions that only take `*` are the tracing and log-delivery ones', () => {
    const { template } = synthStack();
    const onStar = new Set(
      identityStatements(template)
        .filter(({ statement }) => resourcesOfStatement(statement).includes('*'))
        .flatMap(({ statement }) => actionsOf(statement)),
    );
    for (const action of onStar) expect(action).toMatch(/^(xray|logs):|^secretsmanager:GetRandomPassword$/);
  });
});
