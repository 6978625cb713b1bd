import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, readFile, readlink, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from '../../../functions/local/exec.js';
import { loadRunbook } from '../../../functions/local/runbooks.js';

/**
 * The host sampler without a kernel: its counter sources are a directory laid out like /proc
 * (CONNTRACK_RESPONDER_PROC), so every header variant, a missing module and damaged files are fed
 * to the real script; its installer writes under CONNTRACK_RESPONDER_ROOT. Both run as the composed
 * document SSM runs (a copy of which is what gets installed). The real kernel is in
 * test/lab/host-sampler.test.ts.
 */

const HEADER_5_15 =
  'entries  clashres found new invalid ignore delete chainlength insert insert_failed drop early_drop icmp_error  expect_new expect_create expect_delete search_restart';
const HEADER_4_X =
  'entries  searched found new invalid ignore delete delete_list insert insert_failed drop early_drop icmp_error  expect_new expect_create expect_delete search_restart';
const HEADER_2_6_34 =
  'entries  searched found new invalid ignore delete delete_list insert insert_failed drop early_drop icmp_error  expect_new expect_create expect_delete';

interface FakeProc {
  readonly count?: string;
  readonly max?: string;
  /** Lines of /proc/net/stat/nf_conntrack (header first); absent: no such file. */
  readonly stat?: readonly string[];
  readonly bootId?: string;
  readonly netnsLink?: string;
}

/** One CPU line: 17 hex columns with the given values at the 5.15 header's positions. */
function cpuLine(values: {
  drop?: number;
  early_drop?: number;
  insert_failed?: number;
  search_restart?: number;
}) {
  const columns = HEADER_5_15.split(/\s+/).map((name) => {
    const value = (values as Record<string, number | undefined>)[name] ?? (name === 'entries' ? 0x1234 : 7);
    return value.toString(16).padStart(8, '0');
  });
  return `${columns[0]}  ${columns.slice(1, 13).join(' ')}  ${columns.slice(13).join(' ')}`;
}

async function makeProc(root: string, fake: FakeProc): Promise<string> {
  const proc = join(root, 'proc');
  await rm(proc, { recursive: true, force: true });
  await mkdir(join(proc, 'sys/net/netfilter'), { recursive: true });
  await mkdir(join(proc, 'net/stat'), { recursive: true });
  await mkdir(join(proc, 'sys/kernel/random'), { recursive: true });
  await mkdir(join(proc, 'self/ns'), { recursive: true });
  if (fake.count !== undefined)
    await writeFile(join(proc, 'sys/net/netfilter/nf_conntrack_count'), fake.count);
  if (fake.max !== undefined) await writeFile(join(proc, 'sys/net/netfilter/nf_conntrack_max'), fake.max);
  if (fake.stat !== undefined)
    await writeFile(join(proc, 'net/stat/nf_conntrack'), `${fake.stat.join('\n')}\n`);
  await writeFile(
    join(proc, 'sys/kernel/random/boot_id'),
    `${fake.bootId ?? '1f0e2d3c-4b5a-6978-8796-a5b4c3d2e1f0'}\n`,
  );
  await symlink(fake.netnsLink ?? 'net:[4026532177]', join(proc, 'self/ns/net'));
  return proc;
}

