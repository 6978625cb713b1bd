import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  eventMessage,
  MAX_SAMPLE_LINE_LENGTH,
  parseSampleLine,
  parseSampleText,
  SAMPLE_LINE_TAG,
  samplesInSubscription,
} from '../../../functions/core/forecast/index.js';
import { execFile } from '../../../functions/local/exec.js';
import { loadRunbook } from '../../../functions/local/runbooks.js';
import { DETECT_FILTER_PATTERN_TEXT } from '../../../infra/constructs/detection.js';

const LINE =
  'conntrack-responder-sample v=1 seq=12 t=1763700000.123 boot=1f0e2d3c ns=4026531840 count=1234 max=262144 drop=5 early_drop=1 insert_failed=2 search_restart=3 cpus=2';

/** A small seeded generator (xorshift), so that a failing case can be replayed. */
function random(seed: number) {
  let state = seed >>> 0 || 1;
  return () => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return (state >>> 0) / 4_294_967_296;
  };
}

describe('the sample line', () => {
  it('reads every field of a version 1 line', () => {
    expect(parseSampleLine(LINE)).toEqual({
      ok: true,
      sample: {
        version: 1,
        seq: 12,
        timeMs: 1_763_700_000_123,
        boot: '1f0e2d3c',
        netns: '4026531840',
        loaded: true,
        count: 1234,
        max: 262_144,
        drop: 5,
        earlyDrop: 1,
        insertFailed: 2,
        searchRestart: 3,
        cpus: 2,
        ena: [],
      },
    });
  });

  it("reads each ENA interface's allowance counters, in the sampler's order, on any form of the line", () => {
    const ena = 'ena.1=ens6 ena.1.exceeded=0 ena.0=enX0 ena.0.exceeded=41 ena.0.available=12 ena.0.future=3';
    expect(parseSampleLine(`${LINE} ${ena}`)).toMatchObject({
      ok: true,
      sample: {
        count: 1234,
        ena: [
          { name: 'enX0', exceeded: 41, available: 12 },
          { name: 'ens6', exceeded: 0, available: null },
        ],
      },
    });
    // EC2 tracks connections whether or not the guest loaded nf_conntrack.
    expect(
      parseSampleLine(`conntrack-responder-sample v=1 t=1763700000 loaded=0 ena.0=eth0 ena.0.available=900`),
    ).toMatchObject({
      ok: true,
      sample: { loaded: false, ena: [{ name: 'eth0', exceeded: null, available: 900 }] },
    });
  });

  it.each([
    ['ena.0.exceeded=4', /ena.0.exceeded without ena.0/],
    ['ena.0=eth0 ena.0.exceeded=4x', /ena.0.exceeded is not a whole number/],
    ['ena.0=eth0 ena.0.available=99999999999999999', /ena.0.available is not a whole number/],
    ['ena.0=eth0 ena.1=eth0', /named twice/],
    ['ena.0=averyveryverylongname', /ena.0 is not an interface name/],
    ['ena.16=eth0', /more than 16 ENA interfaces/],
  ])('refuses ENA fields %j with a reason', (fields, reason) => {
    const parsed = parseSampleLine(`${LINE} ${fields}`);
    expect(parsed.ok ? '' : parsed.reason).toMatch(reason);
  });

  it('ignores keys it does not know (later samplers add some) and leaves missing counters null', () => {
    const parsed = parseSampleLine(
      'conntrack-responder-sample v=1 t=1763700000 count=1 max=2 ena.ens5.exceeded=7 ena.ens5.available=100',
    );
    expect(parsed).toMatchObject({
      ok: true,
      sample: { count: 1, max: 2, drop: null, seq: null, timeMs: 1_763_700_000_000 },
    });
  });

  it('reads the unloaded form', () => {
    expect(
      parseSampleLine(
        'conntrack-responder-sample v=1 seq=1 t=1763700000 boot=1f0e2d3c ns=4026531840 loaded=0',
      ),
    ).toMatchObject({
      ok: true,
      sample: { loaded: false, count: null, max: null },
    });
  });

  it.each([
    ['conntrack-responder-sample v=2 t=1763700000 count=1 max=2', /format version 2 is not 1/],
    ['conntrack-responder-sample t=1763700000 count=1 max=2', /no format version/],
    ['conntrack-responder-sample v=1 count=1 max=2', /no sample time/],
    ['conntrack-responder-sample v=1 t=17637 count=1 max=2', /no sample time/],
    ['conntrack-responder-sample v=1 t=1763700000 count=-1 max=2', /count is not a whole number/],
    [
      'conntrack-responder-sample v=1 t=1763700000 count=99999999999999999 max=2',
      /count is not a whole number/,
    ],
    ['conntrack-responder-sample v=1 t=1763700000 count=1 count=2 max=2', /appears twice/],
    ['conntrack-responder-sample v=1 t=1763700000 count=1', /no count and limit/],
    ['conntrack-responder-sample v=1 t=1763700000 loaded=0 count=1 max=2', /loaded=0 with a count/],
    [
      'conntrack-responder-sample v=1 t=1763700000 count=1 max=2 note=$(reboot)',
      /characters a sampler never writes/,
    ],
    ['conntrack-responder-sample v=1 t=1763700000  count=1 max=2', /not key=value/],
  ])('refuses %j with a reason', (line, reason) => {
    const parsed = parseSampleLine(line);
    expect(parsed.ok).toBe(false);
    expect(parsed.ok ? '' : parsed.reason).toMatch(reason);
  });

  it('finds the line in a syslog line, but not in the sampler identifier alone', () => {
    expect(
      parseSampleText(`Dec  5 12:00:00 ip-10-0-0-1 conntrack-responder-sampler[812]: ${LINE}`),
    ).toMatchObject({
      ok: true,
      sample: { count: 1234 },
    });
    expect(
      parseSampleText('Dec  5 12:00:00 ip-10-0-0-1 conntrack-responder-sampler[812]: Started.'),
    ).toBeNull();
    expect(parseSampleText('xconntrack-responder-sample v=1')).toBeNull();
    expect(parseSampleText(`${LINE}\r\n`)).toMatchObject({ ok: true });
  });

  it('refuses an overlong line without reading it', () => {
    expect(parseSampleText(`${LINE} ${'x=1 '.repeat(MAX_SAMPLE_LINE_LENGTH)}`)).toEqual({
      ok: false,
      reason: `longer than ${MAX_SAMPLE_LINE_LENGTH} characters`,
    });
  });

  it('never throws and always answers ok or a reason, whatever the text (seeded random lines)', () => {
    const alphabet = [
      'conntrack-responder-sample ',
      'v=1',
      ' ',
      '=',
      't=1763700000',
      'count=',
      'max=',
      '9',
      'a',
      '\u0000',
      '\u202e',
      '-',
      '.',
      '$',
      'ns=',
      '\n',
    ];
    for (let seed = 1; seed <= 2000; seed++) {
      const next = random(seed);
      let text = '';
      const length = Math.floor(next() * 40);
      for (let index = 0; index < length; index++) text += alphabet[Math.floor(next() * alphabet.length)];
      const started = performance.now();
      const parsed = parseSampleText(text);
      expect(performance.now() - started).toBeLessThan(50);
      if (parsed === null) continue;
      if (parsed.ok) {
        expect(Number.isSafeInteger(parsed.sample.timeMs)).toBe(true);
        expect(
          parsed.sample.loaded
            ? parsed.sample.count !== null && parsed.sample.max !== null
            : parsed.sample.count === null,
        ).toBe(true);
      } else {
        expect(parsed.reason.length).toBeGreaterThan(0);
        // A reason never repeats the text it was given.
        expect(parsed.reason).not.toContain('\u0000');
      }
    }
  });
});

