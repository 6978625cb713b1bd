import { Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks, ServerlessChecks } from 'cdk-nag';
import type { Construct } from 'constructs';

/**
 * The cdk-nag packs every synth runs. A finding fails the synth unless it is acknowledged next to
 * the construct it concerns, with a one-sentence reason.
 */
export function policyPacks(scope?: Construct) {
  return [new AwsSolutionsChecks(scope, { verbose: true }), new ServerlessChecks(scope, { verbose: true })];
}

export function addPolicyChecks(app: Construct): void {
  Validations.of(app).addPlugins(...policyPacks(app));
}
