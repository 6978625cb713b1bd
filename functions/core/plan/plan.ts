import { createHash } from 'node:crypto';
import type { AllowanceFinding } from '../allowance/counters.js';
import type { DiagnosticsReport } from '../diagnostics/report.js';
import { formatDuration } from '../forecast/forecast.js';
import {
  diagnoseTables,
  type Ec2Diagnosis,
  ec2Findings,
  type KernelTableState,
  planEc2,
  type TablesDiagnosis,
} from './ec2.js';
import { type NearFullReading, readNearFull } from './near-full.js';
import { describePort, type PortCandidate, selectNotrackPorts, untrackedAcceptedFor } from './notrack.js';
import { assertDocumentParameters, CHANGE_ID_PATTERN, type DocumentName } from './parameters.js';
import type { ActionKind, Policy } from './policy.js';
import { mebibytes, percent, readSignals, type Signals } from './signals.js';
import { type SizingResult, sizeConntrackTable } from './sizing.js';
import { formatTimeoutsParameter, planTimeouts, type TimeoutChange } from './timeouts.js';
import {
  type Classification,
  PLAN_SCHEMA_VERSION,
  type Plan,
  type PlanInput,
  type PlannedAction,
  type Recommendation,
  type Refusal,
  type RiskLevel,
} from './types.js';

/** A state holding less than this share of the table is not worth changing a global timeout for. */
const MIN_STATE_SHARE = 0.05;
/** node-mixin's NodeHighNumberConntrackEntriesUsed threshold: worth a word even when nothing is wrong. */
const WATCH_USAGE = 0.75;
/** A hash resize above this many live entries stalls packet processing long enough to mention. */
const LARGE_RESIZE_ENTRIES = 1_000_000;

/**
 * Turns a diagnostics report into a plan: what is wrong, what to change on the host (exact
 * document parameters), what to change elsewhere, and what was considered and refused. Pure:
 * the same input always gives the same plan.
 */
export function planRemediation(input: PlanInput): Plan {
  return new Planner(input).plan();
}

class Planner {
  private readonly report: DiagnosticsReport;
  private readonly policy: Policy;
  private readonly signals: Signals;
  private readonly changeIdPrefix: string;
  private readonly confirmation: string[] = [];
  private readonly actions: PlannedAction[] = [];
  private readonly recommendations: Recommendation[] = [];
  private readonly refusals: Refusal[] = [];
  private sizing: SizingResult | null = null;
  private readonly findings: readonly AllowanceFinding[];
  private tables: TablesDiagnosis | undefined;
  private ec2: Ec2Diagnosis | null = null;

  constructor(private readonly input: PlanInput) {
    this.report = input.before;
    this.policy = input.policy;
    this.signals = readSignals(input.before);
    this.changeIdPrefix = changeIdPrefixFor(input);
    this.findings = ec2Findings(this.signals, this.policy);
  }

  plan(): Plan {
    const s = this.signals;
    const { alert } = this.input;
    const interval = `${s.intervalSeconds} s`;

    if (alert.netns !== null && s.netnsInode !== null && alert.netns !== s.netnsInode) {
      return this.notConfirmed(
        `the kernel named network namespace ${alert.netns}, but the diagnostics ran in ${s.netnsInode}: these counters say nothing about the namespace in the log line`,
      );
    }
    const ec2Trouble = this.findings.length > 0;
    if (!s.loaded) {
      this.tables = diagnoseTables(
        s,
        this.findings,
        'not-loaded',
        'nf_conntrack is not loaded, so the guest tracks nothing',
      );
      if (ec2Trouble) return this.ec2Allowance();
      if (alert.kind === 'ec2-allowance') return this.notConfirmed(this.allowanceQuiet());
      return this.notConfirmed(
        'nf_conntrack is not loaded on this host: no current conntrack table can be full (the log line is stale, from another host, or forged)',
      );
    }

    this.describeCounters(interval);
    const tableFullDrops = s.tableFullDrops ?? 0;
    const nearFull = s.usage !== null && s.usage >= this.policy.nearFullRatio;
    const kernelFull = tableFullDrops > 0 || nearFull;
    const expectFull =
      s.expectationsInUse !== null &&
      s.expectMax !== null &&
      s.expectMax > 0 &&
      s.expectationsInUse >= this.policy.nearFullRatio * s.expectMax;
    const chainsTooLong = (s.chainTooLong ?? 0) > 0;
    const races = (s.insertFailed ?? 0) > 0;
    const kernelState: KernelTableState = kernelFull ? 'full' : 'not-full';
    this.tables = diagnoseTables(
      s,
      this.findings,
      kernelState,
      kernelFull
        ? `the kernel table is full (${this.countVsMax()}, ${tableFullDrops} packets dropped for lack of an entry in ${interval})`
        : `the kernel table is not full (${this.countVsMax()}, no table-full drops in ${interval})`,
    );

    // Both tables can be in trouble at once (a busy NAT or proxy host): the EC2 part is planned
    // beside whatever the kernel needs.
    if (ec2Trouble && (kernelFull || expectFull || chainsTooLong || races)) this.addEc2(true);
    if (expectFull && (kernelFull || chainsTooLong)) this.recommendExpectations();

    // A forecast (near-full) incident: drops already mean the reactive plan; otherwise the host's
    // own counters must show the table filling (functions/core/plan/near-full.ts).
    if (alert.kind === 'near-full' && tableFullDrops === 0) {
      const reading = readNearFull(this.report, s, alert, this.policy);
      if (reading.confirmed) return this.nearFull(reading);
      if (!expectFull && !chainsTooLong && !races && !ec2Trouble) {
        return this.notConfirmed(`the table is not filling on the host: ${reading.statements.join('; ')}`);
      }
    }
    if (kernelFull) return this.tableFull(tableFullDrops, nearFull);
    if (expectFull) return this.expectTableFull();
    if (chainsTooLong) return this.hashChainsTooLong();
    if (races) return this.insertRaces();
    if (ec2Trouble) return this.ec2Allowance();
    if (alert.kind === 'ec2-allowance') return this.notConfirmed(this.allowanceQuiet());
    if (alert.kind === 'expect-table-full' && s.expectationsInUse === null) {
      return this.notConfirmed(
        'the report has no expectation counters (expect_create/expect_delete), so an "expectation table full" line cannot be confirmed',
      );
    }
    return this.notConfirmed(
      `nothing is being dropped now: the drop counter did not rise in ${interval} and the table is at ${percent(s.usage)} of its limit (below ${percent(this.policy.nearFullRatio)}); the log line is stale (the burst is over) or forged`,
    );
  }

