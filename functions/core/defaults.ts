/**
 * The defaults the CDK construct applies to the props it is not given, in one place, for the
 * construct (infra/conntrack-responder.ts resolveProps, the workflow definition) and for the
 * functions that fall back on the same value when their environment leaves a setting out. The
 * construct's prop documentation (@default) states these values; keep them together.
 *
 * Defaults that belong to one concern stay beside that concern's rules and are used from there:
 * the guardrails (DEFAULT_GUARDRAILS), the forecast (DEFAULT_FORECAST_SETTINGS), the instance id
 * pattern (DEFAULT_INSTANCE_ID_PATTERN), the AWS SDK retries (DEFAULT_SDK_RETRY, an adapter).
 */

import type { ResponseMode } from './incident/settings.js';

export const DEFAULTS = {
  /** A repeat within this many minutes of an incident's opening adds to it (prop cooldownMinutes). */
  cooldownMinutes: 30,
  /** The most the workflow may do on its own unless a host's mode tag says otherwise. */
  defaultMode: 'approve' satisfies ResponseMode,
  /** Days an evidence bundle is kept (S3 lifecycle, and Object Lock's retention when on). */
  evidenceRetentionDays: 365,
  /** Days an incident record is kept in the table (DynamoDB TTL). */
  incidentRetentionDays: 90,
  /** Longest an incident workflow execution may run (and so the longest a remediation slot is held). */
  workflowTimeoutHours: 4,
  /** How long a change waits for a person's decision. */
  approvalTimeoutMinutes: 30,
  /** Seconds between the change and its verification. */
  soakSeconds: 120,
  /** Seconds between two host samples (the host-sampler association's rate). */
  hostSamplerIntervalSeconds: 60,
  /** collect-diagnostics: seconds between the two counter samples, and the N of every top-N list. */
  diagnostics: { sampleSeconds: 3, topN: 10 },
} as const;

/**
 * The one tag that says "conntrack-responder manages this instance" (props `managedInstanceTagKey`
 * and `managedInstanceTagValue`). Everything the stack applies to instances on its own initiative
 * (State Manager associations) selects them by it, so an instance without it is never touched by
 * one.
 */
export interface ManagedInstanceTag {
  readonly key: string;
  readonly value: string;
}

export const DEFAULT_MANAGED_INSTANCE_TAG: ManagedInstanceTag = {
  key: 'conntrack-responder:managed',
  value: 'true',
};
