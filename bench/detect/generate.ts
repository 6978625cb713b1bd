import type { DetectionReport, DropGroup } from '../../functions/core/detect/index.js';

/**
 * A central-syslog style file (RFC 3164, several hosts, one day) with the mix of a real incident:
 * 1 % of the lines carry conntrack text. The `kernel-mix` variant makes about a fifth of the lines
 * unrelated kernel messages in the kernel's real wordings (martian sources with their `ll header`
 * line and their own `net_ratelimit` suppression lines, audit records, link and bridge port
 * changes, UFW blocks, OOM kills, …), which is what a busy node's kernel log looks like. Drops come the way the kernel rate-limits them — a
 * `net_ratelimit: N callbacks suppressed` line and then ten drop lines, a few seconds apart — on
 * two hosts (one RHEL-style, one Debian-style with the `[secs]` kernel timestamp and the ≥ 6.17
 * netns form). Add a few suppression lines that belong to nothing and a few look-alikes written
 * by an application. The generator also returns the report `detect` must produce.
 */
export interface GeneratedLog {
  readonly lines: number;
  readonly text: string[];
  readonly expected: DetectionReport;
  /** Lines containing "table full" (what the grep baseline counts). */
  readonly tableFullLines: number;
}

function random(seed: number) {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let value = state;
    value = Math.imul(value ^ (value >>> 15), value | 1);
    value ^= value + Math.imul(value ^ (value >>> 7), value | 61);
    return ((value ^ (value >>> 14)) >>> 0) / 4294967296;
  };
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const HOSTS = ['web-01', 'web-02', 'web-03', 'web-04', 'cache-01', 'db-01'];
const NETNS = '4026532177';

const NOISE = [
  'sshd[2231]: Accepted publickey for deploy from 10.20.1.15 port 51234 ssh2: RSA SHA256:3f4c0a9e1b7d',
  'sshd[2231]: pam_unix(sshd:session): session opened for user deploy(uid=1001) by (uid=0)',
  'CRON[18812]: (root) CMD (/usr/lib64/sa/sa1 1 1)',
  'systemd[1]: Started Session 4412 of User deploy.',
  'systemd[1]: logrotate.service: Succeeded.',
  'dockerd[1102]: time="2026-03-13T20:21:45.123456789Z" level=info msg="ignoring event" module=libcontainerd namespace=moby topic=/tasks/delete type="*events.TaskDelete"',
  'kubelet[1290]: I0313 20:21:45.123456    1290 kubelet_getters.go:182] "Pod status updated" pod="default/api-7d9c6b5f4-x2x9z" status="Running"',
  'nginx[3321]: 10.20.4.7 - - [13/Mar/2026:20:21:45 +0000] "GET /healthz HTTP/1.1" 200 2 "-" "kube-probe/1.29"',
  'postfix/smtpd[7781]: connect from unknown[10.20.9.3]',
  'chronyd[801]: Selected source 169.254.169.123',
  'rsyslogd[990]: imjournal: journal files changed, reloading...  [v8.2102.0 try https://www.rsyslog.com/e/0 ]',
  'amazon-ssm-agent[1401]: 2026-03-13 20:21:45 INFO [ssm-agent-worker] [MessageService] SendReply Completed',
];
/** The original file's few kernel noise wordings. */
const KERNEL_NOISE = [
  'IPv4: martian source 10.20.0.1 from 10.20.3.3, on dev eth0',
  'eth0: renamed from veth3f1a2b4',
  'docker0: port 3(veth77c1d2e) entered forwarding state',
  'TCP: request_sock_TCP: Possible SYN flooding on port 443. Sending cookies.  Check SNMP counters.',
  'EXT4-fs (nvme1n1): re-mounted. Opts: (null)',
];

/**
 * Unrelated kernel messages as kernels print them (driver names, padding and all). `hex` and `n`
 * vary the numbers; a martian source is followed by its `ll header` line. Several carry bytes the
 * scanner searches for (`full duplex`, `nf_conntrack:`, `kernel`), as real ones do.
 */