describe('sample lines in a CloudWatch Logs delivery', () => {
  const journal = {
    MESSAGE: LINE,
    _TRANSPORT: 'stdout',
    SYSLOG_IDENTIFIER: 'conntrack-responder-sampler',
    __REALTIME_TIMESTAMP: '1763700000123456',
  };

  it('reads syslog lines, journalctl -o json entries and the CloudWatch agent journald wrapper alike', () => {
    expect(eventMessage(JSON.stringify(journal))).toBe(LINE);
    expect(eventMessage(JSON.stringify({ body: journal, resource: {}, attributes: {} }))).toBe(LINE);
    expect(eventMessage('{not json')).toBe('{not json');
    const result = samplesInSubscription({
      logStream: 'i-0123456789abcdef0',
      logEvents: [
        {
          id: '1',
          timestamp: 1,
          message: `Dec  5 12:00:00 ip-10-0-0-1 conntrack-responder-sampler[812]: ${LINE}`,
        },
        {
          id: '2',
          timestamp: 2,
          message: JSON.stringify(journal).replace('seq=12', 'seq=13').replace('.123', '.999'),
        },
        {
          id: '3',
          timestamp: 3,
          message: JSON.stringify({
            body: { ...journal, MESSAGE: LINE.replace('ns=4026531840', 'ns=4026532177') },
          }),
        },
        { id: '4', timestamp: 4, message: 'kernel: nf_conntrack: nf_conntrack: table full, dropping packet' },
        { id: '5', timestamp: 5, message: 'conntrack-responder-sample v=9 t=1763700000 count=1 max=2' },
        { id: '6', timestamp: 6, message: 'conntrack-responder-sample v=9 t=1763700000 count=1 max=2' },
      ],
    });
    expect(
      result.groups.map((group) => [group.host, group.netns, group.samples.map((sample) => sample.seq)]),
    ).toEqual([
      ['i-0123456789abcdef0', '4026531840', [12, 13]],
      ['i-0123456789abcdef0', '4026532177', [12]],
    ]);
    expect(result.rejected).toEqual({ 'format version 9 is not 1 (a newer sampler than this reader?)': 2 });
    expect(result.groups[0]?.events.map((event) => event.id)).toEqual(['1', '2']);
  });

  it('passes the subscription filter in every form: the pattern has the tag as an alternative term', () => {
    // Quoted terms match as substrings of the event (test/unit/detect/filter-pattern.test.ts).
    expect(DETECT_FILTER_PATTERN_TEXT).toMatch(/^\?"table full" .* \?"conntrack-responder-sample"$/);
    for (const message of [
      `Dec  5 12:00:00 ip-10-0-0-1 conntrack-responder-sampler[812]: ${LINE}`,
      JSON.stringify(journal),
      JSON.stringify({ body: journal }),
    ]) {
      expect(message).toContain(SAMPLE_LINE_TAG);
    }
  });

  it('keeps at most the latest 256 samples per group, whatever a delivery holds', () => {
    const logEvents = Array.from({ length: 1000 }, (_, index) => ({
      id: String(index),
      timestamp: index,
      message: LINE.replace('seq=12', `seq=${index}`),
    }));
    const [group] = samplesInSubscription({ logStream: 'i-0123456789abcdef0', logEvents }).groups;
    expect(group?.samples).toHaveLength(256);
    expect(group?.samples[0]?.seq).toBe(744);
    expect(group?.events).toHaveLength(20);
  });
});

