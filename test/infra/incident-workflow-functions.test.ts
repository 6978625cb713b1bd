import { Match } from 'aws-cdk-lib/assertions';
import { describe, expect, it } from 'vitest';
import { logicalIdOf, synthesize } from './support.js';

/** The workflow's functions: one role each, with only what that function calls. */

const { template } = synthesize({ documentNamePrefix: 'Ctr-' });

type Statement = { Action: string | string[]; Resource: unknown; Condition?: unknown; Sid?: string };
type PolicyResource = {
  Properties: { Roles: Array<{ Ref: string }>; PolicyDocument: { Statement: Statement[] } };
};

function statementsOf(role: string): Statement[] {
  const roleId = logicalIdOf(template, 'AWS::IAM::Role', `Workflow/Functions/${role}Role/Resource`);
  return Object.values(template.findResources('AWS::IAM::Policy') as Record<string, PolicyResource>)
    .filter((policy) => policy.Properties.Roles.some((ref) => ref.Ref === roleId))
    .flatMap((policy) => policy.Properties.PolicyDocument.Statement);
}

function actionsOf(role: string): string[] {
  return statementsOf(role)
    .flatMap((statement) => [statement.Action].flat())
    .filter((action) => !action.startsWith('logs:') && !action.startsWith('xray:'))
    .sort();
}

