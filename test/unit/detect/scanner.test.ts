import { describe, expect, it } from 'vitest';
import {
  DetectionSession,
  type JsonPiece,
  JsonValueSplitter,
  type ScannerProblem,
  TextLogScanner,
} from '../../../functions/core/detect/index.js';
import { MAX_JSON_DEPTH, MAX_JSON_VALUE_CHARS } from '../../../functions/core/detect/json-values.js';
import { MAX_LINE_BYTES } from '../../../functions/core/detect/text-scanner.js';
import { generateLog, pick, random } from './generated-logs.js';
import { SEED_001_MESSAGES, SEED_003_DMESG } from './real-lines.js';

const now = new Date('2026-11-21T12:00:00Z');

/** The reference: every line through the session, one by one. */
function lineByLine(lines: string[]) {
  const session = new DetectionSession({ now });
  session.beginInput();
  const problems: number[] = [];
  lines.forEach((line, index) => {
    const text = line.endsWith('\r') ? line.slice(0, -1) : line;
    if (session.textLine(text) !== null) problems.push(index + 1);
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
  it.each(seeds)(
    'generated log %i (every format, damage, repeats), random chunk sizes, LF and CRLF',
    (seed) => {
      const firstLine = (['syslog', 'dmesg', 'any'] as const)[seed % 3];
      const { lines } = generateLog(seed, 3000, { repeats: true, firstLine });
      const expected = lineByLine(lines);
      expect(expected.report.groups.length).toBeGreaterThan(3);
      expect(expected.problems.length).toBeGreaterThan(0);
      for (const newline of ['\n', '\r\n']) {
        const text = lines.join(newline) + (seed % 2 === 0 ? newline : '');
        const bytes = Buffer.from(text);
        // Byte offset of each line's start.
        const starts = [0];
        for (const line of lines)
          starts.push((starts.at(-1) as number) + Buffer.byteLength(line) + newline.length);
        const expectedOffsets = expected.problems.map((line) => starts[line - 1]);
        const next = random(seed * 31);
        const sizes = [() => 1 + Math.floor(next() * 64), () => 1 + Math.floor(next() * 8192), () => 1 << 20];
        for (const chunkSizes of sizes) {
          for (const countLines of [true, false]) {
            const result = scanned(bytes, chunkSizes, countLines);
            expect(result.report).toEqual(expected.report);
            expect(result.bytes).toBe(bytes.length);
            expect(result.problems.map((problem) => problem.offset)).toEqual(expectedOffsets);
            if (countLines) expect(result.problems.map((problem) => problem.line)).toEqual(expected.problems);
            else expect(result.problems.every((problem) => problem.line === null)).toBe(true);
          }
        }
      }
    },
  );

  it.each(seeds)(
    'generated log %i with lines whose timestamp is not a real time: the same lines refused and named as line by line',
    (seed) => {
      const { lines } = generateLog(seed, 2000, { repeats: true, firstLine: 'syslog' });
      const next = random(seed * 53);
      const hosts = ['web-01', 'web-02', 'cache-01', 'höst-ü', 'i-0a1b2c3d4e5f67890'];
      // Feb 30 does not exist, in any year: each of these lines is refused.
      const impossible = (host: string) =>
        pick(next, [
          `Feb 30 10:00:00 ${host} kernel: eth0: link becomes ready`,
          `Feb 30 10:00:01 ${host} kernel: nf_conntrack: table full, dropping packet`,
          `Feb 30 10:00:02 ${host} kernel: net_ratelimit: 1 callbacks suppressed`,
          `Feb 30 10:00:03 ${host} last message repeated 4 times`,
          `Feb 30 10:00:04 ${host} sshd[22]: Accepted publickey for deploy`,
        ]);
      const mixed = lines.flatMap((line) => (next() < 0.1 ? [impossible(pick(next, hosts)), line] : [line]));
      const expected = lineByLine(mixed);
      expect(expected.problems.length).toBeGreaterThan(20);
      const bytes = Buffer.from(`${mixed.join('\n')}\n`);
      const sizes = [() => 1 + Math.floor(next() * 64), () => 1 << 20];
      for (const chunkSizes of sizes) {
        const result = scanned(bytes, chunkSizes, true);
        expect(result.report).toEqual(expected.report);
        expect(result.problems.map((problem) => problem.line)).toEqual(expected.problems);
      }
    },
  );

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
    // The first line read is a syslog line, so the line after it, in no known format, is named.
    const text = [long, SEED_001_MESSAGES[0], 'nf_conntrack: table full, dropping packet', ''].join('\n');
    const result = scanned(Buffer.from(text), () => 100_000, true);
    expect(result.problems.map((problem) => problem.line)).toEqual([1, 3]);
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
      { error: 'the input ends inside a JSON value', line: 4, text: '{"c":' },
    ]);
  });

  it('resynchronises after a truncated JSON line: at the newline a string cannot span, or where the next value starts a line', () => {
    const good = (n: number) => `{"MESSAGE":"m${n}","_TRANSPORT":"kernel"}`;
    const text = [good(1), '{"MESSAGE":"cut in the mid', good(2), '{"MESSAGE":"x","n":', good(3), ''].join(
      '\n',
    );
    for (const chunks of [[text], [...text]]) {
      const pieces = split(chunks);
      expect(
        pieces.filter((piece) => 'text' in piece && !('error' in piece)).map((piece) => piece.line),
      ).toEqual([1, 3, 5]);
      expect(pieces.filter((piece) => 'error' in piece).map((piece) => piece.line)).toEqual([2, 4]);
    }
  });

  it.each([
    [
      'nested deeper than the limit',
      `${'['.repeat(MAX_JSON_DEPTH + 1)}${']'.repeat(MAX_JSON_DEPTH + 1)}`,
      /nested deeper than 64/,
    ],
    [
      'a hundred thousand levels deep',
      `${'['.repeat(100_000)}${']'.repeat(100_000)}`,
      /nested deeper than 64/,
    ],
    [
      'longer than the line size cap',
      `{"MESSAGE":"${'x'.repeat(MAX_JSON_VALUE_CHARS)}"}`,
      /longer than 1048576 characters/,
    ],
  ])(
    'refuses a value %s, keeps nothing of it beyond the cap, and reads the value after it',
    (_name, bad, reason) => {
      const after = '{"MESSAGE":"after"}';
      const pieces = split([`${bad}\n${after}\n`]);
      expect(pieces).toHaveLength(2);
      expect(pieces[0]).toMatchObject({ error: expect.stringMatching(reason), line: 1 });
      expect(((pieces[0] as { text?: string }).text ?? '').length).toBeLessThanOrEqual(
        MAX_JSON_VALUE_CHARS + 1,
      );
      expect(pieces[1]).toEqual({ text: after, line: 2 });
    },
  );
});
