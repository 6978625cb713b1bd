import { Capture, Match } from 'aws-cdk-lib/assertions';
import { describe, expect, it } from 'vitest';
import { logicalIdOf, stringLike, synthesize } from './support.js';

type Statement = { Effect: string; Action: string | string[]; Resource: unknown; Condition?: unknown };
type PolicyResource = {
  Properties: { PolicyDocument: { Statement: Statement[] }; Roles: { Ref: string }[] };
};

const actionsOf = (statement: Statement) => [statement.Action].flat();

/** Every statement of the inline policies attached to one role. */
function statementsOfRole(template: ReturnType<typeof synthesize>['template'], roleId: string): Statement[] {
  const policies = Object.values(
    template.findResources('AWS::IAM::Policy') as Record<string, PolicyResource>,
  );
  return policies
    .filter((policy) => policy.Properties.Roles.some((role) => role.Ref === roleId))
    .flatMap((policy) => policy.Properties.PolicyDocument.Statement);
}

/** Actions that have no resource-level permissions, the only ones allowed on Resource "*". */
const NO_RESOURCE_LEVEL_ACTIONS = new Set([
  // The workflow's SSM calls: the instance check and the poll of a command's result.
  'ssm:DescribeInstanceInformation',
  'ssm:GetCommandInvocation',
  'xray:PutTraceSegments',
  'xray:PutTelemetryRecords',
  'xray:GetSamplingRules',
  'xray:GetSamplingTargets',
  'logs:CreateLogDelivery',
  'logs:DeleteLogDelivery',
  'logs:DescribeLogGroups',
  'logs:DescribeResourcePolicies',
  'logs:GetLogDelivery',
  'logs:ListLogDeliveries',
  'logs:PutResourcePolicy',
  'logs:UpdateLogDelivery',
  'ec2:DescribeTags',
  // The network function's reads: the Service Authorization Reference for Amazon EC2 lists no
  // resource type for these (https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonec2.html).
  'ec2:DescribeNetworkInterfaces',
  'ec2:DescribeInstances',
  'ec2:DescribeInstanceTypes',
  'ec2:DescribeSecurityGroupRules',
]);

/** The account's default event bus in the stack's region, as the template names it. */
const DEFAULT_EVENT_BUS = {
  'Fn::Join': [
    '',
    [
      'arn:',
      { Ref: 'AWS::Partition' },
      ':events:',
      { Ref: 'AWS::Region' },
      ':',
      { Ref: 'AWS::AccountId' },
      ':event-bus/default',
    ],
  ],
};

