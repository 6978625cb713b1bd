import { Match } from 'aws-cdk-lib/assertions';
import { describe, expect, it } from 'vitest';
import { addPolicyChecks } from '../../infra/policy-checks.js';
import { logicalIdOf, onlyResource, synthesize } from './support.js';

/**
 * The `evidenceSigning` prop: off by default (nothing about signing in the template); with `{}` a
 * P-256 SIGN_VERIFY key whose policy lets only the evidence writer sign digests, kms:Sign on that
 * key in the writer's policy and nowhere else, the key and its public key as stack outputs; with
 * `{ keyArn }` the existing key instead of a new one.
 */

type Statement = {
  Sid?: string;
  Action: string | string[];
  Resource: unknown;
  Condition?: Record<string, Record<string, unknown>>;
  Principal?: unknown;
};
type Policies = Record<
  string,
  { Properties: { PolicyDocument: { Statement: Statement[] }; Roles?: unknown[] } }
>;
const actions = (statement: Statement) => [statement.Action].flat();
const EXISTING = 'arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab';

/** The signing key: the stack's other keys (topic, bucket) are symmetric ENCRYPT_DECRYPT keys. */
function signingKeys(template: ReturnType<typeof synthesize>['template']) {
  return Object.entries(
    template.findResources('AWS::KMS::Key', { Properties: { KeyUsage: 'SIGN_VERIFY' } }) as Record<
      string,
      { Properties: Record<string, unknown> }
    >,
  ).map(([id, resource]) => ({ id, properties: resource.Properties }));
}

function onlySigningKey(template: ReturnType<typeof synthesize>['template']) {
  const keys = signingKeys(template);
  expect(keys).toHaveLength(1);
  return keys[0] as { id: string; properties: Record<string, unknown> };
}

function writerEnvironment(template: ReturnType<typeof synthesize>['template']) {
  const id = logicalIdOf(template, 'AWS::Lambda::Function', '/writeEvidenceFunction/Resource');
  const fn = template.toJSON().Resources[id];
  return fn.Properties.Environment.Variables as Record<string, unknown>;
}

/** Every IAM policy statement that allows kms:Sign, with the roles its policy is attached to. */
function signStatements(template: ReturnType<typeof synthesize>['template']) {
  const policies = template.findResources('AWS::IAM::Policy') as Policies;
  return Object.values(policies).flatMap((policy) =>
    policy.Properties.PolicyDocument.Statement.filter((statement) =>
      actions(statement).some((action) => action === 'kms:Sign' || action === 'kms:*'),
    ).map((statement) => ({ statement, roles: policy.Properties.Roles })),
  );
}

