import { App, Stack } from 'aws-cdk-lib';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import {
  LAMBDA_TASK_STATES,
  type WorkflowFunctionRole,
} from '../../../functions/core/workflow/state-names.js';
import {
  buildIncidentDefinition,
  type IncidentDefinitionProps,
  type IncidentWorkflowFunctions,
} from '../../../infra/workflow/definition.js';

/**
 * A stack holding only the incident workflow, with inline stand-in functions (the definition is
 * what is under test here; the real functions are the IncidentWorkflow construct's business).
 */
export function workflowTestStack(overrides: Partial<Omit<IncidentDefinitionProps, 'functions'>> = {}) {
  const app = new App({ builtinCloudFormationValidation: false, context: { 'aws:cdk:bundling-stacks': [] } });
  const stack = new Stack(app, 'WorkflowUnderTest', {
    env: { account: '111122223333', region: 'eu-west-1' },
  });
  const functions = Object.fromEntries(
    (Object.keys(LAMBDA_TASK_STATES) as WorkflowFunctionRole[]).map((role) => [
      role,
      new lambda.Function(stack, `${role}Function`, {
        runtime: lambda.Runtime.NODEJS_24_X,
        handler: 'index.handler',
        code: lambda.Code.fromInline('exports.handler = async () => ({})'),
      }),
    ]),
  ) as unknown as IncidentWorkflowFunctions;
  const definition = buildIncidentDefinition(stack, {
    functions,
    documents: {
      collectDiagnostics: 'ConntrackResponder-collect-diagnostics',
      raiseLimits: 'ConntrackResponder-raise-limits',
      notrackPorts: 'ConntrackResponder-notrack-ports',
      rollback: 'ConntrackResponder-rollback',
    },
    ...overrides,
  });
  new sfn.StateMachine(stack, 'IncidentWorkflow', {
    definitionBody: sfn.DefinitionBody.fromChainable(definition),
    stateMachineType: sfn.StateMachineType.STANDARD,
  });
  return { app, stack, functions };
}