  // ---- classifications -------------------------------------------------------------------------

  private tableFull(tableFullDrops: number, nearFull: boolean): Plan {
    const s = this.signals;
    this.confirmation.push(
      tableFullDrops > 0
        ? `the table is full: ${tableFullDrops} packets dropped for lack of a free entry in ${s.intervalSeconds} s`
        : `the table is at ${percent(s.usage)} of its limit (≥ ${percent(this.policy.nearFullRatio)}), where new flows start being dropped`,
    );
    if (!nearFull && s.usage !== null) {
      this.confirmation.push(
        `the count read ${percent(s.usage)} of the limit while drops happened: entries expire between samples, so the table sits at its limit during bursts`,
      );
    }

    const timeouts = planTimeouts(this.report, {
      dominantStateShare: this.policy.dominantStateShare,
      minStateShare: MIN_STATE_SHARE,
      natInUse: this.natInUse(),
    });
    const raise = this.planRaise();
    const timeoutAction = this.planTimeoutAction(timeouts.changes, raise);
    this.planNotrack(timeoutAction !== undefined ? timeouts.projectedEntries : null);
    this.recommendDurableFixes(
      raise?.parameters.MaxEntries ?? null,
      timeouts.changes,
      raise?.parameters.HashSize,
    );
    this.recommendApplicationFixes();
    return this.finish(
      'table-full',
      true,
      `The conntrack table is full (${this.countVsMax()}) and new flows are dropped. ${this.actionSummary()}`,
    );
  }

  private nearFull(reading: NearFullReading): Plan {
    const s = this.signals;
    this.confirmation.push(...reading.statements);
    const timeouts = planTimeouts(this.report, {
      dominantStateShare: this.policy.dominantStateShare,
      minStateShare: MIN_STATE_SHARE,
      natInUse: this.natInUse(),
    });
    // Shorter timeouts are preferred where short-lived states dominate: when the policy lets them
    // run on their own and they keep the predicted demand under the verification ceiling, no
    // raise is planned at all.
    const entries = Math.max(s.count ?? 0, this.report.table.entries);
    const afterTimeouts =
      timeouts.changes.length > 0 && entries > 0 && reading.predictedEntries !== null
        ? Math.round((reading.predictedEntries * timeouts.projectedEntries) / entries)
        : null;
    const ceiling = s.max === null ? null : this.policy.verify.maxUsageRatio * s.max;
    const timeoutsSuffice =
      afterTimeouts !== null &&
      ceiling !== null &&
      afterTimeouts <= ceiling &&
      this.policy.modes['shorten-timeouts'] === 'auto';
    let raise: PlannedAction | undefined;
    if (timeoutsSuffice) {
      this.refuse(
        'raise nf_conntrack_max',
        `not needed: with the shorter timeouts the predicted demand of about ${reading.predictedEntries} entries becomes about ${afterTimeouts}, under ${percent(this.policy.verify.maxUsageRatio)} of the current limit ${s.max}`,
      );
    } else {
      raise = this.planRaise(reading.predictedEntries ?? undefined);
    }
    const timeoutAction = this.planTimeoutAction(timeouts.changes, raise);
    this.planNearFullNotrack(timeoutAction !== undefined ? timeouts.projectedEntries : null);
    this.recommendDurableFixes(
      raise?.parameters.MaxEntries ?? null,
      timeouts.changes,
      raise?.parameters.HashSize,
    );
    this.recommendApplicationFixes();
    const full =
      reading.secondsToFull === null
        ? ''
        : `, full in about ${formatDuration(reading.secondsToFull)} at the rate measured on the host`;
    return this.finish(
      'near-full',
      true,
      `The conntrack table is filling (${this.countVsMax()}${full}); nothing is dropped yet. ${this.actionSummary()}`,
    );
  }

