import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type DiagnosticsReport,
  DiagnosticsReportSchema,
} from '../../../functions/core/diagnostics/report.js';
import { type ExecResult, execFile } from '../../../functions/local/exec.js';
import { loadRunbook } from '../../../functions/local/runbooks.js';

/**
 * The collect-diagnostics script's own logic on a synthetic table: CONNTRACK_RESPONDER_PROC_NET
 * points it at fixture files instead of /proc/net, so the parsing, the aggregates and the size
 * bound are checked exactly, without root or a namespace (the script only reads). 127.0.0.1 is the
 * local address every host has. The lab tests run the same script against the real kernel.
 */

const SCRIPT = fileURLToPath(new URL('../../../runbooks/scripts/collect-diagnostics.sh', import.meta.url));
const conntrackLoaded = existsSync('/proc/sys/net/netfilter/nf_conntrack_max');
if (!conntrackLoaded && process.env.CI === 'true') {
  throw new Error(
    'nf_conntrack is not loaded under CI=true: load it (modprobe nf_conntrack) to run these tests',
  );
}

let work: string;

async function runScript(env: Record<string, string>): Promise<ExecResult> {
  return execFile('bash', [SCRIPT], {
    env: { SSM_SampleSeconds: '1', CONNTRACK_RESPONDER_ROOT: join(work, 'empty-root'), ...env },
    allowFailure: true,
    timeoutMs: 60_000,
  });
}

async function report(procNet: string, env: Record<string, string> = {}): Promise<DiagnosticsReport> {
  const result = await runScript({ CONNTRACK_RESPONDER_PROC_NET: procNet, ...env });
  expect(result.code, result.stderr).toBe(0);
  expect(result.stdout.length).toBeLessThan(24_000);
  return DiagnosticsReportSchema.parse(JSON.parse(result.stdout));
}

/** One logical entry; rendered in /proc/net/nf_conntrack or `conntrack -L` format. */
interface Entry {
  readonly l3?: 'ipv4' | 'ipv6';
  readonly l4: string;
  readonly l4num: number;
  readonly state?: string;
  readonly src: string;
  readonly dst: string;
  readonly sport?: number;
  readonly dport?: number;
  readonly flags?: string;
}

function render(entry: Entry, format: 'proc' | 'tool'): string {
  const prefix = format === 'proc' ? `${entry.l3 ?? 'ipv4'}     ${entry.l3 === 'ipv6' ? 10 : 2} ` : '';
  const tuple = (src: string, dst: string, sport?: number, dport?: number) =>
    sport === undefined
      ? `src=${src} dst=${dst} type=8 code=0 id=7`
      : `src=${src} dst=${dst} sport=${sport} dport=${dport}`;
  return [
    `${prefix}${entry.l4.padEnd(8)} ${entry.l4num} 117`,
    entry.state,
    tuple(entry.src, entry.dst, entry.sport, entry.dport),
    entry.flags === '[UNREPLIED]' ? '[UNREPLIED]' : undefined,
    tuple(entry.dst, entry.src, entry.dport, entry.sport),
    entry.flags === '[ASSURED]' ? '[ASSURED]' : undefined,
    'mark=0',
    format === 'proc' ? 'zone=0' : undefined,
    'use=1',
  ]
    .filter((part) => part !== undefined)
    .join(' ');
}

const times = (count: number, make: (index: number) => Entry): Entry[] =>
  Array.from({ length: count }, (_, i) => make(i));

