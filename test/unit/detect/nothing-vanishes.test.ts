import { describe, expect, it } from 'vitest';
import {
  type CloudWatchLogsData,
  type DetectionReport,
  DetectionSession,
  detectInSubscription,
  type ScannerProblem,
  TextLogScanner,
} from '../../../functions/core/detect/index.js';
import { JsonValueSplitter } from '../../../functions/core/detect/json-values.js';
import { carriesPhrase, generateLog, pick, random } from './generated-logs.js';
import { journalEntry } from './real-lines.js';

/**
 * The invariant of issue 10: every line that carries a drop or suppression phrase ends up counted
 * in a group, counted as not-kernel (or as an unrelated suppression line), or counted unreadable
 * and named FILE:LINE. Suppression lines generated here all say N = 1, so a report's suppressed
 * totals count lines.
 */
function accounted(report: DetectionReport): number {
  const inGroups = report.groups.reduce((sum, group) => sum + group.dropLines + group.suppressed, 0);
  return inGroups + report.ignored['not-kernel'] + report.ignored.unrelated + report.ignored.unreadable;
}

const now = new Date('2026-11-21T12:00:00Z');
const SEEDS = Array.from({ length: 60 }, (_, index) => index + 1);

function scanText(lines: string[], seed: number) {
  const session = new DetectionSession({ now });
  const problems: ScannerProblem[] = [];
  const scanner = new TextLogScanner(session, (problem) => problems.push(problem), { countLines: true });
  const bytes = Buffer.from(`${lines.join(seed % 2 === 0 ? '\r\n' : '\n')}\n`);
  const next = random(seed);
  for (let offset = 0; offset < bytes.length; ) {
    const size = 1 + Math.floor(next() * 4096);
    scanner.push(bytes.subarray(offset, offset + size));
    offset += size;
  }
  scanner.end();
  return { report: session.report(), problems };
}

describe('nothing vanishes: every line with a drop or suppression phrase is counted or named', () => {
  it.each(SEEDS)('text input, generated mix %i of formats and damage', (seed) => {
    const firstLine = (['syslog', 'dmesg', 'any'] as const)[seed % 3];
    const { lines } = generateLog(seed, 400, { unitSuppressions: true, firstLine });
    const phraseLines = lines.filter(carriesPhrase).length;
    const { report, problems } = scanText(lines, seed);
    expect(phraseLines).toBeGreaterThan(50);
    expect(accounted(report)).toBe(phraseLines);
    // Each unreadable line is named, with its line number, and carries the phrase.
    const namedWithPhrase = problems.filter((problem) =>
      carriesPhrase(lines[(problem.line as number) - 1] ?? ''),
    );
    expect(namedWithPhrase).toHaveLength(report.ignored.unreadable);
  });

  it.each(SEEDS)('CloudWatch subscription (the Lambda), generated mix %i, one line per event', (seed) => {
    const { lines } = generateLog(seed, 400, { unitSuppressions: true });
    const next = random(seed * 7);
    const data: CloudWatchLogsData = {
      messageType: 'DATA_MESSAGE',
      owner: '123456789012',
      logGroup: '/conntrack-responder/kernel',
      logStream: 'i-0a1b2c3d4e5f67890',
      subscriptionFilters: ['conntrack-responder'],
      logEvents: lines.map((message, index) => ({
        id: String(index),
        // Some events carry a timestamp that is not a time: only they are refused.
        timestamp:
          next() < 0.03 ? pick(next, [1e300, -1, 8.64e15 + 1]) : Date.parse('2026-03-13T20:21:45Z') + index,
        message,
      })),
    };
    const result = detectInSubscription(data, { now });
    expect(accounted(result)).toBe(lines.filter(carriesPhrase).length);
  });

  it.each(SEEDS.slice(0, 30))(
    'journald JSON lines, generated mix %i, with truncated and refused entries',
    (seed) => {
      const { lines } = generateLog(seed, 300, { unitSuppressions: true });
      const next = random(seed * 13);
      const jsonLines = lines.map((message) => {
        const entry = journalEntry({
          message,
          transport: next() < 0.8 ? 'kernel' : 'syslog',
          realtimeMicros: next() < 0.05 ? '9'.repeat(16) : '1773433305123456',
        });
        const roll = next();
        if (roll < 0.05) return entry.slice(0, Math.floor(next() * entry.length)); // cut short
        if (roll < 0.07) return `${'['.repeat(100)}${entry}${']'.repeat(100)}`; // nested too deep
        return entry;
      });
      const session = new DetectionSession({ now });
      const splitter = new JsonValueSplitter();
      // Lines named on standard error by the command line (functions/cli/detect.ts does the same).
      const named = new Set<number>();
      const onPiece = (piece: Parameters<Parameters<JsonValueSplitter['push']>[1]>[0]) => {
        if ('error' in piece) {
          named.add(piece.line);
          return;
        }
        let value: unknown;
        try {
          value = JSON.parse(piece.text);
        } catch {
          named.add(piece.line);
          return;
        }
        if (session.jsonValue(value).length > 0) named.add(piece.line);
      };
      splitter.push(`${jsonLines.join('\n')}\n`, onPiece);
      splitter.end(onPiece);
      const report = session.report();
      const isPhraseEntry = (index: number) =>
        carriesPhrase(jsonLines[index] ?? '') && carriesPhrase(lines[index] ?? '');
      const phraseEntries = jsonLines.filter((_line, index) => isPhraseEntry(index)).length;
      const namedPhraseEntries = [...named].filter((line) => isPhraseEntry(line - 1)).length;
      const counted = accounted(report) - report.ignored.unreadable;
      expect(phraseEntries).toBeGreaterThan(30);
      expect(counted + namedPhraseEntries).toBe(phraseEntries);
    },
  );

  it.each(SEEDS.slice(0, 20))(
    'journald JSON whose messages spell every character as a \\u escape, read in random chunks, mix %i: the report of the plain JSON',
    (seed) => {
      const { lines } = generateLog(seed, 300, { unitSuppressions: true });
      const next = random(seed * 17);
      const entries = lines.map((message) =>
        journalEntry({ message, transport: next() < 0.8 ? 'kernel' : 'syslog' }),
      );
      // The bytes of `table full` or `suppressed` appear nowhere in the escaped input.
      const unicodeEscaped = (text: string) =>
        Array.from(
          { length: text.length },
          (_, index) => `\\u${text.charCodeAt(index).toString(16).padStart(4, '0')}`,
        ).join('');
      const escaped = entries.map((entry, index) =>
        entry.replace(JSON.stringify(lines[index]), `"${unicodeEscaped(lines[index] ?? '')}"`),
      );
      expect(escaped.join('\n')).not.toMatch(/table full|suppressed/);
      const read = (text: string) => {
        const session = new DetectionSession({ now });
        const splitter = new JsonValueSplitter();
        const onPiece = (piece: Parameters<Parameters<JsonValueSplitter['push']>[1]>[0]) => {
          if (!('error' in piece)) session.jsonValue(JSON.parse(piece.text));
        };
        for (let offset = 0; offset < text.length; ) {
          const size = 1 + Math.floor(next() * 512);
          splitter.push(text.slice(offset, offset + size), onPiece);
          offset += size;
        }
        splitter.end(onPiece);
        return session.report();
      };
      const plain = read(`${entries.join('\n')}\n`);
      expect(plain.groups.length).toBeGreaterThan(0);
      expect(read(`${escaped.join('\n')}\n`)).toEqual(plain);
    },
  );
});