  /**
   * NOTRACK is never automatic before a drop. Planned NOTRACK actions wait for a person; when every
   * other change may run on its own they are not planned at all (the whole plan would otherwise
   * wait for one decision, and the automatic relief with it): a person gets them as a
   * recommendation with the exact parameters instead.
   */
  private planNearFullNotrack(projectedAfterTimeouts: number | null): void {
    const before = this.actions.length;
    this.planNotrack(projectedAfterTimeouts);
    const notrack = this.actions.splice(before);
    if (notrack.length === 0) return;
    const othersAuto = this.actions.length > 0 && this.actions.every((action) => action.mode === 'auto');
    if (othersAuto) {
      for (const action of notrack) {
        this.refuse(
          action.title,
          'not before a drop: NOTRACK changes firewall rules and is never applied automatically while nothing is dropped, and the other changes here run on their own; it is listed as a recommendation for a person',
        );
        this.recommendations.push({
          scope: 'firewall',
          title: `For a person to decide: ${action.title}`,
          detail: `${action.reason}. Run the ${action.document} document with these parameters if the table keeps filling after the automatic changes (its risks: ${action.unsafeIf.join('; ')}).`,
          snippet: Object.entries(action.parameters)
            .map(([name, value]) => `${name}=${value}`)
            .join('\n'),
        });
      }
      return;
    }
    for (const action of notrack) {
      this.actions.push(action.mode === 'auto' ? { ...action, mode: 'approve' } : action);
    }
  }

  private expectTableFull(): Plan {
    const s = this.signals;
    this.confirmation.push(
      `the expectation table is full: about ${s.expectationsInUse} expectations in use against nf_conntrack_expect_max ${s.expectMax}`,
    );
    this.refuse(
      'raise nf_conntrack_max',
      `the main table is at ${percent(s.usage)} of its limit; expectations have their own limit (nf_conntrack_expect_max), which nf_conntrack_max does not change`,
    );
    this.refuse(
      'raise nf_conntrack_expect_max on the host',
      'no remediation document changes it (it is writable only from the initial namespace and has no rollback here): the recommendation below says how',
    );
    this.recommendExpectations();
    return this.finish(
      'expect-table-full',
      true,
      `The conntrack expectation table is full (${s.expectationsInUse} of ${s.expectMax}); connections that need a helper (FTP, SIP, …) fail. No host change is made automatically.${this.ec2Also()}`,
    );
  }

  private hashChainsTooLong(): Plan {
    const s = this.signals;
    const max = s.max;
    const buckets = s.buckets;
    this.confirmation.push(
      `${s.chainTooLong} inserts were refused in ${s.intervalSeconds} s because a hash chain grew too long (kernel ≥ 5.15 refuses chains beyond 50–80 entries), while the table is at ${percent(s.usage)}`,
    );
    this.refuse(
      'raise nf_conntrack_max',
      'the table is not full: the refused inserts come from long hash chains, which a higher limit makes longer',
    );
    if (max !== null && buckets !== null && buckets < max) {
      const hashSize = Math.ceil(max / 512) * 512;
      this.addAction({
        id: 'hash-size',
        kind: 'raise-limits',
        document: 'raise-limits',
        parameters: {
          MaxEntries: String(max),
          HashSize: String(hashSize),
          Timeouts: '',
          MemoryBudgetPercent: String(this.policy.memoryBudgetPercent),
        },
        requires: [],
        title: `Resize the conntrack hash table to ${hashSize} buckets`,
        reason: `${max} entries over ${buckets} buckets (${(max / buckets).toFixed(1)} per bucket) makes long chains likely; one bucket per entry is the kernel's own ratio since 5.15`,
        memoryCostBytes: (hashSize - buckets) * 8,
        expectedEffect:
          'average chain length falls below 2 at a full table, so inserts stop being refused for chain length',
        risk: (s.count ?? 0) > LARGE_RESIZE_ENTRIES ? 'medium' : 'low',
        unsafeIf: [
          `the resize rehashes all ${s.count ?? 'current'} entries under the conntrack locks: a short stall of packet processing`,
          'the long chains come from hash flooding (crafted traffic): more buckets help little; find the source',
        ],
      });
    } else {
      this.refuse(
        'resize the hash table',
        `the hash table already has ${buckets ?? 'an unknown number of'} buckets for a limit of ${max ?? 'unknown'}: chains this long at this ratio point at hash flooding or a kernel problem, not at the size`,
      );
      this.recommendations.push({
        scope: 'kernel',
        title: 'Investigate hash-chain overflows',
        detail:
          'Chains overflow although the hash table is sized 1:1. Look for crafted traffic (many flows differing only in ports towards one address) and check the kernel changelog for conntrack hash fixes.',
      });
    }
    return this.finish(
      'hash-chains-too-long',
      true,
      `New flows are dropped because conntrack hash chains are too long, not because the table is full (${this.countVsMax()}). ${this.actionSummary()}`,
    );
  }

