/**
 * A small seeded generator of kernel logs: every format detect reads, drop and suppression lines
 * among other programs' lines and unrelated kernel lines, and the damage copy-paste and transport
 * do to them. A failing case is replayed from its seed. The kernel's wording comes from the real
 * lines in real-lines.ts and the reference notes; the formats from real samples (real-world.ts).
 */

/** mulberry32: deterministic, so a failing seed can be replayed. */
export function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let value = state;
    value = Math.imul(value ^ (value >>> 15), value | 1);
    value ^= value + Math.imul(value ^ (value >>> 7), value | 61);
    return ((value ^ (value >>> 14)) >>> 0) / 4294967296;
  };
}

export function pick<T>(next: () => number, items: readonly T[]): T {
  return items[Math.floor(next() * items.length)] as T;
}

const HOSTS = ['web-01', 'web-02', 'cache-01', 'höst-ü', 'i-0a1b2c3d4e5f67890'];

/** Drop messages in every spelling (reference notes §1, OpenVZ, kernels >= 6.17). */
export const DROP_BODIES = [
  'nf_conntrack: table full, dropping packet.',
  'nf_conntrack: table full, dropping packet',
  'nf_conntrack: nf_conntrack: table full, dropping packet',
  'nf_conntrack: nf_conntrack: table full in netns 4026532177, dropping packet',
  'ip_conntrack: table full, dropping packet.',
  'ip_conntrack: VPS 101 table full, dropping packet.',
  'nf_conntrack: expectation table full',
  'nf_conntrack: nf_conntrack: expectation table full',
];

/** Suppression messages; `count` replaces N. */
export function suppressionBody(next: () => number, count: number): string {
  return pick(next, [
    `net_ratelimit: ${count} callbacks suppressed`,
    `__ratelimit: ${count} callbacks suppressed`,
    `printk: ${count} messages suppressed.`,
    `NET: ${count} messages suppressed.`,
  ]);
}

const KERNEL_NOISE = [
  'IPv4: martian source 10.0.0.1 from 10.0.0.2, on dev eth0',
  'eth0: renamed from veth1234',
  'audit: type=1400 audit(1773433305.123:42): apparmor="DENIED" operation="open" profile="/usr/sbin/nginx"',
  'e1000e: eth0 NIC Link is Up 1000 Mbps Full Duplex, Flow Control: Rx/Tx',
  'IPv4: 12 callbacks suppressed',
  'nf_conntrack: falling back to vmalloc.',
  // `full` that is no drop phrase: the scanner's search must not stop at these, nor lose them.
  'tg3 0000:02:00.0 eth1: Link is up at 1000 Mbps, full duplex',
  'EXT4-fs warning (device nvme0n1p1): ext4_dx_add_entry:2461: Directory (ino: 1048) index full, reached max htree level :2',
];

const PROGRAM_NOISE = [
  'sshd[1234]: Accepted publickey for deploy from 10.0.0.5 port 51234 ssh2',
  'CRON[2211]: (root) CMD (/usr/lib64/sa/sa1 1 1)',
  'systemd[1]: Started fully automatic backups.',
];

export interface GeneratedLine {
  readonly text: string;
  /** The body is a drop or suppression message the kernel wrote (before any damage). */
  readonly kernelPhrase: boolean;
}

/**
 * One line: a body (a drop, a suppression, other kernel text, or another program's copy of the
 * kernel's words) in one of the formats, for one host.
 */
function formatted(next: () => number, host: string, body: string, kernel: boolean, second: number): string {
  const ss = String(second % 60).padStart(2, '0');
  const secs = `${String(920 + (second % 50)).padStart(5, ' ')}.${String(176737 + second).slice(-6)}`;
  if (!kernel) {
    return pick(next, [
      `Mar 13 20:21:${ss} ${host} app[311]: upstream says ${body}`,
      `Mar 13 20:21:${ss} ${host} logger: kernel: ${body}`,
      `<12>1 2026-03-13T20:21:${ss}Z ${host} kernel - - - ${body}`,
      `[${secs}] ${host} kernel[4242]: ${body}`,
      `Fri 2026-03-13 20:21:${ss} UTC ${host} kernel[77]: ${body}`,
      `user  :warn  : [${secs}] ${body}`,
      `Mar 13 20:21:${ss} ${host} user.notice root: ${body}`,
    ]);
  }
  return pick(next, [
    `Mar 13 20:21:${ss} ${host} kernel: ${body}`,
    `Mar 13 20:21:${ss} ${host} kernel: [${secs}] ${body}`,
    `Mar  3 20:21:${ss} kernel: ${body}`,
    `Mar 13 20:21:${ss} ${host} kern.warn kernel: [${secs}] ${body}`,
    `Fri Mar 13 20:21:${ss} 2026 kern.warn kernel: [${secs}] ${body}`,
    `2026-03-13T20:21:${ss}.5+00:00 ${host} kernel: ${body}`,
    `<4>1 2026-03-13T20:21:${ss}Z ${host} kernel - - - ${body}`,
    `Fri 2026-03-13 20:21:${ss} UTC ${host} kernel: ${body}`,
    `17734333${String(second).padStart(2, '0')}.123456 ${host} kernel: ${body}`,
    `[${secs}] ${host} kernel: ${body}`,
    `[${secs}] kernel: ${body}`,
    `[${secs}] ${body}`,
    `[${secs}][  T1${second % 10}] ${body}`,
    `<4>[${secs}] ${body}`,
    `<4>${body}`,
    `kern  :warn  : [${secs}] ${body}`,
    `[Fri Mar 13 20:21:${ss} 2026] ${body}`,
    `2026-03-13T20:21:${ss},176737+00:00 ${body}`,
    `kernel: ${body}`,
    `${host} kernel: ${body}`,
  ]);
}