describe('least privilege', () => {
  const { template } = synthesize();
  const functionRoleId = logicalIdOf(template, 'AWS::IAM::Role', 'Detection/FunctionRole/Resource');
  const tableId = logicalIdOf(template, 'AWS::DynamoDB::Table', 'IncidentStore/Table/Resource');
  const stateMachineId = logicalIdOf(
    template,
    'AWS::StepFunctions::StateMachine',
    'Workflow/StateMachine/Resource',
  );
  const queueId = logicalIdOf(template, 'AWS::SQS::Queue', 'Detection/FailedEvents/Resource');
  const functionLogsId = logicalIdOf(template, 'AWS::Logs::LogGroup', 'Detection/FunctionLogs/Resource');
  const topicId = logicalIdOf(template, 'AWS::SNS::Topic', 'Notifications/Topic/Resource');
  const topicKeyId = logicalIdOf(template, 'AWS::KMS::Key', 'Notifications/Key/Resource');

  it('gives detect its own role, assumable by Lambda only, with no managed policy', () => {
    template.hasResource('AWS::IAM::Role', {
      Properties: {
        AssumeRolePolicyDocument: {
          Statement: [
            { Action: 'sts:AssumeRole', Effect: 'Allow', Principal: { Service: 'lambda.amazonaws.com' } },
          ],
        },
        ManagedPolicyArns: Match.absent(),
      },
    });
    const functionRole = template.toJSON().Resources[functionRoleId];
    expect(functionRole.Properties.ManagedPolicyArns).toBeUndefined();
  });

  it('lets detect read and conditionally write incidents, start this workflow, escalate, and nothing else', () => {
    // Act
    const statements = statementsOfRole(template, functionRoleId);
    // Assess: the complete list, so that any new permission has to be added here on purpose.
    expect(
      statements.map((s) => ({ actions: actionsOf(s).sort(), resource: s.Resource, effect: s.Effect })),
    ).toEqual(
      expect.arrayContaining([
        {
          actions: ['dynamodb:BatchGetItem', 'dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem'],
          resource: { 'Fn::GetAtt': [tableId, 'Arn'] },
          effect: 'Allow',
        },
        { actions: ['states:StartExecution'], resource: { Ref: stateMachineId }, effect: 'Allow' },
        // The fleet breaker's one escalation, on the encrypted notification topic.
        { actions: ['sns:Publish'], resource: { Ref: topicId }, effect: 'Allow' },
        {
          actions: ['kms:Decrypt', 'kms:GenerateDataKey*'],
          resource: { 'Fn::GetAtt': [topicKeyId, 'Arn'] },
          effect: 'Allow',
        },
        {
          actions: ['sqs:GetQueueAttributes', 'sqs:GetQueueUrl', 'sqs:SendMessage'],
          resource: { 'Fn::GetAtt': [queueId, 'Arn'] },
          effect: 'Allow',
        },
        {
          actions: ['logs:CreateLogStream', 'logs:PutLogEvents'],
          resource: { 'Fn::GetAtt': [functionLogsId, 'Arn'] },
          effect: 'Allow',
        },
        { actions: ['xray:PutTelemetryRecords', 'xray:PutTraceSegments'], resource: '*', effect: 'Allow' },
        // The opened and held lifecycle events, on the default bus (test/infra/lifecycle-events.test.ts).
        { actions: ['events:PutEvents'], resource: DEFAULT_EVENT_BUS, effect: 'Allow' },
      ]),
    );
    expect(statements).toHaveLength(8);
  });

  it("scopes detect's table access to its incidents, delivery markers, host sample windows and the breaker's partition", () => {
    // Prepare
    const table = statementsOfRole(template, functionRoleId).filter((s) =>
      actionsOf(s).some((action) => action.startsWith('dynamodb:')),
    );
    const leadingKeys = new Capture();
    // Act
    template.hasResourceProperties('AWS::IAM::Policy', {
      Roles: [{ Ref: functionRoleId }],
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({
            Sid: 'OpenIncidents',
            Condition: { 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': leadingKeys } },
          }),
        ]),
      },
    });
    // Assess: one statement holds every DynamoDB action, and it carries the condition.
    expect(table).toHaveLength(1);
    expect(leadingKeys.asArray()).toEqual([
      'incident#*',
      'delivery#*',
      'samples#*',
      'allowance#*',
      'guardrail#breaker',
    ]);
    // What it may not touch although it shares the table: approvals, remediation slots, and the
    // instances' last changes (the remediation cooldown).
    const allowed = leadingKeys.asArray().map((pattern) => stringLike(String(pattern)));
    for (const foreign of ['approval#a1b2', 'guardrail#remediations', 'guardrail#instance#i-0abc12345678']) {
      expect(
        allowed.some((pattern) => pattern.test(foreign)),
        foreign,
      ).toBe(false);
    }
  });

  it('allows Resource "*" only for actions that have no resource-level permissions', () => {
    const policies = Object.values(
      template.findResources('AWS::IAM::Policy') as Record<string, PolicyResource>,
    );
    const wildcardActions = policies
      .flatMap((policy) => policy.Properties.PolicyDocument.Statement)
      .filter((statement) => statement.Resource === '*' || [statement.Resource].flat().includes('*'))
      .flatMap(actionsOf);
    expect(wildcardActions.length).toBeGreaterThan(0);
    expect(wildcardActions.filter((action) => !NO_RESOURCE_LEVEL_ACTIONS.has(action))).toEqual([]);
  });

  it('grants no service-wide action anywhere', () => {
    const policies = Object.values(
      template.findResources('AWS::IAM::Policy') as Record<string, PolicyResource>,
    );
    const actions = policies
      .flatMap((policy) => policy.Properties.PolicyDocument.Statement)
      .flatMap(actionsOf);
    expect(actions.filter((action) => action.endsWith(':*') || action === '*')).toEqual([]);
  });

  it('lets CloudWatch Logs invoke detect only from the subscribed log groups', () => {
    const permissions = Object.values(
      template.findResources('AWS::Lambda::Permission', {
        Properties: { Principal: 'logs.amazonaws.com' },
      }) as Record<string, { Properties: { SourceArn: unknown } }>,
    );
    expect(permissions.length).toBe(1);
    for (const permission of permissions) {
      expect(permission.Properties.SourceArn).toEqual({
        'Fn::GetAtt': [logicalIdOf(template, 'AWS::Logs::LogGroup', 'Detection/KernelLogs/Resource'), 'Arn'],
      });
    }
  });
});