  private insertRaces(): Plan {
    const s = this.signals;
    this.confirmation.push(
      `${s.insertFailed} inserts failed in ${s.intervalSeconds} s (${s.clashResolved ?? 0} clashes resolved) while the table is at ${percent(s.usage)}: packets of the same new flow raced each other to create its entry`,
    );
    this.refuse(
      'raise nf_conntrack_max',
      `the table is at ${percent(s.usage)} of its limit; a lost insert race is not a lack of space, and a larger table does not prevent it`,
    );
    this.refuse(
      'NOTRACK',
      'races are a kernel/application interaction on busy UDP flows; exempting ports from tracking is out of proportion to it',
    );
    const dns = [...this.report.table.byRemotePort, ...this.report.table.byLocalServicePort].some(
      (row) => row.protocol === 'udp' && row.port === 53,
    );
    this.recommendations.push({
      scope: 'application',
      title: dns
        ? 'Stop parallel DNS queries racing in conntrack'
        : 'Reduce parallel first packets of new UDP flows',
      detail: dns
        ? 'glibc sends the A and AAAA queries from one socket at the same moment; both packets try to create the same entry and one is dropped (a 5 s DNS stall). Add `options single-request-reopen` (or `single-request`) to /etc/resolv.conf, or run a node-local caching resolver (NodeLocal DNSCache on Kubernetes, systemd-resolved, dnsmasq) so that queries stay on the host.'
        : 'Two packets of a new UDP flow sent at the same time race to create its entry; one is dropped. Send the first packet of a flow alone, or keep long-lived sockets.',
      ...(dns ? { snippet: 'options single-request-reopen timeout:1 attempts:3' } : {}),
    });
    this.recommendations.push({
      scope: 'kernel',
      title: 'Run a kernel with current clash resolution',
      detail: `Kernel ${this.report.host.kernel}: newer kernels resolve more UDP insert clashes instead of dropping the packet. Check the distribution's kernel for the nf_conntrack clash-resolution fixes.`,
    });
    return this.finish(
      'insert-races',
      true,
      `Packets are dropped by conntrack insert races (insert_failed +${s.insertFailed}), not by a full table (${this.countVsMax()}). No host change is made; see the recommendations.${this.ec2Also()}`,
    );
  }

  private ec2Allowance(): Plan {
    const s = this.signals;
    this.addEc2(false);
    this.confirmation.push(
      s.loaded
        ? `the kernel table is not the problem: ${this.countVsMax()}, no table-full drops`
        : 'the kernel table is not the problem: nf_conntrack is not loaded, so the guest tracks nothing',
    );
    this.refuse(
      'raise nf_conntrack_max',
      'the guest table is not full; EC2 drops these packets before the guest sees them, whatever the guest limit',
    );
    this.refuse(
      'NOTRACK',
      'guest NOTRACK rules do not reduce EC2 connection tracking: security groups are enforced outside the instance',
    );
    const exhausted = this.findings.some((finding) => finding.exhausted);
    return this.finish(
      'ec2-allowance',
      true,
      `EC2 ${exhausted ? 'drops packets because the instance’s connection-tracking allowance is exhausted' : 'is about to drop packets: the instance’s connection-tracking allowance is nearly exhausted'} (${this.findings.map((finding) => finding.detail).join('; ')}), while ${s.loaded ? `the kernel table is at ${percent(s.usage)}` : 'the guest does not track connections'}. ${this.actions.length > 0 ? `Planned: ${this.actions.map((action) => `${action.title} [${action.mode}]`).join('; ')}.` : 'No change can be made automatically; see the refusals and recommendations.'}`,
    );
  }

  /** Why an ec2-allowance alert is not confirmed by the diagnostics. */
  private allowanceQuiet(): string {
    const s = this.signals;
    if (s.allowance.length === 0)
      return 'the diagnostics found no ENA allowance counters on this host, so the alert cannot be confirmed';
    return `EC2's allowance counters were quiet during the diagnostics (${s.allowance.map((item) => `${item.name}: conntrack_allowance_exceeded +${item.exceededIncrease} in ${s.intervalSeconds} s${item.available === null ? '' : `, ${item.available} available`}`).join('; ')}): the exhaustion is over, or the sample line was not the host's`;
  }

  private addEc2(kernelAlso: boolean): void {
    const ec2 = planEc2({
      report: this.report,
      signals: this.signals,
      policy: this.policy,
      findings: this.findings,
      network: this.input.network ?? null,
      networkProblem: this.input.networkProblem ?? null,
      kernelAlso,
    });
    this.confirmation.push(...ec2.confirmation);
    for (const draft of ec2.actions) {
      this.addAction({
        id: draft.id,
        kind: 'eni-timeouts',
        document: 'eni-timeouts',
        parameters: draft.parameters,
        requires: [],
        title: draft.title,
        reason: draft.reason,
        memoryCostBytes: 0,
        expectedEffect: draft.expectedEffect,
        risk: draft.risk,
        unsafeIf: draft.unsafeIf,
        eni: draft.eni,
      });
    }
    this.recommendations.push(...ec2.recommendations);
    for (const refusal of ec2.refusals) this.refuse(refusal.considered, refusal.reason);
    this.ec2 = ec2.diagnosis;
  }

  private notConfirmed(why: string): Plan {
    this.confirmation.push(why);
    const s = this.signals;
    if (s.loaded && s.usage !== null && s.usage >= WATCH_USAGE) {
      this.recommendations.push({
        scope: 'monitoring',
        title: 'The table is filling up',
        detail: `${this.countVsMax()}: above the ${percent(WATCH_USAGE)} that node-mixin's NodeHighNumberConntrackEntriesUsed alert uses. Nothing is dropped yet; size the limit in the launch template before it is.`,
      });
    }
    return this.finish('not-confirmed', false, `Not confirmed: ${why}. Nothing was changed.`);
  }

