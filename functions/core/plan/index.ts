export { describePort, hostWideNotrackBlockers, selectNotrackPorts } from './notrack.js';
export { assertDocumentParameters, type DocumentName } from './parameters.js';
export { planRemediation } from './plan.js';
export {
  ACTION_KINDS,
  ACTION_MODES,
  type ActionKind,
  type ActionMode,
  DEFAULT_POLICY,
  HOST_ACTION_KINDS,
  type Policy,
  type PolicyOverrides,
  PolicyOverridesSchema,
  resolvePolicy,
  withMode,
} from './policy.js';
export { readSignals, type Signals } from './signals.js';
export { kubeProxyConntrackMax, type SizingResult, sizeConntrackTable } from './sizing.js';
export { KERNEL_DEFAULT_TIMEOUTS, planTimeouts } from './timeouts.js';
export type * from './types.js';
export { PLAN_SCHEMA_VERSION } from './types.js';
export { type VerificationResult, type VerificationScope, verifyRemediation } from './verify.js';