describe('what the real sampler prints reads back exactly', () => {
  let work: string;
  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'ctr-unit-sample-roundtrip-'));
  });
  afterAll(async () => {
    await rm(work, { recursive: true, force: true });
  });

  it('parses a line of runbooks/scripts/host-sampler.sh into the values of its /proc', async () => {
    const { document } = await loadRunbook('host-sampler');
    const script = join(work, 'host-sampler');
    await writeFile(script, `${document.mainSteps[0].inputs.runCommand.join('\n')}\n`);
    const proc = join(work, 'proc');
    await mkdir(join(proc, 'sys/net/netfilter'), { recursive: true });
    await mkdir(join(proc, 'net/stat'), { recursive: true });
    await mkdir(join(proc, 'sys/kernel/random'), { recursive: true });
    await mkdir(join(proc, 'self/ns'), { recursive: true });
    await writeFile(join(proc, 'sys/net/netfilter/nf_conntrack_count'), '70000\n');
    await writeFile(join(proc, 'sys/net/netfilter/nf_conntrack_max'), '262144\n');
    await writeFile(join(proc, 'sys/kernel/random/boot_id'), 'a1b2c3d4-0000-0000-0000-000000000000\n');
    await symlink('net:[4026531840]', join(proc, 'self/ns/net'));
    await writeFile(
      join(proc, 'net/stat/nf_conntrack'),
      [
        'entries  clashres found new invalid ignore delete chainlength insert insert_failed drop early_drop icmp_error  expect_new expect_create expect_delete search_restart',
        '00011170  00000000 00000000 00000000 00000001 00000000 00000000 00000000 00000000 00000002 0000000a 00000003 00000000  00000000 00000000 00000000 00000004',
        '00011170  00000000 00000000 00000000 00000001 00000000 00000000 00000000 00000000 00000001 00000005 00000000 00000000  00000000 00000000 00000000 00000001',
        '',
      ].join('\n'),
    );
    const before = Date.now();
    // ENA counters as `ethtool -S` prints them, for the one interface the fake /sys has.
    await mkdir(join(work, 'sys/class/net/ens5'), { recursive: true });
    await mkdir(join(work, 'ena'), { recursive: true });
    await writeFile(
      join(work, 'ena/ens5'),
      'NIC statistics:\n     tx_timeout: 0\n     conntrack_allowance_exceeded: 7\n     linklocal_allowance_exceeded: 0\n     conntrack_allowance_available: 136812\n',
    );
    const { stdout } = await execFile('bash', [script, 'once'], {
      env: {
        CONNTRACK_RESPONDER_PROC: proc,
        CONNTRACK_RESPONDER_SYS: join(work, 'sys'),
        CONNTRACK_RESPONDER_ENA_STATS: join(work, 'ena'),
      },
    });
    const parsed = parseSampleText(stdout);
    expect(parsed).toMatchObject({
      ok: true,
      sample: {
        version: 1,
        seq: 1,
        boot: 'a1b2c3d4',
        netns: '4026531840',
        loaded: true,
        count: 70_000,
        max: 262_144,
        drop: 15,
        earlyDrop: 3,
        insertFailed: 3,
        searchRestart: 5,
        cpus: 2,
        ena: [{ name: 'ens5', exceeded: 7, available: 136812 }],
      },
    });
    const timeMs = parsed?.ok ? parsed.sample.timeMs : 0;
    expect(timeMs).toBeGreaterThanOrEqual(Math.floor(before / 1000) * 1000);
    expect(timeMs).toBeLessThanOrEqual(Date.now());
  });
});
