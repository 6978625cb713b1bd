import { describe, expect, it } from 'vitest';
import { classifyKernelMessage, type KernelMessage } from '../../../functions/core/detect/messages.js';
import { type LogLine, parseTextLine } from '../../../functions/core/detect/text-line.js';
import {
  BUSYBOX_CALLER_ID,
  FACTS_1_4,
  JOURNALCTL_6_18,
  KERNEL_6_18_NETNS,
  OPENWRT_LOGREAD,
  SEED_001_MESSAGES,
  SEED_003_DMESG,
  THIRD_PARTY,
} from './real-lines.js';

const context = { referenceTimeMs: Date.parse('2026-11-21T12:00:00Z') };

describe('classifyKernelMessage: every spelling real kernels printed', () => {
  const cases: [string, KernelMessage | null][] = [
    ['ip_conntrack: table full, dropping packet.', { type: 'drop', kind: 'table-full', netns: null }],
    ['nf_conntrack: table full, dropping packet.', { type: 'drop', kind: 'table-full', netns: null }],
    ['nf_conntrack: table full, dropping packet', { type: 'drop', kind: 'table-full', netns: null }],
    [
      'nf_conntrack: nf_conntrack: table full, dropping packet',
      { type: 'drop', kind: 'table-full', netns: null },
    ],
    [
      'nf_conntrack: nf_conntrack: table full in netns 4026532177, dropping packet',
      { type: 'drop', kind: 'table-full', netns: '4026532177' },
    ],
    [
      '[  926.176737] nf_conntrack: nf_conntrack: table full in netns 4026532246, dropping packet',
      { type: 'drop', kind: 'table-full', netns: '4026532246' },
    ],
    ['nf_conntrack: expectation table full', { type: 'drop', kind: 'expect-table-full', netns: null }],
    [
      'nf_conntrack: nf_conntrack: expectation table full',
      { type: 'drop', kind: 'expect-table-full', netns: null },
    ],
    ['printk: 1 messages suppressed.', { type: 'suppression', count: 1 }],
    ['__ratelimit: 15812 callbacks suppressed', { type: 'suppression', count: 15812 }],
    ['net_ratelimit: 3939 callbacks suppressed', { type: 'suppression', count: 3939 }],
    ['[104243.800401] net_ratelimit: 3939 callbacks suppressed', { type: 'suppression', count: 3939 }],
    // printk caller ids (CONFIG_PRINTK_CALLER) between the timestamp and the text
    [
      '[  5.000001][ T1234] nf_conntrack: table full, dropping packet',
      { type: 'drop', kind: 'table-full', netns: null },
    ],
    // Look-alikes that are not these messages
    ['nf_conntrack: falling back to vmalloc.', null],
    ['IPv4: 12 callbacks suppressed', null],
    ['nf_conntrack: table full, dropping packet because reasons', null],
    ['the table full of nf_conntrack: table full, dropping packet', null],
    ['nf_conntrack version 0.5.0 (65536 buckets, 262144 max)', null],
    ['net_ratelimit: many callbacks suppressed', null],
  ];
  it.each(cases)('%s', (message, expected) => {
    expect(classifyKernelMessage(message)).toEqual(expected);
  });
});

