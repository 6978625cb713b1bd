import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { constants, gunzipSync, gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../../functions/cli/main.js';
import { detectInSubscription } from '../../../functions/core/detect/index.js';
import { captureIo } from '../support/capture-io.js';
import { runCliProcess } from '../support/cli-process.js';
import { journalEntry, SEED_001_MESSAGES, SEED_003_DMESG } from './real-lines.js';

/**
 * Bad input gets a bounded, clear answer, and costs only itself (issue 10, item 7). Memory is
 * bounded by measuring the real command's peak RSS in its own process against a baseline run
 * in the same test, never by timing.
 */

const MiB = 1024 * 1024;
let dir: string;
const file = (name: string) => join(dir, name);

async function detect(args: string[], stdin?: string | Buffer) {
  const captured = captureIo(stdin);
  const code = await main(['detect', ...args], captured.io);
  return { code, stdout: captured.stdout(), stderr: captured.stderr() };
}

/** `total` bytes of `pattern` repeated, streamed in 1 MiB chunks (never held whole). */
function repeated(pattern: string, total: number): Readable {
  const chunk = Buffer.from(pattern.repeat(Math.ceil(MiB / pattern.length)).slice(0, MiB));
  return Readable.from(
    (function* () {
      for (let sent = 0; sent < total; sent += chunk.length)
        yield chunk.subarray(0, Math.min(chunk.length, total - sent));
    })(),
  );
}

/** What a terminal acts on: C0 controls but the newline, DEL and C1, bidirectional overrides and isolates. */
function isTerminalControl(code: number): boolean {
  return (
    (code < 0x20 && code !== 0x0a) ||
    (code >= 0x7f && code <= 0x9f) ||
    (code >= 0x202a && code <= 0x202e) ||
    (code >= 0x2066 && code <= 0x2069)
  );
}

let baselineKiB: number;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'detect-hostile-'));
  // The first run may build the command's bundle; the second is the baseline: an empty input.
  await runCliProcess(['detect', '--json'], '');
  baselineKiB = (await runCliProcess(['detect', '--json'], '')).maxRssKiB;
  expect(baselineKiB).toBeGreaterThan(10_000);
}, 120_000);

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('memory stays bounded whatever arrives (a child process, peak RSS against an empty input)', () => {
  it('64 MiB of blank characters: nothing kept, exit 1 (no drops)', async () => {
    const result = await runCliProcess(['detect', '--json'], repeated(' \t\n\r\n', 64 * MiB));
    expect(result.stderr).toBe('');
    expect(result.code).toBe(1);
    expect(JSON.parse(result.stdout).groups).toEqual([]);
    expect(result.maxRssKiB - baselineKiB).toBeLessThan(32 * 1024);
  }, 120_000);

  it('a 64 MiB JSON line: refused at the line size cap, the entry after it still read', async () => {
    const input = Readable.from(
      (async function* () {
        yield Buffer.from('{"MESSAGE":"');
        for await (const chunk of repeated('x', 64 * MiB)) yield chunk;
        yield Buffer.from(`"}\n${journalEntry({ message: 'nf_conntrack: table full, dropping packet' })}\n`);
      })(),
    );
    const result = await runCliProcess(['detect', '--json'], input);
    expect(result.stderr).toMatch(/\(stdin\):1: a JSON value longer than 1048576 characters/);
    expect(JSON.parse(result.stdout).groups).toEqual([expect.objectContaining({ dropLines: 1 })]);
    expect(result.code).toBe(0);
    expect(result.maxRssKiB - baselineKiB).toBeLessThan(48 * 1024);
  }, 120_000);

  it('a 64 MiB text line without a newline: refused, bounded', async () => {
    const result = await runCliProcess(['detect', '--json'], repeated('nf_conntrack: ', 64 * MiB));
    expect(result.stderr).toMatch(/a line longer than 1048576 bytes/);
    expect(result.maxRssKiB - baselineKiB).toBeLessThan(32 * 1024);
  }, 120_000);
});

