import { describe, expect, it } from 'vitest';
import { appSettingsFromContext } from '../../infra/context.js';
import { logicalIdOf, synthesize } from './support.js';

type Statement = {
  Sid?: string;
  Effect: string;
  Action: string | string[];
  Resource: unknown;
  Condition?: unknown;
};
type Resources = Record<string, { Type: string; Properties: Record<string, unknown> }>;

const ONCALL = 'arn:aws:iam::111122223333:role/teams/sre/OnCall';
const OTHER_ACCOUNT = 'arn:aws:iam::444455556666:role/Incident';

/** A function's environment variables (failing when the resource is not there). */
function variablesOf(resources: Resources, id: string): Record<string, unknown> {
  const resource = resources[id];
  if (resource === undefined) throw new Error(`no resource ${id}`);
  return (resource.Properties.Environment as { Variables: Record<string, unknown> }).Variables;
}

function approval(props: Parameters<typeof synthesize>[0] = {}) {
  const { template } = synthesize(props);
  const resources = template.toJSON().Resources as Resources;
  const functionId = logicalIdOf(template, 'AWS::Lambda::Function', '/Approval/Function/Resource');
  const roleId = logicalIdOf(template, 'AWS::IAM::Role', '/Approval/Role/Resource');
  const functionArn = { 'Fn::GetAtt': [functionId, 'Arn'] };
  const roleStatements = Object.values(resources)
    .filter((resource) => resource.Type === 'AWS::IAM::Policy')
    .filter((policy) => JSON.stringify(policy.Properties.Roles).includes(roleId))
    .flatMap((policy) => (policy.Properties.PolicyDocument as { Statement: Statement[] }).Statement);
  return { template, resources, functionId, roleId, functionArn, roleStatements };
}

/** Every statement or permission in the template that lets someone invoke the approval function. */
function invokeGrants(resources: Resources, functionId: string) {
  const grants: Array<{ where: string; action: string; condition: unknown; principal?: unknown }> = [];
  for (const [id, resource] of Object.entries(resources)) {
    if (
      resource.Type === 'AWS::Lambda::Permission' &&
      JSON.stringify(resource.Properties.FunctionName).includes(functionId)
    ) {
      grants.push({
        where: id,
        action: String(resource.Properties.Action),
        condition: {
          FunctionUrlAuthType: resource.Properties.FunctionUrlAuthType,
          InvokedViaFunctionUrl: resource.Properties.InvokedViaFunctionUrl,
        },
        principal: resource.Properties.Principal,
      });
    }
    if (resource.Type === 'AWS::IAM::Policy' || resource.Type === 'AWS::IAM::ManagedPolicy') {
      const statements = (resource.Properties.PolicyDocument as { Statement: Statement[] }).Statement;
      for (const statement of statements) {
        if (!JSON.stringify(statement.Resource).includes(functionId)) continue;
        for (const action of [statement.Action].flat()) {
          if (action.startsWith('lambda:Invoke'))
            grants.push({ where: id, action, condition: statement.Condition });
        }
      }
    }
  }
  return grants;
}