/** Copy-paste and transport damage, applied to some lines. */
function damaged(next: () => number, text: string): string[] {
  const roll = next();
  if (roll < 0.55) return [text];
  const cut = Math.floor(next() * text.length);
  if (roll < 0.62) return [`${pick(next, ['    ', '\t', ' \u00a0', '\u00a0\u00a0'])}${text}`];
  if (roll < 0.66) return [`${pick(next, ['> ', '> > ', '>> '])}${text}`];
  if (roll < 0.72) return [text.slice(0, cut)]; // cut short
  if (roll < 0.78) return [text.slice(0, cut), text.slice(cut)]; // wrapped in two
  if (roll < 0.82) return [`${text}${pick(next, ['  ', ' \t', '\u00a0'])}`];
  if (roll < 0.86)
    return [
      `${text.slice(0, cut)}${pick(next, ['\u001b[31m', '\u0007', '\u009b2J', '\ufffd'])}${text.slice(cut)}`,
    ];
  if (roll < 0.89) return [`# ${text}`];
  if (roll < 0.92) return [text.replace(/ {2}/, ' ')]; // `Mar  3` collapsed by a renderer
  if (roll < 0.95) return [text.replaceAll(' ', '\u00a0')];
  return [`${text.slice(0, cut)}${text.slice(cut + 1 + Math.floor(next() * 5))}`]; // bytes lost
}

export interface GeneratedLog {
  readonly lines: string[];
  /** Suppression counts are 1 when `unitSuppressions` (so suppressed totals count lines). */
  readonly unitSuppressions: boolean;
}

/**
 * A log of `count` lines mixing hosts, formats and damage. With `unitSuppressions` every
 * suppression line says N = 1, so a report's suppressed totals count suppression lines; with
 * `repeats`, syslogd and rsyslog repeat lines are mixed in.
 */
export function generateLog(
  seed: number,
  count: number,
  options: { unitSuppressions?: boolean; repeats?: boolean; firstLine?: 'syslog' | 'dmesg' | 'any' } = {},
): GeneratedLog {
  const next = random(seed);
  const unit = options.unitSuppressions ?? false;
  const lines: string[] = [];
  if (options.firstLine === 'syslog')
    lines.push('Mar 13 20:20:00 web-01 systemd[1]: Starting Journal Service...');
  if (options.firstLine === 'dmesg') lines.push('[    0.000000] Linux version 6.18.0 (builder@localhost)');
  for (let index = 0; lines.length < count; index++) {
    const host = pick(next, HOSTS);
    const roll = next();
    let body: string;
    let kernel = true;
    if (roll < 0.2) body = pick(next, DROP_BODIES);
    else if (roll < 0.32) body = suppressionBody(next, unit ? 1 : 1 + Math.floor(next() * 5000));
    else if (roll < 0.5) body = pick(next, KERNEL_NOISE);
    else if (roll < 0.6) {
      body = next() < 0.5 ? pick(next, DROP_BODIES) : suppressionBody(next, 1);
      kernel = false;
    } else if (roll < 0.66) {
      lines.push(pick(next, DROP_BODIES)); // a bare message (dmesg -t, journalctl -o cat, or damage)
      continue;
    } else if (roll < 0.7) {
      lines.push(next() < 0.5 ? '' : '   ');
      continue;
    } else if (roll < 0.74 && options.repeats) {
      lines.push(
        next() < 0.5
          ? `Mar 13 20:21:45 ${host} last message repeated ${1 + Math.floor(next() * 40)} times`
          : `Mar 13 20:21:45 ${host} kernel: message repeated ${1 + Math.floor(next() * 9)} times: [ ${pick(next, DROP_BODIES)}]`,
      );
      continue;
    } else {
      lines.push(`Mar 13 20:21:${String(index % 60).padStart(2, '0')} ${host} ${pick(next, PROGRAM_NOISE)}`);
      continue;
    }
    lines.push(...damaged(next, formatted(next, host, body, kernel, index)));
  }
  return { lines: lines.slice(0, count), unitSuppressions: unit };
}

/**
 * The test's own definition of "a line that carries a drop or suppression phrase" (the issue's
 * words, written apart from the detector's): the kernel's prefixes with "table full", and the
 * rate-limit lines with a count.
 */
export function carriesPhrase(line: string): boolean {
  // A no-break space where the kernel printed a space is still its phrase (copied from a web page).
  return /(?:ip|nf)_conntrack: (?:nf_conntrack: )?(?:VPS \S+ )?(?:expectation )?table full|(?:printk|NET): \d+ messages suppressed|(?:__ratelimit|net_ratelimit): \d+ callbacks suppressed/.test(
    line.replaceAll('\u00a0', ' '),
  );
}
