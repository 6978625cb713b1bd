import type { DropGroup } from '../../functions/core/detect/index.js';

/**
 * A central-syslog style file (RFC 3164, several hosts, one day) with the mix of a real incident:
 * 1 % of the lines carry conntrack text. Drops come the way the kernel rate-limits them — a
 * `net_ratelimit: N callbacks suppressed` line and then ten drop lines, a few seconds apart — on
 * two hosts (one RHEL-style, one Debian-style with the `[secs]` kernel timestamp and the ≥ 6.17
 * netns form). Add a few suppression lines that belong to nothing and a few look-alikes written
 * by an application. The generator also returns the report `detect` must produce.
 */
export interface GeneratedLog {
  readonly lines: number;
  readonly text: string[];
  readonly expected: { groups: DropGroup[]; ignored: { 'not-kernel': number; unrelated: number } };
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
const KERNEL_NOISE = [
  'IPv4: martian source 10.20.0.1 from 10.20.3.3, on dev eth0',
  'eth0: renamed from veth3f1a2b4',
  'docker0: port 3(veth77c1d2e) entered forwarding state',
  'TCP: request_sock_TCP: Possible SYN flooding on port 443. Sending cookies.  Check SNMP counters.',
  'EXT4-fs (nvme1n1): re-mounted. Opts: (null)',
];

interface Slot {
  host: string;
  text: string;
}

export function generateLog(lineCount: number, day: Date, seed = 20260313): GeneratedLog {
  const next = random(seed);
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
  for (let index = 0; index < lineCount; index++) {
    const slot = slots[index];
    if (slot !== undefined) {
      text[index] = slot.text;
      continue;
    }
    const host = HOSTS[Math.floor(next() * HOSTS.length)] as string;
    const kernel = next() < 0.08 && !isBusy(host, index);
    const body = kernel
      ? `kernel: ${host === 'web-03' ? '[2000000.000001] ' : ''}${KERNEL_NOISE[Math.floor(next() * KERNEL_NOISE.length)]}`
      : NOISE[Math.floor(next() * NOISE.length)];
    text[index] = `${stamp(index)} ${host} ${body}`;
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
    expected: { groups: expectedGroups, ignored: { 'not-kernel': placedLookAlikes, unrelated: placedLoose } },
    tableFullLines: bursts * 10 + placedLookAlikes,
  };
}