describe('one bad line or event never costs the report', () => {
  it('refuses journald entries whose time is not a time, and counts the good entry beside them', async () => {
    const lines = [
      journalEntry({ message: 'nf_conntrack: table full, dropping packet', realtimeMicros: '9'.repeat(19) }),
      journalEntry({
        message: 'nf_conntrack: table full, dropping packet',
        realtimeMicros: '1773433305000000',
      }),
      journalEntry({ message: 'net_ratelimit: 5 callbacks suppressed', realtimeMicros: '-1' }),
    ];
    const result = await detect(['--json'], `${lines.join('\n')}\n`);
    const report = JSON.parse(result.stdout);
    expect(report.groups).toEqual([
      expect.objectContaining({ dropLines: 1, firstSeen: '2026-03-13T20:21:45.000Z' }),
    ]);
    expect(report.ignored.unreadable).toBe(2);
    expect(result.stderr).toMatch(/\(stdin\):1: refused: its __REALTIME_TIMESTAMP "9{19}" is not a time/);
    expect(result.stderr).toMatch(/\(stdin\):3: refused/);
    expect(result.code).toBe(0);
  });

  it('counts a journald entry refused for a field of the wrong type as unreadable, and names it', async () => {
    // journalctl writes every field as a string; a re-exported entry may carry a number.
    const entry = JSON.parse(
      journalEntry({
        message: 'nf_conntrack: table full, dropping packet',
        realtimeMicros: '1773433305000000',
      }),
    );
    const numeric = JSON.stringify({ ...entry, __REALTIME_TIMESTAMP: 1773433305000000 });
    const result = await detect(['--json'], `${numeric}\n`);
    expect(JSON.parse(result.stdout).ignored.unreadable).toBe(1);
    expect(result.stderr).toMatch(/\(stdin\):1: journald field __REALTIME_TIMESTAMP is neither a string/);
    expect(result.code).toBe(1);
    expect((await detect(['--json', '--strict'], `${numeric}\n`)).code).toBe(2);
  });

  it('reads the line an unclean shutdown wrote after a run of NUL bytes', async () => {
    // After a crash a syslog file keeps the zeroed blocks it had allocated; the first line
    // written after the reboot follows them on the same "line".
    const text = `${'\0'.repeat(4096)}Dec  5 10:00:00 web-01 kernel: [    7.123456] nf_conntrack: table full, dropping packet\nDec  5 10:00:01 web-01 kernel: [    8.000001] nf_conntrack: table full, dropping packet\n`;
    const result = await detect(['--json', '--now', '2025-12-06T00:00:00Z'], text);
    expect(JSON.parse(result.stdout)).toEqual({
      groups: [
        expect.objectContaining({ host: 'web-01', dropLines: 2, firstSeen: '2025-12-05T10:00:00.000Z' }),
      ],
      ignored: { 'not-kernel': 0, unrelated: 0, unreadable: 0 },
    });
    expect(result.stderr).toBe('');
  });

  it('refuses a text line whose date does not exist, and counts the lines beside it', async () => {
    const text = `${SEED_001_MESSAGES[1]}\nFeb 30 10:00:00 fashion kernel: nf_conntrack: table full, dropping packet.\n${SEED_001_MESSAGES[2]}\n`;
    const result = await detect(['--json', '--now', '2026-11-21T00:00:00Z'], text);
    expect(JSON.parse(result.stdout).groups[0]).toMatchObject({ host: 'fashion', dropLines: 2 });
    expect(result.stderr).toMatch(/\(stdin\):2: refused: its timestamp is not a real time/);
  });

  it('refuses a subscription event whose timestamp is 1e300, never the delivery (the Lambda core)', () => {
    const result = detectInSubscription({
      messageType: 'DATA_MESSAGE',
      owner: '123456789012',
      logGroup: '/var/log/messages',
      logStream: 'i-0a1b2c3d4e5f67890',
      subscriptionFilters: ['conntrack-responder'],
      logEvents: [
        { id: 'bad', timestamp: 1e300, message: SEED_001_MESSAGES[1] as string },
        {
          id: 'good',
          timestamp: Date.parse('2026-03-13T20:21:45Z'),
          message: SEED_001_MESSAGES[2] as string,
        },
      ],
    });
    expect(result.groups).toEqual([expect.objectContaining({ host: 'i-0a1b2c3d4e5f67890', dropLines: 1 })]);
    expect(result.ignored.unreadable).toBe(1);
    expect(result.problems).toEqual([
      expect.stringMatching(/^event bad: its timestamp 1e\+300 is not a time/),
    ]);
  });

  it('resynchronises after a truncated journalctl -o json line at the next line', async () => {
    const good = journalEntry({ message: 'nf_conntrack: table full, dropping packet' });
    const text = [good, good.slice(0, 120), good, good.slice(0, good.length - 3), good, ''].join('\n');
    const result = await detect(['--json'], text);
    expect(JSON.parse(result.stdout).groups[0]).toMatchObject({ dropLines: 3 });
    expect(result.stderr).toMatch(/\(stdin\):2: the JSON value is cut short/);
    expect(result.stderr).toMatch(/\(stdin\):4: the JSON value is cut short/);
  });

  it('cannot overflow the stack: a line nested 200,000 levels deep is refused, the entries after it read', async () => {
    const deep = `${'['.repeat(200_000)}${']'.repeat(200_000)}`;
    const good = journalEntry({ message: 'nf_conntrack: table full, dropping packet' });
    const result = await detect(['--json'], `${good}\n${deep}\n${good}\n[${good},${good}]\n`);
    expect(JSON.parse(result.stdout).groups[0]).toMatchObject({ dropLines: 4 });
    expect(result.stderr).toMatch(/\(stdin\):2: a JSON value nested deeper than 64 levels/);
  });
});

