import { isIPv4 } from 'node:net';
import { fileURLToPath } from 'node:url';
import { execInNetns, NAMESPACE_PREFIX } from './netns.js';

/**
 * Fills a lab namespace's conntrack table in seconds: one UDP datagram per flow, each to a distinct
 * (address, port), sent from the namespace itself so that its own conntrack records every flow as
 * an [UNREPLIED] entry (about 150,000 flows per second here). Short TCP connections are the
 * faithful reproduction of seed 003 (`traffic.ts`); this is for sizes where churning TCP would take
 * minutes, such as the 262,144-entry benchmark table.
 *
 * Unreplied UDP entries expire after `nf_conntrack_udp_timeout` (30 s) and are the first that
 * `early_drop` evicts when the table is full: raise the namespace's own udp_timeout and keep the
 * count under nf_conntrack_max when the entries must stay.
 */

const PROGRAM = fileURLToPath(new URL('./programs/udp-flows.mjs', import.meta.url));
const MAX_FLOWS = 4_000_000;

export interface UdpFlowsOptions {
  /** Number of flows (datagrams). */
  readonly count: number;
  /** First destination address; flow i goes to the (i mod addresses)-th address after it. */
  readonly firstAddress: string;
  readonly addresses: number;
  /** First destination port; ports cycle once every address got one flow on the current port. */
  readonly firstPort: number;
  readonly ports: number;
}

export interface UdpFlowsResult {
  readonly sent: number;
  readonly failed: number;
  /** Failures by error code. */
  readonly errors: Readonly<Record<string, number>>;
  /** Source sockets used (each one is a distinct source port). */
  readonly sockets: number;
  readonly elapsedMs: number;
}

function assertInteger(name: string, value: number, min: number, max: number): void {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new Error(`invalid ${name} ${String(value)}: expected an integer from ${min} to ${max}`);
  }
}

export async function sendUdpFlows(namespace: string, options: UdpFlowsOptions): Promise<UdpFlowsResult> {
  if (!namespace.startsWith(NAMESPACE_PREFIX)) {
    throw new Error(
      `refusing to send lab traffic from '${namespace}': only '${NAMESPACE_PREFIX}*' namespaces`,
    );
  }
  if (!isIPv4(options.firstAddress)) {
    throw new Error(`invalid firstAddress '${options.firstAddress}': expected an IPv4 literal`);
  }
  assertInteger('count', options.count, 0, MAX_FLOWS);
  assertInteger('addresses', options.addresses, 1, 16_777_216);
  assertInteger('firstPort', options.firstPort, 1, 65535);
  assertInteger('ports', options.ports, 1, 65536 - options.firstPort);
  const { stdout } = await execInNetns(
    namespace,
    process.execPath,
    [
      PROGRAM,
      String(options.count),
      options.firstAddress,
      String(options.addresses),
      String(options.firstPort),
      String(options.ports),
    ],
    { timeoutMs: 120_000 + Math.ceil(options.count / 10) },
  );
  return JSON.parse(stdout) as UdpFlowsResult;
}
