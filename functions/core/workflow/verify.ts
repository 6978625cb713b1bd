import { z } from 'zod';
import { type Policy, resolvePolicy, verifyRemediation } from '../plan/index.js';
import type { VerificationCheck } from '../plan/verify.js';
import { readDiagnostics } from './assess.js';
import { parseWith } from './incident.js';

export interface Verification {
  /** The fix held: every check passed (the workflow rolls back otherwise). */
  readonly held: boolean;
  readonly reasons: readonly string[];
  readonly checks: readonly VerificationCheck[];
}

const VerifyInputSchema = z.looseObject({
  assessment: z.looseObject({ plan: z.looseObject({ policy: z.unknown() }) }),
  before: z.unknown(),
  after: z.unknown(),
});

/**
 * "Verify the fix": the diagnostics after the soak against those before the change, with the
 * policy the plan was made under (so thresholds cannot drift between planning and verifying).
 */
export function verifyFix(payload: unknown): Verification {
  const input = parseWith(VerifyInputSchema, payload, 'the verify input');
  const before = readDiagnostics(input.before, 'before');
  const after = readDiagnostics(input.after, 'after');
  const policy = resolvePolicy(input.assessment.plan.policy as Policy);
  const result = verifyRemediation(before, after, policy);
  return { held: result.passed, reasons: result.reasons, checks: result.checks };
}
