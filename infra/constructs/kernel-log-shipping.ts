import { Names, Stack } from 'aws-cdk-lib';
import * as ssm from 'aws-cdk-lib/aws-ssm';
import { Construct } from 'constructs';
import type { ManagedInstanceTag } from '../../functions/core/defaults.js';
import { managedInstanceTargets } from '../managed-instances.js';
import type { RunbookDocuments } from './runbook-documents.js';

/**
 * Where a host's kernel messages come from, exactly one per host so that no kernel line is
 * shipped twice (`runbooks/scripts/ship-kernel-log.sh` picks it by what the host has):
 * - `kern-log`: rsyslog's `/var/log/kern.log` (Debian, Ubuntu); kernel messages only.
 * - `messages`: `/var/log/messages` (Amazon Linux 2, RHEL/CentOS, and syslog daemons without
 *   kern.log); every facility, so only lines whose tag is `kernel:` are sent.
 * - `journald`: the journal's kernel transport (Amazon Linux 2023 and any host without a syslog
 *   daemon writing those files).
 */
export const KERNEL_LOG_SOURCES = ['kern-log', 'messages', 'journald'] as const;
export type KernelLogSource = (typeof KERNEL_LOG_SOURCES)[number];

/**
 * The oldest CloudWatch agent each source works with: agent-side log filters came with 1.247350.0
 * (2022-01-19) and the journald collector with 1.300070.0 (2026-06-19), per the agent's
 * RELEASE_NOTES (github.com/aws/amazon-cloudwatch-agent). The kern.log configuration uses
 * neither, so any agent that reads files will do.
 */
export const MIN_AGENT_VERSION: Readonly<Record<KernelLogSource, string | null>> = {
  'kern-log': null,
  messages: '1.247350.0',
  journald: '1.300070.0',
};

/**
 * Only lines tagged `kernel:` (RFC 3164 and rsyslog's high-precision format both write
 * `<time> <host> kernel: <message>`); the agent's filters are RE2 expressions over the line.
 * A user program can write the same tag with `logger -t kernel`; detect counts drops from what it
 * receives, and the host's own counters confirm them before anything changes.
 */
export const KERNEL_LINE_FILTER = ' kernel: ';

/** The stream of every event is its instance's id, the name detect finds the instance by. */
const STREAM = '{instance_id}';

/**
 * The CloudWatch agent configuration for one source, shipping to `logGroupName` (a token is
 * fine: the construct renders it with the stack's JSON). Each holds only what that source needs,
 * so the three can be appended to whatever configuration the host's agent already has. Checked
 * against the agent's own schema in test/infra/kernel-log-shipping.test.ts.
 */
export function kernelLogAgentConfiguration(source: KernelLogSource, logGroupName: string) {
  switch (source) {
    case 'kern-log':
      return fileConfiguration({
        file_path: '/var/log/kern.log',
        log_group_name: logGroupName,
        log_stream_name: STREAM,
      });
    case 'messages':
      return fileConfiguration({
        file_path: '/var/log/messages',
        log_group_name: logGroupName,
        log_stream_name: STREAM,
        filters: [{ type: 'include', expression: KERNEL_LINE_FILTER }],
      });
    case 'journald':
      return {
        logs: {
          logs_collected: {
            journald: {
              collect_list: [
                {
                  log_group_name: logGroupName,
                  log_stream_name: STREAM,
                  // The kernel's own messages: journald sets _TRANSPORT=kernel only for /dev/kmsg.
                  matches: [{ _TRANSPORT: 'kernel' }],
                },
              ],
            },
          },
        },
      };
  }
}

function fileConfiguration(entry: Record<string, unknown>) {
  return { logs: { logs_collected: { files: { collect_list: [entry] } } } };
}

export interface KernelLogShippingProps {
  /** The log group the agent ships to (the one detect is subscribed to). */
  readonly logGroupName: string;
  /** The instances to configure. */
  readonly tag: ManagedInstanceTag;
  /** Holds the `ship-kernel-log` document the configuring association runs. */
  readonly documents: RunbookDocuments;
}

/** Parameter Store names the CloudWatch agent may read with its managed policy alone. */
const AGENT_PARAMETER_PREFIX = 'AmazonCloudWatch-';

