import { describe, expect, it } from 'vitest';
import { DetectionSession, type DropGroup } from '../../../functions/core/detect/index.js';
import {
  FACTS_1_4,
  journalEntry,
  KERNEL_6_18_NETNS,
  SEED_000_KERNEL_TAGGED,
  SEED_001_KEEPALIVED,
  SEED_001_MESSAGES,
  SEED_002_KERNEL_TAGGED,
  SEED_003_DMESG,
  THIRD_PARTY,
} from './real-lines.js';

const now = new Date('2026-11-21T12:00:00Z');

function detectLines(lines: string[], options: { defaultHost?: string } = {}) {
  const session = new DetectionSession({ now, ...options });
  for (const line of lines) session.textLine(line);
  return session.report();
}

function group(partial: Partial<DropGroup> & Pick<DropGroup, 'host'>): DropGroup {
  return {
    netns: null,
    kind: 'table-full',
    dropLines: 0,
    suppressed: 0,
    firstSeen: null,
    lastSeen: null,
    ...partial,
  };
}

describe('detection over real incident logs', () => {
  it('seed 001: four drop lines and 30+31+358 suppressed, the last suppression line after the last drop', () => {
    expect(detectLines([...SEED_001_MESSAGES, ...SEED_001_KEEPALIVED])).toEqual({
      groups: [
        group({
          host: 'fashion',
          dropLines: 4,
          suppressed: 419,
          firstSeen: '2026-03-13T20:21:45.000Z',
          lastSeen: '2026-03-13T20:21:59.000Z',
        }),
      ],
      ignored: { 'not-kernel': 0, unrelated: 0, unreadable: 0 },
    });
  });

  it('seed 002: ip_conntrack lines with printk suppression, header cut off, host from --host', () => {
    expect(detectLines(SEED_002_KERNEL_TAGGED, { defaultHost: 'web-7' })).toEqual({
      groups: [group({ host: 'web-7', dropLines: 3, suppressed: 3 })],
      ignored: { 'not-kernel': 0, unrelated: 0, unreadable: 0 },
    });
  });

  it('seed 003: dmesg lines, no wall time, localhost by default', () => {
    expect(detectLines(SEED_003_DMESG)).toEqual({
      groups: [group({ host: 'localhost', dropLines: 11, suppressed: 1367 })],
      ignored: { 'not-kernel': 0, unrelated: 0, unreadable: 0 },
    });
  });

  it('seed 000 and the facts 1.4 forms, one per host', () => {
    const report = detectLines([
      SEED_000_KERNEL_TAGGED,
      FACTS_1_4.dmesgDoubledPrefix,
      FACTS_1_4.dmesgT,
      FACTS_1_4.rhelMessages,
      FACTS_1_4.debianKernLog,
      FACTS_1_4.rsyslogFileFormat,
      THIRD_PARTY.hotsos,
    ]);
    expect(report.groups).toEqual([
      group({
        host: 'localhost',
        dropLines: 4,
        firstSeen: '2018-11-20T22:30:22.000Z',
        lastSeen: '2018-11-20T22:30:22.000Z',
      }),
      group({
        host: 'host',
        dropLines: 1,
        firstSeen: '2026-03-13T20:21:45.000Z',
        lastSeen: '2026-03-13T20:21:45.000Z',
      }),
      group({
        host: 'jobs',
        dropLines: 1,
        firstSeen: '2026-02-23T16:44:36.000Z',
        lastSeen: '2026-02-23T16:44:36.000Z',
      }),
      group({
        host: 'hostname',
        dropLines: 1,
        firstSeen: '2019-02-25T03:45:03.778Z',
        lastSeen: '2019-02-25T03:45:03.778Z',
      }),
    ]);
  });

  it('keeps namespaces and kinds apart: the grouping key is host + netns + kind', () => {
    const report = detectLines([
      'Mar 13 20:00:00 node-1 kernel: nf_conntrack: nf_conntrack: table full in netns 4026532177, dropping packet',
      'Mar 13 20:00:01 node-1 kernel: nf_conntrack: nf_conntrack: table full in netns 4026532246, dropping packet',
      'Mar 13 20:00:02 node-1 kernel: nf_conntrack: nf_conntrack: table full, dropping packet',
      'Mar 13 20:00:03 node-1 kernel: nf_conntrack: nf_conntrack: expectation table full',
      'Mar 13 20:00:04 node-2 kernel: nf_conntrack: nf_conntrack: table full in netns 4026532177, dropping packet',
      'Mar 13 20:00:05 node-1 kernel: nf_conntrack: nf_conntrack: table full in netns 4026532177, dropping packet',
    ]);
    expect(report.groups.map((g) => [g.host, g.netns, g.kind, g.dropLines])).toEqual([
      ['node-1', '4026532177', 'table-full', 2],
      ['node-1', '4026532246', 'table-full', 1],
      ['node-1', null, 'table-full', 1],
      ['node-1', null, 'expect-table-full', 1],
      ['node-2', '4026532177', 'table-full', 1],
    ]);
  });

  it('reads the lab kernel namespace line in every dmesg form', () => {
    const lines = [
      KERNEL_6_18_NETNS.dmesg,
      KERNEL_6_18_NETNS.dmesgT,
      KERNEL_6_18_NETNS.dmesgIso,
      KERNEL_6_18_NETNS.dmesgDecoded,
      KERNEL_6_18_NETNS.dmesgRaw,
    ];
    expect(detectLines(lines).groups).toEqual([
      group({
        host: 'localhost',
        netns: KERNEL_6_18_NETNS.inode,
        dropLines: 5,
        firstSeen: '2026-11-22T00:11:22.000Z',
        lastSeen: '2026-11-22T00:11:22.176Z',
      }),
    ]);
  });
});

