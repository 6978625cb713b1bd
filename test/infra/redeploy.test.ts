import { Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { describe, expect, it } from 'vitest';
import { ConntrackResponder, type ConntrackResponderProps } from '../../infra/conntrack-responder.js';
import { WORKFLOW_LOG_GROUP_PREFIX } from '../../infra/constructs/incident-workflow.js';
import type { SlackProps } from '../../infra/constructs/slack-chatops.js';
import { ConntrackResponderStack } from '../../infra/stack.js';
import { testApp } from './support.js';

type Resource = {
  Type: string;
  Properties?: Record<string, unknown>;
  DeletionPolicy?: string;
  Metadata?: Record<string, string>;
};

/**
 * Properties that name a resource in AWS, by resource type, as the physical name that must be
 * unique (per account and region, or within the parent the name is scoped to). A subscription
 * filter's name only has to be unique on its log group.
 */
const PHYSICAL_NAME: Record<string, (properties: Record<string, unknown>) => unknown> = {
  'AWS::Logs::LogGroup': (p) => p.LogGroupName,
  'AWS::Logs::SubscriptionFilter': (p) =>
    p.FilterName === undefined ? undefined : [p.LogGroupName, p.FilterName],
  'AWS::SSM::Document': (p) => p.Name,
  'AWS::SSM::Parameter': (p) => p.Name,
  'AWS::SSM::Association': (p) => p.AssociationName,
  'AWS::CloudWatch::Alarm': (p) => p.AlarmName,
  'AWS::DynamoDB::Table': (p) => p.TableName,
  'AWS::S3::Bucket': (p) => p.BucketName,
  'AWS::Lambda::Function': (p) => p.FunctionName,
  'AWS::IAM::Role': (p) => p.RoleName,
  'AWS::IAM::ManagedPolicy': (p) => p.ManagedPolicyName,
  'AWS::SNS::Topic': (p) => p.TopicName,
  'AWS::SQS::Queue': (p) => p.QueueName,
  'AWS::StepFunctions::StateMachine': (p) => p.StateMachineName,
  'AWS::SecretsManager::Secret': (p) => p.Name,
  'AWS::KMS::Alias': (p) => p.AliasName,
  'AWS::Events::Rule': (p) => p.Name,
  'AWS::Events::Connection': (p) => p.Name,
  'AWS::Events::ApiDestination': (p) => p.Name,
};

/** `…Name` properties that are not a resource's own name: references to another resource, or labels. */
const NOT_A_PHYSICAL_NAME = new Set([
  'AWS::CloudWatch::Alarm.MetricName',
  'AWS::IAM::Policy.PolicyName', // an inline policy's name, scoped to its role
  'AWS::Lambda::EventInvokeConfig.FunctionName',
  'AWS::Lambda::Permission.FunctionName',
  'AWS::Lambda::EventSourceMapping.FunctionName',
  'AWS::Logs::SubscriptionFilter.LogGroupName',
  'AWS::SNS::Topic.DisplayName',
  'AWS::SSM::Association.Name', // the document the association runs
]);

function resources(template: Template): Record<string, Resource> {
  return template.toJSON().Resources as Record<string, Resource>;
}

/**
 * Every physical name a template gives, with the construct path it belongs to. A reference to a
 * resource of the template (a log group's Ref) names that stack's resource: it is qualified with
 * `stackName` so that two stacks' templates compare right.
 */
function physicalNames(template: Template, stackName = ''): { path: string; type: string; name: string }[] {
  const found: { path: string; type: string; name: string }[] = [];
  for (const [id, resource] of Object.entries(resources(template))) {
    const properties = resource.Properties ?? {};
    const nameOf = PHYSICAL_NAME[resource.Type];
    for (const key of Object.keys(properties).filter((each) => each.endsWith('Name'))) {
      const known =
        NOT_A_PHYSICAL_NAME.has(`${resource.Type}.${key}`) ||
        (nameOf !== undefined && nameOf({ [key]: 'x', FilterName: 'x' }) !== undefined);
      // A new kind of name must be classified here, so that it is checked for clashes too.
      expect(known, `${resource.Type}.${key} (${id}): a physical name or a reference?`).toBe(true);
    }
    const name = nameOf?.(properties);
    if (name !== undefined) {
      const qualified = JSON.stringify(name).replace(/"Ref":"(?!AWS::)/g, `"Ref":"${stackName}/`);
      found.push({ path: resource.Metadata?.['aws:cdk:path'] ?? id, type: resource.Type, name: qualified });
    }
  }
  return found;
}

function clashes(names: { path: string; type: string; name: string }[]): string[] {
  const byName = new Map<string, string[]>();
  for (const { path, type, name } of names) {
    const key = `${type} ${name}`;
    byName.set(key, [...(byName.get(key) ?? []), path]);
  }
  return [...byName]
    .filter(([, paths]) => paths.length > 1)
    .map(([key, paths]) => `${key}: ${paths.join(', ')}`);
}

const slack: SlackProps = {
  channelId: 'C0INCIDENTS',
  teamId: 'T0TESTTEAM',
  appId: 'A0TESTAPP1',
  approverUserIds: ['U0APPROVER'],
};

/** Defaults, and every optional part that creates resources of its own. */
const VARIANTS: [string, ConntrackResponderProps][] = [
  ['defaults', {}],
  ['with Slack and evidence signing', { slack, evidenceSigning: {} }],
];

describe.each(VARIANTS)('two responders (%s)', (_label, props) => {
  it('live side by side in one stack without a clash of physical names', () => {
    // Prepare
    const stack = new Stack(testApp(), 'Shared');
    new ConntrackResponder(stack, 'Blue', props);
    new ConntrackResponder(stack, 'Green', props);
    // Act
    const names = physicalNames(Template.fromStack(stack));
    // Assess
    expect(names.filter(({ path }) => path.startsWith('Shared/Blue/')).length).toBeGreaterThan(5);
    expect(clashes(names)).toEqual([]);
  });

  it('live side by side as two stacks of one app without a clash of physical names', () => {
    // Prepare
    const app = testApp();
    const stacks = ['Blue', 'Green'].map(
      (name) => new ConntrackResponderStack(app, name, { responder: props }),
    );
    // Act
    const names = stacks.flatMap((stack) => physicalNames(Template.fromStack(stack), stack.stackName));
    // Assess
    expect(clashes(names)).toEqual([]);
  });

  it('can be deleted and deployed again: whatever it keeps on delete has no name the next deployment reuses', () => {
    // Prepare
    const stack = new ConntrackResponderStack(testApp(), 'Redeployed', { responder: props });
    // Act
    const kept = Object.entries(resources(Template.fromStack(stack))).filter(
      ([, resource]) => resource.DeletionPolicy === 'Retain',
    );
    // Assess: either CloudFormation generates the name, or it carries the stack's own id.
    expect(kept.length).toBeGreaterThan(0);
    for (const [id, resource] of kept) {
      const name = PHYSICAL_NAME[resource.Type]?.(resource.Properties ?? {});
      if (name === undefined) continue;
      expect(JSON.stringify(name), `${resource.Type} ${id}`).toContain('"AWS::StackId"');
    }
  });
});

describe('the log groups the construct creates', () => {
  const stack = new ConntrackResponderStack(testApp(), 'Logs');
  const groups = Object.values(resources(Template.fromStack(stack))).filter(
    (resource) => resource.Type === 'AWS::Logs::LogGroup',
  );

  it("put the workflow's execution logs under /aws/vendedlogs/states/, kept on delete", () => {
    const workflow = groups.filter((group) => group.Metadata?.['aws:cdk:path']?.includes('/Workflow/Logs/'));
    expect(workflow).toHaveLength(1);
    const name = JSON.stringify(workflow[0]?.Properties?.LogGroupName);
    expect(name).toContain(`"${WORKFLOW_LOG_GROUP_PREFIX}Logs-Responder-Workflow-`);
    expect(workflow[0]?.DeletionPolicy).toBe('Retain');
  });

  it('give every other log group a generated name', () => {
    const named = groups.filter((group) => group.Properties?.LogGroupName !== undefined);
    expect(named.map((group) => group.Metadata?.['aws:cdk:path'])).toEqual([
      'Logs/Responder/Workflow/Logs/Resource',
    ]);
  });

  it('keep a kernel log group name the operator chose, as given', () => {
    const custom = new ConntrackResponderStack(testApp(), 'Named', {
      responder: { createdLogGroupName: '/ops/kernel' },
    });
    Template.fromStack(custom).hasResource('AWS::Logs::LogGroup', {
      Properties: { LogGroupName: '/ops/kernel' },
      DeletionPolicy: 'Retain',
    });
    expect(
      () => new ConntrackResponderStack(testApp(), 'Bad', { responder: { createdLogGroupName: 'bad name' } }),
    ).toThrow(/createdLogGroupName 'bad name' is not valid/);
  });
});