describe('the approval URL (approval without Slack)', () => {
  it('is a function URL with AWS_IAM auth on its own function', () => {
    const { template, functionId } = approval();
    template.hasResourceProperties('AWS::Lambda::Url', {
      AuthType: 'AWS_IAM',
      TargetFunctionArn: { 'Fn::GetAtt': [functionId, 'Arn'] },
    });
  });

  it('lets exactly the named roles and the managed policy call it, and only through the URL', () => {
    const { resources, functionId, functionArn, template } = approval({
      approverRoleArns: [ONCALL, OTHER_ACCOUNT],
    });
    const grants = invokeGrants(resources, functionId);
    // Per role: InvokeFunctionUrl for AWS_IAM URLs, and InvokeFunction only via the URL
    // (https://docs.aws.amazon.com/lambda/latest/dg/urls-auth.html: both since October 2025).
    for (const role of [ONCALL, OTHER_ACCOUNT]) {
      const mine = grants.filter((grant) => grant.principal === role);
      expect(mine.map((grant) => [grant.action, grant.condition]).sort()).toEqual([
        ['lambda:InvokeFunction', { InvokedViaFunctionUrl: true }],
        ['lambda:InvokeFunctionUrl', { FunctionUrlAuthType: 'AWS_IAM' }],
      ]);
    }
    // The managed policy: the same two rights, nothing else.
    const policy = Object.entries(resources).find(
      ([, resource]) => resource.Type === 'AWS::IAM::ManagedPolicy',
    );
    if (policy === undefined) throw new Error('no managed policy');
    const statements = (policy[1].Properties.PolicyDocument as { Statement: Statement[] }).Statement;
    expect(statements).toEqual([
      {
        Sid: 'CallTheApprovalUrl',
        Effect: 'Allow',
        Action: 'lambda:InvokeFunctionUrl',
        Resource: functionArn,
        Condition: { StringEquals: { 'lambda:FunctionUrlAuthType': 'AWS_IAM' } },
      },
      {
        Sid: 'OnlyThroughTheUrl',
        Effect: 'Allow',
        Action: 'lambda:InvokeFunction',
        Resource: functionArn,
        Condition: { Bool: { 'lambda:InvokedViaFunctionUrl': 'true' } },
      },
    ]);
    // Nobody else may invoke it, and nothing grants a direct invoke (which could carry a forged request context).
    expect(grants.filter((grant) => grant.where !== policy?.[0]).map((grant) => grant.principal)).toEqual(
      expect.arrayContaining([ONCALL, OTHER_ACCOUNT]),
    );
    expect(
      grants.every(
        (grant) => grant.principal === undefined || [ONCALL, OTHER_ACCOUNT].includes(String(grant.principal)),
      ),
    ).toBe(true);
    for (const grant of grants.filter((grant) => grant.action === 'lambda:InvokeFunction')) {
      expect(JSON.stringify(grant.condition)).toMatch(/InvokedViaFunctionUrl"?:\s*("true"|true)/);
    }
    template.hasOutput('ApproverPolicyArn', { Value: { Ref: policy?.[0] } });
    template.hasOutput('ApprovalUrl', {
      Value: {
        'Fn::GetAtt': [
          logicalIdOf(template, 'AWS::Lambda::Url', '/Approval/Function/FunctionUrl/Resource'),
          'FunctionUrl',
        ],
      },
    });
  });

  it('tells the function who may decide, and without the managed policy only the named roles', () => {
    const strict = approval({ approverRoleArns: [ONCALL], approverPolicy: false });
    expect(
      Object.values(strict.resources).some((resource) => resource.Type === 'AWS::IAM::ManagedPolicy'),
    ).toBe(false);
    expect(strict.template.findOutputs('ApproverPolicyArn')).toEqual({});
    const environment = variablesOf(strict.resources, strict.functionId);
    expect(environment).toMatchObject({ APPROVER_ROLE_ARNS: ONCALL, APPROVER_POLICY_HOLDERS: 'false' });
    const defaults = approval();
    const defaultEnvironment = variablesOf(defaults.resources, defaults.functionId);
    expect(defaultEnvironment).toMatchObject({ APPROVER_ROLE_ARNS: '', APPROVER_POLICY_HOLDERS: 'true' });
  });

  it('gives the function only approval and incident items and SendTaskSuccess on this workflow', () => {
    const { template, roleStatements } = approval();
    const tableId = logicalIdOf(template, 'AWS::DynamoDB::Table', 'IncidentStore/Table/Resource');
    const stateMachineId = logicalIdOf(
      template,
      'AWS::StepFunctions::StateMachine',
      'Workflow/StateMachine/Resource',
    );
    const own = roleStatements.filter(
      (statement) => ![statement.Action].flat().every((action) => /^(logs|xray):/.test(action)),
    );
    expect(own).toEqual([
      {
        Sid: 'DecideApprovals',
        Effect: 'Allow',
        Action: ['dynamodb:GetItem', 'dynamodb:UpdateItem'],
        Resource: { 'Fn::GetAtt': [tableId, 'Arn'] },
        Condition: { 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': ['approval#*', 'incident#*'] } },
      },
      {
        Sid: 'ResumeApprovalTasks',
        Effect: 'Allow',
        Action: 'states:SendTaskSuccess',
        Resource: { Ref: stateMachineId },
      },
    ]);
  });

  it('gives the approval request and the notification the URL, for the exact command they show', () => {
    const { template, resources } = approval();
    const urlId = logicalIdOf(template, 'AWS::Lambda::Url', '/Approval/Function/FunctionUrl/Resource');
    for (const path of ['/requestApprovalFunction/Resource', '/notifyFunction/Resource']) {
      const id = logicalIdOf(template, 'AWS::Lambda::Function', path);
      const variables = variablesOf(resources, id);
      expect(variables.APPROVAL_URL).toEqual({ 'Fn::GetAtt': [urlId, 'FunctionUrl'] });
    }
  });

  it('settles the Slack message too when Slack is configured', () => {
    const { resources, functionId } = approval({
      slack: {
        channelId: 'C0INCIDENTS',
        teamId: 'T0TESTTEAM',
        appId: 'A0TESTAPP1',
        approverUserIds: ['U0APPROVER'],
      },
    });
    const variables = variablesOf(resources, functionId);
    expect(variables).toMatchObject({
      SLACK_CHANNEL_ID: 'C0INCIDENTS',
      SLACK_BOT_TOKEN_SECRET_ARN: expect.anything(),
    });
  });

  it('refuses what is not a role ARN at synth, naming the prop, and reads the context keys', () => {
    expect(() => synthesize({ approverRoleArns: ['arn:aws:iam::111122223333:user/alice'] })).toThrow(
      /approverRoleArns: 'arn:aws:iam::111122223333:user\/alice' is not an IAM role ARN/,
    );
    expect(() => synthesize({ approverRoleArns: [ONCALL, ONCALL] })).toThrow(/lists a role twice/);
    const context: Record<string, string> = {
      'conntrack-responder:approverRoleArns': `${ONCALL},${OTHER_ACCOUNT}`,
      'conntrack-responder:approverPolicy': 'false',
    };
    expect(appSettingsFromContext((key) => context[key]).responder).toMatchObject({
      approverRoleArns: [ONCALL, OTHER_ACCOUNT],
      approverPolicy: false,
    });
  });
});
