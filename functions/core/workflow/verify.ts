import { z } from 'zod';
import { readNetworkFacts, TimeoutsSchema } from '../allowance/network.js';
import { HOST_ACTION_KINDS, type Policy, resolvePolicy, verifyRemediation } from '../plan/index.js';
import type { VerificationCheck, VerificationScope } from '../plan/verify.js';
import { readDiagnostics } from './assess.js';
import { parseWith } from './incident.js';

export interface Verification {
  /** The fix held: every check passed (the workflow rolls back otherwise). */
  readonly held: boolean;
  readonly reasons: readonly string[];
  readonly checks: readonly VerificationCheck[];
}

const VerifyInputSchema = z.looseObject({
  assessment: z.looseObject({
    plan: z.looseObject({
      policy: z.unknown(),
      actions: z
        .array(
          z.looseObject({
            id: z.string(),
            kind: z.string(),
            eni: z.looseObject({ networkInterfaceId: z.string(), interface: z.string() }).optional(),
          }),
        )
        .default([]),
    }),
  }),
  gate: z
    .looseObject({ toApply: z.array(z.looseObject({ id: z.string(), kind: z.string() })).default([]) })
    .optional(),
  applied: z.array(z.unknown()).default([]),
  before: z.unknown(),
  after: z.unknown(),
  networkAfter: z.unknown().optional(),
});

/** The values an eni-timeouts change reports it set (its result's stdout, see allowance/eni-change.ts). */
const AppliedResultSchema = z.looseObject({
  invocation: z.looseObject({ stdout: z.string() }),
});
const AppliedBodySchema = z.looseObject({ networkInterfaceId: z.string(), applied: TimeoutsSchema });

function appliedTimeouts(applied: readonly unknown[]): Map<string, z.infer<typeof TimeoutsSchema>> {
  const values = new Map<string, z.infer<typeof TimeoutsSchema>>();
  for (const item of applied) {
    const result = AppliedResultSchema.safeParse(item);
    if (!result.success) continue;
    let body: unknown;
    try {
      body = JSON.parse(result.data.invocation.stdout);
    } catch {
      continue;
    }
    const parsed = AppliedBodySchema.safeParse(body);
    if (parsed.success) values.set(parsed.data.networkInterfaceId, parsed.data.applied);
  }
  return values;
}

/**
 * "Verify the fix": the diagnostics after the soak against those before the change, with the
 * policy the plan was made under (so thresholds cannot drift between planning and verifying).
 * What is checked follows what was applied: the kernel table's checks after a host change, the
 * EC2 allowance counter's rate (and the ENI timeouts EC2 reports) after an ENI change.
 */
export function verifyFix(payload: unknown): Verification {
  const input = parseWith(VerifyInputSchema, payload, 'the verify input');
  const before = readDiagnostics(input.before, 'before');
  const after = readDiagnostics(input.after, 'after');
  const policy = resolvePolicy(input.assessment.plan.policy as Policy);
  // Without the gate (older executions) everything in the plan counts as applied.
  const appliedIds = new Set(
    (input.gate?.toApply ?? input.assessment.plan.actions).map((action) => action.id),
  );
  const applied = input.assessment.plan.actions.filter((action) => appliedIds.has(action.id));
  const values = appliedTimeouts(input.applied);
  const networkAfter = readNetworkFacts(input.networkAfter);
  const scope: VerificationScope = {
    kernel: applied.some((action) => (HOST_ACTION_KINDS as readonly string[]).includes(action.kind)),
    enis: applied.flatMap((action) =>
      action.kind === 'eni-timeouts' && action.eni
        ? [
            {
              networkInterfaceId: action.eni.networkInterfaceId,
              interface: action.eni.interface,
              applied: values.get(action.eni.networkInterfaceId) ?? null,
            },
          ]
        : [],
    ),
    networkAfter: networkAfter.facts,
    networkAfterProblem: networkAfter.problem,
  };
  const result = verifyRemediation(before, after, policy, scope);
  return { held: result.passed, reasons: result.reasons, checks: result.checks };
}
