import { z } from 'zod';
import { type Policy, readSignals } from '../plan/index.js';
import { readDiagnostics } from '../workflow/assess.js';
import { parseWith, WorkflowIncidentSchema } from '../workflow/incident.js';
import { allowanceFindings } from './counters.js';
import {
  applyEniTimeouts,
  ENI_TIMEOUTS_DOCUMENT,
  type EniStepContext,
  rollbackEniTimeouts,
} from './eni-change.js';
import { describeNetwork, type NetworkFacts, type OptInTag } from './network.js';

/**
 * The workflow's EC2 steps, behind one Lambda function (`network`), chosen by `operation`:
 *
 * - `describe` ("Describe the network interfaces", after the first diagnostics): the instance's
 *   ENIs, their timeouts and which flows they track, but only when the diagnostics show the
 *   allowance exhausted or low, or the incident is about it; otherwise a reason and no EC2 call.
 * - `describe-after` ("Describe the network interfaces after the soak"): the same, only when ENI
 *   timeouts were changed, so that verification sees the values EC2 has now.
 * - `apply` / `rollback`: one eni-timeouts action of the apply or rollback Map (eni-change.ts).
 */

export const NETWORK_OPERATIONS = ['describe', 'describe-after', 'apply', 'rollback'] as const;
export type NetworkOperation = (typeof NETWORK_OPERATIONS)[number];

export interface NetworkStepContext extends EniStepContext {
  readonly optIn: OptInTag;
  readonly policy: Policy;
}

const StepSchema = z.looseObject({ operation: z.enum(NETWORK_OPERATIONS) });
const DescribeSchema = z.looseObject({ incident: z.unknown(), diagnostics: z.unknown() });
const DescribeAfterSchema = z.looseObject({
  incident: z.unknown(),
  gate: z.looseObject({ toApply: z.array(z.looseObject({ document: z.string() })) }),
});
const ChangeSchema = z.looseObject({ block: z.unknown() });

export async function runNetworkStep(payload: unknown, context: NetworkStepContext): Promise<unknown> {
  const { operation } = parseWith(StepSchema, payload, 'the network step input');
  switch (operation) {
    case 'describe':
      return describeBefore(payload, context);
    case 'describe-after':
      return describeAfter(payload, context);
    case 'apply':
      return applyEniTimeouts(parseWith(ChangeSchema, payload, 'the ENI change input').block, context);
    case 'rollback':
      return rollbackEniTimeouts(parseWith(ChangeSchema, payload, 'the ENI rollback input').block, context);
  }
}

async function describeBefore(payload: unknown, context: NetworkStepContext): Promise<NetworkFacts> {
  const input = parseWith(DescribeSchema, payload, 'the describe input');
  const incident = parseWith(WorkflowIncidentSchema, input.incident, 'the incident');
  if (incident.instanceId === null) return { described: false, reason: 'the host is not an EC2 instance' };
  const report = readDiagnostics(input.diagnostics, 'before');
  if (report.ena.length === 0 && incident.kind !== 'ec2-allowance') {
    return {
      described: false,
      reason:
        'the diagnostics found no ENA allowance counters (not an ENA interface, or a driver older than 2.2.10), so EC2 was not asked',
    };
  }
  const findings = allowanceFindings(readSignals(report).allowance, {
    lowAvailable: context.policy.allowance.lowAvailable,
    maxExceededPerSecond: 0,
  });
  if (findings.length === 0 && incident.kind !== 'ec2-allowance') {
    return {
      described: false,
      reason: `the ENA allowance counters were quiet during the diagnostics (${report.ena.map((entry) => entry.interface).join(', ')}): EC2's connection tracking is not involved, so EC2 was not asked`,
    };
  }
  return describeNetwork(context.ec2, incident.instanceId, context.optIn);
}

async function describeAfter(payload: unknown, context: NetworkStepContext): Promise<NetworkFacts> {
  const input = parseWith(DescribeAfterSchema, payload, 'the describe-after input');
  const incident = parseWith(WorkflowIncidentSchema, input.incident, 'the incident');
  const changed = input.gate.toApply.some((action) => action.document === ENI_TIMEOUTS_DOCUMENT);
  if (!changed || incident.instanceId === null)
    return { described: false, reason: 'no ENI timeouts were changed' };
  return describeNetwork(context.ec2, incident.instanceId, context.optIn);
}
