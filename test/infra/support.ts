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