function realisticKernelNoise(next: () => number): string[] {
  const n = (max: number) => Math.floor(next() * max);
  const ip = () => `10.${20 + n(4)}.${n(256)}.${1 + n(254)}`;
  const mac = () => Array.from({ length: 6 }, () => n(256).toString(16).padStart(2, '0')).join(':');
  const veth = () => `veth${n(0xfffffff).toString(16).padStart(7, '0')}`;
  const audit = () => `audit(${1_773_400_000 + n(86_400)}.${String(n(1000)).padStart(3, '0')}:${n(99_999)})`;
  const choice = n(16);
  switch (choice) {
    case 0:
    case 1: {
      const llHeader = Array.from({ length: 14 }, () => n(256).toString(16).padStart(2, '0')).join(' ');
      return [
        `IPv4: martian source ${ip()} from ${ip()}, on dev eth0`,
        `ll header: 00000000: ${llHeader}        ..............`,
      ];
    }
    case 2:
      return [
        `audit: type=1400 ${audit()}: apparmor="DENIED" operation="open" class="file" profile="snap.amazon-ssm-agent.amazon-ssm-agent" name="/proc/${n(9999)}/environ" pid=${n(99_999)} comm="ssm-agent-worke" requested_mask="r" denied_mask="r" fsuid=0 ouid=0`,
      ];
    case 3:
      return [
        `audit: type=1325 ${audit()}: table=filter family=2 entries=${100 + n(400)} op=xt_replace pid=${n(99_999)} subj=unconfined comm="iptables-restor"`,
      ];
    case 4:
      return [
        `audit: type=1131 ${audit()}: pid=1 uid=0 auid=4294967295 ses=4294967295 subj=system_u:system_r:init_t:s0 msg='unit=run-docker-runtime\x2drunc-moby-${n(0xffffff).toString(16)}.scope comm="systemd" exe="/usr/lib/systemd/systemd" hostname=? addr=? terminal=? res=success'`,
      ];
    case 5: {
      const port = 1 + n(40);
      const device = veth();
      return [
        `cni0: port ${port}(${device}) entered blocking state`,
        `cni0: port ${port}(${device}) entered disabled state`,
      ];
    }
    case 6: {
      const device = veth();
      return [
        `device ${device} entered promiscuous mode`,
        `IPv6: ADDRCONF(NETDEV_CHANGE): ${device}: link becomes ready`,
      ];
    }
    case 7:
      return [`cni0: port ${1 + n(40)}(${veth()}) entered forwarding state`];
    case 8:
      return [`tg3 0000:02:00.0 eth1: Link is up at 1000 Mbps, full duplex`];
    case 9:
      return [`e1000e 0000:00:1f.6 eno1: NIC Link is Up 1000 Mbps Full Duplex, Flow Control: Rx/Tx`];
    case 10:
      return [
        `[UFW BLOCK] IN=eth0 OUT= MAC=${mac()}:${mac()}:08:00 SRC=${ip()} DST=${ip()} LEN=44 TOS=0x00 PREC=0x00 TTL=${40 + n(200)} ID=${n(65_536)} PROTO=TCP SPT=${1024 + n(60_000)} DPT=${n(65_536)} WINDOW=1024 RES=0x00 SYN URGP=0`,
      ];
    case 11:
      return [
        'TCP: request_sock_TCP: Possible SYN flooding on port 443. Sending cookies.  Check SNMP counters.',
      ];
    case 12:
      return [
        `Memory cgroup out of memory: Killed process ${n(99_999)} (java) total-vm:${n(9_999_999)}kB, anon-rss:${n(4_000_000)}kB, file-rss:${n(40_000)}kB, shmem-rss:0kB, UID:1000 pgtables:${n(9000)}kB oom_score_adj:936`,
      ];
    case 13:
      return [`IPVS: rr: TCP 172.20.${n(256)}.${n(256)}:53 - no destination available`];
    case 14:
      return [
        'nf_conntrack: default automatic helper assignment has been turned off for security reasons and CT-based firewall rule not found. Use the iptables CT target to attach helpers instead.',
      ];
    default:
      return [`nvme nvme1: I/O ${n(1024)} QID ${1 + n(8)} timeout, completion polled`];
  }
}