describe('only kernel lines count', () => {
  it('counts look-alikes from other programs as not-kernel and never as drops', () => {
    const report = detectLines([
      'Mar 13 20:21:45 cache-01 app[311]: nf_conntrack: table full, dropping packet',
      'Mar 13 20:21:45 cache-01 logger: kernel: nf_conntrack: table full, dropping packet',
      '<12>1 2026-03-13T20:21:45Z cache-01 kernel - - - net_ratelimit: 4 callbacks suppressed',
      'user  :warn  : [  926.176737] nf_conntrack: table full, dropping packet',
      'Mar 13 20:21:46 cache-01 sshd[12]: Accepted publickey for deploy',
    ]);
    expect(report).toEqual({ groups: [], ignored: { 'not-kernel': 4, unrelated: 0, unreadable: 0 } });
  });

  it('does not let a non-kernel line break the attribution of a suppression line', () => {
    const report = detectLines([
      'Mar 13 20:21:45 cache-01 kernel: net_ratelimit: 40 callbacks suppressed',
      'Mar 13 20:21:45 cache-01 nginx[90]: upstream timed out',
      'Mar 13 20:21:46 cache-01 kernel: nf_conntrack: nf_conntrack: table full, dropping packet',
    ]);
    expect(report.groups[0]).toMatchObject({ dropLines: 1, suppressed: 40 });
  });
});

