import { describe, expect, it } from 'vitest';
import { buildEvidenceBundle } from '../../../functions/core/evidence/bundle.js';
import type { IncidentEvidence } from '../../../functions/core/evidence/incident.js';
import { codeSpan, fence, inline } from '../../../functions/core/evidence/postmortem.js';
import { remediatedIncident } from '../../support/evidence-builder.js';

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
