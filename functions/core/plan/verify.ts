import {
  ENI_TIMEOUT_FIELDS,
  type EniTimeouts,
  formatTimeouts,
  sameTimeouts,
} from '../allowance/eni-timeouts.js';
import type { NetworkFacts } from '../allowance/network.js';
import type { DiagnosticsReport } from '../diagnostics/report.js';
import type { Policy } from './policy.js';
import { percent, readSignals } from './signals.js';

export interface VerificationCheck {
  readonly name:
    | 'same-host'
    | 'drops-stopped'
    | 'usage-below-threshold'
    | 'limit-kept'
    | 'listeners-kept'
    | 'allowance-stopped'
    | 'eni-timeouts-kept';
  readonly passed: boolean;
  readonly detail: string;
}

/** What was changed, and so what must be checked. */
export interface VerificationScope {
  /** Host changes were applied (limits, timeouts, NOTRACK): the kernel table's checks apply. */
  readonly kernel: boolean;
  /** ENIs whose timeouts were changed, with their guest interface and the values set. */
  readonly enis: readonly {
    readonly networkInterfaceId: string;
    readonly interface: string;
    readonly applied: EniTimeouts | null;
  }[];
  /** EC2's view of the ENIs after the soak (the workflow's second describe step). */
  readonly networkAfter?: NetworkFacts | null;
  /** Why EC2's view after the soak is missing, when it is. */
  readonly networkAfterProblem?: string | null;
}

const KERNEL_ONLY: VerificationScope = { kernel: true, enis: [] };

export interface VerificationResult {
  readonly passed: boolean;
  /** The failed checks' details when it failed; every check's detail when it passed. */
  readonly reasons: readonly string[];
  readonly checks: readonly VerificationCheck[];
}

/**
 * Decides, from the diagnostics taken before and after the soak period, whether the remediation
 * worked. The "after" report's own two samples say whether drops still happen now; comparing it
 * with "before" catches a limit put back by someone else and a service that went away.
 */
export function verifyRemediation(
  before: DiagnosticsReport,
  after: DiagnosticsReport,
  policy: Policy,
  scope: VerificationScope = KERNEL_ONLY,
): VerificationResult {
  const checks: VerificationCheck[] = [];
  const b = readSignals(before);
  const a = readSignals(after);

  const sameHost =
    before.host.hostname === after.host.hostname && before.host.netnsInode === after.host.netnsInode;
  checks.push({
    name: 'same-host',
    passed: sameHost,
    detail: sameHost
      ? `both reports come from ${after.host.hostname}${after.host.netnsInode ? ` netns ${after.host.netnsInode}` : ''}`
      : `the reports come from different hosts or namespaces (${before.host.hostname}/${before.host.netnsInode} before, ${after.host.hostname}/${after.host.netnsInode} after)`,
  });

  if (scope.kernel) kernelChecks(checks, b, a, policy);
  if (scope.enis.length > 0) allowanceChecks(checks, a, policy, scope);

  const key = (listener: { protocol: string; port: number }) => `${listener.protocol}/${listener.port}`;
  const afterListeners = new Set(after.listeners.map(key));
  const gone = [...new Set(before.listeners.map(key))].filter((listener) => !afterListeners.has(listener));
  checks.push({
    name: 'listeners-kept',
    passed: gone.length === 0,
    detail:
      gone.length === 0
        ? `all ${new Set(before.listeners.map(key)).size} listening ports are still there`
        : `listening ports disappeared during the soak: ${gone.join(', ')}`,
  });

  const failed = checks.filter((check) => !check.passed);
  return {
    passed: failed.length === 0,
    reasons: (failed.length > 0 ? failed : checks).map((check) => check.detail),
    checks,
  };
}

type Signals = ReturnType<typeof readSignals>;