/**
 * Log shipping as part of the product: the three CloudWatch agent configurations in Parameter
 * Store, and two State Manager associations on the managed instances (the opt-in tag): one
 * installs the `AmazonCloudWatchAgent` package with `AWS-ConfigureAWSPackage`, the other runs the
 * `ship-kernel-log` document, which picks the one source the host has and appends that
 * configuration to the agent's (the same `amazon-cloudwatch-agent-ctl` call
 * `AmazonCloudWatch-ManageAgent` makes with "configure (append)"), removing the other two.
 *
 * Why a document of our own rather than one `AmazonCloudWatch-ManageAgent` association per
 * distribution: State Manager can only target by tag or resource group, not by what a host runs,
 * and the wrong configuration on a host ships its kernel lines twice (Debian 11 writes them to
 * both kern.log and messages; Amazon Linux 2 to both messages and the journal).
 */
export class KernelLogShipping extends Construct {
  /** Parameter Store names of the configurations, by source. */
  readonly parameterNames: Readonly<Record<KernelLogSource, string>>;
  readonly parameters: Readonly<Record<KernelLogSource, ssm.CfnParameter>>;
  readonly installAgent: ssm.CfnAssociation;
  readonly configureAgent: ssm.CfnAssociation;

  constructor(scope: Construct, id: string, props: KernelLogShippingProps) {
    super(scope, id);
    // Unique per stack and construct (two deployments never share a parameter), within
    // CloudWatchAgentServerPolicy's `parameter/AmazonCloudWatch-*`.
    const base = `${AGENT_PARAMETER_PREFIX}${Names.uniqueResourceName(this, { maxLength: 120, separator: '-' })}`;
    const stack = Stack.of(this);
    const names = {} as Record<KernelLogSource, string>;
    const parameters = {} as Record<KernelLogSource, ssm.CfnParameter>;
    for (const source of KERNEL_LOG_SOURCES) {
      names[source] = `${base}-${source}`;
      parameters[source] = new ssm.CfnParameter(this, `${pascal(source)}Configuration`, {
        name: names[source],
        type: 'String',
        tier: 'Standard',
        description: `conntrack-responder: CloudWatch agent configuration for kernel messages from ${source}`,
        value: stack.toJsonString(kernelLogAgentConfiguration(source, props.logGroupName)),
      });
    }
    this.parameterNames = names;
    this.parameters = parameters;

    const targets = managedInstanceTargets(props.tag);
    const namePrefix = props.documents.documentName('');
    // Runs when created and on every instance that later carries the tag. Distributor installs the
    // latest package where it is missing (https://docs.aws.amazon.com/systems-manager/latest/userguide/distributor-working-with-packages-deploy.html).
    this.installAgent = new ssm.CfnAssociation(this, 'InstallAgent', {
      name: 'AWS-ConfigureAWSPackage',
      associationName: `${namePrefix}install-cloudwatch-agent`,
      targets,
      parameters: { action: ['Install'], name: ['AmazonCloudWatchAgent'] },
      complianceSeverity: 'MEDIUM',
      maxConcurrency: '25%',
      maxErrors: '100%',
    });
    // Daily as well, so a host whose syslog daemon came or went, whose agent was reinstalled or
    // whose configuration someone replaced converges again; a run that changes nothing restarts nothing.
    this.configureAgent = new ssm.CfnAssociation(this, 'ConfigureAgent', {
      name: props.documents.documents.get('ship-kernel-log')?.ref ?? missingDocument(),
      associationName: `${namePrefix}ship-kernel-log`,
      targets,
      parameters: {
        KernLogConfiguration: [names['kern-log']],
        MessagesConfiguration: [names.messages],
        JournaldConfiguration: [names.journald],
        // The install association runs at the same moment on a new instance: give it time.
        AgentWaitSeconds: ['300'],
      },
      scheduleExpression: 'rate(1 day)',
      complianceSeverity: 'MEDIUM',
      maxConcurrency: '25%',
      maxErrors: '100%',
    });
    for (const parameter of Object.values(parameters)) this.configureAgent.node.addDependency(parameter);
  }
}

function pascal(name: string): string {
  return name.replace(/(^|-)([a-z])/g, (_match, _dash, letter: string) => letter.toUpperCase());
}

function missingDocument(): never {
  throw new Error(
    'kernel log shipping needs the ship-kernel-log runbook (runbooks/ssm/ship-kernel-log.yaml); turn kernelLogShipping off for a runbook folder without it',
  );
}
