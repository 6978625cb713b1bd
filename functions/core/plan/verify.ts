import type { DiagnosticsReport } from '../diagnostics/report.js';
import type { Policy } from './policy.js';
import { percent, readSignals } from './signals.js';

export interface VerificationCheck {
  readonly name: 'same-host' | 'drops-stopped' | 'usage-below-threshold' | 'limit-kept' | 'listeners-kept';
  readonly passed: boolean;
  readonly detail: string;
}

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
