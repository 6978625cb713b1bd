import type { DropKind, KernelMessage } from './messages.js';

/** One host's drops of one kind (and in one network namespace, when the kernel names it). */
export interface DropGroup {
  readonly host: string;
  /** The namespace inode as the kernel printed it (`table full in netns N`), else null (initial netns or older kernel). */
  readonly netns: string | null;
  readonly kind: DropKind;
  /** Drop lines seen. */
  readonly dropLines: number;
  /** Sum of N over the suppression lines attributed to this group (an upper bound on unlogged drops). */
  readonly suppressed: number;
  /** ISO 8601 UTC, over the group's drop and suppression lines that carry a wall-clock time; null when none does. */
  readonly firstSeen: string | null;
  readonly lastSeen: string | null;
}

export interface DetectionReport {
  readonly groups: DropGroup[];
  readonly ignored: {
    /** Lines with drop or suppression text that the kernel did not write (another program, a non-kernel journald transport). */
    readonly 'not-kernel': number;
    /** Kernel suppression lines with no drop line of their host before or after them. */
    readonly unrelated: number;
    /**
     * Lines with drop or suppression text that could not be read: no known log format where one
     * was required, a kernel wording detect does not know, a timestamp that is not a real time.
     * The command line names each one as FILE:LINE.
     */
    readonly unreadable: number;
  };
}

interface MutableGroup {
  readonly host: string;
  readonly netns: string | null;
  readonly kind: DropKind;
  dropLines: number;
  suppressed: number;
  firstMs: number | null;
  lastMs: number | null;
  readonly evidence: unknown[];
}

interface PendingSuppression {
  readonly count: number;
  readonly timeMs: number | null;
  readonly previousDrop: MutableGroup | null;
  readonly evidence: unknown;
}

interface HostState {
  /** The group of this host's previous kernel line, when that line was a drop line. */
  previousDrop: MutableGroup | null;
  /** A suppression line waiting for this host's next kernel line. */
  pending: PendingSuppression | null;
}

/**
 * Accumulates kernel lines into drop groups, host by host, in input order.
 *
 * Attribution rule for a suppression line (issue 2): it goes to the group of the next kernel line
 * of the same host when that line is a drop line; else to the group of the previous kernel line of
 * the same host when that one was a drop line; else it is unrelated. Lines the kernel did not write
 * never take part.
 *
 * The aggregator also says which hosts are "active" (a pending suppression, or a previous drop
 * line): only for those can a plain kernel line change anything, which lets a scanner skip
 * everything else without parsing it.
 */
export class DropAggregator<Evidence = never> {
  private readonly groups = new Map<string, MutableGroup>();
  private readonly hosts = new Map<string, HostState>();
  private readonly active = new Set<string>();
  private notKernel = 0;
  private unrelated = 0;
  private unreadable = 0;
  private lastGroup: MutableGroup | null = null;

  constructor(private readonly evidenceLimit = 0) {}

  /** A line with drop or suppression text that the kernel did not write. */
  notKernelLine(): void {
    this.notKernel++;
  }

  /** A line with drop or suppression text that could not be read (see DetectionReport). */
  unreadableLine(): void {
    this.unreadable++;
  }

  /** True when some host has state a plain kernel line could change. */
  hasActiveHosts(): boolean {
    return this.active.size > 0;
  }

  isActive(host: string): boolean {
    return this.active.has(host);
  }

  /** The hosts for which hasActiveHosts is true (a live view: do not change it). */
  activeHosts(): ReadonlySet<string> {
    return this.active;
  }

  /**
   * A line the kernel wrote, `times` times in a row (syslogd's repeat lines). `message` is its
   * classification (null for any other kernel line). `evidence` is kept (up to the limit) with
   * the group the line ends up in.
   */
  kernelLine(
    host: string,
    message: KernelMessage | null,
    timeMs: number | null,
    evidence?: Evidence,
    times = 1,
  ): void {
    this.once(host, message, timeMs, evidence);
    if (times <= 1 || message === null) return;
    if (message.type === 'drop') {
      // Repeats of a drop line only add drop lines: the state after each is the same.
      const group = this.group(host, message.netns, message.kind);
      group.dropLines += times - 1;
      return;
    }
    // The second suppression line settles the first (its next kernel line is no drop); from the
    // third on each one settles a predecessor that has no drop line on either side: unrelated.
    this.once(host, message, timeMs, evidence);
    if (times > 2) this.unrelated += times - 2;
  }

