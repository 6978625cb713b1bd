import { readFileSync } from 'node:fs';
import AjvDraft04 from 'ajv-draft-04';
import { describe, expect, it } from 'vitest';
import {
  KERNEL_LOG_SOURCES,
  type KernelLogSource,
  kernelLogAgentConfiguration,
} from '../../infra/constructs/kernel-log-shipping.js';
import { logicalIdOf, resolveIntrinsics, synthesize } from './support.js';

/**
 * The CloudWatch agent's own configuration schema (vendored with its licence, see
 * test/fixtures/cloudwatch-agent/README.md). Strict mode off: the schema uses keywords of its own
 * ("descriptions") that draft-04 does not define and the agent ignores.
 */
const schema = JSON.parse(
  readFileSync(new URL('../fixtures/cloudwatch-agent/config.schema.json', import.meta.url), 'utf8'),
);
const ajv = new AjvDraft04.default({ strict: false, allErrors: true });
const validateAgentConfiguration = ajv.compile(schema);

function schemaErrors(configuration: unknown): string[] {
  return validateAgentConfiguration(configuration)
    ? []
    : (validateAgentConfiguration.errors ?? []).map((error) => `${error.instancePath} ${error.message}`);
}

type Resource = { Type: string; Properties: Record<string, unknown>; DependsOn?: string[] };
const resourcesOf = (template: ReturnType<typeof synthesize>['template'], type: string) =>
  Object.entries(template.findResources(type) as Record<string, Resource>);

describe('the agent configurations', () => {
  it.each(KERNEL_LOG_SOURCES)('%s is valid against the agent schema', (source) => {
    expect(schemaErrors(kernelLogAgentConfiguration(source, '/conntrack-responder/kernel'))).toEqual([]);
  });

  it('the schema check can fail: the old README journald snippet and a misspelt key are refused', () => {
    const oldReadme = {
      logs: {
        logs_collected: { journald: { dmesg: true, priority: 'warning', start_at: 'end' } },
        log_group_name: '/conntrack-responder/kernel',
        log_stream_name: '{instance_id}',
      },
    };
    expect(schemaErrors(oldReadme).join('\n')).toMatch(/collect_list|additional properties/);
    const misspelt = kernelLogAgentConfiguration('kern-log', '/g') as {
      logs: { logs_collected: { files: { collect_list: Record<string, unknown>[] } } };
    };
    misspelt.logs.logs_collected.files.collect_list[0] = { file_path: '/var/log/kern.log', log_group: '/g' };
    expect(schemaErrors(misspelt)).not.toEqual([]);
  });

  it('read every kernel line from exactly one place each, so no host sends a line twice', () => {
    const inputs = KERNEL_LOG_SOURCES.map((source) => {
      const collected = (kernelLogAgentConfiguration(source, '/g') as { logs: { logs_collected: object } })
        .logs.logs_collected as Record<string, { collect_list: Record<string, unknown>[] }>;
      const collectors = Object.entries(collected);
      expect(collectors, source).toHaveLength(1);
      const [[kind, { collect_list }]] = collectors as [
        [string, { collect_list: Record<string, unknown>[] }],
      ];
      expect(collect_list, source).toHaveLength(1);
      const [entry] = collect_list as [Record<string, unknown>];
      expect(entry.log_stream_name).toBe('{instance_id}');
      return `${kind}:${String(entry.file_path ?? JSON.stringify(entry.matches))}`;
    });
    expect(inputs).toEqual([
      'files:/var/log/kern.log',
      'files:/var/log/messages',
      'journald:[{"_TRANSPORT":"kernel"}]',
    ]);
    // messages holds every facility: only kernel-tagged lines go.
    expect(kernelLogAgentConfiguration('messages', '/g')).toMatchObject({
      logs: {
        logs_collected: {
          files: { collect_list: [{ filters: [{ type: 'include', expression: ' kernel: ' }] }] },
        },
      },
    });
  });
});