describe('host-sampler', () => {
  let work: string;
  let script: string;
  let emptySys: string;
  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'ctr-unit-sampler-'));
    emptySys = join(work, 'empty-sys');
    await mkdir(join(emptySys, 'class/net'), { recursive: true });
    const { document } = await loadRunbook('host-sampler');
    script = join(work, 'host-sampler.sh');
    await writeFile(script, `${document.mainSteps[0].inputs.runCommand.join('\n')}\n`);
  });
  afterAll(async () => {
    await rm(work, { recursive: true, force: true });
  });

  async function sample(fake: FakeProc, extraEnv: Record<string, string> = {}) {
    const proc = await makeProc(work, fake);
    const result = await execFile('bash', [script, 'once'], {
      // An empty /sys unless a test gives one: the machine's own interfaces never leak in.
      env: { CONNTRACK_RESPONDER_PROC: proc, CONNTRACK_RESPONDER_SYS: emptySys, ...extraEnv },
      allowFailure: true,
    });
    expect(result.code, result.stderr).toBe(0);
    const lines = result.stdout.split('\n').filter(Boolean);
    expect(lines).toHaveLength(1);
    return lines[0] ?? '';
  }

  /** The line's key=value pairs after the tag. */
  function fields(line: string): Record<string, string> {
    const [tag, ...pairs] = line.split(' ');
    expect(tag).toBe('conntrack-responder-sample');
    return Object.fromEntries(pairs.map((pair) => pair.split('=') as [string, string]));
  }

  it('sums the four counters over every CPU line (hex), by header name on a 5.15+ kernel', async () => {
    const line = await sample({
      count: '1234\n',
      max: '262144\n',
      stat: [
        HEADER_5_15,
        cpuLine({ drop: 0x10, early_drop: 2, insert_failed: 3, search_restart: 0xff }),
        cpuLine({ drop: 0x20, early_drop: 0, insert_failed: 1, search_restart: 1 }),
      ],
    });
    const f = fields(line);
    expect(f).toMatchObject({
      v: '1',
      seq: '1',
      boot: '1f0e2d3c',
      ns: '4026532177',
      count: '1234',
      max: '262144',
      drop: String(0x30),
      early_drop: '2',
      insert_failed: '4',
      search_restart: String(0x100),
      cpus: '2',
    });
    expect(f.t).toMatch(/^\d{10}(\.\d{3})?$/);
    expect(Math.abs(Number(f.t) - Date.now() / 1000)).toBeLessThan(60);
  });

  it.each([
    ['4.x (searched, delete_list)', HEADER_4_X],
    ['2.6.34 (no search_restart)', HEADER_2_6_34],
  ])('reads the counters by name on a %s kernel', async (_label, header) => {
    const names = header.split(/\s+/);
    const row = names.map(
      (name) => ({ drop: 5, early_drop: 6, insert_failed: 7, search_restart: 8 })[name] ?? 99,
    );
    const line = await sample({
      count: '10',
      max: '65536',
      stat: [header, row.map((value) => value.toString(16).padStart(8, '0')).join(' ')],
    });
    expect(fields(line)).toEqual(
      expect.objectContaining({ drop: '5', early_drop: '6', insert_failed: '7', cpus: '1' }),
    );
    // A counter the kernel does not have is left out, never reported as 0.
    expect(fields(line).search_restart).toBe(names.includes('search_restart') ? '8' : undefined);
  });

  it('says loaded=0 and nothing else when nf_conntrack is not loaded', async () => {
    const line = await sample({});
    expect(line).toMatch(/ ns=4026532177 loaded=0$/);
  });

  it('still reports count and limit without /proc/net/stat (CONFIG_NF_CONNTRACK_PROCFS off)', async () => {
    const line = await sample({ count: '5', max: '100' });
    expect(line).toMatch(/ count=5 max=100$/);
  });

  it('treats damaged values as absent instead of printing them or dying', async () => {
    expect(await sample({ count: '12;reboot', max: '100' })).toMatch(/ loaded=0$/);
    const line = await sample({
      count: '3',
      max: '100',
      stat: [
        HEADER_5_15,
        cpuLine({ drop: 1 }).replace(/^(\S+\s+(?:\S+\s+){9})\S+/, '$1zz$(id)'),
        cpuLine({ drop: 2 }),
      ],
      bootId: 'not-hex;$(id)',
      netnsLink: 'weird',
    });
    const f = fields(line);
    // The damaged CPU line is left out of the sums and of the CPU count.
    expect(f.drop).toBe('2');
    expect(f.cpus).toBe('1');
    expect(f.boot).toBe('unknown');
    expect(f.ns).toBe('unknown');
    expect(line).not.toMatch(/[;$()]/);
  });

  it('handles a 192-CPU host in one line', async () => {
    const cpus = Array.from({ length: 192 }, (_, index) => cpuLine({ drop: index }));
    const f = fields(await sample({ count: '1', max: '2', stat: [HEADER_5_15, ...cpus] }));
    expect(f.cpus).toBe('192');
    expect(f.drop).toBe(String((191 * 192) / 2));
  });

  it('numbers samples in a run and stops after CONNTRACK_SAMPLER_SAMPLES', async () => {
    const proc = await makeProc(work, { count: '1', max: '2', stat: [HEADER_5_15, cpuLine({})] });
    const { stdout } = await execFile('bash', [script, 'run'], {
      env: {
        CONNTRACK_RESPONDER_PROC: proc,
        CONNTRACK_RESPONDER_SYS: emptySys,
        CONNTRACK_SAMPLER_INTERVAL: '0.05',
        CONNTRACK_SAMPLER_SAMPLES: '4',
      },
    });
    const lines = stdout.split('\n').filter(Boolean);
    expect(lines.map((line) => fields(line).seq)).toEqual(['1', '2', '3', '4']);
    const times = lines.map((line) => Number(fields(line).t));
    expect((times[3] ?? 0) - (times[0] ?? 0)).toBeGreaterThanOrEqual(0.1);
  });

  describe("EC2's allowance counters (ENA), per interface", () => {
    const LOADED: FakeProc = { count: '5', max: '100', stat: [HEADER_5_15, cpuLine({})] };
    let sys: string;
    let stats: string;

    /** A fake /sys with these interfaces; `ena` ones have a PCI device driven by ena. */
    async function makeSys(interfaces: Record<string, 'ena' | 'ixgbe' | 'virtual'>) {
      sys = join(work, 'sys');
      await rm(sys, { recursive: true, force: true });
      for (const [name, kind] of Object.entries(interfaces)) {
        const dir = join(sys, 'class/net', name);
        await mkdir(kind === 'virtual' ? dir : join(dir, 'device'), { recursive: true });
        if (kind !== 'virtual') {
          await writeFile(
            join(dir, 'device/uevent'),
            `DRIVER=${kind}\nPCI_CLASS=20000\nPCI_SLOT_NAME=0000:00:05.0\n`,
          );
        }
      }
    }

    /** What `ethtool -S` prints for an ENA interface, with these allowance counters. */
    function ethtoolText(counters: { exceeded?: string; available?: string }) {
      return [
        'NIC statistics:',
        '     tx_timeout: 0',
        '     bw_in_allowance_exceeded: 0',
        ...(counters.exceeded === undefined
          ? []
          : [`     conntrack_allowance_exceeded: ${counters.exceeded}`]),
        '     linklocal_allowance_exceeded: 0',
        ...(counters.available === undefined
          ? []
          : [`     conntrack_allowance_available: ${counters.available}`]),
        '     queue_0_tx_cnt: 123',
        '',
      ].join('\n');
    }

    async function writeStats(files: Record<string, string>) {
      stats = join(work, 'ena-stats');
      await rm(stats, { recursive: true, force: true });
      await mkdir(stats, { recursive: true });
      for (const [name, text] of Object.entries(files)) await writeFile(join(stats, name), text);
    }

    it('reads the injected counters of every interface that has a file, on every form of the line', async () => {
      await makeSys({ lo: 'virtual', ens5: 'virtual', ens6: 'virtual', veth9: 'virtual' });
      await writeStats({
        ens5: ethtoolText({ exceeded: '41', available: '12' }),
        ens6: ethtoolText({ exceeded: '3' }),
        // Neither counter (an ENA driver older than 2.2.10): not written.
        veth9: ethtoolText({}),
        lo: ethtoolText({ exceeded: '1' }),
        // No such interface here: never read.
        eth7: ethtoolText({ exceeded: '1' }),
      });
      const env = { CONNTRACK_RESPONDER_SYS: sys, CONNTRACK_RESPONDER_ENA_STATS: stats };
      const ena = 'ena.0=ens5 ena.0.exceeded=41 ena.0.available=12 ena.1=ens6 ena.1.exceeded=3';
      expect(await sample(LOADED, env)).toMatch(new RegExp(` cpus=1 ${ena}$`));
      expect(await sample({}, env)).toMatch(new RegExp(` loaded=0 ${ena}$`));
      expect(await sample({ count: '5', max: '100' }, env)).toMatch(new RegExp(` max=100 ${ena}$`));
    });

    it('leaves out values it cannot vouch for instead of printing them', async () => {
      await makeSys({ ens5: 'virtual', 'we;ird': 'virtual' });
      await writeStats({
        ens5: ethtoolText({ exceeded: '12;reboot', available: '1234567890123456' }),
        'we;ird': ethtoolText({ exceeded: '1' }),
      });
      const line = await sample(LOADED, {
        CONNTRACK_RESPONDER_SYS: sys,
        CONNTRACK_RESPONDER_ENA_STATS: stats,
      });
      expect(line).toMatch(/ cpus=1$/);
    });

    it('asks ethtool -S about the interfaces driven by ena only, at most 8', async () => {
      const interfaces: Record<string, 'ena' | 'ixgbe' | 'virtual'> = {
        eth0: 'ena',
        docker0: 'virtual',
        ens9: 'ixgbe',
      };
      for (let index = 1; index <= 9; index++) interfaces[`enX${index}`] = 'ena';
      await makeSys(interfaces);
      // ethtool as a program on PATH, printing what the driver would and noting whom it was asked about.
      const bin = join(work, 'bin');
      await mkdir(bin, { recursive: true });
      const asked = join(work, 'ethtool-asked');
      await rm(asked, { force: true });
      await writeFile(
        join(bin, 'ethtool'),
        `#!/bin/sh\n[ "$1" = -S ] || exit 1\necho "$2" >>'${asked}'\nprintf '${ethtoolText({ exceeded: '5', available: '900' }).replace(/\n/g, '\\n')}'\n`,
        { mode: 0o755 },
      );
      const line = await sample(LOADED, {
        CONNTRACK_RESPONDER_SYS: sys,
        PATH: `${bin}:${process.env.PATH ?? '/usr/bin:/bin'}`,
      });
      const named = [...line.matchAll(/ ena\.(\d)=(\S+) ena\.\d\.exceeded=5 ena\.\d\.available=900/g)].map(
        (match) => match[2],
      );
      expect(named).toHaveLength(8);
      expect(named.every((name) => interfaces[name ?? ''] === 'ena')).toBe(true);
      expect((await readFile(asked, 'utf8')).trim().split('\n').sort()).toEqual([...named].sort());
    });

    it('writes no ENA field on a host without ethtool or without ENA', async () => {
      await makeSys({ eth0: 'ena' });
      // A PATH with bash and readlink only.
      const bin = join(work, 'bin-without-ethtool');
      await mkdir(bin, { recursive: true });
      for (const tool of ['bash', 'readlink']) {
        const { stdout } = await execFile('sh', ['-c', `command -v ${tool}`]);
        await symlink(stdout.trim(), join(bin, tool)).catch(() => undefined);
      }
      const line = await sample(LOADED, { CONNTRACK_RESPONDER_SYS: sys, PATH: bin });
      expect(line).toMatch(/ cpus=1$/);
      await makeSys({ docker0: 'virtual', ens9: 'ixgbe' });
      expect(await sample(LOADED, { CONNTRACK_RESPONDER_SYS: sys })).toMatch(/ cpus=1$/);
    });
  });

  it.each([
    [{ CONNTRACK_SAMPLER_INTERVAL: '1;id' }, /not a number of seconds/],
    [{ CONNTRACK_SAMPLER_INTERVAL: '0' }, /interval of 0 needs/],
    [{ CONNTRACK_SAMPLER_SAMPLES: '-1' }, /not a whole number/],
  ])('refuses a bad setting %j with exit 2', async (env, message) => {
    const result = await execFile('bash', [script, 'run'], { env, allowFailure: true });
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(message);
    expect(result.stdout).toBe('');
  });

  describe('the SSM document (install, update, remove)', () => {
    let root: string;
    const tree = () =>
      execFileSync('find', [root, '-mindepth', '1'], { encoding: 'utf8' })
        .split('\n')
        .filter(Boolean)
        .map((path) => relative(root, path))
        .sort();

    async function document(parameters: Record<string, string>) {
      const env: Record<string, string> = { CONNTRACK_RESPONDER_ROOT: root };
      for (const [key, value] of Object.entries(parameters)) env[`SSM_${key}`] = value;
      const result = await execFile('bash', [script], { env, allowFailure: true });
      const lines = result.stdout.split('\n').filter(Boolean);
      expect(lines, result.stderr).toHaveLength(1);
      return { code: result.code, json: JSON.parse(lines[0] ?? '') as Record<string, unknown> };
    }

    beforeAll(async () => {
      root = join(work, 'root');
      // What every systemd host already has.
      await mkdir(join(root, 'etc/systemd/system/multi-user.target.wants'), { recursive: true });
      await mkdir(join(root, 'usr/local/lib'), { recursive: true });
    });

    it('installs itself and a service, changes nothing the second time, and removes exactly that', async () => {
      const before = tree();
      const first = await document({ Action: 'install' });
      expect(first.code).toBe(0);
      expect(first.json).toMatchObject({ status: 'installed', intervalSeconds: 60, systemd: false });
      const installed = await readFile(join(root, 'usr/local/lib/conntrack-responder/host-sampler'), 'utf8');
      expect(installed).toBe(await readFile(script, 'utf8'));
      const unit = await readFile(
        join(root, 'etc/systemd/system/conntrack-responder-sampler.service'),
        'utf8',
      );
      expect(unit).toContain('ExecStart=/usr/local/lib/conntrack-responder/host-sampler run');
      expect(unit).toContain('Environment=CONNTRACK_SAMPLER_INTERVAL=60');
      expect(unit).toContain('SyslogIdentifier=conntrack-responder-sampler');
      expect(
        await readlink(
          join(root, 'etc/systemd/system/multi-user.target.wants/conntrack-responder-sampler.service'),
        ),
      ).toBe('/etc/systemd/system/conntrack-responder-sampler.service');

      const again = await document({ Action: 'install' });
      expect(again.json).toMatchObject({ status: 'unchanged', files: [] });

      const other = await document({ Action: 'install', IntervalSeconds: '5' });
      expect(other.json).toMatchObject({
        status: 'installed',
        files: [{ path: '/etc/systemd/system/conntrack-responder-sampler.service', action: 'updated' }],
      });

      const removed = await document({ Action: 'remove' });
      expect(removed.json).toMatchObject({ status: 'removed' });
      expect(tree()).toEqual(before);
      expect((await document({ Action: 'remove' })).json).toMatchObject({ status: 'absent', files: [] });
    });

    it('leaves a unit it did not write alone', async () => {
      const unit = join(root, 'etc/systemd/system/conntrack-responder-sampler.service');
      await writeFile(unit, '[Service]\nExecStart=/bin/true\n');
      try {
        const result = await document({ Action: 'remove' });
        expect(result.code).toBe(3);
        expect(result.json).toMatchObject({ status: 'refused' });
        expect(await readFile(unit, 'utf8')).toBe('[Service]\nExecStart=/bin/true\n');
      } finally {
        await rm(unit);
      }
    });

    it.each([
      [{ Action: 'purge' }, /Action 'purge' is invalid/],
      [{ Action: 'install', IntervalSeconds: '0' }, /IntervalSeconds '0' is invalid/],
      [{ Action: 'install', IntervalSeconds: '3601' }, /IntervalSeconds '3601' is invalid/],
      [{ Action: 'install', IntervalSeconds: '5;reboot' }, /IntervalSeconds '5;reboot' is invalid/],
    ])('refuses %j with exit 3 and writes nothing', async (parameters, reason) => {
      const before = tree();
      const result = await document(parameters);
      expect(result.code).toBe(3);
      expect(result.json.status).toBe('refused');
      expect(String((result.json.reasons as string[])[0])).toMatch(reason);
      expect(tree()).toEqual(before);
    });

    it('writes a unit systemd accepts without a warning (systemd-analyze verify)', async (context) => {
      const available = await execFile('systemd-analyze', ['--version'], { allowFailure: true }).catch(
        () => null,
      );
      if (available === null || available.code !== 0) {
        if (process.env.CI === 'true') throw new Error('systemd-analyze is missing under CI=true');
        context.skip();
      }
      await document({ Action: 'install' });
      try {
        const unit = await readFile(
          join(root, 'etc/systemd/system/conntrack-responder-sampler.service'),
          'utf8',
        );
        // verify checks that ExecStart exists: point it at the copy under the test root.
        const copy = join(work, 'verify', 'conntrack-responder-sampler.service');
        await mkdir(join(work, 'verify'), { recursive: true });
        await writeFile(copy, unit.replace('ExecStart=/usr/local', `ExecStart=${root}/usr/local`));
        const result = await execFile('systemd-analyze', ['verify', copy], { allowFailure: true });
        expect(result.code, result.stderr).toBe(0);
        expect(result.stderr.trim()).toBe('');
      } finally {
        await document({ Action: 'remove' });
      }
    });
  });
});
