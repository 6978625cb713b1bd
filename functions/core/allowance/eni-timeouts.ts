/**
 * The idle timeouts EC2 applies to the flows it tracks on one ENI, and the rule by which the
 * responder shortens them (docs/sizing.md, "EC2 connection-tracking timeouts", says it at length).
 *
 * EC2 API Reference, ConnectionTrackingSpecificationRequest
 * (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_ConnectionTrackingSpecificationRequest.html):
 * TcpEstablishedTimeout 60–432000 s (default 432000; 350 on Nitro v6 instance types, per
 * ConnectionTrackingConfiguration), UdpStreamTimeout 60–180 s (default 180; UDP flows that saw more
 * than one request-response), UdpTimeout 30–60 s (default 30; one direction or a single
 * request-response). Nitro instances only.
 *
 * The rule: EC2 should not remember an idle flow longer than the guest itself does.
 * - TCP established → the guest's keepalive dead-peer time, tcp_keepalive_time +
 *   tcp_keepalive_intvl × tcp_keepalive_probes (Linux defaults 7200 + 75 × 9 = 7875 s): a
 *   connection that uses keepalives sends a packet at least every tcp_keepalive_time seconds, and
 *   past the dead-peer time Linux itself has given it up (tcp(7)). Only connections idle that long
 *   *without* keepalives lose their EC2 entry.
 * - UDP stream → the guest's nf_conntrack_udp_timeout_stream (120 s since Linux 5.x; kernel commit
 *   d535c8a69c19 lowered it from 180): the guest's own stateful view of a UDP stream.
 * - UDP → the guest's nf_conntrack_udp_timeout (30 s).
 * Each clamped to EC2's range, and applied only where it is lower than the ENI's current value:
 * the responder never lengthens a timeout.
 */

export const ENI_TIMEOUT_FIELDS = ['tcpEstablished', 'udpStream', 'udp'] as const;
export type EniTimeoutField = (typeof ENI_TIMEOUT_FIELDS)[number];

export type EniTimeouts = Readonly<Record<EniTimeoutField, number>>;

/** EC2's accepted ranges, in seconds (API Reference, ConnectionTrackingSpecificationRequest). */
export const ENI_TIMEOUT_RANGES: Readonly<Record<EniTimeoutField, { min: number; max: number }>> = {
  tcpEstablished: { min: 60, max: 432_000 },
  udpStream: { min: 60, max: 180 },
  udp: { min: 30, max: 60 },
};

/** The documented defaults of every instance type that is not Nitro v6 (API Reference). */
export const DOCUMENTED_DEFAULTS: EniTimeouts = { tcpEstablished: 432_000, udpStream: 180, udp: 30 };

/** The names the EC2 API uses for each field. */
export const EC2_FIELD_NAMES: Readonly<Record<EniTimeoutField, string>> = {
  tcpEstablished: 'TcpEstablishedTimeout',
  udpStream: 'UdpStreamTimeout',
  udp: 'UdpTimeout',
};

/** Linux defaults (tcp(7), Documentation/networking/nf_conntrack-sysctl.rst). */
export const LINUX_DEFAULTS = {
  keepalive: { timeSeconds: 7200, intervalSeconds: 75, probes: 9 },
  udpTimeoutStream: 120,
  udpTimeout: 30,
} as const;

/** One field's current value on an ENI and where it comes from. */
export interface CurrentTimeout {
  /** Null when neither the ENI nor its instance type says (the value in effect is unknown). */
  readonly value: number | null;
  /**
   * `eni`: set on the ENI (DescribeNetworkInterfaces ConnectionTrackingConfiguration);
   * `instance-type`: not set, the instance type's default (DescribeInstanceTypes);
   * `unknown`: neither is known.
   */
  readonly source: 'eni' | 'instance-type' | 'unknown';
}

export type CurrentTimeouts = Readonly<Record<EniTimeoutField, CurrentTimeout>>;

export interface GuestIdleLimits {
  /** net.ipv4.tcp_keepalive_* of the namespace; null when the report does not have them. */
  readonly keepalive: {
    readonly timeSeconds: number;
    readonly intervalSeconds: number;
    readonly probes: number;
  } | null;
  /** nf_conntrack_udp_timeout_stream / _udp_timeout; null when conntrack is not loaded. */
  readonly udpTimeoutStream: number | null;
  readonly udpTimeout: number | null;
}

export interface TimeoutChoice {
  readonly field: EniTimeoutField;
  readonly from: number | null;
  readonly to: number;
  /** Whether `to` is lower than `from` (the only case in which the field is changed). */
  readonly changes: boolean;
  readonly why: string;
}

export interface EniTimeoutPlan {
  /** The values to set, one per field: `to` where it changes, the current value elsewhere. Null when nothing changes or a current value is unknown. */
  readonly target: EniTimeouts | null;
  /** The current values the change starts from (what a rollback restores); null when one is unknown. */
  readonly current: EniTimeouts | null;
  readonly choices: readonly TimeoutChoice[];
  /** Why nothing is changed, when `target` is null. */
  readonly refusal: string | null;
}

export function clampToRange(field: EniTimeoutField, seconds: number): number {
  const range = ENI_TIMEOUT_RANGES[field];
  return Math.min(range.max, Math.max(range.min, Math.round(seconds)));
}

