/**
 * Real log lines, verbatim, with where each comes from. Tests build their inputs from these
 * instead of inventing the kernel's wording.
 */

/** Seed 001 (keepalived incident, RHEL 6 `/var/log/messages`); the `.........` elisions left out. */
export const SEED_001_MESSAGES = [
  'Mar 13 20:21:45 fashion kernel: __ratelimit: 30 callbacks suppressed',
  'Mar 13 20:21:45 fashion kernel: nf_conntrack: table full, dropping packet.',
  'Mar 13 20:21:45 fashion kernel: nf_conntrack: table full, dropping packet.',
  'Mar 13 20:21:52 fashion kernel: __ratelimit: 31 callbacks suppressed',
  'Mar 13 20:21:52 fashion kernel: nf_conntrack: table full, dropping packet.',
  'Mar 13 20:21:52 fashion kernel: nf_conntrack: table full, dropping packet.',
  'Mar 13 20:21:59 fashion kernel: __ratelimit: 358 callbacks suppressed',
];

/** Seed 001: keepalived's own lines of the same file (not kernel, not conntrack). */
export const SEED_001_KEEPALIVED = [
  'Mar 13 20:36:49 fashion Keepalived_healthcheckers[25717]: TCP connection to [192.168.XX.XX]:3908 failed !!!',
  'Mar 13 20:36:49 fashion Keepalived[25715]: Stopping Keepalived v1.2.7 (04/03,2014)',
  'Mar 13 20:36:49 fashion Keepalived_vrrp[25718]: VRRP_Instance(VI_1) sending 0 priority',
];

/** Seed 002 (CentOS 5, ip_conntrack), as the author copied them: the syslog header cut off. */
export const SEED_002_KERNEL_TAGGED = [
  'kernel: ip_conntrack: table full, dropping packet.',
  'kernel: printk: 1 messages suppressed.',
  'kernel: ip_conntrack: table full, dropping packet.',
  'kernel: printk: 2 messages suppressed.',
  'kernel: ip_conntrack: table full, dropping packet.',
];

/** Seed 000 (redis host, `/var/log/messages`, header cut off). */
export const SEED_000_KERNEL_TAGGED = 'kernel: nf_conntrack: table full, dropping packet.';

/** Seed 003 (CentOS 7, kernel 3.10), `dmesg` output. */
export const SEED_003_DMESG = [
  '[27772673.752270] nf_conntrack: table full, dropping packet',
  '[27772678.728802] net_ratelimit: 1367 callbacks suppressed',
  '[27772678.728809] nf_conntrack: table full, dropping packet',
  '[27772678.728857] nf_conntrack: table full, dropping packet',
  '[27772678.729754] nf_conntrack: table full, dropping packet',
  '[27772678.732953] nf_conntrack: table full, dropping packet',
  '[27772678.733410] nf_conntrack: table full, dropping packet',
  '[27772678.734449] nf_conntrack: table full, dropping packet',
  '[27772678.740774] nf_conntrack: table full, dropping packet',
  '[27772678.742810] nf_conntrack: table full, dropping packet',
  '[27772678.743280] nf_conntrack: table full, dropping packet',
  '[27772678.746589] nf_conntrack: table full, dropping packet',
  '[27783682.308966] sysctl (13991): drop_caches: 3',
  '[27786553.698652] sysctl (2160): drop_caches: 3',
];

/** Reference notes §1.4 (each quoted from a public report, source named there). */
export const FACTS_1_4 = {
  dmesgDoubledPrefix: '[27772673.752270] nf_conntrack: nf_conntrack: table full, dropping packet',
  dmesgT: '[Tue Nov 20 22:30:22 2018] nf_conntrack: table full, dropping packet',
  rhelMessages: 'Mar 13 20:21:45 host kernel: nf_conntrack: nf_conntrack: table full, dropping packet',
  debianKernLog: 'Feb 23 16:44:36 jobs kernel: [38775494.393661] nf_conntrack: table full, dropping packet',
  rsyslogFileFormat:
    '2019-02-25T03:45:03.778502+00:00 hostname kernel: [20763743.334180] nf_conntrack: table full, dropping packet',
};

/** Reference notes §1.1/§1.2 third-party samples. */
export const THIRD_PARTY = {
  /** canonical/hotsos#101 */
  hotsos: 'kernel: [1694413.644132] nf_conntrack: nf_conntrack: table full, dropping packet',
  /** security.stackexchange #43205 (RHEL 6) */
  ratelimitRhel6: 'kernel: __ratelimit: 15812 callbacks suppressed',
  /** a dmesg sample of a modern kernel */
  netRatelimit: '[104243.800401] net_ratelimit: 3939 callbacks suppressed',
};

/**
 * This project's lab machine (kernel 6.18), a namespace filled by a lab test: the same record
 * printed by `dmesg`, `dmesg -T`, `dmesg --time-format iso`, `dmesg -x` and `dmesg -r`.
 */
export const KERNEL_6_18_NETNS = {
  inode: '4026532246',
  dmesg: '[  926.176737] nf_conntrack: nf_conntrack: table full in netns 4026532246, dropping packet',
  dmesgT:
    '[Sun Nov 22 00:11:22 2026] nf_conntrack: nf_conntrack: table full in netns 4026532246, dropping packet',
  dmesgIso:
    '2026-11-22T00:11:22,176737+00:00 nf_conntrack: nf_conntrack: table full in netns 4026532246, dropping packet',
  dmesgDecoded:
    'kern  :warn  : [  926.176737] nf_conntrack: nf_conntrack: table full in netns 4026532246, dropping packet',
  dmesgRaw: '<4>[  926.176737] nf_conntrack: nf_conntrack: table full in netns 4026532246, dropping packet',
};