describe('ConntrackResponder ships kernel messages by default', () => {
  const { template } = synthesize();
  const kernelLogsId = logicalIdOf(template, 'AWS::Logs::LogGroup', 'Detection/KernelLogs/Resource');
  const parameters = resourcesOf(template, 'AWS::SSM::Parameter');

  it('keeps one configuration per source in Parameter Store, under the agent policy prefix, valid and aimed at the kernel log group', () => {
    expect(parameters).toHaveLength(3);
    const bySource = new Map<KernelLogSource, Resource['Properties']>();
    for (const [, { Properties }] of parameters) {
      const source = KERNEL_LOG_SOURCES.find((each) => String(Properties.Name).endsWith(`-${each}`));
      expect(source, String(Properties.Name)).toBeDefined();
      bySource.set(source as KernelLogSource, Properties);
    }
    for (const source of KERNEL_LOG_SOURCES) {
      const properties = bySource.get(source) as Resource['Properties'];
      // CloudWatchAgentServerPolicy allows ssm:GetParameter on parameter/AmazonCloudWatch-* only.
      expect(properties.Name).toMatch(/^AmazonCloudWatch-[A-Za-z0-9_.-]{1,200}$/);
      expect(properties.Type).toBe('String');
      const value = JSON.parse(String(resolveIntrinsics(properties.Value)));
      expect(schemaErrors(value)).toEqual([]);
      expect(value).toEqual(kernelLogAgentConfiguration(source, `<ref:${kernelLogsId}>`));
    }
  });

  it('installs the agent on the tagged instances where it is missing', () => {
    template.hasResourceProperties('AWS::SSM::Association', {
      Name: 'AWS-ConfigureAWSPackage',
      Targets: [{ Key: 'tag:conntrack-responder:managed', Values: ['true'] }],
      Parameters: { action: ['Install'], name: ['AmazonCloudWatchAgent'] },
    });
  });

  it('applies the configurations with the ship-kernel-log document, daily, on the tagged instances', () => {
    const documentId = logicalIdOf(template, 'AWS::SSM::Document', 'Runbooks/ship-kernel-log');
    const [configure] = resourcesOf(template, 'AWS::SSM::Association').filter(
      ([, resource]) => JSON.stringify(resource.Properties.Name) === JSON.stringify({ Ref: documentId }),
    );
    expect(configure).toBeDefined();
    const [, resource] = configure as [string, Resource];
    const nameOf = (source: KernelLogSource) =>
      parameters.find(([, { Properties }]) => String(Properties.Name).endsWith(`-${source}`))?.[1].Properties
        .Name;
    expect(resource.Properties).toMatchObject({
      Targets: [{ Key: 'tag:conntrack-responder:managed', Values: ['true'] }],
      ScheduleExpression: 'rate(1 day)',
      Parameters: {
        KernLogConfiguration: [nameOf('kern-log')],
        MessagesConfiguration: [nameOf('messages')],
        JournaldConfiguration: [nameOf('journald')],
        AgentWaitSeconds: ['300'],
      },
    });
    // The parameters exist before the first run reads them.
    expect(resource.DependsOn).toEqual(expect.arrayContaining(parameters.map(([id]) => id)));
  });

  it('the document takes every parameter the association passes, and they pass its patterns', () => {
    const documentId = logicalIdOf(template, 'AWS::SSM::Document', 'Runbooks/ship-kernel-log');
    const content = template.toJSON().Resources[documentId].Properties.Content as {
      parameters: Record<string, { allowedPattern: string }>;
    };
    const [, configure] = resourcesOf(template, 'AWS::SSM::Association').find(
      ([, resource]) => JSON.stringify(resource.Properties.Name) === JSON.stringify({ Ref: documentId }),
    ) as [string, Resource];
    for (const [name, [value]] of Object.entries(
      configure.Properties.Parameters as Record<string, string[]>,
    )) {
      const parameter = content.parameters[name];
      expect(parameter, name).toBeDefined();
      expect(new RegExp(parameter?.allowedPattern as string).test(String(value)), name).toBe(true);
    }
  });
});

describe('kernelLogShipping', () => {
  it('follows the opt-in tag props', () => {
    const { template } = synthesize({
      managedInstanceTagKey: 'team:ops',
      managedInstanceTagValue: 'edge',
      hostSampler: false,
    });
    const targets = resourcesOf(template, 'AWS::SSM::Association').map(([, r]) => r.Properties.Targets);
    expect(targets).toEqual([
      [{ Key: 'tag:team:ops', Values: ['edge'] }],
      [{ Key: 'tag:team:ops', Values: ['edge'] }],
    ]);
  });

  it('is off by default with existing log groups, and ships to the first of them when turned on', () => {
    const existing = synthesize({ logGroupNames: ['/var/log/messages', '/b'], hostSampler: false }).template;
    existing.resourceCountIs('AWS::SSM::Parameter', 0);
    existing.resourceCountIs('AWS::SSM::Association', 0);
    const shipping = synthesize({ logGroupNames: ['/ops/kernel', '/b'], kernelLogShipping: true }).template;
    const values = resourcesOf(shipping, 'AWS::SSM::Parameter').map(([, r]) =>
      JSON.parse(String(resolveIntrinsics(r.Properties.Value))),
    );
    expect(values).toHaveLength(3);
    for (const value of values) expect(JSON.stringify(value)).toContain('"log_group_name":"/ops/kernel"');
  });

  it('can be turned off', () => {
    const { template } = synthesize({ kernelLogShipping: false, hostSampler: false });
    template.resourceCountIs('AWS::SSM::Parameter', 0);
    template.resourceCountIs('AWS::SSM::Association', 0);
  });
});

describe('the README shipping section', () => {
  const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
  // The section ends at the next heading of its level or above (other sections show JSON too).
  const start = readme.indexOf('### Shipping kernel messages');
  const rest = readme.slice(start + 1);
  const end = rest.search(/\n#{2,3} /);
  const section = rest.slice(0, end === -1 ? undefined : end);
  const blocks = [...section.matchAll(/```json\n([\s\S]*?)```/g)].map((match) =>
    JSON.parse(match[1] as string),
  );

  it('shows exactly the three configurations the stack creates, each valid against the agent schema', () => {
    expect(blocks).toEqual(
      KERNEL_LOG_SOURCES.map((source) => kernelLogAgentConfiguration(source, '<KernelLogGroups output>')),
    );
    for (const block of blocks) expect(schemaErrors(block)).toEqual([]);
  });
});
