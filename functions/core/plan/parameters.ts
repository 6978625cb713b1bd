/**
 * The parameters the planner may send to each remediation document, as the shared parameter
 * contract defines them. The documents' YAML (runbooks/ssm/*.yaml) stays the authority that SSM and
 * the local executor enforce; this copy lets the planner refuse to emit a plan that the document
 * would reject, so that an impossible plan is a bug caught here and not a failed SSM command at
 * 3 a.m.
 */
export type DocumentName = 'raise-limits' | 'notrack-ports' | 'eni-timeouts';

export interface RaiseLimitsParameters {
  readonly ChangeId: string;
  readonly MaxEntries: string;
  readonly HashSize: string;
  readonly Timeouts: string;
  readonly MemoryBudgetPercent: string;
  readonly Persist: 'true' | 'false';
}

/**
 * Not an SSM document: the EC2 API call ModifyNetworkInterfaceAttribute with a
 * ConnectionTrackingSpecification (functions/core/allowance/eni-change.ts). Its parameters follow
 * the same contract so that plans, approvals and evidence treat every change alike. Ranges: EC2 API
 * Reference, ConnectionTrackingSpecificationRequest.
 */
export interface EniTimeoutsParameters {
  readonly ChangeId: string;
  readonly NetworkInterfaceId: string;
  readonly TcpEstablishedTimeout: string;
  readonly UdpStreamTimeout: string;
  readonly UdpTimeout: string;
}

export interface NotrackPortsParameters {
  readonly ChangeId: string;
  readonly Ports: string;
  readonly Protocol: 'tcp' | 'udp';
  readonly Direction: 'inbound' | 'outbound';
  readonly Persist: 'true' | 'false';
}

export const CHANGE_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9-]{0,63}$/;

const PARAMETER_PATTERNS: Record<DocumentName, Record<string, RegExp>> = {
  'raise-limits': {
    ChangeId: CHANGE_ID_PATTERN,
    MaxEntries: /^[1-9][0-9]{0,9}$/,
    HashSize: /^$|^[1-9][0-9]{0,9}$/,
    Timeouts: /^$|^[a-z_]+=[1-9][0-9]{0,9}(,[a-z_]+=[1-9][0-9]{0,9}){0,15}$/,
    MemoryBudgetPercent: /^([1-9]|[1-4][0-9]|50)$/,
    Persist: /^(true|false)$/,
  },
  'notrack-ports': {
    ChangeId: CHANGE_ID_PATTERN,
    Ports: /^[0-9]{1,5}(:[0-9]{1,5})?(,[0-9]{1,5}(:[0-9]{1,5})?){0,14}$/,
    Protocol: /^(tcp|udp)$/,
    Direction: /^(inbound|outbound)$/,
    Persist: /^(true|false)$/,
  },
  'eni-timeouts': {
    ChangeId: CHANGE_ID_PATTERN,
    NetworkInterfaceId: /^eni-[0-9a-f]{8,17}$/,
    TcpEstablishedTimeout: /^[1-9][0-9]{1,5}$/,
    UdpStreamTimeout: /^[1-9][0-9]{1,2}$/,
    UdpTimeout: /^[1-9][0-9]$/,
  },
};

/** EC2's accepted ranges for the eni-timeouts parameters, in seconds. */
const ENI_TIMEOUT_PARAMETER_RANGES: Readonly<Record<string, readonly [number, number]>> = {
  TcpEstablishedTimeout: [60, 432_000],
  UdpStreamTimeout: [60, 180],
  UdpTimeout: [30, 60],
};

/** The parameter names of each document, as the contract lists them. */
export const CONTRACT_PARAMETERS: Readonly<Record<DocumentName, readonly string[]>> = {
  'raise-limits': Object.keys(PARAMETER_PATTERNS['raise-limits']),
  'notrack-ports': Object.keys(PARAMETER_PATTERNS['notrack-ports']),
  'eni-timeouts': Object.keys(PARAMETER_PATTERNS['eni-timeouts']),
};

/** The `net.netfilter.nf_conntrack_<name>` timeouts the raise-limits document accepts in `Timeouts`. */
export const TIMEOUT_NAME_PATTERN =
  /^(tcp_timeout_[a-z_]+|udp_timeout|udp_timeout_stream|generic_timeout|icmp_timeout|icmpv6_timeout)$/;

const INT_MAX = 2_147_483_647;

/** Throws, naming the parameter, when a value would be refused by the document's contract. */
export function assertDocumentParameters(document: DocumentName, parameters: Record<string, string>): void {
  const patterns = PARAMETER_PATTERNS[document];
  for (const name of Object.keys(parameters)) {
    if (!(name in patterns)) throw new Error(`${document}: unknown parameter ${name}`);
  }
  for (const [name, pattern] of Object.entries(patterns)) {
    const value = parameters[name];
    if (value === undefined) throw new Error(`${document}: parameter ${name} is missing`);
    if (!pattern.test(value))
      throw new Error(`${document}: parameter ${name}=${JSON.stringify(value)} breaks ${pattern}`);
  }
  if (document === 'raise-limits') {
    for (const name of ['MaxEntries', 'HashSize'] as const) {
      const value = parameters[name];
      if (value && Number(value) > INT_MAX)
        throw new Error(`${document}: ${name}=${value} exceeds ${INT_MAX}`);
    }
    const timeouts = parameters.Timeouts;
    if (timeouts) {
      for (const pair of timeouts.split(',')) {
        const [name] = pair.split('=');
        if (!name || !TIMEOUT_NAME_PATTERN.test(name))
          throw new Error(`${document}: unknown timeout ${name}`);
      }
    }
  }
  if (document === 'eni-timeouts') {
    for (const [name, [min, max]] of Object.entries(ENI_TIMEOUT_PARAMETER_RANGES)) {
      const value = Number(parameters[name]);
      if (value < min || value > max)
        throw new Error(`${document}: ${name}=${parameters[name]} is outside ${min}–${max}`);
    }
  }
  if (document === 'notrack-ports') {
    for (const item of (parameters.Ports ?? '').split(',')) {
      const [low, high] = item.split(':').map(Number);
      if (
        low === undefined ||
        low < 1 ||
        low > 65535 ||
        (high !== undefined && (high < low || high > 65535))
      ) {
        throw new Error(`${document}: port ${item} is out of range`);
      }
    }
  }
}
