/**
 * Kernel logs pasted by strangers, verbatim: the damage of the paste included (wrapped lines,
 * cut-off headers, indentation, redacted ids). Each sample says where it comes from and what
 * detect must make of it. real-world.test.ts runs every one through the command line.
 */

export interface RealWorldSample {
  readonly name: string;
  /** Where the text was pasted (public URL, or the mailing-list Message-ID). */
  readonly source: string;
  readonly text: string;
  /** `--host` for lines that name none. */
  readonly host?: string;
  readonly expected: {
    /** [host, netns, kind, drop lines, suppressed] per group, in order. */
    readonly groups: [string, string | null, string, number, number][];
    readonly notKernel?: number;
    readonly unrelated?: number;
    /** Line numbers named on standard error (unreadable lines). */
    readonly named?: number[];
    /** firstSeen/lastSeen of the first group, when the format carries wall-clock time. */
    readonly span?: [string, string];
  };
}

/** Reference time for year-less lines (the samples are read as of this date). */
export const READ_AT = '2026-11-21T00:00:00Z';

export const REAL_WORLD_SAMPLES: RealWorldSample[] = [
  {
    name: 'Debian kern.log wrapped by the paste after "table full," with the first header cut mid-host',
    source: 'https://github.com/wballard/starphleet/pull/352',
    text: `obs kernel: [38775494.392631] nf_conntrack: table full, dropping packet
Feb 23 16:44:36 jobs kernel: [38775494.393661] nf_conntrack: table full,
dropping packet
Feb 23 16:44:36 jobs kernel: [38775494.494836] nf_conntrack: table full,
dropping packet
Feb 23 16:44:36 jobs kernel: [38775494.495169] nf_conntrack: table full,
dropping packet
Feb 23 16:44:36 jobs kernel: [38775494.495196] nf_conntrack: table full,
dropping packet
`,
    expected: {
      groups: [
        ['obs', null, 'table-full', 1, 0],
        ['jobs', null, 'table-full', 4, 0],
      ],
    },
  },
  {
    name: 'router syslog without a host name (RFC 3164 as asuswrt-merlin writes it): expectation table full',
    source: 'https://github.com/gnuton/asuswrt-merlin.ng/issues/207',
    host: 'tuf-ax5400',
    text: `Jul  3 10:07:53 kernel: nf_conntrack: expectation table full
Jul  3 10:07:53 kernel: nf_conntrack: expectation table full
Jul  3 10:07:53 kernel: nf_conntrack: expectation table full
Jul  3 10:07:53 kernel: nf_conntrack: expectation table full
Jul  3 10:07:53 kernel: nf_conntrack: expectation table full
Jul  3 10:07:53 kernel: nf_conntrack: expectation table full
Jul  3 10:07:56 kernel: nf_conntrack: expectation table full
Jul  3 10:07:56 kernel: nf_conntrack: expectation table full
Jul  3 10:07:56 kernel: nf_conntrack: expectation table full
Jul  3 10:07:56 kernel: nf_conntrack: expectation table full
Jul  3 10:08:00 kernel: nf_conntrack: expectation table full
Jul  3 10:08:00 kernel: nf_conntrack: expectation table full
Jul  3 10:08:00 kernel: nf_conntrack: expectation table full
Jul  3 10:08:00 kernel: nf_conntrack: expectation table full
Jul  3 10:08:00 kernel: nf_conntrack: expectation table full
Jul  3 10:08:00 kernel: nf_conntrack: expectation table full
Jul  3 10:08:00 kernel: nf_conntrack: expectation table full
Jul  3 10:08:00 kernel: nf_conntrack: expectation table full
Jul  3 10:08:00 kernel: nf_conntrack: expectation table full
Jul  3 10:08:00 kernel: nf_conntrack: expectation table full
`,
    expected: {
      groups: [['tuf-ax5400', null, 'expect-table-full', 20, 0]],
      span: ['2026-07-03T10:07:53.000Z', '2026-07-03T10:08:00.000Z'],
    },
  },
  {
    name: 'dmesg -T on CentOS 7 (kernel 3.10)',
    source: 'https://github.com/kubernetes/kubernetes/issues/71261',
    text: `[Tue Nov 20 22:30:22 2018] nf_conntrack: table full, dropping packet
[Tue Nov 20 22:30:27 2018] nf_conntrack: table full, dropping packet
[Tue Nov 20 22:30:27 2018] nf_conntrack: table full, dropping packet
[Tue Nov 20 22:30:27 2018] nf_conntrack: table full, dropping packet
`,
    expected: {
      groups: [['localhost', null, 'table-full', 4, 0]],
      span: ['2018-11-20T22:30:22.000Z', '2018-11-20T22:30:27.000Z'],
    },
  },
  {
    name: 'Ubuntu kern.log line with its header cut off',
    source: 'https://github.com/canonical/hotsos/issues/101',
    text: 'kernel: [1694413.644132] nf_conntrack: nf_conntrack: table full, dropping packet\n',
    expected: { groups: [['localhost', null, 'table-full', 1, 0]] },
  },
  {
    name: 'plain dmesg without timestamps (CentOS 6.3): lines counted, times unknown',
    source:
      'https://github.com/s905060/site-reliability-engineer-handbook (centos_nf_conntrack__table_full,_dropping_packet.md)',
    host: 'centos6',
    text: `nf_conntrack: table full, dropping packet.
nf_conntrack: table full, dropping packet.
nf_conntrack: table full, dropping packet.
`,
    expected: { groups: [['centos6', null, 'table-full', 3, 0]] },
  },
  {
    name: 'plain dmesg line pasted as an indented block with a trailing blank',
    source:
      'https://github.com/alucard-Arutoria/alucard-arutoria.github.io (docs/net/iptables-and-nf_conntrack.md)',
    text: '    nf_conntrack: table full, dropping packet \n',
    expected: { groups: [['localhost', null, 'table-full', 1, 0]] },
  },
  {
    name: 'dmesg of an Ubuntu 12.04 Xen host: a net_ratelimit line, then ten drop lines',
    source: 'https://sobrelinux.info/questions/662353/nf-conntrack-complaints-in-dmesg',
    text: `[11458852.811070] net_ratelimit: 321 callbacks suppressed
[11458852.811075] nf_conntrack: table full, dropping packet.
[11458852.819957] nf_conntrack: table full, dropping packet.
[11458852.821083] nf_conntrack: table full, dropping packet.
[11458852.822195] nf_conntrack: table full, dropping packet.
[11458852.824987] nf_conntrack: table full, dropping packet.
[11458852.825298] nf_conntrack: table full, dropping packet.
[11458852.825891] nf_conntrack: table full, dropping packet.
[11458852.826225] nf_conntrack: table full, dropping packet.
[11458852.826234] nf_conntrack: table full, dropping packet.
[11458852.826814] nf_conntrack: table full, dropping packet.
`,
    expected: { groups: [['localhost', null, 'table-full', 10, 321]] },
  },
  {
    name: 'dmesg with both spellings of the period and a __ratelimit line after the burst',
    source:
      'http://www.pc-freak.net/blog/resolving-nf_conntrack-table-full-dropping-packet-flood-message-in-dmesg-linux-kernel-log/',
    text: `[1737157.057528] nf_conntrack: table full, dropping packet.
[1737157.160357] nf_conntrack: table full, dropping packet.
[1737157.260534] nf_conntrack: table full, dropping packet.
[1737157.361837] nf_conntrack: table full, dropping packet.
[1737157.462305] nf_conntrack: table full, dropping packet.
[1737157.564270] nf_conntrack: table full, dropping packet.
[1737157.666836] nf_conntrack: table full, dropping packet.
[1737157.767348] nf_conntrack: table full, dropping packet.
[1737157.868338] nf_conntrack: table full, dropping packet.
[1737157.969828] nf_conntrack: table full, dropping packet.
[1737157.969928] nf_conntrack: table full, dropping packet
[1737157.989828] nf_conntrack: table full, dropping packet
[1737162.214084] __ratelimit: 83 callbacks suppressed
`,
    expected: { groups: [['localhost', null, 'table-full', 12, 83]] },
  },
  {
    name: 'Ubuntu Hardy FTP server dmesg',
    source:
      'Ubuntu Forums, Server Platforms, "nf_conntrack: table full, dropping packet." (post by Innom, 2009-04-14)',
    text: `[475756.276021] nf_conntrack: table full, dropping packet.
[475759.309583] nf_conntrack: table full, dropping packet.
[475780.272422] nf_conntrack: table full, dropping packet.
[475812.177179] nf_conntrack: table full, dropping packet.
[475833.140108] nf_conntrack: table full, dropping packet.
[475871.111512] nf_conntrack: table full, dropping packet.
[475875.127547] nf_conntrack: table full, dropping packet.
`,
    expected: { groups: [['localhost', null, 'table-full', 7, 0]] },
  },
  {
    name: 'syslog lines with their time cut off, a net_ratelimit line between drops',
    source: 'https://devopsaitoolkit.com/blog/linux-error-nf-conntrack-table-full/',
    text: `kernel: nf_conntrack: nf_conntrack: table full, dropping packet
kernel: nf_conntrack: nf_conntrack: table full, dropping packet
kernel: nf_conntrack: nf_conntrack: table full, dropping packet
kernel: net_ratelimit: 4063 callbacks suppressed
kernel: nf_conntrack: nf_conntrack: table full, dropping packet
kernel: nf_conntrack: nf_conntrack: table full, dropping packet
`,
    expected: { groups: [['localhost', null, 'table-full', 5, 4063]] },
  },
  {
    name: 'Cumulus Linux /var/log/syslog in RSYSLOG_FileFormat',
    source:
      'https://docs.nvidia.com/networking-ethernet-software/knowledge-base/Configuration-and-Usage/Administration/hostname-kernel-nf-conntrack-table-full-dropping-packet-error/',
    text: `2019-02-25T03:45:03.778502+00:00 hostname kernel: [20763743.334180] nf_conntrack: table full, dropping packet
2019-02-25T03:45:03.785333+00:00 hostname kernel: [20763743.340564] nf_conntrack: table full, dropping packet
2019-02-25T03:45:03.787758+00:00 hostname kernel: [20763743.343469] nf_conntrack: table full, dropping packet
`,
    expected: {
      groups: [['hostname', null, 'table-full', 3, 0]],
      span: ['2019-02-25T03:45:03.778Z', '2019-02-25T03:45:03.787Z'],
    },
  },
  {
    name: "OpenVZ /var/log/messages: the container's table, its id redacted by the author, time cut off",
    source: 'https://techytrois.com/?p=2192',
    text: `host kernel: ip_conntrack: VPS xxx table full, dropping packet.
host kernel: ip_conntrack: VPS xxx table full, dropping packet.
`,
    expected: { groups: [['host', 'VPS xxx', 'table-full', 2, 0]] },
  },
  {
    name: 'Red Hat 7.1 (kernel 2.4.7): "NET: N messages suppressed." and "last message repeated", no conntrack drop',
    source: 'LKML, Message-ID <01072820231401.01125@mercury.snydernet.lan> (lore.kernel.org/lkml)',
    text: `Jul 28 19:47:44 sunburn kernel: Neighbour table overflow.
Jul 28 19:47:44 sunburn last message repeated 9 times
Jul 28 19:47:49 sunburn kernel: NET: 53 messages suppressed.
Jul 28 19:47:49 sunburn kernel: Neighbour table overflow.
Jul 28 19:48:07 sunburn kernel: NET: 21 messages suppressed.
Jul 28 19:48:07 sunburn kernel: Neighbour table overflow.
Jul 28 19:48:09 sunburn last message repeated 3 times
Jul 28 19:48:14 sunburn kernel: NET: 4 messages suppressed.
Jul 28 19:48:14 sunburn kernel: Neighbour table overflow.
`,
    expected: { groups: [], unrelated: 3 },
  },
  {
    name: 'kernel 2.4.2: a run of "NET: N messages suppressed." lines with no drop line near them',
    source: 'LKML, Message-ID <3A9C6620.F380491@neopets.com> (lore.kernel.org/lkml)',
    text: `Feb 23 19:40:23 www136 kernel: NET: 486 messages suppressed.
Feb 23 19:40:29 www136 kernel: NET: 858 messages suppressed.
Feb 23 19:40:33 www136 kernel: NET: 879 messages suppressed.
Feb 23 19:40:38 www136 kernel: NET: 983 messages suppressed.
Feb 23 19:40:43 www136 kernel: NET: 1296 messages suppressed.
Feb 23 19:40:49 www136 kernel: NET: 1780 messages suppressed.
Feb 23 19:40:53 www136 kernel: NET: 1378 messages suppressed.
Feb 23 19:40:58 www136 kernel: NET: 246 messages suppressed.
Feb 23 19:41:04 www136 kernel: NET: 173 messages suppressed.
Feb 23 19:41:09 www136 kernel: NET: 32 messages suppressed.
Feb 23 19:42:32 www136 kernel: NET: 37 messages suppressed.
`,
    expected: { groups: [], unrelated: 11 },
  },
  {
    name: 'kernel 2.4.23 masquerading: repeats and NET suppression lines around another message',
    source: 'LKML, Message-ID <20031202173358.GK615@gaast.net> (lore.kernel.org/lkml)',
    text: `Dec  2 16:42:30 tosca kernel: MASQUERADE: Route sent us somewhere else.
Dec  2 16:42:44 tosca last message repeated 11 times
Dec  2 16:42:47 tosca kernel: NET: 1 messages suppressed.
Dec  2 16:42:47 tosca kernel: MASQUERADE: Route sent us somewhere else.
Dec  2 16:42:51 tosca kernel: NET: 5 messages suppressed.
Dec  2 16:42:51 tosca kernel: MASQUERADE: Route sent us somewhere else.
Dec  2 16:42:57 tosca kernel: NET: 4 messages suppressed.
Dec  2 16:42:57 tosca kernel: MASQUERADE: Route sent us somewhere else.
`,
    expected: { groups: [], unrelated: 3 },
  },
  {
    name: 'kernel 2.4.23-pre1, the same lines quoted in a reply (`> ` before every line)',
    source:
      'LKML, reply quoting Message-Id <200308280850.h7S8oxGx001862@pc.skynet.be> (lore.kernel.org/lkml)',
    text: `>Aug 28 10:45:44 pc kernel: MASQUERADE: No route: Rusty's brain broke!
>Aug 28 10:46:10 pc last message repeated 13 times
>Aug 28 10:48:42 pc kernel: NET: 1 messages suppressed.
>Aug 28 10:48:42 pc kernel: MASQUERADE: No route: Rusty's brain broke!
>Aug 28 10:48:43 pc kernel: MASQUERADE: Route sent us somewhere else.
`,
    expected: { groups: [], unrelated: 1 },
  },
];