export interface GenerateOptions {
  readonly seed?: number;
  /** `incident`: 8 % unrelated kernel lines in five wordings; `kernel-mix`: about 20 % in realistic wordings. */
  readonly mix?: 'incident' | 'kernel-mix';
}

interface Slot {
  host: string;
  text: string;
}

/** Hosts without drop bursts: their martian sources may come with their own suppression lines. */
const QUIET_HOSTS = new Set(['web-01', 'web-02', 'web-04', 'db-01']);

export function generateLog(lineCount: number, day: Date, options: GenerateOptions = {}): GeneratedLog {
  const next = random(options.seed ?? 20260313);
  const kernelMix = options.mix === 'kernel-mix';
  const slots: (Slot | undefined)[] = new Array(lineCount);
  const dayStart = Date.UTC(day.getUTCFullYear(), day.getUTCMonth(), day.getUTCDate());
  const timeOf = (index: number) => dayStart + Math.floor((index * 86_400_000) / lineCount / 1000) * 1000;
  const stamp = (index: number) => {
    const date = new Date(timeOf(index));
    const clock = date.toISOString().slice(11, 19);
    return `${MONTHS[date.getUTCMonth()]} ${String(date.getUTCDate()).padStart(2, ' ')} ${clock}`;
  };
  const conntrackLines = Math.round(lineCount / 100);
  const bursts = Math.floor((conntrackLines * 0.99) / 11);
  const looseSuppressions = Math.floor((conntrackLines - bursts * 11) / 2);
  const lookAlikes = conntrackLines - bursts * 11 - looseSuppressions;

  const groups = new Map<string, DropGroup & { firstMs: number; lastMs: number }>();
  const expect = (
    host: string,
    netns: string | null,
    drops: number,
    suppressed: number,
    first: number,
    last: number,
  ) => {
    const key = `${host}/${netns}`;
    const group = groups.get(key) ?? {
      host,
      netns,
      kind: 'table-full' as const,
      dropLines: 0,
      suppressed: 0,
      firstSeen: null,
      lastSeen: null,
      firstMs: first,
      lastMs: last,
    };
    groups.set(key, {
      ...group,
      dropLines: group.dropLines + drops,
      suppressed: group.suppressed + suppressed,
      firstMs: Math.min(group.firstMs, first),
      lastMs: Math.max(group.lastMs, last),
    });
  };
  // Kernel lines of a host during one of its bursts would change attribution: noise keeps out.
  const busy = new Map<string, [number, number][]>();
  const isBusy = (host: string, index: number) =>
    (busy.get(host) ?? []).some(([from, to]) => index >= from && index <= to);

  const free = (index: number) => index < lineCount && slots[index] === undefined;
  for (let burst = 0; burst < bursts; burst++) {
    const debian = burst % 2 === 1;
    const host = debian ? 'web-03' : 'cache-01';
    let index = Math.floor((burst + next() * 0.5) * (lineCount / bursts));
    while (!free(index)) index++;
    const positions: number[] = [];
    for (let placed = 0; placed < 11; placed++) {
      while (!free(index)) index++;
      positions.push(index);
      index += 1 + Math.floor(next() * 12);
    }
    if ((positions[10] ?? lineCount) >= lineCount) throw new Error('line count too small for the bursts');
    const suppressed = 50 + Math.floor(next() * 4000);
    const prefix = debian ? `kernel: [${(2_000_000 + burst * 7.5).toFixed(6)}] ` : 'kernel: ';
    const drop = debian
      ? `nf_conntrack: nf_conntrack: table full in netns ${NETNS}, dropping packet`
      : 'nf_conntrack: table full, dropping packet.';
    positions.forEach((position, order) => {
      const body = order === 0 ? `net_ratelimit: ${suppressed} callbacks suppressed` : drop;
      slots[position] = { host, text: `${stamp(position)} ${host} ${prefix}${body}` };
    });
    busy.set(host, [...(busy.get(host) ?? []), [positions[0] as number, positions[10] as number]]);
    expect(
      host,
      debian ? NETNS : null,
      10,
      suppressed,
      timeOf(positions[0] as number),
      timeOf(positions[10] as number),
    );
  }
  // A suppression line between two unrelated kernel lines of an idle host: unrelated.
  let placedLoose = 0;
  for (let attempt = 0; placedLoose < looseSuppressions && attempt < looseSuppressions * 100; attempt++) {
    const index = Math.floor(next() * (lineCount - 3));
    const host = HOSTS[Math.floor(next() * 4)] as string; // web-01…web-04
    if (![index, index + 1, index + 2].every(free) || isBusy(host, index) || isBusy(host, index + 2))
      continue;
    const kernelNoise = KERNEL_NOISE[placedLoose % KERNEL_NOISE.length];
    slots[index] = { host, text: `${stamp(index)} ${host} kernel: ${kernelNoise}` };
    slots[index + 1] = {
      host,
      text: `${stamp(index + 1)} ${host} kernel: net_ratelimit: 3 callbacks suppressed`,
    };
    slots[index + 2] = { host, text: `${stamp(index + 2)} ${host} kernel: ${kernelNoise}` };
    placedLoose++;
  }
  let placedLookAlikes = 0;
  for (let attempt = 0; placedLookAlikes < lookAlikes && attempt < lookAlikes * 100; attempt++) {
    const index = Math.floor(next() * lineCount);
    if (!free(index)) continue;
    slots[index] = {
      host: 'web-02',
      text: `${stamp(index)} web-02 app[4411]: upstream says nf_conntrack: table full, dropping packet`,
    };
    placedLookAlikes++;
  }
  const text: string[] = new Array(lineCount);
  // The rest of a multi-line kernel message (a martian source's `ll header`), written on the
  // next free lines: only quiet hosts have them, so nothing else needs to be kept apart.
  const following: { host: string; body: string }[] = [];
  // The kernel message share among the remaining lines: about 20 % of all lines in the kernel mix.
  const kernelShare = kernelMix ? 0.175 : 0.08;
  let quietSuppressions = 0;
  for (let index = 0; index < lineCount; index++) {
    const slot = slots[index];
    if (slot !== undefined) {
      text[index] = slot.text;
      continue;
    }
    const queued = following.shift();
    if (queued !== undefined) {
      text[index] = `${stamp(index)} ${queued.host} kernel: ${queued.body}`;
      continue;
    }
    const host = HOSTS[Math.floor(next() * HOSTS.length)] as string;
    const kernel = next() < kernelShare && !isBusy(host, index);
    if (!kernel) {
      text[index] = `${stamp(index)} ${host} ${NOISE[Math.floor(next() * NOISE.length)]}`;
      continue;
    }
    const uptime = host === 'web-03' ? '[2000000.000001] ' : '';
    if (!kernelMix) {
      text[index] =
        `${stamp(index)} ${host} kernel: ${uptime}${KERNEL_NOISE[Math.floor(next() * KERNEL_NOISE.length)]}`;
      continue;
    }
    const [first, ...rest] = realisticKernelNoise(next) as [string, ...string[]];
    if (QUIET_HOSTS.has(host)) {
      // Martian sources are printed through net_ratelimit: a burst of them starts with its own
      // suppression line, which no drop line follows (unrelated).
      if (first.startsWith('IPv4: martian') && next() < 0.25) {
        text[index] =
          `${stamp(index)} ${host} kernel: net_ratelimit: ${1 + Math.floor(next() * 40)} callbacks suppressed`;
        quietSuppressions++;
        following.push({ host, body: first });
      } else text[index] = `${stamp(index)} ${host} kernel: ${first}`;
      following.push(...rest.map((body) => ({ host, body })));
    } else {
      text[index] = `${stamp(index)} ${host} kernel: ${uptime}${first}`;
    }
  }
  const expectedGroups = [...groups.values()]
    .sort((a, b) => a.firstMs - b.firstMs)
    .map(({ firstMs, lastMs, ...group }) => ({
      ...group,
      firstSeen: new Date(firstMs).toISOString(),
      lastSeen: new Date(lastMs).toISOString(),
    }));
  return {
    lines: lineCount,
    text,
    expected: {
      groups: expectedGroups,
      ignored: { 'not-kernel': placedLookAlikes, unrelated: placedLoose + quietSuppressions, unreadable: 0 },
    },
    tableFullLines: bursts * 10 + placedLookAlikes,
  };
}
