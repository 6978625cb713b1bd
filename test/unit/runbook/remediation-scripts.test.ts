import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from '../../../functions/local/exec.js';
import { loadRunbook, RUNBOOKS_DIR } from '../../../functions/local/runbooks.js';

/**
 * What can be checked about the remediation scripts without a kernel: their shared helpers live
 * once, in lib/common.sh, and reach each document through its include line (the mechanism itself
 * is tested in include.test.ts); and every parameter refusal happens before anything on the host is
 * read or written, with exit 3 and one well-formed JSON object whatever the value contained, both
 * when a script runs as a file and as the composed document SSM runs. The real effects are in
 * test/lab/remediation.
 */
const SCRIPTS = ['raise-limits', 'notrack-ports', 'rollback'] as const;
const LIBRARY = 'lib/common.sh';

async function script(path: string): Promise<string> {
  return readFile(join(RUNBOOKS_DIR, 'scripts', path), 'utf8');
}

/** Names a file defines at top level: functions (`name() {`) and readonly variables. */
function definedNames(text: string): string[] {
  return Array.from(
    text.matchAll(/^(?:([A-Za-z_][A-Za-z0-9_]*)\(\) *\{|readonly ([A-Za-z_][A-Za-z0-9_]*)=)/gm),
    (match) => match[1] ?? match[2] ?? '',
  );
}

describe('remediation scripts', () => {
  let stateDir: string;
  let composedDir: string;
  beforeAll(async () => {
    stateDir = await mkdtemp(join(tmpdir(), 'ctr-unit-state-'));
    // The documents' scripts in a folder without lib/: what SSM runs cannot lean on the library file.
    composedDir = await mkdtemp(join(tmpdir(), 'ctr-unit-composed-'));
    await mkdir(composedDir, { recursive: true });
    for (const name of SCRIPTS) {
      const { document } = await loadRunbook(name);
      await writeFile(
        join(composedDir, `${name}.sh`),
        `${document.mainSteps[0].inputs.runCommand.join('\n')}\n`,
      );
    }
  });
  afterAll(async () => {
    await rm(stateDir, { recursive: true, force: true });
    await rm(composedDir, { recursive: true, force: true });
  });

  async function run(name: string, parameters: Record<string, string>, form: 'file' | 'document') {
    const env: Record<string, string> = {
      CONNTRACK_RESPONDER_STATE_DIR: stateDir,
      CONNTRACK_RESPONDER_ROOT: stateDir,
    };
    for (const [key, value] of Object.entries(parameters)) env[`SSM_${key}`] = value;
    const path =
      form === 'file' ? join(RUNBOOKS_DIR, 'scripts', `${name}.sh`) : join(composedDir, `${name}.sh`);
    const result = await execFile('bash', [path], { env, allowFailure: true });
    const lines = result.stdout.split('\n').filter(Boolean);
    expect(lines, result.stderr).toHaveLength(1);
    return { ...result, json: JSON.parse(lines[0] ?? '') as Record<string, unknown> };
  }

  it.each(SCRIPTS)('%s includes lib/common.sh and defines none of its names again', async (name) => {
    const [text, library] = await Promise.all([script(`${name}.sh`), script(LIBRARY)]);
    const shared = definedNames(library);
    expect(shared).toEqual(
      expect.arrayContaining(['json_str', 'resolve_init_netns', 'persist_file', 'STATE_DIR']),
    );
    expect(text).toMatch(new RegExp(`^source .*  # conntrack-responder:include ${LIBRARY}$`, 'm'));
    expect(definedNames(text).filter((defined) => shared.includes(defined))).toEqual([]);
    const { document } = await loadRunbook(name);
    expect(document.mainSteps[0].inputs.runCommand.join('\n')).toContain(library.trimEnd());
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
    for (const form of ['file', 'document'] as const) {
      const result = await run(name, parameters, form);
      expect(result.code, form).toBe(3);
      expect(result.json).toMatchObject({ document: name, changeId: parameters.ChangeId, status: 'refused' });
      expect((result.json.reasons as string[]).join('\n')).toMatch(reason);
      expect(result.stderr).toMatch(new RegExp(`^${name}: refused: `, 'm'));
    }
  });

  it('escapes whatever a value holds into valid JSON', async () => {
    const hostile = 'a"b\\c\td\ne\u0001f$(id)`id`';
    for (const [name, form] of SCRIPTS.flatMap((name) => [
      [name, 'file'] as const,
      [name, 'document'] as const,
    ])) {
      const result = await run(
        name,
        {
          ChangeId: hostile,
          MaxEntries: '1',
          Ports: '1',
          Protocol: 'tcp',
          Direction: 'inbound',
        },
        form,
      );
      expect(result.code).toBe(3);
      expect(result.json.changeId).toBe(hostile.replace('\u0001', '?'));
      expect((result.json.reasons as string[])[0]).toContain('is invalid');
    }
  });
});