describe('inputs in a format detect cannot read', () => {
  // One drop line compressed by xz 5.4, bzip2 1.0.8, zstd 1.5 and lz4 1.9 (their real output), and
  // the start of a binary journald file (signature "LPKSHHRH", systemd.io/JOURNAL_FILE_FORMAT).
  // Read as text, each would hide its lines behind "no drops" (exit 1).
  const compressed: [string, string, string][] = [
    [
      'xz',
      '/Td6WFoAAATm1rRGAgAhARYAAAB0L+WjAQBIRGVjICA1IDEwOjAwOjAxIHdlYi0wMSBrZXJuZWw6IG5mX2Nvbm50cmFjazogdGFibGUgZnVsbCwgZHJvcHBpbmcgcGFja2V0CgAAAABqR9le/74r7AABYUn5FmBTH7bzfQEAAAAABFla',
      'xz -dc FILE',
    ],
    [
      'bzip2',
      'QlpoOTFBWSZTWezMw+AAAA1fgAAQQAZiEAQAAAC/rdaAIABQpo0AaAACKehpNkmEbUPU9RrUkWDTkYLmPAytsYTWIX1hmuoiC1q/bXASE/IjumntP50MiQso4lTqH4u5IpwoSHZmYfAA',
      'bzip2 -dc FILE',
    ],
    [
      'zstd',
      'KLUv/QRYJQIAkgQQFqC1OZAoSFmosVFqWfpt0U5QwQxUEa9Be0qzjGyylmKHBVUA8vWYZkxpWNtVaaA16pc9udxwHnA5vMMrJux8EQCuCp51',
      'zstd -dc FILE',
    ],
    [
      'lz4',
      'BCJNGGRAp0kAAIBEZWMgIDUgMTA6MDA6MDEgd2ViLTAxIGtlcm5lbDogbmZfY29ubnRyYWNrOiB0YWJsZSBmdWxsLCBkcm9wcGluZyBwYWNrZXQKAAAAABV8d98=',
      'lz4 -dc FILE',
    ],
    [
      'journald',
      Buffer.concat([Buffer.from('LPKSHHRH'), Buffer.alloc(200)]).toString('base64'),
      'journalctl --file',
    ],
    // The same line saved as UTF-16LE with a byte-order mark and CRLF (iconv -t UTF-16LE).
    [
      'utf16',
      '//5EAGUAYwAgACAANQAgADEAMAA6ADAAMAA6ADAAMQAgAHcAZQBiAC0AMAAxACAAawBlAHIAbgBlAGwAOgAgAG4AZgBfAGMAbwBuAG4AdAByAGEAYwBrADoAIAB0AGEAYgBsAGUAIABmAHUAbABsACwAIABkAHIAbwBwAHAAaQBuAGcAIABwAGEAYwBrAGUAdAANAAoA',
      'iconv -f UTF-16',
    ],
  ];

  it.each(compressed)(
    'refuses %s input as not read (exit 2), naming the file and what to run',
    async (name, base64, hint) => {
      const path = file(`kern.log.${name}`);
      await writeFile(path, Buffer.from(base64, 'base64'));
      const goodLine = 'Dec  5 10:00:02 web-02 kernel: nf_conntrack: table full, dropping packet\n';
      await writeFile(file('good.log'), goodLine);
      const result = await detect(['--json', '--now', '2025-12-06T00:00:00Z', path, file('good.log')]);
      expect(result.stderr).toContain(`${path}: not read: the input is`);
      expect(result.stderr).toContain(hint);
      // The other input is still read.
      expect(JSON.parse(result.stdout).groups).toEqual([
        expect.objectContaining({ host: 'web-02', dropLines: 1 }),
      ]);
      expect(result.code).toBe(2);
      // The same on standard input.
      const piped = await detect(['--json'], Buffer.from(base64, 'base64'));
      expect(piped.stderr).toContain('(stdin): not read: the input is');
      expect(piped.code).toBe(2);
    },
  );

  it('still reads a text file that merely starts with the same letters as a bzip2 header', async () => {
    const result = await detect(
      ['--json', '--now', '2025-12-06T00:00:00Z'],
      'BZh9 Dec  5 10:00:02 web-02 kernel: nf_conntrack: table full, dropping packet\nDec  5 10:00:03 web-02 kernel: nf_conntrack: table full, dropping packet\n',
    );
    expect(result.stderr).not.toContain('not read');
    expect(JSON.parse(result.stdout).groups).toEqual([
      expect.objectContaining({ host: 'web-02', dropLines: 1 }),
    ]);
  });
});

