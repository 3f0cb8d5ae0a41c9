/**
 * The artifact bucket (DESIGN decision 11): models, datasets, the model registry and approval records in
 * one versioned, encrypted, TLS-only, private bucket, plus the prefix-scoped grants every role uses —
 * nothing in mlpipe gets `bucket/*`. Its server access logs go to a second private bucket.
 */
import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';

export interface ArtifactsProps {
  /** Model name: the `models/<model>/` prefix. */
  readonly modelName: string;
  /** Send "Object Created" events to EventBridge (only needed for the data trigger). @default false */
  readonly eventBridgeEnabled?: boolean;
  /** How long superseded object versions are kept. @default 90 days */
  readonly noncurrentVersionExpiration?: Duration;
  /** How long approval records are kept. @default 30 days */
  readonly approvalRecordExpiration?: Duration;
  /** How long the bucket's server access logs are kept. @default 365 days */
  readonly accessLogExpiration?: Duration;
  /** How long training checkpoints (`checkpoints/`) are kept: long enough to resume or retry a run. @default 14 days */
  readonly checkpointExpiration?: Duration;
}

/** S3 prefixes of the layout in docs/architecture.md. */
export const PREFIX = {
  datasets: 'datasets/',
  approvals: 'approvals/',
  models: (model: string) => `models/${model}/`,
  /** The training container's CHECKPOINT_URI per run: `checkpoints/<model>/<version>/` (registry.ts checkpointPrefix). */
  checkpoints: (model: string) => `checkpoints/${model}/`,
} as const;

export class Artifacts extends Construct {
  readonly bucket: s3.Bucket;
  /** Server access logs of `bucket`: who read or wrote which model, dataset or approval record. */
  readonly accessLogBucket: s3.Bucket;
  private readonly modelName: string;

  constructor(scope: Construct, id: string, props: ArtifactsProps) {
    super(scope, id);
    this.modelName = props.modelName;
    // Grant log delivery through a bucket policy (what new CDK apps do) instead of the legacy ACL, which
    // the access-log bucket could not take with ACLs disabled. Set here so it holds whatever the app's flags.
    this.node.setContext('@aws-cdk/aws-s3:serverAccessLogsUseBucketPolicy', true);
    this.accessLogBucket = new s3.Bucket(this, 'AccessLogBucket', {
      encryption: s3.BucketEncryption.S3_MANAGED,
      enforceSSL: true,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      removalPolicy: RemovalPolicy.RETAIN,
      lifecycleRules: [{ id: 'expire-access-logs', expiration: props.accessLogExpiration ?? Duration.days(365) }],
    });
    this.bucket = new s3.Bucket(this, 'Bucket', {
      serverAccessLogsBucket: this.accessLogBucket,
      serverAccessLogsPrefix: 'artifacts/',
      versioned: true,
      encryption: s3.BucketEncryption.S3_MANAGED,
      enforceSSL: true,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      // Models and their lineage outlive the stack: deleting the stack must not delete the registry.
      removalPolicy: RemovalPolicy.RETAIN,
      autoDeleteObjects: false,
      lifecycleRules: [
        {
          id: 'expire-noncurrent-versions',
          noncurrentVersionExpiration: props.noncurrentVersionExpiration ?? Duration.days(90),
          abortIncompleteMultipartUploadAfter: Duration.days(7),
        },
        {
          // Approval records hold task tokens that are useless once the approval timeout has passed.
          id: 'expire-approval-records',
          prefix: PREFIX.approvals,
          expiration: props.approvalRecordExpiration ?? Duration.days(30),
          noncurrentVersionExpiration: Duration.days(1),
        },
        {
          // Checkpoints only serve a retried pod or a resumed run; each epoch overwrites one, so their old
          // versions (model-sized) go after a day.
          id: 'expire-checkpoints',
          prefix: 'checkpoints/',
          expiration: props.checkpointExpiration ?? Duration.days(14),
          noncurrentVersionExpiration: Duration.days(1),
        },
      ],
    });
    if (props.eventBridgeEnabled === true) {
      // Set on the CloudFormation resource itself: the L2 `eventBridgeEnabled` deploys a custom-resource
      // Lambda (with s3:PutBucketNotification on *) to do what CloudFormation does natively.
      (this.bucket.node.defaultChild as s3.CfnBucket).notificationConfiguration = {
        eventBridgeConfiguration: { eventBridgeEnabled: true },
      };
    }
  }

  /** `models/<model>/` of this pipeline's model. */
  get modelPrefix(): string {
    return PREFIX.models(this.modelName);
  }

  /** `checkpoints/<model>/` of this pipeline's model. */
  get checkpointPrefix(): string {
    return PREFIX.checkpoints(this.modelName);
  }

  /** s3:GetObject on the given key patterns (relative to the bucket), plus ListBucket (see `grantList`). */
  grantRead(grantee: iam.IGrantable, ...keyPatterns: string[]): void {
    grantee.grantPrincipal.addToPrincipalPolicy(
      new iam.PolicyStatement({
        actions: ['s3:GetObject', 's3:GetObjectVersion'],
        resources: keyPatterns.map((k) => this.bucket.arnForObjects(k)),
      }),
    );
    this.grantList(grantee);
  }

  /** s3:PutObject on the given key patterns (relative to the bucket). */
  grantWrite(grantee: iam.IGrantable, ...keyPatterns: string[]): void {
    grantee.grantPrincipal.addToPrincipalPolicy(
      new iam.PolicyStatement({
        actions: ['s3:PutObject'],
        resources: keyPatterns.map((k) => this.bucket.arnForObjects(k)),
      }),
    );
  }

  /**
   * s3:ListBucket on the bucket itself. Without it S3 answers AccessDenied instead of NoSuchKey for a
   * missing object, and the registry reads "no production model yet" from a missing production.json.
   * It reveals key names, never contents.
   */
  grantList(grantee: iam.IGrantable): void {
    grantee.grantPrincipal.addToPrincipalPolicy(
      new iam.PolicyStatement({ actions: ['s3:ListBucket'], resources: [this.bucket.bucketArn] }),
    );
  }
}
