/**
 * Reads the incident workflow's definition out of a synthesized CloudFormation template, so that
 * the local twin runs exactly the definition that would be deployed. CloudFormation intrinsics in
 * the DefinitionString (ARNs of functions, document names, partition, region) are resolved to
 * local placeholders that say where they came from.
 */

export const LOCAL_ACCOUNT = '000000000000';
export const LOCAL_REGION = 'local';

export interface CfnResource {
  readonly Type: string;
  readonly Properties?: Record<string, unknown>;
  readonly Metadata?: Record<string, unknown>;
}

export interface CfnTemplate {
  readonly Resources?: Record<string, CfnResource>;
}

const PSEUDO_PARAMETERS: Record<string, string> = {
  'AWS::Partition': 'aws',
  'AWS::Region': LOCAL_REGION,
  'AWS::AccountId': LOCAL_ACCOUNT,
  'AWS::URLSuffix': 'amazonaws.com',
  'AWS::StackName': 'local',
  'AWS::NoValue': '',
};

/** The placeholder ARN a Lambda function's `Fn::GetAtt [Id, Arn]` resolves to locally. */
export function localFunctionArn(logicalId: string): string {
  return `arn:aws:lambda:${LOCAL_REGION}:${LOCAL_ACCOUNT}:function:${logicalId}`;
}

function resourceOf(template: CfnTemplate, logicalId: string, where: string): CfnResource {
  const resource = template.Resources?.[logicalId];
  if (resource === undefined) throw new Error(`${where}: the template has no resource '${logicalId}'`);
  return resource;
}

/** What `Ref` returns for a resource, as far as the local twin needs it. */
function refOf(template: CfnTemplate, logicalId: string, where: string): string {
  const pseudo = PSEUDO_PARAMETERS[logicalId];
  if (pseudo !== undefined) return pseudo;
  const resource = resourceOf(template, logicalId, where);
  const name = resource.Properties?.Name;
  if (resource.Type === 'AWS::SSM::Document' && typeof name === 'string') return name;
  if (resource.Type === 'AWS::SNS::Topic') {
    return `arn:aws:sns:${LOCAL_REGION}:${LOCAL_ACCOUNT}:${logicalId}`;
  }
  return logicalId;
}

function getAttOf(template: CfnTemplate, logicalId: string, attribute: string, where: string): string {
  const resource = resourceOf(template, logicalId, where);
  if (attribute !== 'Arn')
    throw new Error(`${where}: cannot resolve Fn::GetAtt ${logicalId}.${attribute} locally`);
  switch (resource.Type) {
    case 'AWS::Lambda::Function':
      return localFunctionArn(logicalId);
    case 'AWS::StepFunctions::StateMachine':
      return `arn:aws:states:${LOCAL_REGION}:${LOCAL_ACCOUNT}:stateMachine:${logicalId}`;
    default: {
      const service = resource.Type.split('::')[1]?.toLowerCase() ?? 'unknown';
      return `arn:aws:${service}:${LOCAL_REGION}:${LOCAL_ACCOUNT}:${logicalId}`;
    }
  }
}

/** Resolves Fn::Join, Ref and Fn::GetAtt Arn (all the DefinitionString needs) to local strings. */
export function resolveIntrinsics(value: unknown, template: CfnTemplate, where = 'template'): unknown {
  if (Array.isArray(value)) return value.map((item) => resolveIntrinsics(item, template, where));
  if (value === null || typeof value !== 'object') return value;
  const entries = Object.entries(value);
  const [first] = entries;
  if (entries.length === 1 && first !== undefined) {
    const [key, argument] = first;
    if (key === 'Ref') return refOf(template, String(argument), where);
    if (key === 'Fn::GetAtt') {
      const [logicalId, attribute] = Array.isArray(argument) ? argument : String(argument).split('.');
      return getAttOf(template, String(logicalId), String(attribute), where);
    }
    if (key === 'Fn::Join') {
      const [separator, parts] = argument as [string, unknown[]];
      return parts.map((part) => String(resolveIntrinsics(part, template, where))).join(separator);
    }
    if (key.startsWith('Fn::')) throw new Error(`${where}: cannot resolve ${key} locally`);
  }
  return Object.fromEntries(entries.map(([key, item]) => [key, resolveIntrinsics(item, template, where)]));
}

export interface TemplateStateMachine {
  readonly logicalId: string;
  readonly definition: Record<string, unknown>;
}

/** Every AWS::StepFunctions::StateMachine in the template, with its definition parsed and resolved. */
export function stateMachinesOf(template: CfnTemplate): TemplateStateMachine[] {
  return Object.entries(template.Resources ?? {})
    .filter(([, resource]) => resource.Type === 'AWS::StepFunctions::StateMachine')
    .map(([logicalId, resource]) => {
      const where = `state machine ${logicalId}`;
      const raw = resource.Properties?.DefinitionString ?? resource.Properties?.Definition;
      if (raw === undefined) throw new Error(`${where}: no DefinitionString`);
      const resolved = resolveIntrinsics(raw, template, where);
      const definition = typeof resolved === 'string' ? JSON.parse(resolved) : resolved;
      return { logicalId, definition: definition as Record<string, unknown> };
    });
}

/** The single state machine of a template, or a clear error when there is none or several. */
export function onlyStateMachine(template: CfnTemplate): TemplateStateMachine {
  const machines = stateMachinesOf(template);
  const [only] = machines;
  if (machines.length !== 1 || only === undefined) {
    throw new Error(`expected exactly one state machine in the template, found ${machines.length}`);
  }
  return only;
}
