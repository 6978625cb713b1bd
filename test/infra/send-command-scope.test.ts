import { describe, expect, it } from 'vitest';
import { appSettingsFromContext } from '../../infra/context.js';
import { logicalIdOf, synthesize } from './support.js';

type Statement = { Sid?: string; Action: string | string[]; Resource: unknown; Condition?: unknown };
type Resources = Record<string, { Properties: Record<string, unknown> }>;

/** The state machine role's statements that allow ssm:SendCommand. */
function sendCommandStatements(responder: Parameters<typeof synthesize>[0]): Statement[] {
  const { template } = synthesize(responder);
  const roleId = logicalIdOf(template, 'AWS::IAM::Role', 'Workflow/StateMachine/Role/Resource');
  return Object.values(template.findResources('AWS::IAM::Policy') as Resources)
    .filter((policy) => JSON.stringify(policy.Properties.Roles).includes(roleId))
    .flatMap((policy) => (policy.Properties.PolicyDocument as { Statement: Statement[] }).Statement)
    .filter((statement) => [statement.Action].flat().includes('ssm:SendCommand'));
}

const onInstances = (statement: Statement) => JSON.stringify(statement.Resource).includes(':instance/*');

/**
 * Run Command authorises SendCommand on the document and on the instance; a condition on
 * `ssm:resourceTag/<key>` in the instance's statement limits it to tagged instances
 * (https://docs.aws.amazon.com/systems-manager/latest/userguide/sysman-rc-setting-up-cmdsec.html).
 */
describe('where the workflow may send commands', () => {
  it('by default, any instance, in one statement of its own, and the documents by name', () => {
    const statements = sendCommandStatements({});
    const instances = statements.filter(onInstances);
    expect(instances).toHaveLength(1);
    expect(instances[0]?.Condition).toBeUndefined();
    const documents = statements.filter((statement) => !onInstances(statement));
    expect(JSON.stringify(documents.map((statement) => statement.Resource))).toMatch(/:document\//);
    expect(documents.every((statement) => statement.Condition === undefined)).toBe(true);
  });

  it('with requireManagedInstanceTag, only instances carrying the opt-in tag', () => {
    const statements = sendCommandStatements({
      requireManagedInstanceTag: true,
      managedInstanceTagKey: 'team:conntrack',
      managedInstanceTagValue: 'yes',
    });
    const instances = statements.filter(onInstances);
    expect(instances).toHaveLength(1);
    expect(instances[0]?.Condition).toEqual({ StringEquals: { 'ssm:resourceTag/team:conntrack': 'yes' } });
    // No other statement lets SendCommand reach an instance without the condition.
    expect(
      statements.filter((statement) => onInstances(statement) && statement.Condition === undefined),
    ).toEqual([]);
    // The documents carry no tag: the condition must not apply to them.
    expect(
      statements.filter((statement) => !onInstances(statement)).every((s) => s.Condition === undefined),
    ).toBe(true);
  });

  it('reads the context key requireManagedInstanceTag', () => {
    const read = (value: unknown) =>
      appSettingsFromContext((key) =>
        key === 'conntrack-responder:requireManagedInstanceTag' ? value : undefined,
      ).responder.requireManagedInstanceTag;
    expect(read('true')).toBe(true);
    expect(read(undefined)).toBeUndefined();
    expect(() => read('maybe')).toThrow(/requireManagedInstanceTag/);
  });
});