const ENTRIES: Entry[] = [
  // This host as a client of a cache tier (seed 004): short connections left in TIME_WAIT.
  ...times(5, (i) => ({
    l4: 'tcp',
    l4num: 6,
    state: 'TIME_WAIT',
    src: '127.0.0.1',
    dst: '10.9.9.9',
    sport: 40000 + i,
    dport: 11211,
    flags: '[ASSURED]',
  })),
  ...times(3, (i) => ({
    l4: 'tcp',
    l4num: 6,
    state: 'ESTABLISHED',
    src: '127.0.0.1',
    dst: '10.9.9.8',
    sport: 41000 + i,
    dport: 5432,
    flags: '[ASSURED]',
  })),
  ...times(2, (i) => ({
    l4: 'udp',
    l4num: 17,
    src: '127.0.0.1',
    dst: '10.9.9.9',
    sport: 42000 + i,
    dport: 53,
    flags: '[UNREPLIED]',
  })),
  {
    l3: 'ipv6',
    l4: 'udp',
    l4num: 17,
    src: '127.0.0.1',
    dst: '2001:0db8:0000:0000:0000:0000:0000:0001',
    sport: 43000,
    dport: 53,
    flags: '[UNREPLIED]',
  },
  { l4: 'udp', l4num: 17, src: '127.0.0.1', dst: '10.9.9.7', sport: 44000, dport: 123, flags: '[ASSURED]' },
  { l4: 'icmp', l4num: 1, src: '127.0.0.1', dst: '10.9.9.9' },
  // Inbound to a port nothing listens on, and a flow routed through the host.
  ...times(2, (i) => ({
    l4: 'tcp',
    l4num: 6,
    state: 'SYN_RECV',
    src: '10.7.7.7',
    dst: '127.0.0.1',
    sport: 45000 + i,
    dport: 1,
  })),
  { l4: 'tcp', l4num: 6, state: 'ESTABLISHED', src: '10.5.5.5', dst: '10.6.6.6', sport: 1234, dport: 80 },
];

const GARBAGE = ['this is not "an entry" \\ \u0001', 'ipv4 2 tcp'];

async function fixture(name: string, files: Record<string, string>): Promise<string> {
  const directory = join(work, name);
  await mkdir(join(directory, 'stat'), { recursive: true });
  for (const [file, content] of Object.entries(files)) await writeFile(join(directory, file), content);
  return directory;
}

const STAT =
  'entries  clashres found new invalid ignore delete chainlength insert insert_failed drop early_drop icmp_error  expect_new expect_create expect_delete search_restart\n' +
  '0000000d  00000000 00000001 00000000 00000002 00000000 00000000 00000000 00000000 00000003 00000010 00000004 00000000  00000000 00000000 00000000 00000001\n' +
  '0000000d  00000000 00000001 00000000 00000002 00000000 00000000 00000000 00000000 00000003 00000020 0000000a 00000000  00000000 00000000 00000000 00000001\n';

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'ctr-diag-unit-'));
  await mkdir(join(work, 'empty-root'));
});
afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

describe('collect-diagnostics document', () => {
  it('fits in an SSM document (64 KB, script spliced in) with room to spare', async () => {
    const { document } = await loadRunbook('collect-diagnostics');
    expect(JSON.stringify(document).length).toBeLessThan(60_000);
  });
});

describe('collect-diagnostics script: parameters', () => {
  it.each([
    ['SSM_TopN', '0'],
    ['SSM_TopN', '51'],
    ['SSM_SampleSeconds', '60'],
    ['SSM_SampleSeconds', '3; reboot'],
  ])('refuses %s=%s with a message and no JSON', async (name, value) => {
    const result = await runScript({ [name]: value });
    expect(result.code).toBe(1);
    expect(result.stdout).toBe('');
    expect(result.stderr).toContain(name.replace('SSM_', ''));
  });
});

