import { CustomResource, RemovalPolicy, Validations } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import * as nodejs from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { SIGNING_ALGORITHMS, type SigningAlgorithm } from '../../functions/core/evidence/signature.js';
import {
  DEFAULT_SIGNING_ALGORITHM,
  EVIDENCE_SIGNING_ENVIRONMENT,
} from '../../functions/core/evidence/signing-settings.js';
import { responderFunctionProps } from './responder-function.js';

/** The `evidenceSigning` prop: sign every bundle's manifest with an asymmetric KMS key. */
export interface EvidenceSigningProps {
  /**
   * An existing asymmetric SIGN_VERIFY key (ARN) to sign with. Its key policy must let the
   * evidence writer's role call kms:Sign (for instance by allowing IAM policies of the account);
   * the role gets kms:Sign on that key only.
   *
   * @default - a new ECC_NIST_P256 key whose key policy lets only the evidence writer sign
   */
  readonly keyArn?: string;

  /**
   * `ECDSA_SHA_256` (P-256 keys) or `RSASSA_PSS_SHA_256` (RSA keys, with `keyArn`).
   *
   * @default 'ECDSA_SHA_256'
   */
  readonly algorithm?: SigningAlgorithm;
}

interface EvidenceSigningConstructProps extends EvidenceSigningProps {
  /** The function that writes the bundles: the only one that may sign. */
  readonly writer: lambda.Function;
  readonly writerRole: iam.IRole;
  readonly logRetention: logs.RetentionDays;
}

/** Key administration without kms:Sign: administrators manage the key but do not sign with it. */
const KEY_ADMINISTRATION = [
  'kms:Create*',
  'kms:Describe*',
  'kms:Enable*',
  'kms:List*',
  'kms:Put*',
  'kms:Update*',
  'kms:Revoke*',
  'kms:Disable*',
  'kms:Get*',
  'kms:Delete*',
  'kms:TagResource',
  'kms:UntagResource',
  'kms:ScheduleKeyDeletion',
  'kms:CancelKeyDeletion',
];

/**
 * Signed evidence: the key the evidence writer signs manifests with (kms:Sign, MessageType
 * DIGEST), the writer's permission on it and nothing more, and the key's public key read back for
 * the stack output a reviewer verifies bundles with.
 *
 * A created key is ECC_NIST_P256 / SIGN_VERIFY (asymmetric keys cannot be rotated automatically:
 * AWS KMS Developer Guide, Rotating keys,
 * https://docs.aws.amazon.com/kms/latest/developerguide/rotate-keys.html). Its key policy allows
 * kms:Sign only to the writer's role (aws:PrincipalArn), only for a digest and only with the
 * configured algorithm (condition keys kms:MessageType and kms:SigningAlgorithm,
 * https://docs.aws.amazon.com/kms/latest/developerguide/conditions-kms.html); the account keeps
 * administration (so the key is never unmanageable) but no signing. Every Sign call is in
 * CloudTrail.
 */
export class EvidenceSigning extends Construct {
  readonly keyArn: string;
  readonly algorithm: SigningAlgorithm;
  /** base64 DER SubjectPublicKeyInfo of the key (what `bundle verify --public-key` reads). */
  readonly publicKey: string;

  constructor(scope: Construct, id: string, props: EvidenceSigningConstructProps) {
    super(scope, id);
    this.algorithm = props.algorithm ?? DEFAULT_SIGNING_ALGORITHM;
    if (!SIGNING_ALGORITHMS.includes(this.algorithm)) {
      throw new Error(
        `ConntrackResponder evidenceSigning.algorithm must be one of ${SIGNING_ALGORITHMS.join(', ')}, got '${this.algorithm}'`,
      );
    }
    if (props.keyArn === undefined && this.algorithm !== 'ECDSA_SHA_256') {
      throw new Error(
        'ConntrackResponder evidenceSigning.algorithm RSASSA_PSS_SHA_256 needs an RSA key: give its keyArn (the created key is P-256)',
      );
    }
    const signOnly = {
      StringEquals: { 'kms:MessageType': 'DIGEST', 'kms:SigningAlgorithm': this.algorithm },
    };
    if (props.keyArn === undefined) {
      const account = new iam.AccountRootPrincipal();
      const key = new kms.Key(this, 'Key', {
        description:
          'conntrack-responder: signs evidence bundle manifests (only the evidence writer may sign)',
        keySpec: kms.KeySpec.ECC_NIST_P256,
        keyUsage: kms.KeyUsage.SIGN_VERIFY,
        // Bundles signed with it stay verifiable only while its public key is known: keep the key.
        removalPolicy: RemovalPolicy.RETAIN,
        policy: new iam.PolicyDocument({
          statements: [
            new iam.PolicyStatement({
              sid: 'KeyAdministrationWithoutSigning',
              principals: [account],
              actions: KEY_ADMINISTRATION,
              resources: ['*'],
            }),
            new iam.PolicyStatement({
              sid: 'OnlyTheEvidenceWriterSigns',
              principals: [account],
              actions: ['kms:Sign'],
              resources: ['*'],
              conditions: { ...signOnly, ArnEquals: { 'aws:PrincipalArn': props.writerRole.roleArn } },
            }),
          ],
        }),
      });
      Validations.of(key).acknowledge({
        id: 'AwsSolutions-KMS5',
        reason:
          'An asymmetric signing key cannot have automatic rotation; rotating it would also orphan the public key earlier bundles are verified with.',
      });
      this.keyArn = key.keyArn;
    } else {
      this.keyArn = props.keyArn;
    }
    props.writerRole.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'SignEvidenceManifests',
        actions: ['kms:Sign'],
        resources: [this.keyArn],
        conditions: signOnly,
      }),
    );
    props.writer.addEnvironment(EVIDENCE_SIGNING_ENVIRONMENT.keyId, this.keyArn);
    props.writer.addEnvironment(EVIDENCE_SIGNING_ENVIRONMENT.algorithm, this.algorithm);

    // The public key, for the stack output: a function of its own reads it with GetPublicKey.
    const logGroup = new logs.LogGroup(this, 'PublicKeyLogs', {
      retention: props.logRetention,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    const role = new iam.Role(this, 'PublicKeyRole', {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      description: 'conntrack-responder: reads the public key of the evidence signing key',
    });
    logGroup.grantWrite(role);
    role.addToPrincipalPolicy(
      new iam.PolicyStatement({ actions: ['kms:GetPublicKey'], resources: [this.keyArn] }),
    );
    Validations.of(role).acknowledge({
      id: 'AwsSolutions-IAM5[Resource::*]',
      reason:
        'X-Ray trace writes (PutTraceSegments, PutTelemetryRecords) have no resource-level permissions.',
    });
    const reader = new nodejs.NodejsFunction(this, 'PublicKeyFunction', {
      ...responderFunctionProps('functions/handlers/evidence-public-key.ts', {}),
      description: 'Reads the public key of the evidence signing key for the stack output',
      memorySize: 256,
      role,
      logGroup,
    });
    Validations.of(reader).acknowledge({
      id: 'Serverless-LambdaDLQ',
      reason:
        'CloudFormation invokes this custom resource function and waits for its answer; there is no event to keep.',
    });
    const publicKey = new CustomResource(this, 'PublicKey', {
      serviceToken: reader.functionArn,
      resourceType: 'Custom::EvidenceSigningPublicKey',
      properties: { KeyId: this.keyArn, SigningAlgorithm: this.algorithm },
    });
    this.publicKey = publicKey.getAttString('PublicKey');
  }
}
