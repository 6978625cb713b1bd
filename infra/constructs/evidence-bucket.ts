import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';

export interface EvidenceBucketProps {
  /** Days an evidence bundle (and every superseded version of it) is kept. */
  readonly retentionDays: number;
  /** Write-once storage: every object version is locked for `retentionDays` in `objectLockMode`. */
  readonly objectLock: boolean;
  readonly objectLockMode: 'GOVERNANCE' | 'COMPLIANCE';
}

/**
 * Where each incident's evidence bundle (manifest, diagnostics, plan, command output, postmortem)
 * is kept: versioned, encrypted, reachable only over TLS, never public, expired by lifecycle rules,
 * and optionally write-once (Object Lock). Access to it is logged to a second bucket.
 */
export class EvidenceBucket extends Construct {
  readonly bucket: s3.Bucket;
  readonly accessLogsBucket: s3.Bucket;

  constructor(scope: Construct, id: string, props: EvidenceBucketProps) {
    super(scope, id);
    const { retentionDays } = props;
    if (!Number.isInteger(retentionDays) || retentionDays < 1) {
      throw new Error(`evidenceRetentionDays must be a whole number of days >= 1, got ${retentionDays}`);
    }

    this.accessLogsBucket = new s3.Bucket(this, 'AccessLogs', {
      // Server access logging can only deliver to SSE-S3 buckets.
      encryption: s3.BucketEncryption.S3_MANAGED,
      enforceSSL: true,
      minimumTLSVersion: 1.2,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      versioned: true,
      lifecycleRules: [
        { id: 'expire-access-logs', expiration: Duration.days(retentionDays) },
        { id: 'expire-noncurrent-access-logs', noncurrentVersionExpiration: Duration.days(7) },
      ],
      removalPolicy: RemovalPolicy.RETAIN,
    });

    this.bucket = new s3.Bucket(this, 'Bucket', {
      encryption: s3.BucketEncryption.S3_MANAGED,
      enforceSSL: true,
      minimumTLSVersion: 1.2,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      versioned: true,
      ...(props.objectLock
        ? {
            objectLockEnabled: true,
            objectLockDefaultRetention:
              props.objectLockMode === 'COMPLIANCE'
                ? s3.ObjectLockRetention.compliance(Duration.days(retentionDays))
                : s3.ObjectLockRetention.governance(Duration.days(retentionDays)),
          }
        : {}),
      lifecycleRules: [
        { id: 'expire-evidence', expiration: Duration.days(retentionDays) },
        // A bundle rewritten in place keeps its old version for the same period, then it goes too.
        { id: 'expire-noncurrent-evidence', noncurrentVersionExpiration: Duration.days(retentionDays) },
        { id: 'abort-incomplete-uploads', abortIncompleteMultipartUploadAfter: Duration.days(1) },
      ],
      serverAccessLogsBucket: this.accessLogsBucket,
      serverAccessLogsPrefix: 'evidence/',
      removalPolicy: RemovalPolicy.RETAIN,
    });
  }
}