export function isInRange(field: EniTimeoutField, seconds: number): boolean {
  const range = ENI_TIMEOUT_RANGES[field];
  return Number.isInteger(seconds) && seconds >= range.min && seconds <= range.max;
}

/** The guest's own idle limit for each field, and where it comes from. */
export function guestLimits(
  guest: GuestIdleLimits,
): Record<EniTimeoutField, { seconds: number; why: string }> {
  const keepalive = guest.keepalive ?? LINUX_DEFAULTS.keepalive;
  const deadPeer = keepalive.timeSeconds + keepalive.intervalSeconds * keepalive.probes;
  const keepaliveSource = guest.keepalive ? 'the host’s' : 'Linux’s default';
  return {
    tcpEstablished: {
      seconds: deadPeer,
      why: `${keepaliveSource} keepalive dead-peer time: tcp_keepalive_time ${keepalive.timeSeconds} + tcp_keepalive_intvl ${keepalive.intervalSeconds} × tcp_keepalive_probes ${keepalive.probes} = ${deadPeer} s (a connection with keepalives is never idle longer than ${keepalive.timeSeconds} s)`,
    },
    udpStream: {
      seconds: guest.udpTimeoutStream ?? LINUX_DEFAULTS.udpTimeoutStream,
      why:
        guest.udpTimeoutStream === null
          ? `Linux’s default nf_conntrack_udp_timeout_stream (${LINUX_DEFAULTS.udpTimeoutStream} s)`
          : `the host’s nf_conntrack_udp_timeout_stream (${guest.udpTimeoutStream} s)`,
    },
    udp: {
      seconds: guest.udpTimeout ?? LINUX_DEFAULTS.udpTimeout,
      why:
        guest.udpTimeout === null
          ? `Linux’s default nf_conntrack_udp_timeout (${LINUX_DEFAULTS.udpTimeout} s)`
          : `the host’s nf_conntrack_udp_timeout (${guest.udpTimeout} s)`,
    },
  };
}

/**
 * The shorter timeouts for one ENI (see the rule above). Every field of the change is sent
 * explicitly (EC2 keeps one ConnectionTrackingSpecification per ENI, and the fields not changed
 * keep their current values), so every current value must be known: otherwise nothing is changed,
 * because neither the change nor its rollback could be exact.
 */
export function chooseEniTimeouts(current: CurrentTimeouts, guest: GuestIdleLimits): EniTimeoutPlan {
  const limits = guestLimits(guest);
  const choices: TimeoutChoice[] = ENI_TIMEOUT_FIELDS.map((field) => {
    const from = current[field].value;
    const to = clampToRange(field, limits[field].seconds);
    const clamped =
      to !== limits[field].seconds
        ? ` (clamped to EC2’s ${ENI_TIMEOUT_RANGES[field].min}–${ENI_TIMEOUT_RANGES[field].max} s)`
        : '';
    const changes = from !== null && to < from;
    const why =
      from === null
        ? `its current value is unknown (not set on the ENI, and the instance type’s default was not read; on Nitro v6 types the TCP default is 350 s), so it is left alone`
        : changes
          ? `${limits[field].why}${clamped}`
          : `already ${from} s, not above ${to} s (${limits[field].why}${clamped}): never lengthened`;
    return { field, from, to: changes ? to : (from ?? to), changes, why };
  });
  const unknown = ENI_TIMEOUT_FIELDS.filter((field) => current[field].value === null);
  if (unknown.length > 0) {
    return {
      target: null,
      current: null,
      choices,
      refusal: `the current ${unknown.map((field) => EC2_FIELD_NAMES[field]).join(', ')} ${unknown.length > 1 ? 'are' : 'is'} unknown: a change sets all three fields, so without the values in effect neither the change nor its rollback would be exact`,
    };
  }
  const values = Object.fromEntries(
    ENI_TIMEOUT_FIELDS.map((field) => [field, current[field].value as number]),
  ) as Record<EniTimeoutField, number>;
  if (!choices.some((choice) => choice.changes)) {
    return {
      target: null,
      current: values,
      choices,
      refusal: `the ENI's timeouts (${formatTimeouts(values)}) are already at or below the guest's own idle limits: shorter ones would cut flows the host still considers alive`,
    };
  }
  const target = Object.fromEntries(choices.map((choice) => [choice.field, choice.to])) as Record<
    EniTimeoutField,
    number
  >;
  return { target, current: values, choices, refusal: null };
}

export function formatTimeouts(timeouts: EniTimeouts): string {
  return ENI_TIMEOUT_FIELDS.map((field) => `${EC2_FIELD_NAMES[field]}=${timeouts[field]}`).join(', ');
}

/**
 * The values to set at apply time: the planned target, but never above what the ENI has now
 * (someone may have shortened a timeout between the plan and the change).
 */
export function neverLonger(planned: EniTimeouts, now: EniTimeouts): EniTimeouts {
  return {
    tcpEstablished: Math.min(planned.tcpEstablished, now.tcpEstablished),
    udpStream: Math.min(planned.udpStream, now.udpStream),
    udp: Math.min(planned.udp, now.udp),
  };
}

export function sameTimeouts(a: EniTimeouts, b: EniTimeouts): boolean {
  return ENI_TIMEOUT_FIELDS.every((field) => a[field] === b[field]);
}
