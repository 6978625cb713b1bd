import { readFileSync } from 'node:fs';
import { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import type { ConntrackResponderProps } from '../../infra/conntrack-responder.js';
import { ConntrackResponderStack } from '../../infra/stack.js';

/** The feature flags the real app runs with (cdk.json), so tests synthesize what `cdk synth` does. */
export const appContext: Record<string, unknown> = JSON.parse(
  readFileSync(new URL('../../cdk.json', import.meta.url), 'utf8'),
).context;

export const FIXTURE_RUNBOOKS = new URL('../fixtures/runbooks/', import.meta.url).pathname;

/** An app like infra/app.ts, without bundling the function (template tests do not need the code). */
export function testApp(outdir?: string): App {
  return new App({
    ...(outdir === undefined ? {} : { outdir }),
    context: { ...appContext, 'aws:cdk:bundling-stacks': [], 'aws:cdk:enable-path-metadata': true },
  });
}

export function synthesize(responder: ConntrackResponderProps = {}) {
  const app = testApp();
  const stack = new ConntrackResponderStack(app, 'Test', { responder });
  return { app, stack, template: Template.fromStack(stack) };
}

type Resources = Record<string, { Type: string; Properties?: Record<string, unknown> }>;

/** The one resource of a type, failing with the count when there is not exactly one. */
export function onlyResource(
  template: Template,
  type: string,
): { id: string; properties: Record<string, unknown> } {
  const found = Object.entries(template.findResources(type) as Resources);
  if (found.length !== 1) throw new Error(`expected exactly one ${type}, found ${found.length}`);
  const [id, resource] = found[0] as [string, Resources[string]];
  return { id, properties: resource.Properties ?? {} };
}

/** Logical id of the resource whose construct path ends with `pathSuffix`. */
export function logicalIdOf(template: Template, type: string, pathSuffix: string): string {
  const found = Object.entries(
    template.findResources(type) as Record<string, { Metadata?: Record<string, string> }>,
  );
  const match = found.filter(([, resource]) => resource.Metadata?.['aws:cdk:path']?.endsWith(pathSuffix));
  if (match.length !== 1) {
    throw new Error(`expected one ${type} at …${pathSuffix}, found ${match.length}`);
  }
  return (match[0] as [string, unknown])[0];
}

/** An IAM StringLike pattern as a regular expression (`*` any run of characters, `?` one). */
export function stringLike(pattern: string): RegExp {
  const body = pattern
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .replace(/\*/g, '.*')
    .replace(/\?/g, '.');
  return new RegExp(`^${body}$`);
}

/** What the pseudo parameters and resources resolve to in `resolveIntrinsics`. */
export interface DeployedValues {
  readonly pseudo?: Readonly<Record<string, string>>;
  /** `Ref` of a resource (default `<ref:LogicalId>`). */
  readonly ref?: (logicalId: string) => string;
}

const DEFAULT_PSEUDO: Record<string, string> = {
  'AWS::StackName': 'Test',
  'AWS::StackId':
    'arn:aws:cloudformation:eu-west-1:111122223333:stack/Test/0f3e1c2a-1111-4a5b-9c8d-0123456789ab',
  'AWS::Region': 'eu-west-1',
  'AWS::AccountId': '111122223333',
  'AWS::Partition': 'aws',
  'AWS::URLSuffix': 'amazonaws.com',
};

/**
 * The value CloudFormation would deploy for a template fragment: Ref (pseudo parameters and
 * resources), Fn::GetAtt (as `<LogicalId.Attribute>`), Fn::Join, Fn::Select and Fn::Split, so that
 * a test can read a configuration or a name the way AWS will see it.
 */
export function resolveIntrinsics(value: unknown, deployed: DeployedValues = {}): unknown {
  const pseudo = { ...DEFAULT_PSEUDO, ...deployed.pseudo };
  const resolve = (item: unknown): unknown => {
    if (Array.isArray(item)) return item.map(resolve);
    if (typeof item !== 'object' || item === null) return item;
    const entries = Object.entries(item as Record<string, unknown>);
    const [key, argument] = entries[0] ?? [];
    if (entries.length === 1 && key === 'Ref') {
      const name = String(argument);
      return pseudo[name] ?? (deployed.ref ? deployed.ref(name) : `<ref:${name}>`);
    }
    if (entries.length === 1 && key === 'Fn::GetAtt') return `<${(argument as string[]).join('.')}>`;
    if (entries.length === 1 && key === 'Fn::Join') {
      const [separator, parts] = argument as [string, unknown[]];
      return (resolve(parts) as unknown[]).map(String).join(separator);
    }
    if (entries.length === 1 && key === 'Fn::Select') {
      const [index, list] = resolve(argument) as [string | number, unknown[]];
      return list[Number(index)];
    }
    if (entries.length === 1 && key === 'Fn::Split') {
      const [separator, text] = resolve(argument) as [string, string];
      return text.split(separator);
    }
    if (entries.length === 1 && key?.startsWith('Fn::')) throw new Error(`cannot resolve ${key}`);
    return Object.fromEntries(entries.map(([name, inner]) => [name, resolve(inner)]));
  };
  return resolve(value);
}