describe('evidenceSigning', () => {
  it('is off by default: no key, no kms:Sign, no signing setting, no public-key output', () => {
    const { template } = synthesize();
    expect(signingKeys(template)).toEqual([]);
    template.resourceCountIs('Custom::EvidenceSigningPublicKey', 0);
    expect(JSON.stringify(template.toJSON())).not.toMatch(/kms:Sign|kms:GetPublicKey|EVIDENCE_SIGNING/);
    expect(Object.keys(template.findOutputs('*'))).not.toContain('EvidenceSigningPublicKey');
  });

  it('with {}: a P-256 SIGN_VERIFY key, kept on delete, that only the evidence writer may sign digests with', () => {
    const { template } = synthesize({ evidenceSigning: {} });
    const key = onlySigningKey(template);
    expect(key.properties).toMatchObject({ KeySpec: 'ECC_NIST_P256', KeyUsage: 'SIGN_VERIFY' });
    template.hasResource('AWS::KMS::Key', {
      Properties: { KeyUsage: 'SIGN_VERIFY' },
      DeletionPolicy: 'Retain',
      UpdateReplacePolicy: 'Retain',
    });
    const writerRole = logicalIdOf(template, 'AWS::IAM::Role', '/writeEvidenceRole/Resource');
    const statements = (key.properties.KeyPolicy as { Statement: Statement[] }).Statement;
    const signing = statements.filter((statement) =>
      actions(statement).some(
        (action) => action === 'kms:Sign' || action === 'kms:*' || action === 'kms:Sign*',
      ),
    );
    expect(signing).toEqual([
      expect.objectContaining({
        Sid: 'OnlyTheEvidenceWriterSigns',
        Action: 'kms:Sign',
        Condition: {
          StringEquals: { 'kms:MessageType': 'DIGEST', 'kms:SigningAlgorithm': 'ECDSA_SHA_256' },
          ArnEquals: { 'aws:PrincipalArn': { 'Fn::GetAtt': [writerRole, 'Arn'] } },
        },
      }),
    ]);
    // Administration keeps the key manageable, without signing.
    const admin = statements.find((statement) => statement.Sid === 'KeyAdministrationWithoutSigning');
    expect(admin && actions(admin)).not.toContain('kms:*');

    // kms:Sign in an identity policy: the writer's, on this key only.
    expect(signStatements(template)).toEqual([
      {
        statement: expect.objectContaining({
          Action: 'kms:Sign',
          Resource: { 'Fn::GetAtt': [key.id, 'Arn'] },
          Condition: {
            StringEquals: { 'kms:MessageType': 'DIGEST', 'kms:SigningAlgorithm': 'ECDSA_SHA_256' },
          },
        }),
        roles: [{ Ref: writerRole }],
      },
    ]);
    expect(writerEnvironment(template)).toMatchObject({
      EVIDENCE_SIGNING_KEY_ID: { 'Fn::GetAtt': [key.id, 'Arn'] },
      EVIDENCE_SIGNING_ALGORITHM: 'ECDSA_SHA_256',
    });
  });

  it('outputs the key ARN and its public key, read by GetPublicKey through the custom resource', () => {
    const { template } = synthesize({ evidenceSigning: {} });
    const key = onlySigningKey(template);
    const publicKey = onlyResource(template, 'Custom::EvidenceSigningPublicKey');
    expect(publicKey.properties).toMatchObject({
      KeyId: { 'Fn::GetAtt': [key.id, 'Arn'] },
      SigningAlgorithm: 'ECDSA_SHA_256',
    });
    template.hasOutput('EvidenceSigningPublicKey', { Value: { 'Fn::GetAtt': [publicKey.id, 'PublicKey'] } });
    template.hasOutput('EvidenceSigningKeyArn', { Value: { 'Fn::GetAtt': [key.id, 'Arn'] } });
    template.hasResourceProperties('AWS::IAM::Policy', {
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({ Action: 'kms:GetPublicKey', Resource: { 'Fn::GetAtt': [key.id, 'Arn'] } }),
        ]),
      },
    });
  });

  it('with { keyArn }: signs with that key, creates none, and still outputs its public key', () => {
    const { template } = synthesize({
      evidenceSigning: { keyArn: EXISTING, algorithm: 'RSASSA_PSS_SHA_256' },
    });
    expect(signingKeys(template)).toEqual([]);
    expect(signStatements(template).map(({ statement }) => statement.Resource)).toEqual([EXISTING]);
    expect(writerEnvironment(template)).toMatchObject({
      EVIDENCE_SIGNING_KEY_ID: EXISTING,
      EVIDENCE_SIGNING_ALGORITHM: 'RSASSA_PSS_SHA_256',
    });
    template.hasResourceProperties('Custom::EvidenceSigningPublicKey', {
      KeyId: EXISTING,
      SigningAlgorithm: 'RSASSA_PSS_SHA_256',
    });
  });

  it('refuses RSA-PSS for the key it would create (P-256), and an unknown algorithm, naming the prop', () => {
    expect(() => synthesize({ evidenceSigning: { algorithm: 'RSASSA_PSS_SHA_256' } })).toThrow(
      /evidenceSigning\.algorithm RSASSA_PSS_SHA_256 needs an RSA key: give its keyArn/,
    );
    expect(() =>
      synthesize({ evidenceSigning: { keyArn: EXISTING, algorithm: 'RSASSA_PKCS1_V1_5_SHA_256' as never } }),
    ).toThrow(/evidenceSigning\.algorithm must be one of ECDSA_SHA_256, RSASSA_PSS_SHA_256/);
  });

  it('passes the policy checks (cdk-nag) with signing on', () => {
    const { app } = synthesize({ evidenceSigning: {} });
    addPolicyChecks(app);
    expect(() => app.synth()).not.toThrow();
  });
});