  // ---- actions ---------------------------------------------------------------------------------

  /** `predictedEntries`: a filling table's demand at the horizon (near-full), sized for as well. */
  private planRaise(predictedEntries?: number): PlannedAction | undefined {
    const s = this.signals;
    const { host, conntrack, table } = this.report;
    if (s.max === null) {
      this.refuse(
        'raise nf_conntrack_max',
        'the current limit is unknown or 0 ("no limit"): nothing to raise',
      );
      return undefined;
    }
    const sizing = sizeConntrackTable({
      observedCount: Math.max(s.count ?? 0, table.entries),
      currentMax: s.max,
      currentBuckets: s.buckets,
      cpuCount: host.cpuCount,
      memTotalBytes: host.memTotalBytes,
      entryBytes: conntrack.entryBytes,
      memoryBudgetPercent: this.policy.memoryBudgetPercent,
      maxRaiseFactor: this.policy.maxRaiseFactor,
      maxEntriesCeiling: this.policy.maxEntriesCeiling,
      ...(predictedEntries === undefined
        ? {}
        : { predictedEntries, targetUsage: this.policy.verify.maxUsageRatio }),
    });
    this.sizing = sizing;
    if (sizing.newMax === null) {
      this.refuse(
        'raise nf_conntrack_max',
        `the memory budget is spent: ${s.max} entries already cost up to ${mebibytes(s.max * sizing.bytesPerEntry)} of the ${mebibytes(sizing.budgetBytes)} budget (${this.policy.memoryBudgetPercent}% of RAM); relief must come from shorter timeouts or NOTRACK, or from a larger instance`,
      );
      return undefined;
    }
    const hashSize = sizing.newBuckets;
    const unsafeIf = [
      `the host has less free memory than the budget assumes: a full table at ${sizing.newMax} entries uses up to ${mebibytes(sizing.totalBytesIfFull)} of kernel memory`,
      'the table fills because of a leak, a scan or a flood: a larger table only delays the next incident and costs more memory',
      'something on the host rewrites the limit (kube-proxy, a sysctl.d file, Bottlerocket settings): it may lower it again, and verification will fail',
    ];
    if (hashSize !== null) {
      unsafeIf.push(
        `resizing the hash table rehashes all ${s.count ?? ''} entries under the conntrack locks: a short stall of packet processing`,
      );
    }
    const risk: RiskLevel = hashSize !== null && (s.count ?? 0) > LARGE_RESIZE_ENTRIES ? 'medium' : 'low';
    return this.addAction({
      id: 'limits',
      kind: 'raise-limits',
      document: 'raise-limits',
      parameters: {
        MaxEntries: String(sizing.newMax),
        HashSize: hashSize === null ? '' : String(hashSize),
        Timeouts: '',
        MemoryBudgetPercent: String(this.policy.memoryBudgetPercent),
      },
      requires: [],
      title: `Raise nf_conntrack_max from ${s.max} to ${sizing.newMax}${hashSize === null ? '' : ` and the hash table to ${hashSize} buckets`}`,
      reason: `${predictedEntries === undefined ? `the table is full at ${s.max} entries; a higher limit gives new flows room at once` : `the table is filling towards its limit of ${s.max} entries and is expected to need about ${predictedEntries} within the horizon; a higher limit keeps room before anything is dropped`}. Sized by the rule in docs/sizing.md: ${sizing.explanation.join('; ')}`,
      memoryCostBytes: sizing.addedBytesIfFull,
      expectedEffect: `new flows stop being dropped as soon as it is applied, as long as demand stays under ${sizing.newMax} entries; kernel memory grows only as entries are used, by at most ${mebibytes(sizing.addedBytesIfFull)}`,
      risk,
      unsafeIf,
    });
  }

