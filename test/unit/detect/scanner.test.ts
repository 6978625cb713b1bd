import { describe, expect, it } from 'vitest';
import {
  DetectionSession,
  type JsonPiece,
  JsonValueSplitter,
  type ScannerProblem,
  TextLogScanner,
} from '../../../functions/core/detect/index.js';
import { MAX_LINE_BYTES } from '../../../functions/core/detect/text-scanner.js';
import {
  FACTS_1_4,
  KERNEL_6_18_NETNS,
  SEED_001_MESSAGES,
  SEED_002_KERNEL_TAGGED,
  SEED_003_DMESG,
} from './real-lines.js';

const now = new Date('2026-11-21T12:00:00Z');

/** A small deterministic generator (mulberry32), so a failing case can be replayed. */
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

function pick<T>(next: () => number, items: readonly T[]): T {
  return items[Math.floor(next() * items.length)] as T;
}

/** A log mixing hosts and formats, with drops, suppressions, look-alikes and noise in random order. */
function randomLog(seed: number, lines: number): string[] {
  const next = random(seed);
  const hosts = ['web-01', 'web-02', 'cache-01', 'höst-ü'];
  const bodies = [
    'nf_conntrack: nf_conntrack: table full, dropping packet',
    'nf_conntrack: nf_conntrack: table full in netns 4026532177, dropping packet',
    'nf_conntrack: table full, dropping packet.',
    'nf_conntrack: expectation table full',
    'net_ratelimit: 17 callbacks suppressed',
    '__ratelimit: 4 callbacks suppressed',
    'IPv4: martian source 10.0.0.1 from 10.0.0.2, on dev eth0',
    'eth0: renamed from veth1234',
    'TCP: request_sock_TCP: Possible SYN flooding on port 80. Sending cookies.',
  ];
  const noise = [
    'sshd[1234]: Accepted publickey for deploy from 10.0.0.5 port 51234 ssh2',
    'CRON[2211]: (root) CMD (/usr/lib64/sa/sa1 1 1)',
    'app[311]: nf_conntrack: table full, dropping packet',
    'systemd[1]: Started fully automatic backups.',
  ];
  const out: string[] = [];
  for (let index = 0; index < lines; index++) {
    const host = pick(next, hosts);
    const roll = next();
    if (roll < 0.45)
      out.push(`Mar 13 20:21:${String(index % 60).padStart(2, '0')} ${host} kernel: ${pick(next, bodies)}`);
    else if (roll < 0.75) out.push(`Mar 13 20:21:45 ${host} ${pick(next, noise)}`);
    else if (roll < 0.8) out.push(`[  926.1767${index % 10}] ${pick(next, bodies)}`);
    else if (roll < 0.84) out.push(`2026-03-13T20:21:45.5+00:00 ${host} kernel: ${pick(next, bodies)}`);
    else if (roll < 0.87) out.push(`<4>1 2026-03-13T20:21:45Z ${host} kernel - - - ${pick(next, bodies)}`);
    else if (roll < 0.9) out.push(`kern  :warn  : [  1.0] ${pick(next, bodies)}`);
    else if (roll < 0.92) out.push('');
    else if (roll < 0.94)
      out.push(`${pick(next, bodies)}`); // no header: a problem when it is a drop line
    else if (roll < 0.97)
      out.push(pick(next, [...SEED_001_MESSAGES, ...SEED_002_KERNEL_TAGGED, ...SEED_003_DMESG]));
    else out.push(pick(next, [...Object.values(FACTS_1_4), ...Object.values(KERNEL_6_18_NETNS)]).toString());
  }
  return out;
}

/** The reference: every line through the session, one by one. */
function lineByLine(lines: string[]) {
  const session = new DetectionSession({ now });
  const problems: number[] = [];
  lines.forEach((line, index) => {
    const text = line.endsWith('\r') ? line.slice(0, -1) : line;
    if (text !== '' && session.textLine(text) === 'unrecognised-drop-text') problems.push(index + 1);
  });
  return { report: session.report(), problems };
}

function scanned(bytes: Buffer, chunkSizes: () => number, countLines: boolean) {
  const session = new DetectionSession({ now });
  const problems: ScannerProblem[] = [];
  const scanner = new TextLogScanner(session, (problem) => problems.push(problem), { countLines });
  for (let offset = 0; offset < bytes.length; ) {
    const size = Math.max(1, chunkSizes());
    // A fresh copy that is then overwritten: the scanner must not keep references to chunks.
    const chunk = Buffer.from(bytes.subarray(offset, offset + size));
    scanner.push(chunk);
    chunk.fill(0x58);
    offset += size;
  }
  scanner.end();
  return { report: session.report(), problems, bytes: scanner.bytes };
}

