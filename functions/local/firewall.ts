import { execInNetns, NAMESPACE_PREFIX } from './netns.js';

/**
 * A realistic instance firewall for lab namespaces, in each of the three backends a fleet runs:
 * iptables over nf_tables (the default on current distributions), iptables-legacy (Amazon Linux 2,
 * CentOS 7) and native nftables. Rules are only ever applied inside namespaces this project created.
 */
export type FirewallBackend = 'iptables-nft' | 'iptables-legacy' | 'nftables';

export const FIREWALL_BACKENDS: readonly FirewallBackend[] = ['iptables-nft', 'iptables-legacy', 'nftables'];

export interface HostFirewallOptions {
  /** TCP ports that accept new connections from anywhere. */
  readonly servicePorts: readonly number[];
  /**
   * Also filter IPv6 the same way (iptables backends: the same rules through ip6tables-restore;
   * `table inet filter` covers both families already). Off by default: IPv6 left unfiltered.
   */
  readonly ipv6?: boolean;
}

function assertOurNamespace(namespace: string): void {
  if (!namespace.startsWith(NAMESPACE_PREFIX)) {
    throw new Error(`refusing to touch namespace '${namespace}': only '${NAMESPACE_PREFIX}*' lab namespaces`);
  }
}

function validatedPorts(ports: readonly number[]): number[] {
  for (const port of ports) {
    if (!Number.isInteger(port) || port < 1 || port > 65535) {
      throw new Error(`invalid service port ${String(port)}: expected an integer from 1 to 65535`);
    }
  }
  return [...new Set(ports)];
}

/**
 * `iptables-restore` (or, for `ipv6`, `ip6tables-restore`) input for the filter table (ports are
 * validated integers, nothing else varies). IPv6 accepts ICMPv6, without which neighbour discovery
 * and so every connection fails.
 */
export function iptablesRules(servicePorts: readonly number[], family: 'ipv4' | 'ipv6' = 'ipv4'): string {
  const ports = validatedPorts(servicePorts);
  return [
    '*filter',
    ':INPUT DROP [0:0]',
    ':FORWARD ACCEPT [0:0]',
    ':OUTPUT ACCEPT [0:0]',
    '-A INPUT -i lo -j ACCEPT',
    '-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT',
    ...ports.map((port) => `-A INPUT -p tcp -m conntrack --ctstate NEW -m tcp --dport ${port} -j ACCEPT`),
    family === 'ipv6' ? '-A INPUT -p ipv6-icmp -j ACCEPT' : '-A INPUT -p icmp -j ACCEPT',
    'COMMIT',
    '',
  ].join('\n');
}

/** `nft -f` input: the `table inet filter` Debian and RHEL ship, with the same policy as above. */
export function nftablesRules(servicePorts: readonly number[]): string {
  const ports = validatedPorts(servicePorts);
  return [
    'table inet filter {',
    '  chain input {',
    '    type filter hook input priority filter; policy drop;',
    '    iif "lo" accept',
    '    ct state established,related accept',
    ...(ports.length > 0 ? [`    tcp dport { ${ports.join(', ')} } ct state new accept`] : []),
    '    meta l4proto { icmp, ipv6-icmp } accept',
    '  }',
    '}',
    '',
  ].join('\n');
}

/**
 * Installs the instance firewall in `namespace`: INPUT policy drop; accept loopback,
 * ESTABLISHED/RELATED, NEW TCP to each service port, and ICMP. The ctstate rule is also what makes
 * the kernel track the namespace's traffic at all.
 */
export async function applyHostFirewall(
  namespace: string,
  backend: FirewallBackend,
  options: HostFirewallOptions,
): Promise<void> {
  assertOurNamespace(namespace);
  switch (backend) {
    case 'iptables-nft':
    case 'iptables-legacy':
      await execInNetns(namespace, `${backend}-restore`, [], { input: iptablesRules(options.servicePorts) });
      if (options.ipv6) {
        const ip6Restore = `ip6${backend.slice('ip'.length)}-restore`;
        await execInNetns(namespace, ip6Restore, [], { input: iptablesRules(options.servicePorts, 'ipv6') });
      }
      return;
    case 'nftables':
      await execInNetns(namespace, 'nft', ['-f', '-'], { input: nftablesRules(options.servicePorts) });
      return;
    default:
      throw new Error(`unknown firewall backend '${String(backend)}'`);
  }
}

/** The rules of one namespace as each backend prints them, minus what changes on its own. */
export interface FirewallSnapshot {
  readonly iptablesLegacy: string;
  readonly iptablesNft: string;
  readonly nftables: string;
}

/** Drops comments (they carry timestamps and warnings) and zeroes packet/byte counters. */
export function normalizeSaveOutput(text: string): string {
  return text
    .split('\n')
    .filter((line) => !line.startsWith('#'))
    .map((line) =>
      line.replace(/\[\d+:\d+\]/g, '[0:0]').replace(/packets \d+ bytes \d+/g, 'packets 0 bytes 0'),
    )
    .join('\n')
    .trim();
}

/**
 * The namespace's complete ruleset in all three views, so a test can compare before/after a
 * change with `toEqual` (and see exactly which line differs).
 */
export async function snapshotFirewall(namespace: string): Promise<FirewallSnapshot> {
  assertOurNamespace(namespace);
  const [legacy, nft, ruleset] = await Promise.all([
    execInNetns(namespace, 'iptables-legacy-save', []),
    execInNetns(namespace, 'iptables-nft-save', []),
    execInNetns(namespace, 'nft', ['list', 'ruleset']),
  ]);
  return {
    iptablesLegacy: normalizeSaveOutput(legacy.stdout),
    iptablesNft: normalizeSaveOutput(nft.stdout),
    nftables: normalizeSaveOutput(ruleset.stdout),
  };
}
