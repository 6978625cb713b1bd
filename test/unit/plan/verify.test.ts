import { describe, expect, it } from 'vitest';
import { resolvePolicy } from '../../../functions/core/plan/policy.js';
import { verifyRemediation } from '../../../functions/core/plan/verify.js';
import { ReportBuilder } from '../../support/report-builder.js';

const beforeReport = () =>
  ReportBuilder.healthy().table({ max: 262_144, count: 262_144 }).drops(3_000).listener('tcp', 8080).build();
/** After a successful raise: bigger limit, drops flat, well below the threshold. */
const healthyAfter = () =>
  ReportBuilder.healthy()
    .collectedAt('2026-11-21T10:05:00.000Z')
    .table({ max: 524_288, count: 200_000 })
    .drops(0)
    .listener('tcp', 8080);

describe('verifyRemediation', () => {
  it('passes when drops stopped, usage is below the threshold and nothing regressed', () => {
    const result = verifyRemediation(beforeReport(), healthyAfter().build(), resolvePolicy());
    expect(result.passed).toBe(true);
    expect(result.checks.every((check) => check.passed)).toBe(true);
    expect(result.reasons.join(' ')).toContain('rose by 0');
  });

  it.each([
    {
      name: 'drops still rising',
      after: healthyAfter().drops(40),
      failed: 'drops-stopped',
      reason: /still dropped: the drop counter rose by 40 in 3 s/,
    },
    {
      name: 'usage above the threshold',
      after: healthyAfter().table({ max: 524_288, count: 450_000 }),
      failed: 'usage-below-threshold',
      reason: /86% of its limit.*below 80%/,
    },
    {
      name: 'the limit put back by someone else',
      after: healthyAfter().table({ max: 131_072, count: 20_000 }),
      failed: 'limit-kept',
      reason: /fell from 262144 to 131072/,
    },
    {
      name: 'a service port gone',
      after: ReportBuilder.healthy().table({ max: 524_288, count: 20_000 }).drops(0),
      failed: 'listeners-kept',
      reason: /disappeared during the soak: tcp\/8080/,
    },
    {
      name: 'a report from another namespace',
      after: healthyAfter().host({ netnsInode: '4026530000' }),
      failed: 'same-host',
      reason: /different hosts or namespaces/,
    },
    {
      name: 'a report without conntrack',
      after: healthyAfter().notLoaded(),
      failed: 'drops-stopped',
      reason: /not loaded/,
    },
  ])('fails on $name and says so', ({ after, failed, reason }) => {
    const result = verifyRemediation(beforeReport(), after.build(), resolvePolicy());
    expect(result.passed).toBe(false);
    expect(result.checks.filter((check) => !check.passed).map((check) => check.name)).toContain(failed);
    expect(result.reasons.join('\n')).toMatch(reason);
  });

  it('tolerates a drop rate the policy allows', () => {
    const result = verifyRemediation(
      beforeReport(),
      healthyAfter().drops(6).build(),
      resolvePolicy({ verify: { maxDropsPerSecond: 2 } }),
    );
    expect(result.passed).toBe(true);
  });
});