  private planTimeoutAction(
    changes: readonly TimeoutChange[],
    raise: PlannedAction | undefined,
  ): PlannedAction | undefined {
    if (changes.length === 0) return undefined;
    const s = this.signals;
    const maxEntries = raise?.parameters.MaxEntries ?? String(s.max ?? '');
    if (!maxEntries) return undefined;
    const drains = changes.filter((change) => change.shortLived);
    const established = changes.find((change) => !change.shortLived);
    const lines = changes.map(
      (change) =>
        `${change.sysctl} ${change.from} → ${change.to} s (${percent(change.share)} of the table; ${change.why}${change.currentAssumed ? '; current value assumed to be the kernel default' : ''})`,
    );
    const effects: string[] = [];
    if (drains.length > 0) {
      const longest = Math.max(...drains.map((change) => change.from));
      effects.push(
        `${drains.map((change) => `${change.label} entries live ${change.to} s instead of ${change.from} s`).join(', ')}; existing entries keep their timers, so the full effect arrives within ${longest} s`,
      );
    }
    if (established) {
      effects.push(
        `ESTABLISHED entries refreshed from now on expire after ${established.to} s of idleness; entries already idle keep their old timer until their next packet`,
      );
    }
    const unsafeIf = [
      ...changes.map((change) => `${change.sysctl}: ${change.unsafeIf}`),
      'kube-proxy or another agent rewrites these timeouts on its next start (they will revert, which verification or the next incident shows)',
    ];
    if (raise)
      unsafeIf.push(`it carries MaxEntries=${maxEntries} (the raised limit): apply it only after the raise`);
    return this.addAction({
      id: 'timeouts',
      kind: 'shorten-timeouts',
      document: 'raise-limits',
      parameters: {
        MaxEntries: maxEntries,
        HashSize: '',
        Timeouts: formatTimeoutsParameter(changes),
        MemoryBudgetPercent: String(this.policy.memoryBudgetPercent),
      },
      requires: raise ? [raise.id] : [],
      title: `Shorten conntrack timeouts: ${changes.map((change) => `${change.sysctl}=${change.to}`).join(', ')}`,
      reason: `the table is full of entries that linger after their connections ended or went idle; shorter timeouts shrink it at the same connection rate, which a higher limit never does: ${lines.join('; ')}`,
      memoryCostBytes: 0,
      expectedEffect: effects.join('. '),
      risk: changes.some((change) => change.risk === 'medium') ? 'medium' : 'low',
      unsafeIf,
    });
  }

  private planNotrack(projectedAfterTimeouts: number | null): void {
    const selection = selectNotrackPorts(this.report, this.policy.notrack);
    for (const refusal of selection.refusals) this.refuse(refusal.subject, refusal.reason);
    if (selection.chosen.length === 0) return;
    const s = this.signals;
    if (projectedAfterTimeouts !== null && s.max !== null && projectedAfterTimeouts <= s.max / 2) {
      this.refuse(
        `NOTRACK ${selection.chosen.map(describePort).join(', ')}`,
        `not needed: with the shorter timeouts the same traffic would keep about ${projectedAfterTimeouts} entries, under half the current limit of ${s.max}; timeouts are preferred because they change no firewall rule`,
      );
      return;
    }
    const groups = new Map<string, PortCandidate[]>();
    for (const candidate of selection.chosen) {
      const key = `${candidate.protocol}-${candidate.direction}`;
      groups.set(key, [...(groups.get(key) ?? []), candidate]);
    }
    const total = this.report.table.entries;
    const forwarded = this.report.table.flows?.forwarded ?? 0;
    for (const [key, ports] of groups) {
      const first = ports[0];
      if (!first) continue;
      const untrackedAccepted = untrackedAcceptedFor(
        this.report,
        first.protocol,
        ports.map((port) => port.port),
      );
      const sorted = [...ports].sort((a, b) => a.port - b.port);
      const shortLived = ports.reduce((sum, port) => sum + port.shortLived, 0);
      const portList = sorted.map((port) => port.port).join(',');
      const served = first.direction === 'inbound';
      const unsafeIf = [
        'a NAT rule for these ports is added later (a Docker published port, a Kubernetes Service, a DNAT): untracked packets are never NATed',
        'something relies on conntrack for these flows: connlimit / ct count, ct mark, helpers (FTP, SIP), SYNPROXY, flow offload',
        'the host also routes these ports for others (FORWARD): only INPUT and OUTPUT get UNTRACKED accept rules',
        'ICMP errors of these flows (PMTU "fragmentation needed") are no longer RELATED: accept the ICMP types you rely on explicitly',
      ];
      if (forwarded / total >= MIN_STATE_SHARE) {
        unsafeIf.unshift(
          `this host routes traffic: ${percent(forwarded / total)} of its entries are forwarded or NATed flows, and a forwarded flow on these ports would lose its state`,
        );
      }
      if (!untrackedAccepted) {
        unsafeIf.unshift(
          'the filter table does not accept UNTRACKED packets today: the document adds port-scoped UNTRACKED accept rules first; if that step fails, every new connection on these ports is dropped (seed 004 learned it this way)',
        );
      }
      this.addAction({
        id: `notrack-${key}`,
        kind: 'notrack-ports',
        document: 'notrack-ports',
        parameters: {
          Ports: portList,
          Protocol: first.protocol,
          Direction: first.direction,
        },
        requires: [],
        title: `Stop tracking ${first.protocol} port${ports.length > 1 ? 's' : ''} ${portList} (${served ? 'served by this host' : 'remote services this host calls'})`,
        reason: `${ports.map((port) => `${describePort(port)} holds ${port.shortLived} short-lived of its ${port.entries} entries`).join('; ')}: ${percent(shortLived / total)} of the table is churn on ${ports.length === 1 ? 'this port' : 'these ports'}, and exempting ${ports.length === 1 ? 'it' : 'them'} removes the churn at the source. Pre-flight: no NAT rule matches, backend ${this.report.firewall.backend}, ${served ? 'a local socket listens, ' : ''}not a protected port. Rules: ${served ? `raw PREROUTING --dport ${portList} and raw OUTPUT --sport ${portList}` : `raw OUTPUT --dport ${portList} and raw PREROUTING --sport ${portList}`}${untrackedAccepted ? '' : ', after UNTRACKED accept rules in filter INPUT/OUTPUT'}`,
        memoryCostBytes: 0,
        expectedEffect: `new flows on ${portList} no longer create entries; the ${shortLived} existing ones expire within their timeouts (≤ ${this.longestShortLivedTimeout()} s), freeing about ${percent(shortLived / total)} of the table`,
        risk: untrackedAccepted ? 'medium' : 'high',
        unsafeIf,
      });
    }
  }