describe('gzip input', () => {
  const lines = Array.from({ length: 5000 }, (_, index) => `${SEED_003_DMESG[index % 11]}`);
  const dropsIn = (count: number) =>
    lines.slice(0, count).filter((line) => line.includes('table full')).length;

  it('with trailing garbage: every line gzip -dc recovers is counted, then the garbage is an error (exit 2)', async () => {
    await writeFile(
      file('garbage.gz'),
      Buffer.concat([gzipSync(`${lines.join('\n')}\n`), Buffer.from('GARBAGE\n'.repeat(9))]),
    );
    const result = await detect(['--json', file('garbage.gz')]);
    expect(JSON.parse(result.stdout).groups[0]).toMatchObject({ dropLines: dropsIn(5000) });
    expect(result.stderr).toContain(
      `${file('garbage.gz')}: read only in part: 72 bytes of trailing garbage after the gzip data`,
    );
    expect(result.code).toBe(2);
  });

  it('cut short: the lines before the cut are counted, exit 2', async () => {
    const whole = gzipSync(`${lines.join('\n')}\n`);
    const cut = whole.subarray(0, whole.length - 400);
    await writeFile(file('cut.gz'), cut);
    // What gzip -dc recovers of it: everything inflate can decode before the cut.
    const recovered = gunzipSync(cut, { finishFlush: constants.Z_SYNC_FLUSH }).toString('utf8');
    const complete = recovered.split('\n').slice(0, -1).length;
    expect(complete).toBeGreaterThan(1000);
    const result = await detect(['--json', file('cut.gz')]);
    expect(JSON.parse(result.stdout).groups[0].dropLines).toBe(dropsIn(complete));
    expect(result.stderr).toMatch(/cut\.gz: read only in part: the gzip data is cut short/);
    expect(result.code).toBe(2);
  });

  it('reads concatenated members (gzip a >> b) whole, exit 0', async () => {
    await writeFile(
      file('members.gz'),
      Buffer.concat([
        gzipSync(`${lines.slice(0, 10).join('\n')}\n`),
        gzipSync(`${lines.slice(10).join('\n')}\n`),
      ]),
    );
    const result = await detect(['--json', file('members.gz')]);
    expect(JSON.parse(result.stdout).groups[0]).toMatchObject({ dropLines: dropsIn(5000) });
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
  });
});

describe('the terminal', () => {
  it('ends quietly when standard output is closed early (| head): no stack trace, status 141', async () => {
    const result = await runCliProcess(['detect'], `${SEED_003_DMESG.join('\n')}\n`, {
      closeStdoutEarly: true,
    });
    expect(result.stderr).toBe('');
    expect(result.code).toBe(141);
  }, 60_000);

  it('prints host names, namespace names, log text and file names without control characters', async () => {
    const esc = '\u001b]0;pwned\u0007\u001b[2J';
    const csi = '\u009b31m';
    const text = [
      `Mar 13 20:21:45 evil${esc}host kernel: nf_conntrack: table full, dropping packet`,
      `Mar 13 20:21:46 c1${csi}x kernel: ip_conntrack: VPS a${esc} table full, dropping packet.`,
      `Mar 13 20:21:47 web kernel: nf_conntrack: table full because ${esc}${csi}\u202e`,
    ].join('\n');
    const name = file(`log${esc}.txt`);
    await writeFile(name, text);
    for (const args of [[name], ['--json', name]]) {
      const result = await detect(args);
      for (const output of [result.stdout, result.stderr]) {
        expect([...output].filter((char) => isTerminalControl(char.charCodeAt(0)))).toEqual([]);
      }
      expect(result.stderr).toContain('\\x1b]0;pwned\\x07');
      if (args[0] === '--json') {
        const report = JSON.parse(result.stdout);
        // The JSON still carries the names exactly: escaped, not altered.
        expect(report.groups.map((group: { host: string }) => group.host)).toEqual([
          `evil${esc}host`,
          `c1${csi}x`,
        ]);
        expect(report.groups[1].netns).toBe(`VPS a${esc}`);
      } else {
        expect(result.stdout).toContain('evil\\x1b]0;pwned\\x07\\x1b[2Jhost');
        expect(result.stdout).toContain('c1\\x9b31mx');
      }
    }
  });
});
