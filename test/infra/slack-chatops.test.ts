import { Annotations, Match, type Template } from 'aws-cdk-lib/assertions';
import { describe, expect, it } from 'vitest';
import { DEFAULT_SLACK_RESERVED_CONCURRENCY, type SlackProps } from '../../infra/constructs/slack-chatops.js';
import { appSettingsFromContext } from '../../infra/context.js';
import { policyPacks } from '../../infra/policy-checks.js';
import { logicalIdOf, synthesize } from './support.js';

const slack: SlackProps = {
  channelId: 'C0INCIDENTS',
  teamId: 'T0TESTTEAM',
  appId: 'A0TESTAPP1',
  approverUserIds: ['U0APPROVER', 'U0SECONDAPR'],
  approverUserGroupId: 'S0ONCALL01',
};

type Statement = {
  Sid?: string;
  Effect: string;
  Action: string | string[];
  Resource: unknown;
  Condition?: unknown;
};
type Resources = Record<string, { Type: string; Properties: Record<string, unknown> }>;

function interactivity() {
  const { app, stack, template } = synthesize({ slack });
  const functionId = logicalIdOf(template, 'AWS::Lambda::Function', '/Slack/Interactivity/Resource');
  const roleId = logicalIdOf(template, 'AWS::IAM::Role', '/Slack/InteractivityRole/Resource');
  const policies = Object.values(template.findResources('AWS::IAM::Policy') as Resources).filter((policy) =>
    JSON.stringify(policy.Properties.Roles).includes(roleId),
  );
  const statements = policies.flatMap(
    (policy) => (policy.Properties.PolicyDocument as { Statement: Statement[] }).Statement,
  );
  return { app, stack, template, functionId, roleId, statements };
}

const actionsOf = (statement: Statement) => [statement.Action].flat();

