import * as ssm from 'aws-cdk-lib/aws-ssm';
import { Construct } from 'constructs';
import type { ManagedInstanceTag } from '../../functions/core/defaults.js';
import { managedInstanceTargets } from '../managed-instances.js';

export interface HostSamplerProps {
  /** The host-sampler Command document (RunbookDocuments), installed by this association. */
  readonly document: ssm.CfnDocument;
  /** Only instances with this tag get the sampler. */
  readonly tag: ManagedInstanceTag;
  /** Seconds between two samples on each host (1 to 3600). */
  readonly intervalSeconds: number;
  /** Name of the association in State Manager. */
  readonly associationName: string;
}

/** Every day State Manager runs the install again: it changes nothing unless the sampler was removed or changed. */
export const HOST_SAMPLER_SCHEDULE = 'rate(1 day)';

export const HOST_SAMPLER_INTERVAL_RANGE = { min: 1, max: 3600 } as const;

/**
 * The host sampler on every managed instance: a State Manager association of the host-sampler
 * document (Action=install) with the opt-in tag as its only target, so it runs on instances
 * tagged now and later, and again daily to put back a sampler someone removed (installing is
 * idempotent: https://docs.aws.amazon.com/systems-manager/latest/userguide/state-manager-about.html).
 * Removing the tag or this association does not uninstall anything: run the document with
 * Action=remove for that (runbooks/conntrack-table-full.md).
 */
export class HostSampler extends Construct {
  readonly association: ssm.CfnAssociation;

  constructor(scope: Construct, id: string, props: HostSamplerProps) {
    super(scope, id);
    this.association = new ssm.CfnAssociation(this, 'Association', {
      // The document's Ref is its name, so the association waits for the document.
      name: props.document.ref,
      associationName: props.associationName,
      targets: managedInstanceTargets(props.tag).map((target) => ({
        key: target.key,
        values: target.values,
      })),
      parameters: { Action: ['install'], IntervalSeconds: [String(props.intervalSeconds)] },
      scheduleExpression: HOST_SAMPLER_SCHEDULE,
      // A host that refuses (no systemd) must not stop the others: failures show in the
      // association's per-instance status instead.
      maxErrors: '100%',
      maxConcurrency: '20%',
      complianceSeverity: 'LOW',
    });
  }
}
