import { describe, expect, it } from 'vitest';
import type { ConntrackResponderProps } from '../../infra/conntrack-responder.js';
import { resolveIntrinsics, stringLike, synthesize } from './support.js';

/**
 * Every alarm of the stack must be able to publish to the topic it names. A topic policy replaces
 * SNS's default one (enforceSSL adds a Deny, so the topic has a policy), and then CloudWatch's
 * publish is refused unless a statement allows `cloudwatch.amazonaws.com` ("not authorized to
 * perform: SNS:Publish" in the alarm history:
 * https://repost.aws/knowledge-center/cloudwatch-receive-sns-for-alarm-trigger). An encrypted
 * topic also needs the key policy to let CloudWatch use the key
 * (https://docs.aws.amazon.com/sns/latest/dg/sns-key-management.html#compatibility-with-aws-services).
 * Both statements carry aws:SourceAccount and aws:SourceArn so that only this account's alarms
 * can use them (confused deputy: https://docs.aws.amazon.com/IAM/latest/UserGuide/confused-deputy.html).
 * This test follows each alarm action to its topic, the topic to its policy and key, and checks
 * that a matching Allow exists and no Deny applies.
 */

type Statement = {
  Effect: string;
  Principal?: { Service?: string | string[] };
  Action: string | string[];
  Resource?: unknown;
  Condition?: Record<string, Record<string, unknown>>;
};
type Resource = { Type: string; Properties: Record<string, unknown> };

const ACCOUNT = '111122223333';
const REGION = 'eu-west-1';

function allows(statement: Statement, action: string, sourceArn: string, resource?: unknown): boolean {
  if (statement.Effect !== 'Allow') return false;
  if (![statement.Principal?.Service].flat().includes('cloudwatch.amazonaws.com')) return false;
  if (!([statement.Action].flat() as string[]).some((pattern) => stringLike(pattern).test(action)))
    return false;
  if (resource !== undefined && JSON.stringify(statement.Resource) !== JSON.stringify(resource)) return false;
  const conditions = resolveIntrinsics(statement.Condition ?? {}) as Record<string, Record<string, string>>;
  // Both conditions are required: without them any account's alarm could use the grant.
  if (conditions.StringEquals?.['aws:SourceAccount'] !== ACCOUNT) return false;
  const arnPattern = conditions.ArnLike?.['aws:SourceArn'];
  return arnPattern !== undefined && stringLike(arnPattern).test(sourceArn);
}

/** A Deny that would match CloudWatch's publish over TLS (the enforceSSL Deny only hits plain HTTP). */
function denies(statement: Statement, action: string): boolean {
  if (statement.Effect !== 'Deny') return false;
  if (!([statement.Action].flat() as string[]).some((pattern) => stringLike(pattern).test(action)))
    return false;
  return JSON.stringify(statement.Condition) !== JSON.stringify({ Bool: { 'aws:SecureTransport': 'false' } });
}

const variants: [string, ConntrackResponderProps][] = [
  ['defaults', {}],
  ['existing log groups and Object Lock', { logGroupNames: ['/var/log/messages'], objectLock: true }],
];

describe.each(variants)('alarms can notify (%s)', (_name, props) => {
  const { template } = synthesize(props);
  const resources = template.toJSON().Resources as Record<string, Resource>;
  const alarms = Object.entries(resources).filter(
    ([, resource]) => resource.Type === 'AWS::CloudWatch::Alarm',
  );

  it('has alarms with actions at all', () => {
    expect(alarms.length).toBeGreaterThan(0);
    for (const [id, alarm] of alarms) expect(alarm.Properties.AlarmActions, id).toBeDefined();
  });

  it('lets every alarm action publish to its topic and use its key, for this account only', () => {
    for (const [alarmId, alarm] of alarms) {
      const alarmArn = `arn:aws:cloudwatch:${REGION}:${ACCOUNT}:alarm:Test-${alarmId}-ABCDEF123456`;
      const actions = [
        ...((alarm.Properties.AlarmActions as unknown[]) ?? []),
        ...((alarm.Properties.OKActions as unknown[]) ?? []),
        ...((alarm.Properties.InsufficientDataActions as unknown[]) ?? []),
      ];
      for (const action of actions) {
        const topicId = (action as { Ref?: string }).Ref;
        expect(resources[topicId ?? '']?.Type, `${alarmId} action ${JSON.stringify(action)}`).toBe(
          'AWS::SNS::Topic',
        );
        const statements = Object.values(resources)
          .filter((resource) => resource.Type === 'AWS::SNS::TopicPolicy')
          .filter((policy) =>
            JSON.stringify(policy.Properties.Topics).includes(JSON.stringify({ Ref: topicId })),
          )
          .flatMap((policy) => (policy.Properties.PolicyDocument as { Statement: Statement[] }).Statement);
        expect(
          statements.some((statement) => allows(statement, 'sns:Publish', alarmArn, { Ref: topicId })),
          `${alarmId} → ${topicId}: no Allow for cloudwatch.amazonaws.com sns:Publish with SourceAccount/SourceArn`,
        ).toBe(true);
        expect(
          statements.filter((statement) => denies(statement, 'sns:Publish')),
          alarmId,
        ).toEqual([]);

        const keyArn = (
          resources[topicId as string]?.Properties.KmsMasterKeyId as { 'Fn::GetAtt'?: string[] }
        )?.['Fn::GetAtt'];
        expect(keyArn, `${topicId} is encrypted with the stack's key`).toBeDefined();
        const key = resources[(keyArn as string[])[0] as string];
        const keyStatements =
          (key?.Properties.KeyPolicy as { Statement: Statement[] } | undefined)?.Statement ?? [];
        for (const kmsAction of ['kms:GenerateDataKey', 'kms:Decrypt']) {
          expect(
            keyStatements.some((statement) => allows(statement, kmsAction, alarmArn)),
            `${alarmId}: the key lets CloudWatch ${kmsAction}`,
          ).toBe(true);
        }
      }
    }
  });

  it("refuses another account's alarm", () => {
    const policies = Object.values(resources)
      .filter((resource) => resource.Type === 'AWS::SNS::TopicPolicy')
      .flatMap((policy) => (policy.Properties.PolicyDocument as { Statement: Statement[] }).Statement);
    const foreign = `arn:aws:cloudwatch:${REGION}:999999999999:alarm:Test-Evil`;
    expect(policies.some((statement) => allows(statement, 'sns:Publish', foreign))).toBe(false);
  });
});