describe('the suppression attribution rule', () => {
  const drop = (host: string, netns?: string) =>
    `Mar 13 20:21:45 ${host} kernel: nf_conntrack: nf_conntrack: table full${netns ? ` in netns ${netns}` : ''}, dropping packet`;
  const suppressed = (host: string, count: number) =>
    `Mar 13 20:21:45 ${host} kernel: net_ratelimit: ${count} callbacks suppressed`;
  const otherKernel = (host: string) =>
    `Mar 13 20:21:45 ${host} kernel: IPv4: martian source 10.0.0.1 from 10.0.0.2`;

  const cases: [
    string,
    string[],
    { groups: [string, string | null, number, number][]; unrelated: number },
  ][] = [
    [
      'next kernel line of the host is a drop: goes to that group',
      [drop('a', '1'), suppressed('a', 5), drop('a', '2')],
      {
        groups: [
          ['a', '1', 1, 0],
          ['a', '2', 1, 5],
        ],
        unrelated: 0,
      },
    ],
    [
      'next kernel line is not a drop, previous one was: goes to the previous group',
      [drop('a', '1'), suppressed('a', 5), otherKernel('a'), drop('a', '2')],
      {
        groups: [
          ['a', '1', 1, 5],
          ['a', '2', 1, 0],
        ],
        unrelated: 0,
      },
    ],
    [
      'neither: unrelated',
      [drop('a'), otherKernel('a'), suppressed('a', 5), otherKernel('a'), drop('a')],
      { groups: [['a', null, 2, 0]], unrelated: 1 },
    ],
    [
      'at the end of the input, the previous drop line takes it',
      [drop('a'), suppressed('a', 7)],
      { groups: [['a', null, 1, 7]], unrelated: 0 },
    ],
    [
      'lines of other hosts in between do not count',
      [suppressed('a', 5), drop('b'), otherKernel('b'), drop('a')],
      {
        groups: [
          ['b', null, 1, 0],
          ['a', null, 1, 5],
        ],
        unrelated: 0,
      },
    ],
    [
      "another host's drop before it does not count",
      [drop('b'), suppressed('a', 5), otherKernel('a')],
      { groups: [['b', null, 1, 0]], unrelated: 1 },
    ],
    [
      'two suppression lines in a row: the first one looks back, the second one forward',
      [drop('a', '1'), suppressed('a', 3), suppressed('a', 4), drop('a', '2')],
      {
        groups: [
          ['a', '1', 1, 3],
          ['a', '2', 1, 4],
        ],
        unrelated: 0,
      },
    ],
    [
      'two suppression lines with nothing around: both unrelated',
      [suppressed('a', 3), suppressed('a', 4)],
      { groups: [], unrelated: 2 },
    ],
  ];
  it.each(cases)('%s', (_name, lines, expected) => {
    const report = detectLines(lines);
    expect(report.groups.map((g) => [g.host, g.netns, g.dropLines, g.suppressed])).toEqual(expected.groups);
    expect(report.ignored.unrelated).toBe(expected.unrelated);
  });

  it('widens firstSeen/lastSeen with the suppression lines attributed to the group', () => {
    const report = detectLines([
      'Mar 13 20:21:40 a kernel: __ratelimit: 3 callbacks suppressed',
      'Mar 13 20:21:45 a kernel: nf_conntrack: table full, dropping packet.',
      'Mar 13 20:21:59 a kernel: __ratelimit: 9 callbacks suppressed',
    ]);
    expect(report.groups[0]).toMatchObject({
      firstSeen: '2026-03-13T20:21:40.000Z',
      lastSeen: '2026-03-13T20:21:59.000Z',
      suppressed: 12,
    });
  });
});

