import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { main } from '../../functions/cli/main.js';
import { type DiagnosticsReport, DiagnosticsReportSchema } from '../../functions/core/diagnostics/report.js';
import { summarizeReport } from '../../functions/core/diagnostics/summary.js';
import { captureIo } from './support/capture-io.js';

/** A report collect-diagnostics printed in the lab (iptables-nft, a DNAT rule, 1,500 TIME_WAIT). */
const FIXTURE = fileURLToPath(new URL('../fixtures/diagnostics-report.json', import.meta.url));
const fixture = (): DiagnosticsReport =>
  DiagnosticsReportSchema.parse(JSON.parse(readFileSync(FIXTURE, 'utf8')));

async function run(args: string[], input = '') {
  const { io, stdout, stderr } = captureIo(input);
  const code = await main(['diagnose', ...args], io);
  return { code, out: stdout(), err: stderr() };
}

describe('summarizeReport', () => {
  it('says how full the table is, which port holds it and what the firewall allows', () => {
    const text = summarizeReport(fixture());
    expect(text).toContain('conntrack: 1,500 of 262,144 entries (1% full), 262,144 buckets, 256 B per entry');
    expect(text).toContain(
      'counters over 1.01 s: drop +0 (0.0/s), early_drop +0 (0.0/s), insert_failed +0 (0.0/s)',
    );
    expect(text).toContain(
      'served here: tcp/8080 [MainThread]: 1,500 (100%), 1,500 short-lived, 1,500 TIME_WAIT',
    );
    expect(text).toContain(
      'NAT ports: tcp/8443; tcp/8080 (owners: other); UNTRACKED: input missing, output not-needed',
    );
    expect(text).not.toContain('ENA:');
  });

  it('shows drop rates, ENA deltas, NAT on every port, counter resets, warnings and cuts', () => {
    const report = fixture();
    const changed: DiagnosticsReport = {
      ...report,
      conntrack: {
        ...report.conntrack,
        count: 262_144,
        stats: {
          ...report.conntrack.stats,
          intervalSeconds: 2,
          first: { drop: 100, early_drop: 50, insert_failed: 7 },
          second: { drop: 1100, early_drop: 10, insert_failed: 7 },
        },
      },
      firewall: { ...report.firewall, nat: { ...report.firewall.nat, allPorts: true } },
      ena: [
        { interface: 'ens5', first: { exceeded: 5, available: 10 }, second: { exceeded: 905, available: 0 } },
      ],
      warnings: ['nft not available: native nftables tables not inspected'],
      truncated: ['listener'],
    };
    const text = summarizeReport(changed);
    expect(text).toContain('262,144 of 262,144 entries (100% full)');
    expect(text).toContain('drop +1,000 (500/s), early_drop reset, insert_failed +0 (0.0/s)');
    expect(text).toContain('NAT ports: every port (a rule matches no port)');
    expect(text).toContain('ENA: ens5 conntrack_allowance_exceeded +900, 0 available');
    expect(text).toContain('warning: nft not available');
    expect(text).toContain('cut to fit: listener');
  });

  it('says when the module is not loaded', () => {
    const report = fixture();
    const text = summarizeReport({
      ...report,
      conntrack: { ...report.conntrack, loaded: false, max: null, count: null, buckets: null },
      table: { ...report.table, source: 'unavailable', entries: 0 },
    });
    expect(text).toContain('conntrack: the nf_conntrack module is not loaded');
    expect(text).toContain('table: not read');
  });
});

describe('conntrack-responder diagnose', () => {
  it('summarizes a saved report', async () => {
    const { code, out } = await run(['--file', FIXTURE]);
    expect(code).toBe(0);
    expect(out).toContain('firewall: iptables-nft');
  });

  it('prints the validated report with --json, reading stdin with --file -', async () => {
    const { code, out } = await run(['--file', '-', '--json'], readFileSync(FIXTURE, 'utf8'));
    expect(code).toBe(0);
    expect(JSON.parse(out)).toEqual(fixture());
  });

  it('refuses what is not a report, naming the field', async () => {
    const broken = { ...fixture(), table: { ...fixture().table, entries: -1 } };
    const { code, err } = await run(['--file', '-'], JSON.stringify(broken));
    expect(code).toBe(1);
    expect(err).toContain('stdin: not a diagnostics report (schema version 1): table.entries');
    const notJson = await run(['--file', '-'], 'nf_conntrack: table full');
    expect(notJson.code).toBe(1);
    expect(notJson.err).toContain('stdin: not JSON');
  });

  it('needs exactly one of --netns and --file', async () => {
    expect((await run([])).code).toBe(2);
    const both = await run(['--netns', 'ctr-x', '--file', FIXTURE]);
    expect(both.code).toBe(2);
    expect(both.err).toContain('either --netns NS or --file PATH');
    const unreadable = await run(['--file', '/nonexistent/report.json']);
    expect(unreadable).toMatchObject({ code: 2 });
    expect(unreadable.err).toContain('cannot read /nonexistent/report.json');
  });

  it('refuses parameters the document would refuse, before running anything', async () => {
    const { code, err } = await run(['--netns', 'ctr-does-not-exist', '--top', '51']);
    expect(code).toBe(2);
    expect(err).toContain("parameter 'TopN'");
  });
});