  private addAction(
    action: Omit<PlannedAction, 'parameters' | 'persistParameters' | 'mode'> & {
      parameters: Record<string, string>;
    },
  ): PlannedAction {
    const changeId = `${this.changeIdPrefix}-${action.id}`;
    // An ENI's timeouts outlive reboots by themselves: there is nothing to persist.
    const persistent = action.document === 'eni-timeouts';
    const parameters = persistent
      ? { ChangeId: changeId, ...action.parameters }
      : { ChangeId: changeId, ...action.parameters, Persist: 'false' };
    assertDocumentParameters(action.document as DocumentName, parameters);
    const persistParameters =
      this.policy.persist === 'after-verify' && !persistent ? { ...parameters, Persist: 'true' } : null;
    if (persistParameters) assertDocumentParameters(action.document as DocumentName, persistParameters);
    const planned: PlannedAction = {
      ...action,
      parameters,
      persistParameters,
      mode: this.policy.modes[action.kind as ActionKind],
    };
    this.actions.push(planned);
    return planned;
  }

  // ---- recommendations -------------------------------------------------------------------------

  private recommendDurableFixes(
    maxEntries: string | null,
    timeouts: readonly TimeoutChange[],
    hashSize: string | undefined,
  ): void {
    const cpus = this.report.host.cpuCount;
    const lines = ['# /etc/sysctl.d/90-conntrack.conf'];
    if (maxEntries) lines.push(`net.netfilter.nf_conntrack_max = ${maxEntries}`);
    for (const change of timeouts) lines.push(`net.netfilter.nf_conntrack_${change.sysctl} = ${change.to}`);
    lines.push(
      '',
      '# /etc/modules-load.d/nf_conntrack.conf  (so that systemd-sysctl finds the sysctls at boot)',
      'nf_conntrack',
    );
    if (hashSize) {
      lines.push('', '# /etc/modprobe.d/nf_conntrack.conf', `options nf_conntrack hashsize=${hashSize}`);
    }
    this.recommendations.push({
      scope: 'launch-template',
      title: 'Make the new values durable in the launch template or configuration management',
      detail: `A change made here lives until the next reboot or instance replacement (or, with Persist, in a file configuration management does not know about). Put the values in the image, the launch template user data or your configuration management, and size the instance type for the traffic.${maxEntries === null ? ' No higher limit fits the memory budget on this instance: a larger instance type (more RAM) is the way to a bigger table.' : ''}`,
      snippet: lines.join('\n'),
    });

    const kubeProxy = this.report.sysctlOwners.find((owner) => /kube-proxy/i.test(owner.name));
    if (kubeProxy) {
      const perCore = maxEntries ? Math.ceil(Number(maxEntries) / cpus) : null;
      const established = timeouts.find((change) => change.sysctl === 'tcp_timeout_established');
      const config = [
        'apiVersion: kubeproxy.config.k8s.io/v1alpha1',
        'kind: KubeProxyConfiguration',
        'conntrack:',
      ];
      if (perCore) config.push(`  maxPerCore: ${perCore}`, `  min: ${maxEntries}`);
      if (established) config.push(`  tcpEstablishedTimeout: ${established.to}s`);
      this.recommendations.push({
        scope: 'kube-proxy',
        title: 'Change kube-proxy’s conntrack settings: it owns these sysctls on this node',
        detail: `kube-proxy (${kubeProxy.detail}) sets nf_conntrack_max to max(maxPerCore × CPUs, min) and its timeouts on every start; older versions also lower a raised limit back. Set the values in KubeProxyConfiguration (the ConfigMap, or the EKS add-on configuration) so that they survive restarts and apply to every node.${timeouts.some((change) => change.sysctl !== 'tcp_timeout_established') ? ' kube-proxy does not manage the short-lived-state timeouts; keep those in sysctl.d.' : ''}`,
        snippet: config.join('\n'),
      });
    }
    for (const owner of this.report.sysctlOwners) {
      if (/kube-proxy/i.test(owner.name)) continue;
      this.recommendations.push({
        scope: 'other-sysctl-owner',
        title: `${owner.name} also sets conntrack sysctls`,
        detail: `${owner.detail}: it may put the old values back at its next run or at boot. Change the values there too.`,
      });
    }
  }

  private recommendApplicationFixes(): void {
    const total = this.report.table.entries;
    if (total === 0) return;
    const outbound = this.report.table.byRemotePort.filter(
      (row) => row.protocol === 'tcp' && row.shortLived / total >= this.policy.notrack.minPortShare,
    );
    for (const row of outbound.slice(0, 3)) {
      this.recommendations.push({
        scope: 'application',
        title: `Reuse connections to port ${row.port}`,
        detail: `This host opens and closes connections to remote port ${row.port} at a high rate (${row.shortLived} of its ${row.entries} entries are closing or closed, ${percent(row.shortLived / total)} of the table). Connection pooling or keep-alive in the client removes the churn for good, with no firewall change.`,
      });
    }
    const closeWait = this.report.table.byState
      .filter((row) => row.protocol === 'tcp' && row.state.toUpperCase() === 'CLOSE_WAIT')
      .reduce((sum, row) => sum + row.entries, 0);
    if (closeWait / total >= MIN_STATE_SHARE) {
      this.recommendations.push({
        scope: 'application',
        title: 'An application does not close its sockets',
        detail: `${closeWait} entries (${percent(closeWait / total)}) are in CLOSE_WAIT: the peer closed, the local program did not. The CLOSE_WAIT timeout is deliberately not shortened (kube-proxy even raises it to 1 h for half-closed connections); fix the program.`,
      });
    }
  }