describe('journalctl -o json entries', () => {
  function detectJson(values: unknown[]) {
    const session = new DetectionSession({ now });
    for (const value of values) session.jsonValue(value);
    return session.report();
  }

  it('counts kernel-transport entries, with _HOSTNAME and the realtime microseconds', () => {
    const report = detectJson([
      JSON.parse(
        journalEntry({
          message: 'net_ratelimit: 12 callbacks suppressed',
          realtimeMicros: '1773433305123456',
        }),
      ),
      JSON.parse(
        journalEntry({
          message: 'nf_conntrack: nf_conntrack: table full in netns 4026532177, dropping packet',
          realtimeMicros: '1773433306999999',
        }),
      ),
    ]);
    expect(report).toEqual({
      groups: [
        group({
          host: 'ip-10-0-1-17',
          netns: '4026532177',
          dropLines: 1,
          suppressed: 12,
          firstSeen: '2026-03-13T20:21:45.123Z',
          lastSeen: '2026-03-13T20:21:46.999Z',
        }),
      ],
      ignored: { 'not-kernel': 0, unrelated: 0, unreadable: 0 },
    });
  });

  it('ignores the same text from a non-kernel transport (syslog, stdout) as not-kernel', () => {
    const report = detectJson([
      JSON.parse(
        journalEntry({
          message: 'nf_conntrack: table full, dropping packet',
          transport: 'syslog',
          identifier: 'kernel',
        }),
      ),
      JSON.parse(journalEntry({ message: 'nf_conntrack: table full, dropping packet', transport: 'stdout' })),
    ]);
    expect(report).toEqual({ groups: [], ignored: { 'not-kernel': 2, unrelated: 0, unreadable: 0 } });
  });

  it('decodes a MESSAGE journald stored as bytes', () => {
    const bytes = [...Buffer.from('nf_conntrack: table full, dropping packet')];
    const report = detectJson([JSON.parse(journalEntry({ message: bytes }))]);
    expect(report.groups).toHaveLength(1);
  });

  it('refuses objects that are neither journald entries nor CloudWatch payloads, and bad timestamps', () => {
    const session = new DetectionSession({ now });
    expect(session.jsonValue({ hello: 'world' })).toEqual([
      expect.stringMatching(/neither a journald entry/),
    ]);
    expect(session.jsonValue(42)).toEqual([expect.stringMatching(/expected a JSON object/)]);
    expect(session.jsonValue({ MESSAGE: 'x', __REALTIME_TIMESTAMP: 'yesterday' })).toEqual([
      expect.stringMatching(/__REALTIME_TIMESTAMP/),
    ]);
    expect(session.jsonValue([[{ MESSAGE: 'x' }]])).toEqual([expect.stringMatching(/array inside an array/)]);
  });
});

describe('lines that say how often the line before them was repeated', () => {
  // The repeat lines' format is syslogd's (real ones in real-world.ts, LKML samples); the drop
  // lines around them are seed 001's.
  const [suppression, drop] = SEED_001_MESSAGES as [string, string];
  const repeat = (count: number, host = 'fashion') =>
    `Mar 13 20:21:46 ${host} last message repeated ${count} times`;

  it.each([
    ['a drop line repeated: N more drop lines', [drop, repeat(40)], [['fashion', 41, 0]], 0],
    [
      'a suppression line repeated, then a drop: the last one goes forward, the others have nothing',
      [drop, suppression, repeat(3), drop],
      [['fashion', 2, 60]],
      2,
    ],
    ["another host's line is not repeated", [drop, repeat(5, 'other')], [['fashion', 1, 0]], 0],
    [
      "a program's line repeated changes nothing",
      [drop, SEED_001_KEEPALIVED[0] as string, repeat(7)],
      [['fashion', 1, 0]],
      0,
    ],
    ['with nothing before it, nothing', [repeat(9)], [], 0],
    ['two repeat lines in a row both repeat the drop', [drop, repeat(2), repeat(3)], [['fashion', 6, 0]], 0],
  ] as [string, string[], [string, number, number][], number][])('%s', (_name, lines, groups, unrelated) => {
    const report = detectLines(lines);
    expect(report.groups.map((g) => [g.host, g.dropLines, g.suppressed])).toEqual(groups);
    expect(report.ignored.unrelated).toBe(unrelated);
  });

  it("reads rsyslog's `message repeated N times: [ … ]` as N of the message, by the line's own tag", () => {
    const report = detectLines([
      'Mar 13 20:21:45 cache-01 kernel: message repeated 3 times: [ nf_conntrack: table full, dropping packet]',
      'Mar 13 20:21:45 cache-01 app[1]: message repeated 2 times: [ nf_conntrack: table full, dropping packet]',
    ]);
    expect(report.groups).toEqual([expect.objectContaining({ host: 'cache-01', dropLines: 3 })]);
    expect(report.ignored['not-kernel']).toBe(1);
  });
});