describe('the Slack ChatOps construct', () => {
  it('adds nothing when Slack is not configured', () => {
    const { template } = synthesize({});
    // Only the approval URL of the command line (AWS_IAM), no public endpoint.
    template.resourceCountIs('AWS::Lambda::Url', 1);
    template.hasResourceProperties('AWS::Lambda::Url', { AuthType: 'AWS_IAM' });
    template.resourceCountIs('AWS::SecretsManager::Secret', 0);
  });

  it('exposes the endpoint as a Function URL without IAM auth (the Slack signature is the check)', () => {
    const { template, functionId } = interactivity();
    template.hasResourceProperties('AWS::Lambda::Url', {
      AuthType: 'NONE',
      InvokeMode: 'BUFFERED',
      TargetFunctionArn: { 'Fn::GetAtt': [functionId, 'Arn'] },
    });
  });

  it('caps the public endpoint at 5 concurrent executions by default, any cap on request, and warns at synth without one', () => {
    const reserved = (template: Template) =>
      (template.toJSON().Resources as Resources)[
        logicalIdOf(template, 'AWS::Lambda::Function', '/Slack/Interactivity/Resource')
      ]?.Properties.ReservedConcurrentExecutions;
    const byDefault = interactivity();
    expect(reserved(byDefault.template)).toBe(DEFAULT_SLACK_RESERVED_CONCURRENCY);
    expect(DEFAULT_SLACK_RESERVED_CONCURRENCY).toBe(5);
    Annotations.fromStack(byDefault.stack).hasNoWarning('*', Match.stringLikeRegexp('no concurrency cap'));
    expect(reserved(synthesize({ slack: { ...slack, reservedConcurrency: 20 } }).template)).toBe(20);

    const uncapped = synthesize({ slack: { ...slack, reservedConcurrency: false } });
    expect(reserved(uncapped.template)).toBeUndefined();
    Annotations.fromStack(uncapped.stack).hasWarning(
      '/Test/Responder/Slack/Interactivity',
      Match.stringLikeRegexp('no concurrency cap .*flood of requests'),
    );
    expect(() => synthesize({ slack: { ...slack, reservedConcurrency: 0 } })).toThrow(
      /slack\.reservedConcurrency must be a whole number from 1 to 1000 or false, got 0/,
    );
  });

  it('creates the two secrets with generated placeholders, never a value in the template', () => {
    const { template } = interactivity();
    template.resourceCountIs('AWS::SecretsManager::Secret', 2);
    for (const secret of Object.values(template.findResources('AWS::SecretsManager::Secret') as Resources)) {
      expect(secret.Properties.SecretString).toBeUndefined();
      expect(secret.Properties.GenerateSecretString).toBeDefined();
    }
  });

  it('configures the function by environment, secrets by ARN only', () => {
    const { template, functionId } = interactivity();
    const fn = (template.findResources('AWS::Lambda::Function') as Resources)[functionId];
    if (fn === undefined) throw new Error('no interactivity function');
    const variables = (fn.Properties.Environment as { Variables: Record<string, unknown> }).Variables;
    expect(variables).toMatchObject({
      SLACK_CHANNEL_ID: 'C0INCIDENTS',
      SLACK_TEAM_ID: 'T0TESTTEAM',
      SLACK_APP_ID: 'A0TESTAPP1',
      SLACK_APPROVER_USER_IDS: 'U0APPROVER,U0SECONDAPR',
      SLACK_APPROVER_USER_GROUP_ID: 'S0ONCALL01',
      SLACK_SIGNING_SECRET_ARN: { Ref: expect.stringMatching(/SlackSigningSecret/) },
      SLACK_BOT_TOKEN_SECRET_ARN: { Ref: expect.stringMatching(/SlackBotToken/) },
      INCIDENT_TABLE_NAME: { Ref: expect.stringMatching(/IncidentStoreTable/) },
    });
    expect(fn.Properties).toMatchObject({
      Runtime: 'nodejs24.x',
      Timeout: 30,
      TracingConfig: { Mode: 'Active' },
    });
  });

  it('grants least privilege: its two secrets, approval items, resuming this workflow, invoking itself', () => {
    const { statements, functionId } = interactivity();
    const byAction = (action: string) =>
      statements.filter((statement) => actionsOf(statement).includes(action));

    const secretResources = byAction('secretsmanager:GetSecretValue').flatMap((statement) =>
      [statement.Resource].flat(),
    );
    expect(secretResources.map((resource) => JSON.stringify(resource)).sort()).toEqual([
      expect.stringMatching(/SlackBotToken/),
      expect.stringMatching(/SlackSigningSecret/),
    ]);

    const table = { 'Fn::GetAtt': [expect.stringMatching(/IncidentStoreTable/), 'Arn'] };
    const items = statements.find((statement) => statement.Sid === 'ApprovalAndThreadItems');
    expect(actionsOf(items as Statement).sort()).toEqual(['dynamodb:GetItem', 'dynamodb:UpdateItem']);
    expect(items?.Resource).toEqual(table);
    expect(items?.Condition).toEqual({
      'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': ['approval#*', 'thread#*', 'incident#*'] },
    });
    // Writing new items only for the breaker's reset audit records, and only under its own key.
    const breaker = statements.find((statement) => statement.Sid === 'FleetBreaker');
    expect(actionsOf(breaker as Statement).sort()).toEqual([
      'dynamodb:BatchGetItem',
      'dynamodb:GetItem',
      'dynamodb:PutItem',
      'dynamodb:UpdateItem',
    ]);
    expect(breaker?.Resource).toEqual(table);
    expect(breaker?.Condition).toEqual({
      'ForAllValues:StringLike': {
        'dynamodb:LeadingKeys': ['guardrail#breaker', 'guardrail#remediations', 'incident#*'],
      },
    });
    expect(byAction('dynamodb:PutItem')).toEqual([breaker]);
    expect(byAction('dynamodb:DeleteItem')).toEqual([]);
    expect(byAction('dynamodb:Scan')).toEqual([]);

    const [resume] = byAction('states:SendTaskSuccess');
    expect(actionsOf(resume as Statement)).toEqual(['states:SendTaskSuccess']);
    expect(resume?.Resource).toEqual({ Ref: expect.stringMatching(/WorkflowStateMachine/) });

    const [invoke] = byAction('lambda:InvokeFunction');
    expect(invoke?.Resource).toEqual({ 'Fn::GetAtt': [functionId, 'Arn'] });

    for (const statement of statements) {
      for (const action of actionsOf(statement)) expect(action).not.toMatch(/\*$/);
    }
  });

  it.each([
    [
      'requestApproval',
      '/Functions/requestApprovalFunction/Resource',
      '/Functions/requestApprovalRole/Resource',
    ],
    ['notify', '/Functions/notifyFunction/Resource', '/Functions/notifyRole/Resource'],
  ])(
    'connects the %s function to Slack: settings and the bot token, never the signing secret',
    (_role, fnPath, rolePath) => {
      const { template } = interactivity();
      const functionId = logicalIdOf(template, 'AWS::Lambda::Function', fnPath);
      const roleId = logicalIdOf(template, 'AWS::IAM::Role', rolePath);
      const fn = (template.findResources('AWS::Lambda::Function') as Resources)[functionId];
      const variables = (fn?.Properties.Environment as { Variables: Record<string, unknown> } | undefined)
        ?.Variables;
      expect(variables).toMatchObject({
        SLACK_CHANNEL_ID: 'C0INCIDENTS',
        SLACK_BOT_TOKEN_SECRET_ARN: { Ref: expect.stringMatching(/SlackBotToken/) },
      });
      expect(variables?.SLACK_SIGNING_SECRET_ARN).toBeUndefined();
      const statements = Object.values(template.findResources('AWS::IAM::Policy') as Resources)
        .filter((policy) => JSON.stringify(policy.Properties.Roles).includes(roleId))
        .flatMap((policy) => (policy.Properties.PolicyDocument as { Statement: Statement[] }).Statement);
      const secretResources = JSON.stringify(
        statements.filter((statement) => actionsOf(statement).includes('secretsmanager:GetSecretValue')),
      );
      expect(secretResources).toMatch(/SlackBotToken/);
      expect(secretResources).not.toMatch(/SlackSigningSecret/);
    },
  );

  it("feeds the incident thread's step lines from the workflow's execution log", () => {
    const { template } = interactivity();
    const progressId = logicalIdOf(template, 'AWS::Lambda::Function', '/Slack/Progress/Resource');
    const filters = Object.values(
      template.findResources('AWS::Logs::SubscriptionFilter') as Resources,
    ).filter((filter) => JSON.stringify(filter.Properties.DestinationArn).includes(progressId));
    expect(filters).toHaveLength(1);
    const [filter] = filters;
    expect(filter?.Properties.LogGroupName).toEqual({ Ref: expect.stringMatching(/WorkflowLogs/) });
    const pattern = String(filter?.Properties.FilterPattern);
    expect(pattern).toContain('$.type = "TaskStateExited"');
    expect(pattern).toContain('$.details.name = "Collect diagnostics"');
    expect(pattern.length).toBeLessThanOrEqual(1024);
    const fn = (template.findResources('AWS::Lambda::Function') as Resources)[progressId];
    const variables = (fn?.Properties.Environment as { Variables: Record<string, unknown> } | undefined)
      ?.Variables;
    expect(variables?.SLACK_BOT_TOKEN_SECRET_ARN).toBeDefined();
    expect(variables?.SLACK_SIGNING_SECRET_ARN).toBeUndefined();
  });

  it('tells the operator the Request URL and where to store the secrets', () => {
    const { template } = interactivity();
    const outputs = Object.values(template.findOutputs('*')) as Array<{ Description?: string }>;
    const descriptions = outputs.map((output) => output.Description);
    expect(descriptions).toEqual(
      expect.arrayContaining([
        'Paste into the Slack app: Interactivity & Shortcuts → Request URL',
        "Store the Slack app's signing secret here",
        "Store the Slack app's bot token (xoxb-…) here",
      ]),
    );
  });

  it('reports no unacknowledged cdk-nag finding', () => {
    const { app } = interactivity();
    const findings = policyPacks().flatMap((pack) =>
      pack
        .validateScope(app)
        .violations.flatMap((violation) =>
          violation.violatingResources.map(
            (resource) => `${violation.ruleName} at ${resource.constructPath}`,
          ),
        ),
    );
    expect(findings).toEqual([]);
  });

  it.each([
    [{ channelId: '#incidents' }, /channelId '#incidents' is not a Slack channel id/],
    [{ teamId: 'acme' }, /teamId 'acme'/],
    [{ appId: 'B0NOTANAPP' }, /appId/],
    [{ approverUserIds: ['alice'] }, /approverUserIds 'alice'/],
    [{ approverUserIds: [], approverUserGroupId: undefined }, /nobody could approve/],
    [{ approverUserGroupId: 'U0NOTAGROUP' }, /approverUserGroupId/],
    [{ groupCacheSeconds: 7200 }, /groupCacheSeconds/],
  ])('refuses %o at synth, naming the prop', (override, message) => {
    expect(() => synthesize({ slack: { ...slack, ...override } })).toThrow(message);
  });
});

