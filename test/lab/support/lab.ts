import { applyHostFirewall, type FirewallBackend } from '../../../functions/local/firewall.js';
import { createLabHosts, execInNetns, type LabHosts } from '../../../functions/local/netns.js';
import { startTcpService, type TcpService } from '../../../functions/local/traffic.js';

/** Lab hosts whose instance runs a firewall and a TCP service on each port. */
export interface ServedLabHosts extends LabHosts {
  readonly backend: FirewallBackend;
  readonly services: readonly TcpService[];
}

export interface ServedLabHostsOptions {
  readonly role: string;
  readonly backend: FirewallBackend;
  /** Ports the firewall opens; a service listens on each. */
  readonly servicePorts: readonly number[];
  /** Ports with a listening service that the firewall does NOT open (to prove it filters). */
  readonly closedPorts?: readonly number[];
  readonly mode?: 'close' | 'line';
  /** IPv6 on the veth pair too, the firewall filtering it, and each service also on the IPv6 address. */
  readonly ipv6?: boolean;
}

/**
 * One call for the usual lab setup: the instance/clients namespace pair, the instance firewall in
 * the chosen backend, and services listening on the instance address. `destroy()` stops the
 * services and removes both namespaces (also when setup fails half-way).
 */
export async function createServedLabHosts(options: ServedLabHostsOptions): Promise<ServedLabHosts> {
  const hosts = await createLabHosts(options.role, { ipv6: options.ipv6 });
  const services: TcpService[] = [];
  const destroy = async () => {
    await Promise.all(services.map((service) => service.stop()));
    await hosts.destroy();
  };
  try {
    await applyHostFirewall(hosts.instance, options.backend, {
      servicePorts: options.servicePorts,
      ipv6: options.ipv6,
    });
    const addresses = [hosts.instanceAddress, ...(hosts.instanceAddress6 ? [hosts.instanceAddress6] : [])];
    for (const port of [...options.servicePorts, ...(options.closedPorts ?? [])]) {
      for (const address of addresses) {
        services.push(await startTcpService(hosts.instance, address, port, { mode: options.mode }));
      }
    }
  } catch (error) {
    await destroy();
    throw error;
  }
  return { ...hosts, backend: options.backend, services, destroy };
}

/** True while a process with this pid exists. */
export function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * Makes the TIME_WAIT entries a test counts outlive the test: sets the namespace's own
 * net.netfilter.nf_conntrack_tcp_timeout_time_wait (a per-namespace sysctl, gone with the
 * namespace; entries made afterwards get it). At the default 120 s, entries made at the start of
 * a test expire while a loaded machine is still comparing counts taken a couple of minutes later.
 */
export async function keepTimeWaitEntries(namespace: string, seconds = 3600): Promise<void> {
  await execInNetns(namespace, 'sysctl', [
    '-qw',
    `net.netfilter.nf_conntrack_tcp_timeout_time_wait=${seconds}`,
  ]);
}
