import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from '../../../functions/local/exec.js';
import { RUNBOOKS_DIR } from '../../../functions/local/runbooks.js';

/**
 * What can be checked about the remediation scripts without a kernel: SSM splices one script per
 * document, so the helpers they share are copied into each (and must stay identical), and every
 * parameter refusal happens before anything on the host is read or written, with exit 3 and one
 * well-formed JSON object whatever the value contained. The real effects are in test/lab/remediation.
 */
const SCRIPTS = ['raise-limits', 'notrack-ports', 'rollback'] as const;
const BEGIN = '# ---- common: begin';
const END = '# ---- common: end';

async function script(name: string): Promise<string> {
  return readFile(join(RUNBOOKS_DIR, 'scripts', `${name}.sh`), 'utf8');
}

function sharedBlock(text: string, name: string): string {
  const start = text.indexOf(BEGIN);
  const end = text.indexOf(END);
  if (start < 0 || end < start)
    throw new Error(`${name}.sh has no shared block between '${BEGIN}' and '${END}'`);
  return text.slice(start, end);
}

describe('remediation scripts', () => {
  let stateDir: string;
  beforeAll(async () => {
    stateDir = await mkdtemp(join(tmpdir(), 'ctr-unit-state-'));
  });
  afterAll(async () => {
    await rm(stateDir, { recursive: true, force: true });
  });

  async function run(name: string, parameters: Record<string, string>) {
    const env: Record<string, string> = {
      CONNTRACK_RESPONDER_STATE_DIR: stateDir,
      CONNTRACK_RESPONDER_ROOT: stateDir,
    };
    for (const [key, value] of Object.entries(parameters)) env[`SSM_${key}`] = value;
    const result = await execFile('bash', [join(RUNBOOKS_DIR, 'scripts', `${name}.sh`)], {
      env,
      allowFailure: true,
    });
    const lines = result.stdout.split('\n').filter(Boolean);
    expect(lines, result.stderr).toHaveLength(1);
    return { ...result, json: JSON.parse(lines[0] ?? '') as Record<string, unknown> };
  }

  it('carry the same shared block', async () => {
    const blocks = await Promise.all(SCRIPTS.map(async (name) => sharedBlock(await script(name), name)));
    expect(blocks[1]).toBe(blocks[0]);
    expect(blocks[2]).toBe(blocks[0]);
  });

  it.each([
    ['raise-limits', { ChangeId: 'c1', MaxEntries: '0' }, /MaxEntries 0 means 'no limit'/],
    ['raise-limits', { ChangeId: 'c1', MaxEntries: '2147483648' }, /above 2147483647/],
    ['raise-limits', { ChangeId: 'c1', MaxEntries: '9999999999' }, /above 2147483647/],
    ['raise-limits', { ChangeId: 'c1', MaxEntries: '12e3' }, /MaxEntries '12e3' is invalid/],
    ['raise-limits', { ChangeId: 'c1', MaxEntries: '300000', HashSize: '600000' }, /larger than MaxEntries/],
    [
      'raise-limits',
      { ChangeId: 'c1', MaxEntries: '300000', MemoryBudgetPercent: '51' },
      /MemoryBudgetPercent '51'/,
    ],
    [
      'raise-limits',
      { ChangeId: 'c1', MaxEntries: '300000', Timeouts: 'tcp_timeout_time_wait=0' },
      /Timeouts entry/,
    ],
    ['raise-limits', { ChangeId: 'c1', MaxEntries: '300000', Timeouts: 'tcp_loose=0' }, /Timeouts entry/],
    [
      'raise-limits',
      { ChangeId: 'c1', MaxEntries: '300000', Timeouts: 'tcp_loose=1' },
      /not a conntrack timeout/,
    ],
    ['raise-limits', { ChangeId: 'c1', MaxEntries: '300000', Persist: 'yes' }, /Persist 'yes' is invalid/],
    [
      'notrack-ports',
      { ChangeId: 'c1', Ports: '70000', Protocol: 'tcp', Direction: 'inbound' },
      /above 65535/,
    ],
    [
      'notrack-ports',
      { ChangeId: 'c1', Ports: '90:80', Protocol: 'tcp', Direction: 'inbound' },
      /must not be above/,
    ],
    [
      'notrack-ports',
      { ChangeId: 'c1', Ports: '80,70:90', Protocol: 'tcp', Direction: 'inbound' },
      /overlap/,
    ],
    [
      'notrack-ports',
      {
        ChangeId: 'c1',
        Ports: Array.from({ length: 16 }, (_, i) => 1000 + i).join(','),
        Protocol: 'tcp',
        Direction: 'inbound',
      },
      /at most 15/,
    ],
    [
      'notrack-ports',
      { ChangeId: 'c1', Ports: '80', Protocol: 'sctp', Direction: 'inbound' },
      /Protocol 'sctp'/,
    ],
    [
      'notrack-ports',
      { ChangeId: 'c1', Ports: '80', Protocol: 'tcp', Direction: 'both' },
      /Direction 'both'/,
    ],
    [
      'notrack-ports',
      { ChangeId: 'c1', Ports: '80;reboot', Protocol: 'tcp', Direction: 'inbound' },
      /Ports '80;reboot'/,
    ],
    ['rollback', { ChangeId: '-rf' }, /ChangeId '-rf' is invalid/],
    ['rollback', { ChangeId: 'never-applied' }, /unknown ChangeId never-applied/],
  ] as const)('%s refuses %j before touching anything', async (name, parameters, reason) => {
    const result = await run(name, parameters);
    expect(result.code).toBe(3);
    expect(result.json).toMatchObject({ document: name, changeId: parameters.ChangeId, status: 'refused' });
    expect((result.json.reasons as string[]).join('\n')).toMatch(reason);
    expect(result.stderr).toMatch(new RegExp(`^${name}: refused: `, 'm'));
  });

  it('escapes whatever a value holds into valid JSON', async () => {
    const hostile = 'a"b\\c\td\ne\u0001f$(id)`id`';
    for (const name of SCRIPTS) {
      const result = await run(name, {
        ChangeId: hostile,
        MaxEntries: '1',
        Ports: '1',
        Protocol: 'tcp',
        Direction: 'inbound',
      });
      expect(result.code).toBe(3);
      expect(result.json.changeId).toBe(hostile.replace('\u0001', '?'));
      expect((result.json.reasons as string[])[0]).toContain('is invalid');
    }
  });
});