describe('TextLogScanner gives exactly the line-by-line result', () => {
  const seeds = [1, 2, 3, 4, 5, 6, 7, 8];
  it.each(seeds)('random log %i, random chunk sizes, LF and CRLF', (seed) => {
    const lines = randomLog(seed, 3000);
    const expected = lineByLine(lines);
    expect(expected.report.groups.length).toBeGreaterThan(3);
    expect(expected.problems.length).toBeGreaterThan(0);
    for (const newline of ['\n', '\r\n']) {
      const text = lines.join(newline) + (seed % 2 === 0 ? newline : '');
      const bytes = Buffer.from(text);
      const next = random(seed * 31);
      const sizes = [() => 1 + Math.floor(next() * 64), () => 1 + Math.floor(next() * 8192), () => 1 << 20];
      for (const chunkSizes of sizes) {
        for (const countLines of [true, false]) {
          const result = scanned(bytes, chunkSizes, countLines);
          expect(result.report).toEqual(expected.report);
          expect(result.bytes).toBe(bytes.length);
          const offsets = result.problems.map((problem) => problem.offset);
          const expectedOffsets = expected.problems.map(
            (line) =>
              Buffer.byteLength(lines.slice(0, line - 1).join(newline)) + (line > 1 ? newline.length : 0),
          );
          expect(offsets).toEqual(expectedOffsets);
          if (countLines) expect(result.problems.map((problem) => problem.line)).toEqual(expected.problems);
          else expect(result.problems.every((problem) => problem.line === null)).toBe(true);
        }
      }
    }
  });

  it.each([
    ['while it is still being read', 2 * MAX_LINE_BYTES],
    ['when its newline arrives', MAX_LINE_BYTES + 500],
  ])('reports an overlong line once (%s) and goes on with the next line', (_name, length) => {
    const long = `Mar 13 20:21:45 h kernel: ${'x'.repeat(length)}`;
    const text = [SEED_003_DMESG[1], long, SEED_001_MESSAGES[1], SEED_003_DMESG[2]].join('\n');
    const result = scanned(Buffer.from(text), () => 65536, true);
    expect(result.problems).toHaveLength(1);
    expect(result.problems[0]).toMatchObject({
      line: 2,
      offset: Buffer.byteLength(`${SEED_003_DMESG[1]}\n`),
    });
    expect(result.problems[0]?.reason).toMatch(/longer than/);
    expect(result.report.groups.map((group) => [group.host, group.dropLines])).toEqual([
      ['fashion', 1],
      ['localhost', 1],
    ]);
  });

  it('counts lines after an overlong line correctly', () => {
    const long = 'y'.repeat(3 * MAX_LINE_BYTES);
    const text = [long, 'nf_conntrack: table full, dropping packet', ''].join('\n');
    const result = scanned(Buffer.from(text), () => 100_000, true);
    expect(result.problems.map((problem) => problem.line)).toEqual([1, 2]);
  });
});

describe('JsonValueSplitter', () => {
  function split(chunks: string[]): JsonPiece[] {
    const splitter = new JsonValueSplitter();
    const pieces: JsonPiece[] = [];
    for (const chunk of chunks) splitter.push(chunk, (piece) => pieces.push(piece));
    splitter.end((piece) => pieces.push(piece));
    return pieces;
  }

  it('splits JSON lines, pretty-printed values and json-seq, across any chunking, with start lines', () => {
    const text = '{"a":1}\n{"b":"}{\\"x"}\n\n{\n  "c": [1, {"d": 2}]\n}\n\u001e[{"e":3}]\n';
    const expected = [
      { text: '{"a":1}', line: 1 },
      { text: '{"b":"}{\\"x"}', line: 2 },
      { text: '{\n  "c": [1, {"d": 2}]\n}', line: 4 },
      { text: '[{"e":3}]', line: 7 },
    ];
    expect(split([text])).toEqual(expected);
    expect(split([...text])).toEqual(expected);
  });

  it('reports stray text and an unterminated value with their lines, and recovers', () => {
    expect(split(['{"a":1}\nnot json\n{"b":2}\n{"c":'])).toEqual([
      { text: '{"a":1}', line: 1 },
      { error: 'expected a JSON object or array', line: 2 },
      { text: '{"b":2}', line: 3 },
      { error: 'the input ends inside a JSON value', line: 4 },
    ]);
  });
});