  private once(
    host: string,
    message: KernelMessage | null,
    timeMs: number | null,
    evidence?: Evidence,
  ): void {
    let state = this.hosts.get(host);
    if (state === undefined) {
      if (message === null) return; // a host with no state: nothing to update
      state = { previousDrop: null, pending: null };
      this.hosts.set(host, state);
    }
    const nextGroup = message?.type === 'drop' ? this.group(host, message.netns, message.kind) : null;
    if (state.pending !== null) {
      this.settle(state.pending, nextGroup ?? state.pending.previousDrop);
      state.pending = null;
    }
    if (nextGroup !== null) {
      nextGroup.dropLines++;
      this.touch(nextGroup, timeMs, evidence);
      state.previousDrop = nextGroup;
    } else if (message?.type === 'suppression') {
      state.pending = { count: message.count, timeMs, previousDrop: state.previousDrop, evidence };
      state.previousDrop = null;
    } else {
      state.previousDrop = null;
    }
    if (state.previousDrop === null && state.pending === null) {
      this.hosts.delete(host);
      this.active.delete(host);
    } else {
      this.active.add(host);
    }
  }

  /** Settles what is still pending (a suppression line with no later kernel line) and returns the report. */
  finish(): DetectionReport & { evidence: Evidence[][] } {
    for (const state of this.hosts.values()) {
      if (state.pending !== null) this.settle(state.pending, state.pending.previousDrop);
      state.pending = null;
    }
    this.hosts.clear();
    this.active.clear();
    const groups = [...this.groups.values()];
    return {
      groups: groups.map((group) => ({
        host: group.host,
        netns: group.netns,
        kind: group.kind,
        dropLines: group.dropLines,
        suppressed: group.suppressed,
        firstSeen: group.firstMs === null ? null : new Date(group.firstMs).toISOString(),
        lastSeen: group.lastMs === null ? null : new Date(group.lastMs).toISOString(),
      })),
      ignored: { 'not-kernel': this.notKernel, unrelated: this.unrelated, unreadable: this.unreadable },
      evidence: groups.map((group) => group.evidence as Evidence[]),
    };
  }

  private settle(pending: PendingSuppression, group: MutableGroup | null): void {
    if (group === null) {
      this.unrelated++;
      return;
    }
    group.suppressed += pending.count;
    this.touch(group, pending.timeMs, pending.evidence);
  }

  private group(host: string, netns: string | null, kind: DropKind): MutableGroup {
    // Drop lines come in runs of the same group: skip building the key for a repeat.
    const last = this.lastGroup;
    if (last !== null && last.host === host && last.netns === netns && last.kind === kind) return last;
    // JSON keeps the three parts apart whatever characters a host name contains.
    const key = JSON.stringify([host, netns, kind]);
    let group = this.groups.get(key);
    if (group === undefined) {
      group = { host, netns, kind, dropLines: 0, suppressed: 0, firstMs: null, lastMs: null, evidence: [] };
      this.groups.set(key, group);
    }
    this.lastGroup = group;
    return group;
  }

  private touch(group: MutableGroup, timeMs: number | null, evidence: unknown): void {
    if (timeMs !== null) {
      if (group.firstMs === null || timeMs < group.firstMs) group.firstMs = timeMs;
      if (group.lastMs === null || timeMs > group.lastMs) group.lastMs = timeMs;
    }
    // A group's lines all come from one host, and a host's lines are settled in input order, so
    // the first items kept are the earliest ones.
    // An event with several lines is kept once.
    if (evidence === undefined || group.evidence.length >= this.evidenceLimit) return;
    if (group.evidence[group.evidence.length - 1] !== evidence) group.evidence.push(evidence);
  }
}
