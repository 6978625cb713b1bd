import { describe, expect, it } from 'vitest';
import { buildEvidenceBundle } from '../../../functions/core/evidence/bundle.js';
import type { IncidentEvidence } from '../../../functions/core/evidence/incident.js';
import { codeSpan, fence, inline } from '../../../functions/core/evidence/postmortem.js';
import { planRemediation } from '../../../functions/core/plan/plan.js';
import { resolvePolicy } from '../../../functions/core/plan/policy.js';
import { remediatedIncident } from '../../support/evidence-builder.js';
import { ReportBuilder } from '../../support/report-builder.js';

const ENI = 'eni-0aaaaaaaaaaaaaaa1';
const MAC = '0a:1b:2c:3d:4e:5f';

/** What the workflow's describe step says about one ENI (functions/core/allowance/network.ts). */
const network = {
  described: true as const,
  instanceId: 'i-0123456789abcdef0',
  instanceType: 'm6i.large',
  typeDefaults: { tcpEstablished: 432_000, udpStream: 180, udp: 30 },
  interfaces: [
    {
      networkInterfaceId: ENI,
      macAddress: MAC,
      deviceIndex: 0,
      interfaceType: 'interface',
      requesterManaged: false,
      optedIn: true,
      groups: [{ id: 'sg-0web', name: 'web' }],
      timeouts: {
        tcpEstablished: { value: 432_000, source: 'instance-type' as const },
        udpStream: { value: 120, source: 'eni' as const },
        udp: { value: 30, source: 'instance-type' as const },
      },
      tracking: {
        untracked: [],
        everythingTracked: true,
        summary:
          'every TCP and UDP flow is tracked: no rule pair allows all traffic from anywhere one way and every port back',
      },
    },
  ],
  notes: [],
};

/** An incident's evidence with the plan made from this report and these EC2 facts. */
function withPlan(report: ReportBuilder, kind: 'table-full' | 'ec2-allowance') {
  const evidence = remediatedIncident();
  const alert = { kind, netns: null, dropLines: 0, suppressed: 0 };
  const plan = planRemediation({ before: report.build(), alert, policy: resolvePolicy(), network });
  const withIt: IncidentEvidence = { ...evidence, alert, plan };
  return String(buildEvidenceBundle(withIt).files.get('postmortem.md'));
}

describe('postmortem.md', () => {
  it('escapes values that came from the host or a person', () => {
    const evidence = remediatedIncident();
    const hostile: IncidentEvidence = {
      ...evidence,
      before: evidence.before && {
        ...evidence.before,
        host: {
          ...evidence.before.host,
          hostname: 'web|1 <img src=x onerror=alert(1)> [click](http://evil)',
        },
      },
      approvals: [
        { ...(evidence.approvals[0] as IncidentEvidence['approvals'][number]), by: '**boss**\n# injected' },
      ],
    };
    const postmortem = String(buildEvidenceBundle(hostile).files.get('postmortem.md'));
    expect(postmortem).not.toContain('<img');
    expect(postmortem).not.toContain('[click](http://evil)');
    expect(postmortem).not.toMatch(/^# injected/m);
    expect(postmortem).toContain('web\\|1 &lt;img src=x onerror=alert(1)&gt; \\[click\\](http://evil)');
  });

  it('says what became of each action', () => {
    const evidence = remediatedIncident();
    const rejected: IncidentEvidence = {
      ...evidence,
      outcome: {
        status: 'rejected',
        hostChanged: false,
        summary: 'The change was rejected, so nothing was changed.',
      },
      approvals: [
        {
          decision: 'rejected',
          actionIds: ['timeouts'],
          by: 'bob',
          at: evidence.approvals[0]?.at ?? '',
          channel: 'slack',
        },
      ],
      commands: evidence.commands.filter((command) => command.actionId !== 'timeouts'),
    };
    const postmortem = String(buildEvidenceBundle(rejected).files.get('postmortem.md'));
    expect(postmortem).toMatch(/\| Raise nf\\_conntrack\\_max from 262144 to 524288 \| auto \| applied \|/);
    expect(postmortem).toMatch(
      /\| Shorten conntrack timeouts: tcp\\_timeout\\_time\\_wait=30 \| approve \| rejected by bob \|/,
    );
  });
});

describe('postmortem.md: which table', () => {
  it('says the EC2 allowance, not the kernel table, with the ENI, its groups, tracked flows and timeouts', () => {
    const postmortem = withPlan(
      ReportBuilder.healthy().table({ max: 262_144, count: 30_000 }).enaExceeded('ens5', 1_200, 0, MAC),
      'ec2-allowance',
    );
    expect(postmortem).toContain('### Which table');
    expect(postmortem).toMatch(/\| Kernel \(nf_conntrack\) \| not full \|/);
    expect(postmortem).toMatch(/\| EC2 allowance \(ENA counters\) \| \*\*exhausted\*\*/);
    expect(postmortem).toMatch(/^EC2's allowance: the kernel table is not full/m);
    expect(postmortem).toContain('(instance type m6i.large)');
    const row = postmortem.split('\n').find((text) => text.startsWith('| ens5 |')) ?? '';
    expect(row).toContain(`| ${ENI} | sg-0web | every TCP and UDP flow is tracked`);
    expect(row).toContain(
      '| 432000 s (instance type default) | 120 s (set on the ENI) | 30 s (instance type default) |',
    );
    expect(row).toMatch(/ens5: conntrack\\_allowance\\_exceeded rose by 1200/);
  });

  it('says both tables when the kernel table is full and EC2 drops too', () => {
    const postmortem = withPlan(
      ReportBuilder.healthy()
        .table({ max: 262_144, count: 262_144 })
        .stat('drop', 50_000, 56_000)
        .enaExceeded('ens5', 500, 0, MAC),
      'table-full',
    );
    expect(postmortem).toMatch(/\| Kernel \(nf_conntrack\) \| \*\*full\*\*/);
    expect(postmortem).toMatch(/\| EC2 allowance \(ENA counters\) \| \*\*exhausted\*\*/);
    expect(postmortem).toMatch(/^Both tables: /m);
    expect(postmortem).toContain(`| ens5 | ${MAC.replace(/:/g, ':')} | ${ENI} |`);
  });

  it('says the kernel table alone, with no EC2 interface table, when the ENA counters are quiet', () => {
    const postmortem = String(buildEvidenceBundle(remediatedIncident()).files.get('postmortem.md'));
    expect(postmortem).toMatch(/\| Kernel \(nf_conntrack\) \| \*\*full\*\*/);
    expect(postmortem).toMatch(/\| EC2 allowance \(ENA counters\) \| not exhausted \|/);
    expect(postmortem).toMatch(/^The kernel table: /m);
    expect(postmortem).not.toContain('| Interface | MAC | ENI |');
  });
});

describe('markdown helpers', () => {
  it('fences text containing backticks with a longer fence', () => {
    expect(fence('a ``` b')).toBe('````\na ``` b\n````');
  });

  it('keeps an inline code span closed whatever it contains', () => {
    expect(codeSpan('a`b')).toBe('`` a`b ``');
    expect(codeSpan('plain')).toBe('`plain`');
  });

  it('neutralises emphasis, links, tables and HTML in inline text', () => {
    expect(inline('*a* _b_ [c](d) | <e> & f')).toBe('\\*a\\* \\_b\\_ \\[c\\](d) \\| &lt;e&gt; &amp; f');
  });
});