function kernelChecks(checks: VerificationCheck[], b: Signals, a: Signals, policy: Policy): void {
  if (!a.loaded) {
    checks.push({
      name: 'drops-stopped',
      passed: false,
      detail:
        'nf_conntrack is not loaded in the after report: the module was unloaded or the report is wrong',
    });
  } else if (a.drop === null) {
    checks.push({
      name: 'drops-stopped',
      passed: false,
      detail: 'the after report has no usable drop counter, so drops cannot be shown to have stopped',
    });
  } else {
    const allowed = policy.verify.maxDropsPerSecond * a.intervalSeconds;
    const rate = a.drop / a.intervalSeconds;
    checks.push({
      name: 'drops-stopped',
      passed: a.drop <= allowed,
      detail:
        a.drop <= allowed
          ? `the drop counter rose by ${a.drop} in ${a.intervalSeconds} s (allowed ${allowed})`
          : `packets are still dropped: the drop counter rose by ${a.drop} in ${a.intervalSeconds} s (${rate.toFixed(1)}/s, allowed ${policy.verify.maxDropsPerSecond}/s)`,
    });
  }

  const threshold = policy.verify.maxUsageRatio;
  checks.push({
    name: 'usage-below-threshold',
    passed: a.usage !== null && a.usage < threshold,
    detail:
      a.usage === null
        ? 'count or limit is missing from the after report'
        : `the table is at ${percent(a.usage)} of its limit (${a.count} of ${a.max}); it must be below ${percent(threshold)}`,
  });

  if (b.max !== null) {
    const kept = a.max !== null && a.max >= b.max;
    checks.push({
      name: 'limit-kept',
      passed: kept,
      detail: kept
        ? `nf_conntrack_max is ${a.max} (was ${b.max})`
        : `nf_conntrack_max fell from ${b.max} to ${a.max ?? 'unknown'} during the soak: something else (kube-proxy, a sysctl.d file) rewrote it`,
    });
  }
}

/**
 * After ENI timeouts were shortened: conntrack_allowance_exceeded must have stopped rising on each
 * changed ENI's interface (the after report's two samples; a driver reset counts from zero), and
 * EC2 must still report the values that were set (nothing put them back during the soak).
 */
function allowanceChecks(
  checks: VerificationCheck[],
  a: Signals,
  policy: Policy,
  scope: VerificationScope,
): void {
  const maxRate = policy.verify.maxAllowanceExceededPerSecond;
  for (const eni of scope.enis) {
    const rate = a.allowance.find((item) => item.name === eni.interface);
    if (rate === undefined || rate.exceededPerSecond === null) {
      checks.push({
        name: 'allowance-stopped',
        passed: false,
        detail: `the after report has no conntrack_allowance_exceeded samples for ${eni.interface} (${eni.networkInterfaceId}), so the drops cannot be shown to have stopped`,
      });
      continue;
    }
    const allowed = maxRate * rate.coveredSeconds;
    const passed = rate.exceededIncrease <= allowed;
    checks.push({
      name: 'allowance-stopped',
      passed,
      detail: passed
        ? `conntrack_allowance_exceeded on ${eni.interface} (${eni.networkInterfaceId}) rose by ${rate.exceededIncrease} in ${rate.coveredSeconds} s (allowed ${allowed})`
        : `EC2 still drops packets: conntrack_allowance_exceeded on ${eni.interface} (${eni.networkInterfaceId}) rose by ${rate.exceededIncrease} in ${rate.coveredSeconds} s (${(rate.exceededPerSecond ?? 0).toFixed(1)}/s, allowed ${maxRate}/s)`,
    });
  }
  const after = scope.networkAfter?.described === true ? scope.networkAfter : null;
  for (const eni of scope.enis) {
    if (eni.applied === null) continue;
    const facts = after?.interfaces.find((item) => item.networkInterfaceId === eni.networkInterfaceId);
    if (facts === undefined) {
      // The counter rate decides; an unreadable EC2 view alone is no reason to undo a fix that works.
      checks.push({
        name: 'eni-timeouts-kept',
        passed: true,
        detail: `the timeouts of ${eni.networkInterfaceId} could not be read back after the soak (${scope.networkAfterProblem ?? (scope.networkAfter?.described === false ? scope.networkAfter.reason : 'not in EC2’s answer')}); the counter rate decides`,
      });
      continue;
    }
    const values = ENI_TIMEOUT_FIELDS.map((field) => facts.timeouts[field].value);
    const now = values.every((value) => value !== null)
      ? { tcpEstablished: values[0] as number, udpStream: values[1] as number, udp: values[2] as number }
      : null;
    const kept = now !== null && sameTimeouts(now, eni.applied);
    checks.push({
      name: 'eni-timeouts-kept',
      passed: kept,
      detail: kept
        ? `${eni.networkInterfaceId} still has ${formatTimeouts(eni.applied)}`
        : `${eni.networkInterfaceId} has ${now ? formatTimeouts(now) : 'unreadable timeouts'}, not the ${formatTimeouts(eni.applied)} that were set: something else changed them during the soak`,
    });
  }
}
