import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../../functions/cli/main.js';
import { captureIo } from '../support/capture-io.js';
import {
  journalEntry,
  KERNEL_6_18_NETNS,
  SEED_001_KEEPALIVED,
  SEED_001_MESSAGES,
  SEED_002_KERNEL_TAGGED,
  SEED_003_DMESG,
} from './real-lines.js';

async function run(args: string[], stdinText?: string | Buffer) {
  const captured = captureIo(stdinText);
  const code = await main(['detect', ...args], captured.io);
  return { code, stdout: captured.stdout(), stderr: captured.stderr() };
}

const INSTANCE = 'i-0a1b2c3d4e5f67890';
let dir: string;
const file = (name: string) => join(dir, name);

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'detect-cli-'));
  await writeFile(file('messages'), `${[...SEED_001_MESSAGES, ...SEED_001_KEEPALIVED].join('\n')}\n`);
  await writeFile(file('messages.gz'), gzipSync(`${SEED_001_MESSAGES.join('\n')}\n`));
  await writeFile(file('dmesg.txt'), `${SEED_003_DMESG.join('\n')}\n${KERNEL_6_18_NETNS.dmesg}\n`);
  await writeFile(
    file('journal.json'),
    `${[
      journalEntry({ message: 'net_ratelimit: 12 callbacks suppressed', realtimeMicros: '1773433305123456' }),
      journalEntry({ message: 'nf_conntrack: table full, dropping packet', transport: 'syslog' }),
      journalEntry({
        message: 'nf_conntrack: nf_conntrack: expectation table full',
        realtimeMicros: '1773433306000000',
      }),
    ].join('\n')}\n`,
  );
  const data = {
    messageType: 'DATA_MESSAGE',
    owner: '123456789012',
    logGroup: '/ec2/var/log/messages',
    logStream: `web-01_${INSTANCE}`,
    subscriptionFilters: ['conntrack-responder'],
    logEvents: SEED_001_MESSAGES.map((message, index) => ({
      id: String(index),
      timestamp: 1773433305000,
      message,
    })),
  };
  // Saved the way `sam local generate-event` or a console test event would be: pretty-printed.
  await writeFile(
    file('lambda-event.json'),
    JSON.stringify({ awslogs: { data: gzipSync(JSON.stringify(data)).toString('base64') } }, null, 2),
  );
  await writeFile(
    file('broken.log'),
    `${SEED_001_MESSAGES[0]}\n${SEED_001_MESSAGES[1]}\nnf_conntrack: table full, dropping packet\n${SEED_001_MESSAGES[2]}\n`,
  );
  await writeFile(file('broken.json'), `${journalEntry({ message: 'x' })}\n{"MESSAGE": "x", oops}\n`);
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('conntrack-responder detect', () => {
  it('prints its options with --help', async () => {
    const result = await run(['--help']);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('--instance-id-pattern RE');
    expect(result.stdout).toContain('usage: conntrack-responder detect');
  });

  it('prints a readable summary by default', async () => {
    const result = await run([file('messages'), '--now', '2026-11-21T00:00:00Z']);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain(
      'HOST     NETNS  KIND        DROP LINES  SUPPRESSED  FIRST SEEN                LAST SEEN',
    );
    expect(result.stdout).toContain(
      'fashion  -      table-full           4         419  2026-03-13T20:21:45.000Z  2026-03-13T20:21:59.000Z',
    );
    expect(result.stdout).toContain('4 drop lines in 1 group on 1 host.');
  });

  it('reads a mix of formats and prints exactly one JSON object with --json', async () => {
    const result = await run([
      '--json',
      '--now',
      '2026-11-21T00:00:00Z',
      '--host',
      'db-3',
      file('messages.gz'),
      file('dmesg.txt'),
      file('journal.json'),
      file('lambda-event.json'),
    ]);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout.endsWith('}\n')).toBe(true);
    expect(JSON.parse(result.stdout)).toEqual({
      groups: [
        {
          host: 'fashion',
          netns: null,
          kind: 'table-full',
          dropLines: 4,
          suppressed: 419,
          firstSeen: '2026-03-13T20:21:45.000Z',
          lastSeen: '2026-03-13T20:21:59.000Z',
        },
        {
          host: 'db-3',
          netns: null,
          kind: 'table-full',
          dropLines: 11,
          suppressed: 1367,
          firstSeen: null,
          lastSeen: null,
        },
        {
          host: 'db-3',
          netns: KERNEL_6_18_NETNS.inode,
          kind: 'table-full',
          dropLines: 1,
          suppressed: 0,
          firstSeen: null,
          lastSeen: null,
        },
        {
          host: 'ip-10-0-1-17',
          netns: null,
          kind: 'expect-table-full',
          dropLines: 1,
          suppressed: 12,
          firstSeen: '2026-03-13T20:21:45.123Z',
          lastSeen: '2026-03-13T20:21:46.000Z',
        },
        {
          host: INSTANCE,
          netns: null,
          kind: 'table-full',
          dropLines: 4,
          suppressed: 419,
          firstSeen: '2026-03-13T20:21:45.000Z',
          lastSeen: '2026-03-13T20:21:59.000Z',
        },
      ],
      ignored: { 'not-kernel': 1, unrelated: 0, unreadable: 0 },
    });
  });

  it('reads standard input with -', async () => {
    const result = await run(['--json', '--host', 'legacy-5', '-'], `${SEED_002_KERNEL_TAGGED.join('\n')}\n`);
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout).groups).toEqual([
      {
        host: 'legacy-5',
        netns: null,
        kind: 'table-full',
        dropLines: 3,
        suppressed: 3,
        firstSeen: null,
        lastSeen: null,
      },
    ]);
  });

  it('reads gzip-compressed standard input when no file is given', async () => {
    const result = await run(['--json'], gzipSync(`${SEED_003_DMESG.join('\n')}\n`));
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout).groups[0]).toMatchObject({ host: 'localhost', dropLines: 11 });
  });

  it('takes the host from the stream name with --instance-id-pattern', async () => {
    const result = await run([
      '--json',
      '--instance-id-pattern',
      '^([a-z]+-\\d+)_',
      file('lambda-event.json'),
    ]);
    expect(JSON.parse(result.stdout).groups[0].host).toBe('web-01');
  });

  it('reads a saved payload with a malformed event: the good events count, the bad one is named, the exit code is a warning', async () => {
    const events = SEED_001_MESSAGES.map((message, index) => ({
      id: `event-${index}`,
      timestamp: 1773433305000,
      message,
    }));
    const payload = {
      messageType: 'DATA_MESSAGE',
      owner: '123456789012',
      logGroup: '/ec2/var/log/messages',
      logStream: INSTANCE,
      subscriptionFilters: ['conntrack-responder'],
      logEvents: [
        ...events.slice(0, 2),
        { id: 'event-x', message: SEED_001_MESSAGES[2] },
        ...events.slice(2),
      ],
    };
    await writeFile(file('bad-event.json'), `${JSON.stringify(payload, null, 2)}\n`);
    await writeFile(
      file('bad-event-lambda.json'),
      JSON.stringify({ awslogs: { data: gzipSync(JSON.stringify(payload)).toString('base64') } }),
    );
    for (const name of ['bad-event.json', 'bad-event-lambda.json']) {
      const result = await run(['--json', file(name)]);
      expect(JSON.parse(result.stdout)).toEqual({
        groups: [expect.objectContaining({ host: INSTANCE, dropLines: 4, suppressed: 419 })],
        ignored: { 'not-kernel': 0, unrelated: 0, unreadable: 1 },
      });
      expect(result.stderr).toBe(
        `detect: ${file(name)}:1: logEvents[2] (id "event-x"): timestamp is not a number\n`,
      );
      expect(result.code).toBe(0);
      expect((await run(['--json', '--strict', file(name)])).code).toBe(2);
    }
  });

  it('names the file and line that cannot be used, exits 2 for the file it cannot read, and still reports the other files', async () => {
    const result = await run([
      '--json',
      file('broken.log'),
      file('missing.log'),
      file('broken.json'),
      file('messages'),
    ]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(
      `detect: ${file('broken.log')}:3: a drop or suppression message without a log header in a log whose lines name their writer`,
    );
    expect(result.stderr).toContain(`detect: ${file('missing.log')}: cannot read: ENOENT`);
    expect(result.stderr).toMatch(new RegExp(`detect: ${file('broken.json')}:2: .*JSON`));
    const report = JSON.parse(result.stdout);
    // broken.log's two good drop lines (and 30 suppressed) and messages' four (and 419), one group
    expect(report.groups).toEqual([
      expect.objectContaining({ host: 'fashion', dropLines: 6, suppressed: 449 }),
    ]);
  });

  it('numbers lines of gzip-compressed input too', async () => {
    await writeFile(
      file('broken.log.gz'),
      gzipSync(`${SEED_001_KEEPALIVED[0]}\n\nkernel: x\nnet_ratelimit: 3 callbacks suppressed\n`),
    );
    const result = await run(['--json', file('broken.log.gz')]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(`${file('broken.log.gz')}:4: a drop or suppression message`);
  });

  describe("exit status, as grep's (documented in --help and the README)", () => {
    const cases: [string, string[], string | undefined, number][] = [
      ['drops found, every input read', ['messages'], undefined, 0],
      ['no drop found, every input read', ['-'], `${SEED_001_KEEPALIVED.join('\n')}\n`, 1],
      ['an empty input', ['-'], '', 1],
      ['drops found, a line named on stderr (a warning)', ['broken.log'], undefined, 0],
      ['the same with --strict', ['--strict', 'broken.log'], undefined, 2],
      [
        'no drops, a named line, --strict',
        ['--strict', '-'],
        `${SEED_001_KEEPALIVED[0]}\nnf_conntrack: table full, dropping packet\n`,
        2,
      ],
      ['drops found, but an input cannot be read', ['messages', 'missing.log'], undefined, 2],
    ];
    it.each(cases)('%s', async (_name, args, stdin, code) => {
      const resolved = args.map((arg) => (arg.startsWith('-') ? arg : file(arg)));
      const result = await run(['--json', ...resolved], stdin);
      expect(result.code).toBe(code);
      // The report is printed whatever the status.
      expect(JSON.parse(result.stdout)).toHaveProperty('groups');
    });

    it('says so in --help', async () => {
      const help = (await run(['--help'])).stdout;
      expect(help).toMatch(/0 +conntrack drops were found/);
      expect(help).toMatch(/1 +no drops were found/);
      expect(help).toMatch(/2 +an input could not be read/);
      expect(help).toMatch(/--strict/);
      expect(help).toMatch(/141/);
    });
  });

  it.each([
    [['--frobnicate'], /Unknown option '--frobnicate'/],
    [['--instance-id-pattern', '(unclosed'], /--instance-id-pattern is not a regular expression/],
    [['--now', 'someday'], /--now is not a date/],
    [['--now', '+275760-09-13T00:00:00Z'], /--now is not a date between 1970 and 9999/],
    [['--host', 'a\u001bb'], /--host must be a non-empty name without spaces or control characters/],
    [['--host', ''], /--host must be a non-empty name/],
    [['-', '-'], /can be given once/],
  ])('refuses %j with exit code 2', async (args, message) => {
    const result = await run(args);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(message);
    expect(result.stdout).toBe('');
  });
});
