import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { App } from 'aws-cdk-lib';
import { appSettingsFromContext } from '../../../infra/context.js';
import { ConntrackResponderStack } from '../../../infra/stack.js';
import type { AslMachine } from './asl.js';
import { type CfnTemplate, onlyStateMachine } from './template.js';

const CDK_JSON = new URL('../../../cdk.json', import.meta.url);

/**
 * The incident workflow's definition exactly as `cdk synth` would deploy it: the app's stack is
 * synthesized in-process with cdk.json's context (feature flags and settings), bundling disabled
 * so that no function code is built, and the state machine's DefinitionString is read back from
 * the template.
 */
export async function synthesizedWorkflowDefinition(
  extraContext: Record<string, unknown> = {},
): Promise<AslMachine> {
  const context = { ...JSON.parse(await readFile(CDK_JSON, 'utf8')).context, ...extraContext };
  const outdir = await mkdtemp(join(tmpdir(), 'conntrack-responder-synth-'));
  try {
    // The template's CloudFormation validation is `cdk synth`'s job; here only the definition is read.
    const app = new App({
      outdir,
      builtinCloudFormationValidation: false,
      context: { ...context, 'aws:cdk:bundling-stacks': [] },
    });
    const settings = appSettingsFromContext((key) => app.node.tryGetContext(key));
    const stack = new ConntrackResponderStack(app, settings.stackName, { responder: settings.responder });
    const template = app.synth().getStackArtifact(stack.artifactId).template as CfnTemplate;
    return onlyStateMachine(template).definition as unknown as AslMachine;
  } finally {
    await rm(outdir, { recursive: true, force: true });
  }
}