/**
 * `journalctl -k -o json` entry of a kernel message: the fields journald stores for
 * `_TRANSPORT=kernel` records (systemd.journal-fields(7)), one JSON object per line.
 */
export function journalEntry(fields: {
  message: string | number[];
  transport?: string;
  hostname?: string;
  realtimeMicros?: string;
  identifier?: string;
}): string {
  return JSON.stringify({
    __CURSOR:
      's=6f1f1a0e8e0a4f4b9c7f7c1f3f5d2a10;i=1a2b;b=0b4c2a3f9e8d4c7ba1f2e3d4c5b6a798;m=3727b4a1;t=62d5b2a1c3e40;x=5d1c0a7e2f3b4c9d',
    __REALTIME_TIMESTAMP: fields.realtimeMicros ?? '1773433305123456',
    __MONOTONIC_TIMESTAMP: '925201569',
    _BOOT_ID: '0b4c2a3f9e8d4c7ba1f2e3d4c5b6a798',
    _SOURCE_MONOTONIC_TIMESTAMP: '925135020',
    _TRANSPORT: fields.transport ?? 'kernel',
    PRIORITY: '4',
    SYSLOG_FACILITY: '0',
    SYSLOG_IDENTIFIER: fields.identifier ?? 'kernel',
    MESSAGE: fields.message,
    _MACHINE_ID: '3d1e2f4a5b6c7d8e9f0a1b2c3d4e5f60',
    _HOSTNAME: fields.hostname ?? 'ip-10-0-1-17',
    _RUNTIME_SCOPE: 'system',
  });
}

/**
 * One event as the CloudWatch agent's journald collector ships it: the OpenTelemetry CloudWatch
 * Logs exporter (`raw_log` unset) writes the journal entry's fields under `body`, beside the
 * record's resource, attributes and severity. The shape is read from the agent's source
 * (aws/amazon-cloudwatch-agent, translator/translate/otel/exporter/journald), not observed from a
 * live agent; the fields inside `body` are those of `journalEntry` above.
 */
export function agentJournaldEvent(fields: Parameters<typeof journalEntry>[0]): string {
  return JSON.stringify({
    body: JSON.parse(journalEntry(fields)),
    resource: { 'host.id': 'i-0a1b2c3d4e5f67890', 'cloud.provider': 'aws' },
    attributes: {},
    severity_number: 13,
    severity_text: 'WARN',
  });
}

/**
 * journalctl (systemd 252) on this project's lab machine (kernel 6.18, host name `vm`), the same
 * kernel record and a journald record in each output format; journald ran in a private mount
 * namespace, reading /dev/kmsg.
 */
export const JOURNALCTL_6_18 = {
  shortMonotonic:
    '[    1.231727] vm kernel: EXT4-fs (vda): mounted filesystem 00000000-0000-0000-0000-000000000000 r/w without journal. Quota mode: none.',
  shortMonotonicProgram: '[ 5173.924139] vm systemd-journald[7852]: Journal started',
  shortUnix:
    '1796474827.393375 vm kernel: EXT4-fs (vda): mounted filesystem 00000000-0000-0000-0000-000000000000 r/w without journal. Quota mode: none.',
  shortFull:
    'Sat 2026-12-05 12:47:07 UTC vm kernel: EXT4-fs (vda): mounted filesystem 00000000-0000-0000-0000-000000000000 r/w without journal. Quota mode: none.',
  shortIso:
    '2026-12-05T12:47:07+0000 vm kernel: EXT4-fs (vda): mounted filesystem 00000000-0000-0000-0000-000000000000 r/w without journal. Quota mode: none.',
  shortPrecise:
    'Dec 05 12:47:07.393375 vm kernel: EXT4-fs (vda): mounted filesystem 00000000-0000-0000-0000-000000000000 r/w without journal. Quota mode: none.',
  cat: 'EXT4-fs (vda): mounted filesystem 00000000-0000-0000-0000-000000000000 r/w without journal. Quota mode: none.',
  /** Ubuntu's /var/log/dmesg is written with --dmesg --no-hostname: no host. */
  monotonicNoHostname: '[    1.218514] kernel: random: crng reseeded due to virtual machine fork',
};

/**
 * OpenWrt `logread` lines quoted in the message of the ath11k patch that became Linux commit
 * d673cb6fe6c03b2be157cc6c5db40481828d282d (https://git.kernel.org/torvalds/c/d673cb6fe6c0), and
 * the next line as quoted in a reply on linux-wireless (`> ` before it).
 */
export const OPENWRT_LOGREAD = [
  'Wed Jun  1 22:19:30 2022 kern.warn kernel: [  119.561227] ath11k c000000.wifi: peer already added vdev id 0 req, vdev id 1 present',
  '> Wed Jun  1 22:19:30 2022 kern.warn kernel: [  119.561282] ath11k c000000.wifi: Failed to add peer: 28:c2:1f:xx:xx:xx for VDEV: 0',
];

/**
 * busybox syslogd (`host facility.level tag: …`) with the printk caller id (`[   T45]`) after the
 * kernel time, from a syzbot report of Linux 6.14.0-syzkaller-13423-ga8662bcd2ff1 (the mail's
 * quoted-printable soft line break `=` left in, as pasted).
 */
export const BUSYBOX_CALLER_ID =
  'Apr  5 20:58:43 syzkaller kern.warn kernel: [  173.269550][   T45] Call Tra=';