  private recommendExpectations(): void {
    const s = this.signals;
    const suggested = s.expectMax !== null ? Math.max(256, s.expectMax * 4) : null;
    this.recommendations.push({
      scope: 'conntrack-helpers',
      title: 'Relieve the expectation table',
      detail: `Expectations are created by conntrack helpers (FTP, SIP, TFTP, H.323, …) for related connections, and limited by nf_conntrack_expect_max (default buckets/256), not nf_conntrack_max. Find which helper creates them (\`conntrack -L expect\`), assign helpers only to the traffic that needs them (explicit \`-j CT --helper\` rules with net.netfilter.nf_conntrack_helper=0), and raise the limit from the initial namespace${suggested ? ` (for example to ${suggested})` : ''}.`,
      ...(suggested
        ? {
            snippet: `# /etc/sysctl.d/90-conntrack.conf\nnet.netfilter.nf_conntrack_expect_max = ${suggested}`,
          }
        : {}),
    });
  }

  // ---- helpers ---------------------------------------------------------------------------------

  private describeCounters(interval: string): void {
    const s = this.signals;
    for (const note of s.notes) this.confirmation.push(note);
    if (s.drop !== null && s.insertFailed !== null && s.insertFailed > 0 && s.drop > 0) {
      this.confirmation.push(
        `the drop counter rose by ${s.drop} in ${interval}, of which ${Math.min(s.drop, s.insertFailed)} are insert failures (races or long chains), not a full table`,
      );
    }
  }

  private natInUse(): boolean {
    const { nat } = this.report.firewall;
    return nat.allPorts || nat.ports.length > 0 || (nat.portRanges ?? []).length > 0 || nat.owners.length > 0;
  }

  private longestShortLivedTimeout(): number {
    const value = this.report.conntrack.sysctls['net.netfilter.nf_conntrack_tcp_timeout_time_wait'];
    return Math.max(
      value ?? 120,
      this.report.conntrack.sysctls['net.netfilter.nf_conntrack_udp_timeout'] ?? 30,
    );
  }

  /** The EC2 half of a summary whose kernel half names another problem. */
  private ec2Also(): string {
    if (this.findings.length === 0) return '';
    const eni = this.actions.filter((action) => action.kind === 'eni-timeouts');
    return ` EC2's connection-tracking allowance is ${this.findings.some((finding) => finding.exhausted) ? 'exhausted' : 'nearly exhausted'} too: ${eni.length > 0 ? `planned: ${eni.map((action) => `${action.title} [${action.mode}]`).join('; ')}` : 'no ENI change is possible, see the refusals'}.`;
  }

  private countVsMax(): string {
    const s = this.signals;
    return `${s.count ?? 'unknown'} of ${s.max ?? 'unknown'} entries, ${percent(s.usage)}`;
  }

  private actionSummary(): string {
    if (this.actions.length === 0)
      return 'No host change is possible within the policy; see the refusals and recommendations.';
    return `Planned: ${this.actions.map((action) => `${action.title} [${action.mode}]`).join('; ')}.`;
  }

  private refuse(considered: string, reason: string): void {
    this.refusals.push({ considered, reason });
  }

  private finish(classification: Classification, confirmed: boolean, summary: string): Plan {
    return {
      schemaVersion: PLAN_SCHEMA_VERSION,
      classification,
      confirmed,
      confirmation: this.confirmation,
      summary,
      alert: this.input.alert,
      signals: this.signals,
      ...(this.tables ? { tables: this.tables } : {}),
      ec2: this.ec2,
      actions: confirmed ? this.actions : [],
      recommendations: this.recommendations,
      refusals: this.refusals,
      sizing: this.sizing,
      policy: this.policy,
    };
  }
}

/** ChangeIds must match ^[A-Za-z0-9][A-Za-z0-9-]{0,63}$ and leave room for the longest action suffix. */
function changeIdPrefixFor(input: PlanInput): string {
  const given = input.changeIdPrefix;
  if (given !== undefined) {
    const cleaned = given
      .replace(/[^A-Za-z0-9-]+/g, '-')
      .replace(/^-+/, '')
      .slice(0, 40);
    if (!cleaned || !CHANGE_ID_PATTERN.test(cleaned))
      throw new Error(`unusable change id prefix: ${JSON.stringify(given)}`);
    return cleaned;
  }
  const digest = createHash('sha256')
    .update(
      `${input.before.host.hostname}\n${input.before.collectedAt}\n${input.before.host.netnsInode ?? ''}`,
    )
    .digest('hex');
  return `ctr-${digest.slice(0, 12)}`;
}