describe('Slack settings from CDK context', () => {
  const reader = (values: Record<string, unknown>) => (key: string) => values[key];

  it('turns Slack on with a channel id and reads the rest', () => {
    const settings = appSettingsFromContext(
      reader({
        'conntrack-responder:slackChannelId': 'C0INCIDENTS',
        'conntrack-responder:slackTeamId': 'T0TESTTEAM',
        'conntrack-responder:slackAppId': 'A0TESTAPP1',
        'conntrack-responder:slackApproverUserIds': 'U0APPROVER, U0SECONDAPR',
        'conntrack-responder:slackGroupCacheSeconds': '30',
        'conntrack-responder:slackReservedConcurrency': '5',
      }),
    );
    expect(settings.responder.slack).toEqual({
      channelId: 'C0INCIDENTS',
      teamId: 'T0TESTTEAM',
      appId: 'A0TESTAPP1',
      approverUserIds: ['U0APPROVER', 'U0SECONDAPR'],
      groupCacheSeconds: 30,
      reservedConcurrency: 5,
    });
  });

  it('reads slackReservedConcurrency=false as no cap', () => {
    const settings = appSettingsFromContext(
      reader({
        'conntrack-responder:slackChannelId': 'C0INCIDENTS',
        'conntrack-responder:slackTeamId': 'T0TESTTEAM',
        'conntrack-responder:slackAppId': 'A0TESTAPP1',
        'conntrack-responder:slackApproverUserIds': 'U0APPROVER',
        'conntrack-responder:slackReservedConcurrency': 'false',
      }),
    );
    expect(settings.responder.slack?.reservedConcurrency).toBe(false);
  });

  it('says what is missing', () => {
    expect(() =>
      appSettingsFromContext(reader({ 'conntrack-responder:slackChannelId': 'C0INCIDENTS' })),
    ).toThrow(/slackTeamId must be set when slackChannelId is/);
  });
});