describe('lines whose timestamp is not a real time', () => {
  function session() {
    const detection = new DetectionSession({ now });
    detection.beginInput();
    return detection;
  }

  it('refuses a `last message repeated` line of an impossible date: named, its drops unreadable, never counted', () => {
    const detection = session();
    expect(
      detection.textLine('Mar 13 20:21:45 web kernel: nf_conntrack: table full, dropping packet'),
    ).toBeNull();
    expect(detection.textLine('Feb 30 20:21:46 web last message repeated 5 times')).toMatch(
      /^refused: its timestamp is not a real time/,
    );
    expect(detection.report()).toMatchObject({
      groups: [expect.objectContaining({ host: 'web', dropLines: 1 })],
      ignored: { 'not-kernel': 0, unrelated: 0, unreadable: 1 },
    });
  });

  it('names a kernel line of an impossible date without drop text only when it would have settled an attribution', () => {
    const detection = session();
    // web has no state: the line changes nothing, whether it is read or not.
    expect(detection.textLine('Feb 30 20:21:44 web kernel: eth0: link becomes ready')).toBeNull();
    expect(
      detection.textLine('Mar 13 20:21:45 web kernel: net_ratelimit: 7 callbacks suppressed'),
    ).toBeNull();
    // Now web's suppression line waits for its next kernel line: this one cannot be used.
    expect(detection.textLine('Feb 30 20:21:46 web kernel: eth0: link becomes ready')).toMatch(/^refused: /);
    expect(
      detection.textLine('Mar 13 20:21:47 web kernel: nf_conntrack: table full, dropping packet'),
    ).toBeNull();
    expect(detection.report().groups).toEqual([
      expect.objectContaining({ host: 'web', dropLines: 1, suppressed: 7 }),
    ]);
  });
});

describe('lines without any header', () => {
  it("are the kernel's in an input whose first line has no header either (dmesg -t, journalctl -k -o cat)", () => {
    const session = new DetectionSession({ now, defaultHost: 'db-1' });
    session.beginInput();
    for (const line of ['nf_conntrack: table full, dropping packet', 'net_ratelimit: 4 callbacks suppressed'])
      expect(session.textLine(line)).toBeNull();
    expect(session.report().groups).toEqual([group({ host: 'db-1', dropLines: 1, suppressed: 4 })]);
  });

  it('are named, not counted, in a syslog file: nobody can tell who wrote them', () => {
    const session = new DetectionSession({ now });
    session.beginInput();
    expect(session.textLine(SEED_001_KEEPALIVED[0] as string)).toBeNull();
    expect(session.textLine('nf_conntrack: table full, dropping packet')).toMatch(/without a log header/);
    expect(session.report()).toMatchObject({ groups: [], ignored: { unreadable: 1 } });
  });
});

describe('kernel lines with drop text in a wording detect does not know', () => {
  it.each([
    'Mar 13 20:21:45 h kernel: nf_conntrack: table full in netns 40265',
    'Mar 13 20:21:45 h kernel: nf_conntrack: table full, dropping packets now',
    'Mar 13 20:21:45 h kernel: net_ratelimit: 99999999999999999999 callbacks suppressed',
  ])('are named and counted unreadable: %s', (line) => {
    const session = new DetectionSession({ now });
    session.beginInput();
    expect(session.textLine(line)).toMatch(/wording detect does not know/);
    expect(session.report()).toMatchObject({ groups: [], ignored: { unreadable: 1 } });
  });

  it('accept a drop line cut short by the paste anywhere in ", dropping packet."', () => {
    const cut = ['', ',', ', dro', ', dropping', ', dropping packet', ', dropping packet.'];
    const report = detectLines(
      cut.map((tail) => `Mar 13 20:21:45 h kernel: nf_conntrack: table full${tail}`),
    );
    expect(report.groups).toEqual([expect.objectContaining({ dropLines: cut.length })]);
  });

  it("read the old NET suppression line and OpenVZ's per-container drop line", () => {
    const report = detectLines([
      'Mar 13 20:21:45 vz kernel: NET: 12 messages suppressed.',
      'Mar 13 20:21:45 vz kernel: ip_conntrack: VPS 101 table full, dropping packet.',
    ]);
    expect(report.groups).toEqual([
      expect.objectContaining({ host: 'vz', netns: 'VPS 101', dropLines: 1, suppressed: 12 }),
    ]);
  });
});
