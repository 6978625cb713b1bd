import { describe, expect, it } from 'vitest';
import {
  type CurrentTimeouts,
  chooseEniTimeouts,
  ENI_TIMEOUT_FIELDS,
  ENI_TIMEOUT_RANGES,
  type GuestIdleLimits,
  neverLonger,
} from '../../../functions/core/allowance/eni-timeouts.js';

const fromType = (
  tcp: number | null,
  stream: number | null = 180,
  udp: number | null = 30,
): CurrentTimeouts => ({
  tcpEstablished: { value: tcp, source: tcp === null ? 'unknown' : 'instance-type' },
  udpStream: { value: stream, source: stream === null ? 'unknown' : 'instance-type' },
  udp: { value: udp, source: udp === null ? 'unknown' : 'instance-type' },
});
const linuxDefaults: GuestIdleLimits = { keepalive: null, udpTimeoutStream: null, udpTimeout: null };

describe('chooseEniTimeouts: EC2 never remembers an idle flow longer than the guest does', () => {
  it('on a default instance and a default Linux: TCP 432000 → 7875 (keepalive dead-peer time), UDP stream 180 → 120, UDP kept at 30', () => {
    const plan = chooseEniTimeouts(fromType(432_000), linuxDefaults);
    expect(plan.target).toEqual({ tcpEstablished: 7875, udpStream: 120, udp: 30 });
    expect(plan.current).toEqual({ tcpEstablished: 432_000, udpStream: 180, udp: 30 });
    expect(plan.choices.find((choice) => choice.field === 'tcpEstablished')?.why).toContain(
      '7200 + tcp_keepalive_intvl 75 × tcp_keepalive_probes 9 = 7875',
    );
  });

  it("follows the host's own keepalive and conntrack settings", () => {
    const plan = chooseEniTimeouts(fromType(432_000), {
      keepalive: { timeSeconds: 600, intervalSeconds: 30, probes: 5 },
      udpTimeoutStream: 90,
      udpTimeout: 30,
    });
    expect(plan.target).toEqual({ tcpEstablished: 750, udpStream: 90, udp: 30 });
  });

  it('clamps to EC2’s ranges (a keepalive of 10 s cannot take TCP under 60 s)', () => {
    const plan = chooseEniTimeouts(fromType(432_000, 180, 60), {
      keepalive: { timeSeconds: 10, intervalSeconds: 1, probes: 1 },
      udpTimeoutStream: 10,
      udpTimeout: 5,
    });
    expect(plan.target).toEqual({ tcpEstablished: 60, udpStream: 60, udp: 30 });
  });

  it('never lengthens: a Nitro v6 instance (350 s) keeps its TCP timeout; nothing to do refuses', () => {
    const plan = chooseEniTimeouts(fromType(350, 120, 30), linuxDefaults);
    expect(plan.target).toBeNull();
    expect(plan.refusal).toMatch(/already at or below/);
  });

  it('refuses when a current value is unknown: neither the change nor its rollback would be exact', () => {
    const plan = chooseEniTimeouts(fromType(null), linuxDefaults);
    expect(plan.target).toBeNull();
    expect(plan.refusal).toMatch(/TcpEstablishedTimeout is unknown/);
  });

  it('property: every target is in EC2’s range and no field is ever raised', () => {
    for (let tcp = 60; tcp <= 432_000; tcp = Math.ceil(tcp * 1.7)) {
      for (const stream of [60, 90, 120, 180]) {
        for (const udp of [30, 45, 60]) {
          for (const keepalive of [1, 60, 300, 7200, 100_000, 999_999]) {
            const plan = chooseEniTimeouts(fromType(tcp, stream, udp), {
              keepalive: { timeSeconds: keepalive, intervalSeconds: 75, probes: 9 },
              udpTimeoutStream: 120,
              udpTimeout: 30,
            });
            if (plan.target === null) continue;
            for (const field of ENI_TIMEOUT_FIELDS) {
              const range = ENI_TIMEOUT_RANGES[field];
              expect(plan.target[field]).toBeGreaterThanOrEqual(range.min);
              expect(plan.target[field]).toBeLessThanOrEqual(range.max);
              expect(plan.target[field]).toBeLessThanOrEqual(plan.current?.[field] ?? 0);
            }
          }
        }
      }
    }
  });
});

describe('neverLonger', () => {
  it('keeps a value someone shortened further between the plan and the change', () => {
    expect(
      neverLonger(
        { tcpEstablished: 7875, udpStream: 120, udp: 30 },
        { tcpEstablished: 3600, udpStream: 180, udp: 30 },
      ),
    ).toEqual({ tcpEstablished: 3600, udpStream: 120, udp: 30 });
  });
});