describe('incident workflow functions', () => {
  it('gives the pure functions (assess, gate, verify) and announce nothing beyond their logs, traces and lifecycle events', () => {
    for (const role of ['assess', 'policyGate', 'verify', 'announce'])
      expect(actionsOf(role), role).toEqual(['events:PutEvents']);
  });

  it('lets exactly the steps that put lifecycle events put them, on the default bus, with our source only', () => {
    const emitting = ['assess', 'policyGate', 'requestApproval', 'announce', 'verify', 'notify'];
    for (const role of [...emitting, 'writeEvidence']) {
      const puts = statementsOf(role).filter((statement) =>
        [statement.Action].flat().includes('events:PutEvents'),
      );
      if (!emitting.includes(role)) {
        expect(puts, role).toEqual([]);
        continue;
      }
      expect(puts, role).toHaveLength(1);
      expect(JSON.stringify(puts[0]?.Resource), role).toMatch(/:event-bus\/default"\]\]\}$/);
      // https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-use-conditions.html (events:source)
      expect(puts[0]?.Condition, role).toEqual({ StringEquals: { 'events:source': 'conntrack-responder' } });
    }
  });

  it('lets the approval function write approval items only, and publish', () => {
    expect(actionsOf('requestApproval')).toEqual([
      'dynamodb:PutItem',
      'events:PutEvents',
      'kms:Decrypt',
      'kms:GenerateDataKey*',
      'sns:Publish',
    ]);
    const put = statementsOf('requestApproval').find((statement) => statement.Action === 'dynamodb:PutItem');
    expect(put?.Condition).toEqual({ 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': ['approval#*'] } });
  });

  it('lets the evidence function write under incidents/, close incident items and read its executions', () => {
    expect(actionsOf('writeEvidence')).toEqual([
      'dynamodb:UpdateItem',
      's3:PutObject',
      'states:GetExecutionHistory',
    ]);
    const statements = statementsOf('writeEvidence');
    const put = statements.find((statement) => statement.Action === 's3:PutObject');
    expect(JSON.stringify(put?.Resource)).toMatch(/\/incidents\/\*"\]\]\}$/);
    const update = statements.find((statement) => statement.Action === 'dynamodb:UpdateItem');
    expect(update?.Condition).toEqual({
      'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': ['incident#*'] },
    });
    const history = statements.find((statement) => statement.Action === 'states:GetExecutionHistory');
    const stateMachineId = logicalIdOf(
      template,
      'AWS::StepFunctions::StateMachine',
      'Workflow/StateMachine/Resource',
    );
    expect(JSON.stringify(history?.Resource)).toContain(`{"Fn::GetAtt":["${stateMachineId}","Name"]},":*"`);
  });

  it('lets the network function read ENIs and change only the idle timeouts of opted-in ENIs, never security groups', () => {
    expect(actionsOf('network')).toEqual([
      'dynamodb:GetItem',
      'dynamodb:PutItem',
      'ec2:DescribeInstanceTypes',
      'ec2:DescribeInstances',
      'ec2:DescribeNetworkInterfaces',
      'ec2:DescribeSecurityGroupRules',
      'ec2:ModifyNetworkInterfaceAttribute',
    ]);
    const statements = statementsOf('network');
    // The Describe actions support no resource-level permissions (Service Authorization Reference).
    const describe = statements.find((statement) => statement.Sid === 'DescribeNetworkInterfaces');
    expect(describe?.Resource).toBe('*');
    expect([describe?.Action].flat().every((action) => String(action).startsWith('ec2:Describe'))).toBe(true);
    const modify = statements.find((statement) => statement.Action === 'ec2:ModifyNetworkInterfaceAttribute');
    expect(modify?.Condition).toEqual({
      StringEquals: { 'aws:ResourceTag/conntrack-responder:managed': 'true' },
    });
    const resources = JSON.stringify(modify?.Resource);
    expect(resources).toContain(':network-interface/*');
    expect(resources).toContain(':instance/*');
    // No security-group resource: a change of an ENI's Groups is denied to this role.
    expect(resources).not.toContain('security-group');
    expect(JSON.stringify(statements)).not.toMatch(/ec2:(Authorize|Revoke|Modify)SecurityGroup/);
    const keep = statements.find((statement) => statement.Sid === 'KeepEniChanges');
    expect(keep?.Condition).toEqual({
      'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': ['eni-change#*'] },
    });
  });

  it('conditions the ENI changes on the opt-in tag the stack is given', () => {
    const { template: custom } = synthesize({
      documentNamePrefix: 'Ctr-',
      managedInstanceTagKey: 'team:conntrack',
      managedInstanceTagValue: 'on',
    });
    const policies = JSON.stringify(custom.findResources('AWS::IAM::Policy'));
    expect(policies).toContain('{"StringEquals":{"aws:ResourceTag/team:conntrack":"on"}}');
    custom.hasResourceProperties('AWS::Lambda::Function', {
      Description: Match.stringLikeRegexp('^Describes an instance'),
      Environment: {
        Variables: Match.objectLike({
          MANAGED_INSTANCE_TAG_KEY: 'team:conntrack',
          MANAGED_INSTANCE_TAG_VALUE: 'on',
          INCIDENT_RETENTION_DAYS: '90',
          INCIDENT_TABLE_NAME: Match.anyValue(),
        }),
      },
    });
  });

  it('configures each function from the construct (policy, soak, resource names)', () => {
    template.hasResourceProperties('AWS::Lambda::Function', {
      Description: Match.stringLikeRegexp('^Confirms a conntrack alert'),
      Runtime: 'nodejs24.x',
      TracingConfig: { Mode: 'Active' },
      Environment: { Variables: Match.objectLike({ RESPONDER_POLICY: '{}', SOAK_SECONDS: '120' }) },
    });
    template.hasResourceProperties('AWS::Lambda::Function', {
      Description: Match.stringLikeRegexp('^Writes an incident'),
      Environment: {
        Variables: Match.objectLike({
          EVIDENCE_BUCKET_NAME: Match.anyValue(),
          INCIDENT_TABLE_NAME: Match.anyValue(),
        }),
      },
    });
  });

  it('sends commands only for the documents named after the prefix', () => {
    const { template: custom } = synthesize({ documentNamePrefix: 'Ctr-' });
    const definition = JSON.stringify(custom.findResources('AWS::StepFunctions::StateMachine'));
    for (const document of ['collect-diagnostics', 'raise-limits', 'notrack-ports', 'rollback']) {
      expect(definition).toContain(`\\"DocumentName\\":\\"Ctr-${document}\\"`);
    }
  });
});