describe('parseTextLine: formats', () => {
  const cases: [string, string, Partial<LogLine>][] = [
    [
      'RFC 3164 /var/log/messages (seed 001)',
      SEED_001_MESSAGES[1] as string,
      {
        format: 'rfc3164',
        host: 'fashion',
        kernel: true,
        timeMs: Date.parse('2026-03-13T20:21:45Z'),
        message: 'nf_conntrack: table full, dropping packet.',
      },
    ],
    [
      'rsyslog kern.log with the kernel timestamp (facts 1.4)',
      FACTS_1_4.debianKernLog,
      {
        format: 'rfc3164',
        host: 'jobs',
        kernel: true,
        timeMs: Date.parse('2026-02-23T16:44:36Z'),
        message: '[38775494.393661] nf_conntrack: table full, dropping packet',
      },
    ],
    [
      'RSYSLOG_FileFormat (facts 1.4)',
      FACTS_1_4.rsyslogFileFormat,
      {
        format: 'syslog-iso',
        host: 'hostname',
        kernel: true,
        timeMs: Date.parse('2019-02-25T03:45:03.778Z'),
      },
    ],
    [
      'journalctl -o short-iso with a zone offset',
      '2026-03-13T21:21:45+0100 cache-01 kernel: nf_conntrack: table full, dropping packet',
      { format: 'syslog-iso', host: 'cache-01', kernel: true, timeMs: Date.parse('2026-03-13T20:21:45Z') },
    ],
    [
      'journalctl -o short-precise, single-digit day',
      'Mar  3 20:21:45.250000 cache-01 kernel: nf_conntrack: table full, dropping packet',
      { format: 'rfc3164', host: 'cache-01', kernel: true, timeMs: Date.parse('2026-03-03T20:21:45.250Z') },
    ],
    [
      'RFC 5424 kernel line',
      '<4>1 2026-03-13T20:21:45.123456Z cache-01 kernel - - - nf_conntrack: table full, dropping packet',
      { format: 'rfc5424', host: 'cache-01', kernel: true, timeMs: Date.parse('2026-03-13T20:21:45.123Z') },
    ],
    [
      'RFC 5424 with structured data and a BOM',
      '<4>1 2026-03-13T20:21:45+02:00 cache-01 kernel - - [meta sequenceId="1" note="a \\] b"] \uFEFFnet_ratelimit: 5 callbacks suppressed',
      {
        format: 'rfc5424',
        kernel: true,
        timeMs: Date.parse('2026-03-13T18:21:45Z'),
        message: 'net_ratelimit: 5 callbacks suppressed',
      },
    ],
    [
      'RFC 5424 from a program calling itself kernel with facility user',
      '<12>1 2026-03-13T20:21:45Z cache-01 kernel - - - nf_conntrack: table full, dropping packet',
      { format: 'rfc5424', kernel: false },
    ],
    [
      'RFC 5424 from another program',
      '<14>1 2026-03-13T20:21:45Z cache-01 app 311 - - nf_conntrack: table full, dropping packet',
      { format: 'rfc5424', kernel: false },
    ],
    [
      'another program copying the text (issue 2)',
      'Mar 13 20:21:45 cache-01 app[311]: nf_conntrack: table full, dropping packet',
      { format: 'rfc3164', kernel: false, message: 'nf_conntrack: table full, dropping packet' },
    ],
    [
      'a program tagged kernel with a pid is not the kernel',
      'Mar 13 20:21:45 cache-01 kernel[311]: nf_conntrack: table full, dropping packet',
      { format: 'rfc3164', kernel: false },
    ],
    [
      'dmesg raw (seed 003)',
      SEED_003_DMESG[0] as string,
      { format: 'dmesg', host: null, kernel: true, timeMs: null },
    ],
    [
      'dmesg -T (facts 1.4)',
      FACTS_1_4.dmesgT,
      { format: 'dmesg-ctime', host: null, kernel: true, timeMs: Date.parse('2018-11-20T22:30:22Z') },
    ],
    [
      'dmesg -T on this lab kernel',
      KERNEL_6_18_NETNS.dmesgT,
      { format: 'dmesg-ctime', kernel: true, timeMs: Date.parse('2026-11-22T00:11:22Z') },
    ],
    [
      'dmesg --time-format iso on this lab kernel',
      KERNEL_6_18_NETNS.dmesgIso,
      { format: 'dmesg-iso', host: null, kernel: true, timeMs: Date.parse('2026-11-22T00:11:22.176Z') },
    ],
    ['dmesg -x on this lab kernel', KERNEL_6_18_NETNS.dmesgDecoded, { format: 'dmesg', kernel: true }],
    ['dmesg -r on this lab kernel', KERNEL_6_18_NETNS.dmesgRaw, { format: 'dmesg', kernel: true }],
    [
      'dmesg -x: a userspace write to /dev/kmsg',
      'user  :warn  : [  926.176737] nf_conntrack: table full, dropping packet',
      { format: 'dmesg', kernel: false },
    ],
    [
      'dmesg -r: a userspace write to /dev/kmsg (facility user)',
      '<12>[  926.176737] nf_conntrack: table full, dropping packet',
      { format: 'dmesg', kernel: false },
    ],
    [
      'header cut off (hotsos)',
      THIRD_PARTY.hotsos,
      { format: 'kernel-tag', host: null, kernel: true, timeMs: null },
    ],
    // Formats added for issue 10, on real lines.
    [
      'OpenWrt logread (Linux commit d673cb6fe6c0)',
      OPENWRT_LOGREAD[0] as string,
      {
        format: 'logread',
        host: null,
        kernel: true,
        timeMs: Date.parse('2022-06-01T22:19:30Z'),
        tagged: true,
      },
    ],
    [
      'OpenWrt logread quoted in a mail reply',
      OPENWRT_LOGREAD[1] as string,
      { format: 'logread', kernel: true, timeMs: Date.parse('2022-06-01T22:19:30Z') },
    ],
    [
      'busybox syslogd with the printk caller id (syzbot)',
      BUSYBOX_CALLER_ID,
      { format: 'rfc3164', host: 'syzkaller', kernel: true, message: '[  173.269550][   T45] Call Tra=' },
    ],
    [
      'journalctl -o short-monotonic (lab machine)',
      JOURNALCTL_6_18.shortMonotonic,
      { format: 'journal-monotonic', host: 'vm', kernel: true, timeMs: null, tagged: true },
    ],
    [
      'journalctl -o short-monotonic, a program with a pid',
      JOURNALCTL_6_18.shortMonotonicProgram,
      { format: 'journal-monotonic', host: 'vm', kernel: false },
    ],
    [
      "Ubuntu's /var/log/dmesg (short-monotonic --no-hostname)",
      JOURNALCTL_6_18.monotonicNoHostname,
      {
        format: 'journal-monotonic',
        host: null,
        kernel: true,
        message: 'random: crng reseeded due to virtual machine fork',
      },
    ],
    [
      'journalctl -o short-unix (lab machine)',
      JOURNALCTL_6_18.shortUnix,
      { format: 'journal-unix', host: 'vm', kernel: true, timeMs: 1796474827393 },
    ],
    [
      'journalctl -o short-full (lab machine)',
      JOURNALCTL_6_18.shortFull,
      { format: 'journal-full', host: 'vm', kernel: true, timeMs: Date.parse('2026-12-05T12:47:07Z') },
    ],
    [
      'journalctl -o short-iso (lab machine)',
      JOURNALCTL_6_18.shortIso,
      { format: 'syslog-iso', host: 'vm', kernel: true, timeMs: Date.parse('2026-12-05T12:47:07Z') },
    ],
    [
      'journalctl -o short-precise with a zero-padded day (lab machine)',
      JOURNALCTL_6_18.shortPrecise,
      // Year-less: a December line read on 2026-11-21 belongs to the year before.
      { format: 'rfc3164', host: 'vm', kernel: true, timeMs: Date.parse('2025-12-05T12:47:07.393Z') },
    ],
    [
      'journalctl -o cat (lab machine): no header at all',
      JOURNALCTL_6_18.cat,
      { format: 'bare', kernel: false },
    ],
    [
      'RFC 3164 without a host name (router firmware)',
      'Jul  3 10:07:53 kernel: nf_conntrack: expectation table full',
      { format: 'rfc3164', host: null, kernel: true, message: 'nf_conntrack: expectation table full' },
    ],
    [
      'a zone journalctl names only by abbreviation: no time, not a refusal',
      'Sat 2026-12-05 13:47:07 CET vm kernel: x',
      { format: 'journal-full', timeMs: null, refused: null, kernel: true },
    ],
    [
      'a program calling itself kernel through the journal (logger -t kernel shows its pid)',
      '[ 5173.924139] vm kernel[4242]: nf_conntrack: table full, dropping packet',
      { format: 'journal-monotonic', kernel: false },
    ],
    [
      'busybox: the kernel tag with another facility is not the kernel',
      'Jun  4 09:24:12 alpine user.warn kernel: nf_conntrack: table full, dropping packet',
      { format: 'rfc3164', host: 'alpine', kernel: false },
    ],
    [
      'no-break spaces and indentation from a web page',
      '\u00a0\u00a0Mar\u00a013 20:21:45 cache-01 kernel: nf_conntrack: table full, dropping packet',
      {
        format: 'rfc3164',
        host: 'cache-01',
        kernel: true,
        message: 'nf_conntrack: table full, dropping packet',
      },
    ],
    [
      "rsyslog's repeat line for the kernel",
      'Mar 13 20:21:45 cache-01 kernel: message repeated 3 times: [ nf_conntrack: table full, dropping packet]',
      { kernel: true, times: 3, message: 'nf_conntrack: table full, dropping packet' },
    ],
    [
      "syslogd's repeat line",
      'Aug 28 10:46:10 pc last message repeated 13 times',
      { host: 'pc', kernel: false, repeatsPrevious: 13 },
    ],
  ];
  it.each(cases)('%s', (_name, line, expected) => {
    expect(parseTextLine(line, context)).toMatchObject(expected);
  });

  it("calls a line in no known format bare, and never the kernel's by itself", () => {
    for (const line of ['nf_conntrack: table full, dropping packet', 'hello world', '', '{"MESSAGE":"x"}']) {
      expect(parseTextLine(line, context)).toMatchObject({ format: 'bare', kernel: false, host: null });
    }
  });

  it.each([
    'Feb 30 10:00:00 h kernel: x',
    '2026-13-01T00:00:00Z h kernel: x',
    '2026-03-13T25:00:00+00:00 h kernel: x',
    '[Mon Feb 30 10:00:00 2026] x',
    '<4>1 2026-02-30T00:00:00Z h kernel - - - x',
    'Fri Feb 30 10:00:00 2026 kern.warn kernel: x',
    'Fri 2026-02-30 10:00:00 UTC h kernel: x',
    '999999999999.123456 h kernel: x',
  ])('refuses a line whose timestamp is not a real time: %s', (line) => {
    expect(parseTextLine(line, context)).toMatchObject({
      timeMs: null,
      refused: expect.stringMatching(/not a real time/),
    });
  });

  it('gives a year-less line the reference year, or the year before when it would lie in the future', () => {
    const january = { referenceTimeMs: Date.parse('2027-01-01T00:00:05Z') };
    expect(parseTextLine('Dec 31 23:59:59 h kernel: x', january)?.timeMs).toBe(
      Date.parse('2026-12-31T23:59:59Z'),
    );
    expect(parseTextLine('Jan  1 00:00:01 h kernel: x', january)?.timeMs).toBe(
      Date.parse('2027-01-01T00:00:01Z'),
    );
    expect(parseTextLine('Mar 13 20:21:45 h kernel: x', context)?.timeMs).toBe(
      Date.parse('2026-03-13T20:21:45Z'),
    );
    const afterLeapYear = { referenceTimeMs: Date.parse('2025-01-02T00:00:00Z') };
    expect(parseTextLine('Feb 29 10:00:00 h kernel: x', afterLeapYear)?.timeMs).toBe(
      Date.parse('2024-02-29T10:00:00Z'),
    );
  });
});
