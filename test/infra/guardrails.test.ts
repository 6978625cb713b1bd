import { Duration } from 'aws-cdk-lib';
import { Match } from 'aws-cdk-lib/assertions';
import { describe, expect, it } from 'vitest';
import type { ConntrackResponderProps } from '../../infra/conntrack-responder.js';
import { logicalIdOf, synthesize } from './support.js';

type Statement = { Sid?: string; Action: string | string[]; Resource: unknown; Condition?: unknown };

function statementsOf(template: ReturnType<typeof synthesize>['template'], roleId: string): Statement[] {
  const policies = Object.values(
    template.findResources('AWS::IAM::Policy') as Record<
      string,
      { Properties: { PolicyDocument: { Statement: Statement[] }; Roles: { Ref: string }[] } }
    >,
  );
  return policies
    .filter((policy) => policy.Properties.Roles.some((role) => role.Ref === roleId))
    .flatMap((policy) => policy.Properties.PolicyDocument.Statement);
}

function environmentOf(template: ReturnType<typeof synthesize>['template'], functionPath: string) {
  const id = logicalIdOf(template, 'AWS::Lambda::Function', functionPath);
  return template.toJSON().Resources[id].Properties.Environment.Variables as Record<string, unknown>;
}

describe('fleet guardrails in the stack', () => {
  describe('with the defaults', () => {
    const { template } = synthesize();
    const guardrailsFunctionId = logicalIdOf(
      template,
      'AWS::Lambda::Function',
      'Guardrails/Function/Resource',
    );
    const roleId = logicalIdOf(template, 'AWS::IAM::Role', 'Guardrails/FunctionRole/Resource');
    const tableId = logicalIdOf(template, 'AWS::DynamoDB::Table', 'IncidentStore/Table/Resource');

    it('gives the guardrails function and detect the documented defaults', () => {
      const defaults = {
        BREAKER_MAX_INSTANCES: '10',
        BREAKER_WINDOW_MINUTES: '15',
        MAX_CONCURRENT_REMEDIATIONS: '5',
        // The slot lease is the workflow timeout (4 h): no slot outlives its execution.
        REMEDIATION_SLOT_LEASE_SECONDS: '14400',
        REMEDIATION_COOLDOWN_MINUTES: '240',
        MODE_TAG_KEY: 'conntrack-responder:mode',
        CHANGE_CALENDAR: '',
        MIN_SSM_AGENT_VERSION: '3.3.2746.0',
        AWS_MAX_ATTEMPTS: '8',
        AWS_RETRY_MODE: 'standard',
      };
      expect(environmentOf(template, 'Guardrails/Function/Resource')).toMatchObject({
        ...defaults,
        INCIDENT_TABLE_NAME: { Ref: tableId },
        INCIDENT_RETENTION_DAYS: '90',
      });
      expect(environmentOf(template, 'Detection/Function/Resource')).toMatchObject({
        ...defaults,
        NOTIFICATION_TOPIC_ARN: {
          Ref: logicalIdOf(template, 'AWS::SNS::Topic', 'Notifications/Topic/Resource'),
        },
      });
      template.hasResourceProperties('AWS::Lambda::Function', {
        Runtime: 'nodejs24.x',
        Architectures: ['arm64'],
        Timeout: 60,
        TracingConfig: { Mode: 'Active' },
        Environment: { Variables: Match.objectLike({ MODE_TAG_KEY: 'conntrack-responder:mode' }) },
      });
    });

    it('lets the guardrails function touch only guardrail and incident items, and read mode tags', () => {
      const statements = statementsOf(template, roleId).filter((s) => s.Sid !== undefined);
      expect(statements).toEqual([
        {
          Sid: 'GuardrailRecords',
          Effect: 'Allow',
          Action: ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem'],
          Resource: { 'Fn::GetAtt': [tableId, 'Arn'] },
          Condition: { 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': ['guardrail#*', 'incident#*'] } },
        },
        { Sid: 'ReadInstanceModeTags', Effect: 'Allow', Action: 'ec2:DescribeTags', Resource: '*' },
        {
          Sid: 'ReadManagedNodeModeTags',
          Effect: 'Allow',
          Action: 'ssm:ListTagsForResource',
          Resource: {
            'Fn::Join': [
              '',
              [
                'arn:',
                { Ref: 'AWS::Partition' },
                ':ssm:',
                { Ref: 'AWS::Region' },
                ':',
                { Ref: 'AWS::AccountId' },
                ':managed-instance/*',
              ],
            ],
          },
        },
      ]);
      // No calendar configured, so no calendar permission.
      expect(JSON.stringify(statementsOf(template, roleId))).not.toContain('GetCalendarState');
    });

    it('gives back the slot of an execution that ended outside the workflow', () => {
      const stateMachineId = logicalIdOf(
        template,
        'AWS::StepFunctions::StateMachine',
        'Workflow/StateMachine/Resource',
      );
      template.hasResourceProperties('AWS::Events::Rule', {
        EventPattern: {
          source: ['aws.states'],
          'detail-type': ['Step Functions Execution Status Change'],
          detail: { status: ['FAILED', 'TIMED_OUT', 'ABORTED'], stateMachineArn: [{ Ref: stateMachineId }] },
        },
        Targets: [
          Match.objectLike({
            Arn: { 'Fn::GetAtt': [guardrailsFunctionId, 'Arn'] },
            RetryPolicy: { MaximumRetryAttempts: 8, MaximumEventAgeInSeconds: 6 * 3600 },
          }),
        ],
      });
      template.hasResourceProperties('AWS::Lambda::Permission', {
        Action: 'lambda:InvokeFunction',
        Principal: 'events.amazonaws.com',
        FunctionName: { 'Fn::GetAtt': [guardrailsFunctionId, 'Arn'] },
      });
    });
  });

  it('passes every guardrail prop to the functions', () => {
    const { template } = synthesize({
      breakerMaxInstances: 25,
      breakerWindowMinutes: 5,
      maxConcurrentRemediations: 2,
      remediationCooldownMinutes: 0,
      modeTagKey: 'team:conntrack-mode',
      changeCalendar: 'prod-change-freeze',
      minSsmAgentVersion: '3.3.3000.0',
      awsMaxAttempts: 12,
      awsRetryMode: 'adaptive',
      workflowTimeout: Duration.minutes(200),
    });
    const expected = {
      BREAKER_MAX_INSTANCES: '25',
      BREAKER_WINDOW_MINUTES: '5',
      MAX_CONCURRENT_REMEDIATIONS: '2',
      REMEDIATION_SLOT_LEASE_SECONDS: '12000',
      REMEDIATION_COOLDOWN_MINUTES: '0',
      MODE_TAG_KEY: 'team:conntrack-mode',
      CHANGE_CALENDAR: 'prod-change-freeze',
      MIN_SSM_AGENT_VERSION: '3.3.3000.0',
      AWS_MAX_ATTEMPTS: '12',
      AWS_RETRY_MODE: 'adaptive',
    };
    expect(environmentOf(template, 'Guardrails/Function/Resource')).toMatchObject(expected);
    expect(environmentOf(template, 'Detection/Function/Resource')).toMatchObject(expected);
    const roleId = logicalIdOf(template, 'AWS::IAM::Role', 'Guardrails/FunctionRole/Resource');
    expect(statementsOf(template, roleId).find((s) => s.Sid === 'ReadChangeCalendar')).toEqual({
      Sid: 'ReadChangeCalendar',
      Effect: 'Allow',
      Action: 'ssm:GetCalendarState',
      Resource: {
        'Fn::Join': [
          '',
          [
            'arn:',
            { Ref: 'AWS::Partition' },
            ':ssm:',
            { Ref: 'AWS::Region' },
            ':',
            { Ref: 'AWS::AccountId' },
            ':document/prod-change-freeze',
          ],
        ],
      },
    });
  });

  it('authorises a calendar shared from another account by its ARN', () => {
    const arn = 'arn:aws:ssm:eu-west-1:444455556666:document/org-change-freeze';
    const { template } = synthesize({ changeCalendar: arn });
    const roleId = logicalIdOf(template, 'AWS::IAM::Role', 'Guardrails/FunctionRole/Resource');
    expect(statementsOf(template, roleId).find((s) => s.Sid === 'ReadChangeCalendar')?.Resource).toBe(arn);
  });

  it.each<[ConntrackResponderProps, string]>([
    [
      { breakerMaxInstances: -1 },
      'ConntrackResponder breakerMaxInstances must be a whole number from 0 to 100000',
    ],
    [
      { breakerWindowMinutes: 0 },
      'ConntrackResponder breakerWindowMinutes must be a whole number from 1 to 1440',
    ],
    [{ maxConcurrentRemediations: 0 }, 'ConntrackResponder maxConcurrentRemediations must be a whole number'],
    [
      { remediationCooldownMinutes: 1.5 },
      'ConntrackResponder remediationCooldownMinutes must be a whole number',
    ],
    [
      { modeTagKey: 'aws:mode' },
      "ConntrackResponder modeTagKey must be 1 to 127 characters and not start with 'aws:'",
    ],
    [{ changeCalendar: 'a b' }, 'ConntrackResponder changeCalendar must be an SSM Change Calendar name'],
    [
      { minSsmAgentVersion: 'latest' },
      'ConntrackResponder minSsmAgentVersion must be a version such as 3.3.2746.0',
    ],
    [{ awsMaxAttempts: 0 }, 'ConntrackResponder awsMaxAttempts must be a whole number from 1 to 20'],
    [
      { awsRetryMode: 'yolo' as never },
      "ConntrackResponder awsRetryMode must be one of standard, adaptive, got 'yolo'",
    ],
  ])('rejects %j at synth with a message naming the prop', (props, message) => {
    expect(() => synthesize(props)).toThrow(message);
  });
});