describe.skipIf(!conntrackLoaded)('collect-diagnostics script on a synthetic table', () => {
  let proc: DiagnosticsReport;
  let tool: DiagnosticsReport;
  let old: DiagnosticsReport;

  beforeAll(async () => {
    const procTable = [...ENTRIES.map((entry) => render(entry, 'proc')), ...GARBAGE].join('\n');
    const toolTable = ENTRIES.map((entry) => render(entry, 'tool')).join('\n');
    [proc, tool, old] = await Promise.all([
      report(await fixture('proc', { nf_conntrack: `${procTable}\n`, 'stat/nf_conntrack': STAT })),
      report(await fixture('tool', { nf_conntrack: `${toolTable}\n`, 'stat/nf_conntrack': STAT })),
      // Kernels with only the old ip_conntrack compat file.
      report(await fixture('old', { ip_conntrack: `${toolTable}\n`, 'stat/nf_conntrack': STAT })),
    ]);
  });

  it('counts every entry and names the lines it could not parse', () => {
    expect(proc.table).toMatchObject({ source: 'procfs', entries: ENTRIES.length, unparsed: GARBAGE.length });
    expect(proc.table.flows).toEqual({ inboundToListener: 0, inboundOther: 2, outbound: 13, forwarded: 1 });
    expect(proc.table.approximate).toBe(false);
  });

  it('sums the per-CPU hex counters by column name, without summing entries', () => {
    expect(proc.conntrack.stats.first).toMatchObject({
      entries: 13,
      drop: 0x30,
      early_drop: 0x0e,
      insert_failed: 6,
      invalid: 4,
      found: 2,
      search_restart: 2,
    });
    expect(proc.conntrack.stats.second).toEqual(proc.conntrack.stats.first);
    expect(proc.conntrack.stats.source).toBe('procfs');
  });

  it('ranks states, remote ports and remote addresses', () => {
    expect(proc.table.byState).toEqual([
      { protocol: 'tcp', state: 'TIME_WAIT', entries: 5 },
      { protocol: 'tcp', state: 'ESTABLISHED', entries: 4 },
      { protocol: 'udp', state: 'UNREPLIED', entries: 3 },
      { protocol: 'tcp', state: 'SYN_RECV', entries: 2 },
      { protocol: 'icmp', state: 'REPLIED', entries: 1 },
      { protocol: 'udp', state: 'ASSURED', entries: 1 },
    ]);
    expect(proc.table.byRemotePort).toEqual([
      { protocol: 'tcp', port: 11211, entries: 5, shortLived: 5, timeWait: 5 },
      { protocol: 'tcp', port: 5432, entries: 3, shortLived: 0, timeWait: 0 },
      { protocol: 'udp', port: 53, entries: 3, shortLived: 3, timeWait: 0 },
      { protocol: 'udp', port: 123, entries: 1, shortLived: 1, timeWait: 0 },
    ]);
    expect(proc.table.byLocalServicePort).toEqual([]);
    expect(proc.table.byRemoteAddress).toEqual([
      { address: '10.9.9.9', entries: 8 },
      { address: '10.9.9.8', entries: 3 },
      { address: '10.7.7.7', entries: 2 },
      { address: '10.5.5.5', entries: 1 },
      { address: '10.9.9.7', entries: 1 },
      { address: '2001:db8::1', entries: 1 },
    ]);
  });

  it('reads conntrack -L and the old /proc/net/ip_conntrack format the same way', () => {
    for (const other of [tool, old]) {
      expect(other.table.entries).toBe(ENTRIES.length);
      expect(other.table.unparsed).toBe(0);
      expect(other.table.byState).toEqual(proc.table.byState);
      expect(other.table.byRemotePort).toEqual(proc.table.byRemotePort);
      expect(other.table.flows).toEqual(proc.table.flows);
    }
  });

  it('cuts every list to TopN', async () => {
    const top2 = await report(join(work, 'proc'), { SSM_TopN: '2' });
    expect(top2.table.topN).toBe(2);
    expect(top2.table.byState).toEqual(proc.table.byState.slice(0, 2));
    expect(top2.table.byRemotePort).toEqual(proc.table.byRemotePort.slice(0, 2));
    expect(top2.table.byRemoteAddress).toEqual(proc.table.byRemoteAddress.slice(0, 2));
  });

  it('keeps 200,000 distinct peers and ports in bounded summaries, under 24,000 characters', async () => {
    const lines: string[] = [];
    for (let index = 0; index < 200_000; index++) {
      const words = Array.from({ length: 8 }, (_, word) =>
        ((index * 2654435761 + word * 40503) % 65536).toString(16).padStart(4, '0'),
      );
      lines.push(
        render(
          {
            l3: 'ipv6',
            l4: 'udp',
            l4num: 17,
            src: '127.0.0.1',
            dst: words.join(':'),
            sport: 1024 + (index % 60000),
            dport: 1 + (index % 65535),
            flags: '[UNREPLIED]',
          },
          'proc',
        ),
      );
    }
    // A heavy hitter among them must still come out first.
    for (let index = 0; index < 5000; index++) {
      lines.push(
        render(
          {
            l4: 'tcp',
            l4num: 6,
            state: 'TIME_WAIT',
            src: '127.0.0.1',
            dst: '10.1.1.1',
            sport: index + 1,
            dport: 6379,
          },
          'proc',
        ),
      );
    }
    const big = await report(
      await fixture('big', { nf_conntrack: `${lines.join('\n')}\n`, 'stat/nf_conntrack': STAT }),
      {
        SSM_TopN: '50',
      },
    );
    expect(big.table.entries).toBe(205_000);
    expect(big.table.approximate).toBe(true);
    expect(big.table.byRemotePort[0]).toMatchObject({ protocol: 'tcp', port: 6379 });
    expect(big.table.byRemoteAddress[0]).toMatchObject({ address: '10.1.1.1' });
    expect(big.warnings.join('\n')).toContain('lower bounds');
  });
});
