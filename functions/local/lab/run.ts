import { parseArgs } from 'node:util';
import { RESPONSE_MODES, type ResponseMode } from '../../core/incident/settings.js';
import { FIREWALL_BACKENDS, type FirewallBackend } from '../firewall.js';
import { restoreCrashedConntrackMax } from '../netns.js';
import { LabAbortedError, labSummary, runLab } from './lab.js';
import { checkPrerequisites, installMissing } from './prerequisites.js';
import { RAMP_CONNTRACK_MAX, RAMP_DEFAULT_PER_SECOND, rampSummary, runRampLab } from './ramp.js';

/**
 * `npm run lab`: reproduce seed 003 in network namespaces and watch the responder fix it.
 * Run as root (namespaces, firewall rules inside them, nf_conntrack_max). The npm script holds the
 * lab lock, so two lab runs never change the global nf_conntrack_max at the same time.
 */

const HELP = `usage: npm run lab [-- options]

Reproduces a full conntrack table for real (seed 003: short TCP connections to a service behind a
stateful firewall) in two network namespaces, runs 'conntrack-responder watch' on the instance's
namespace, shows the workflow as it goes, proves the fix (clients connect again), prints
time-to-detect and time-to-mitigate and the evidence bundle's path, and cleans up (also on Ctrl-C).
The host's own firewall rules are never touched; nf_conntrack_max is lowered for the run and restored.

options:
  --mode MODE        auto (default here) | approve | dry-run | policy (the policy's per-kind modes)
  --approve          in approve mode, approve without asking
  --reject           in approve mode, reject without asking
  --out DIR          parent of the incident folder (default ./out)
  --soak SECONDS     soak before verification (default 5)
  --backend NAME     instance firewall: iptables-nft (default) | iptables-legacy | nftables
  --ramp [RATE]      instead: a gradual fill (issue 13). Clients open RATE short connections a
                     second (default ${RAMP_DEFAULT_PER_SECOND}) until the instance was asked to hold twice its
                     limit of ${RAMP_CONNTRACK_MAX}; watch samples it every second, predicts when it fills, and
                     the workflow fixes it before the first drop. The kernel's drop counter is
                     shown before and after.
`;

async function main(): Promise<number> {
  const { values, positionals } = parseArgs({
    args: process.argv.slice(2),
    allowPositionals: true,
    options: {
      mode: { type: 'string', default: 'auto' },
      approve: { type: 'boolean', default: false },
      reject: { type: 'boolean', default: false },
      out: { type: 'string', default: 'out' },
      soak: { type: 'string', default: '5' },
      backend: { type: 'string', default: 'iptables-nft' },
      ramp: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  const say = (line: string) => process.stdout.write(`${line}\n`);
  if (values.help) {
    say(HELP);
    return 0;
  }
  const mode = values.mode === 'policy' ? undefined : values.mode;
  if (mode !== undefined && !(RESPONSE_MODES as readonly string[]).includes(mode)) {
    say(`lab: --mode must be one of ${RESPONSE_MODES.join(', ')}, policy; got '${mode}'`);
    return 2;
  }
  if (!(FIREWALL_BACKENDS as readonly string[]).includes(values.backend)) {
    say(`lab: --backend must be one of ${FIREWALL_BACKENDS.join(', ')}; got '${values.backend}'`);
    return 2;
  }
  if (!/^[0-9]{1,4}$/.test(values.soak)) {
    say(`lab: --soak must be a whole number of seconds, got '${values.soak}'`);
    return 2;
  }

  const rateText = positionals[0] ?? String(RAMP_DEFAULT_PER_SECOND);
  if (positionals.length > 1 || (positionals.length === 1 && !values.ramp)) {
    say(`lab: unexpected argument(s) ${positionals.join(' ')} (see --help)`);
    return 2;
  }
  if (!/^[0-9]{1,4}$/.test(rateText) || Number(rateText) < 1 || Number(rateText) > 5000) {
    say(`lab: --ramp RATE must be a whole number of connections a second from 1 to 5000, got '${rateText}'`);
    return 2;
  }

  say('lab: checking prerequisites');
  let report = await checkPrerequisites();
  if (!report.root) {
    say('lab: run as root (it creates network namespaces and changes nf_conntrack_max): sudo npm run lab');
    return 2;
  }
  if (report.missing.length > 0) {
    const named = report.missing.map((tool) => `${tool.command} (package ${tool.packageName})`).join(', ');
    say(`lab: missing ${named}`);
    if (!(await installMissing(report, say))) {
      say('lab: install them with your package manager and run again');
      return 2;
    }
    report = await checkPrerequisites();
    if (report.missing.length > 0) return 2;
  }
  if (!report.followNew) {
    say('lab: dmesg here has no --follow-new (util-linux >= 2.37 needed)');
    return 2;
  }
  say('lab: root, iproute2, iptables, nftables, conntrack and util-linux are there');
  await restoreCrashedConntrackMax();

  const interrupt = new AbortController();
  let interrupted = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    interrupted += 1;
    if (interrupted > 1) process.exit(130);
    say(`\nlab: ${signal}: cleaning up (namespaces, nf_conntrack_max)…`);
    interrupt.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    if (values.ramp) {
      say(`lab: ramp: a gradual fill at ${rateText} connections/s, fixed before the first drop`);
      const ramp = await runRampLab({
        perSecond: Number(rateText),
        mode: mode as ResponseMode | undefined,
        approval: values.approve ? 'approve' : values.reject ? 'reject' : 'prompt',
        outRoot: values.out,
        soakSeconds: Number(values.soak),
        backend: values.backend as FirewallBackend,
        stdin: process.stdin,
        stdout: process.stdout,
        signal: interrupt.signal,
      });
      say(rampSummary(ramp));
      const clean = ramp.dropsAfter === ramp.dropsBefore && ramp.ramp.failed === 0;
      return ramp.incident.result.outcome?.status === 'remediated' && clean ? 0 : mode === 'auto' ? 1 : 0;
    }
    const result = await runLab({
      mode: mode as ResponseMode | undefined,
      approval: values.approve ? 'approve' : values.reject ? 'reject' : 'prompt',
      outRoot: values.out,
      soakSeconds: Number(values.soak),
      backend: values.backend as FirewallBackend,
      stdin: process.stdin,
      stdout: process.stdout,
      signal: interrupt.signal,
    });
    say(labSummary(result));
    const fixed =
      result.finalProbe.succeeded === result.finalProbe.attempted && result.bundle?.verified === true;
    return result.result.outcome?.status === 'remediated' && fixed ? 0 : mode === 'auto' ? 1 : 0;
  } catch (error) {
    if (error instanceof LabAbortedError) {
      say('lab: interrupted; everything it created is gone and nf_conntrack_max is back');
      return 130;
    }
    throw error;
  } finally {
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
  }
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`lab: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  },
);
