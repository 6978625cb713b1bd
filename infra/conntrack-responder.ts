import { fileURLToPath } from 'node:url';
import { Duration, Names } from 'aws-cdk-lib';
import type * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import type * as sns from 'aws-cdk-lib/aws-sns';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import type * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import { Construct } from 'constructs';
import { IAM_APPROVAL_ENVIRONMENT } from '../functions/core/chatops/iam-approval.js';
import {
  DEFAULT_MANAGED_INSTANCE_TAG,
  DEFAULTS,
  type ManagedInstanceTag,
} from '../functions/core/defaults.js';
import {
  DEFAULT_FORECAST_SETTINGS,
  HORIZON_MINUTES_RANGE,
  USAGE_PERCENT_RANGE,
} from '../functions/core/forecast/index.js';
import {
  checkGuardrailSettings,
  DEFAULT_GUARDRAILS,
  type GuardrailSettings,
  guardrailEnvironment,
} from '../functions/core/guardrails/settings.js';
import {
  COOLDOWN_MINUTES_RANGE,
  checkWholeNumberInRange,
  compileInstanceIdPattern,
  DEFAULT_INSTANCE_ID_PATTERN,
  INCIDENT_RETENTION_DAYS_RANGE,
  isResponseMode,
  RESPONSE_MODES,
  type ResponseMode,
} from '../functions/core/incident/settings.js';
import type { PolicyOverrides } from '../functions/core/plan/policy.js';
import {
  DEFAULT_SDK_RETRY,
  RETRY_MODES,
  type RetryMode,
  SDK_MAX_ATTEMPTS_RANGE,
  type SdkRetryConfig,
} from '../functions/core/sdk-retry.js';
import { ApprovalUrl, validateApproverProps } from './constructs/approval-url.js';
import { Detection, LOG_GROUP_NAME } from './constructs/detection.js';
import { EvidenceBucket } from './constructs/evidence-bucket.js';
import { EvidenceSigning, type EvidenceSigningProps } from './constructs/evidence-signing.js';
import { Guardrails } from './constructs/guardrails.js';
import { HOST_SAMPLER_INTERVAL_RANGE, HostSampler } from './constructs/host-sampler.js';
import { IncidentStore } from './constructs/incident-store.js';
import {
  APPROVAL_TIMEOUT_SECONDS_RANGE,
  checkWorkflowSettings,
  DEFAULT_SOAK,
  IncidentWorkflow,
} from './constructs/incident-workflow.js';
import { KernelLogShipping } from './constructs/kernel-log-shipping.js';
import {
  LifecycleEventTargets,
  type LifecycleEventTargetsProps,
} from './constructs/lifecycle-event-targets.js';
import { Notifications } from './constructs/notifications.js';
import { RunbookDocuments } from './constructs/runbook-documents.js';
import { SlackChatops, type SlackProps, validateSlackProps } from './constructs/slack-chatops.js';
import { checkManagedInstanceTag } from './managed-instances.js';

/** The repository's `runbooks/` folder. */
export const REPOSITORY_RUNBOOKS = fileURLToPath(new URL('../runbooks/', import.meta.url));

export interface ConntrackResponderProps {
  /**
   * Existing CloudWatch Logs log groups that receive hosts' kernel messages (one stream per
   * instance); each gets one subscription filter. A log group accepts only two subscription
   * filters, so check that one is free.
   *
   * @default - none: the construct creates the log group `createdLogGroupName` for the CloudWatch
   *   agent to ship to, and subscribes it
   */
  readonly logGroupNames?: readonly string[];

  /**
   * Name of the kernel log group created when `logGroupNames` is empty. The group is kept when
   * the stack is deleted (its lines are the hosts' own record of the outage), so with a fixed
   * name a second deployment after a delete fails with "already exists" until the kept group is
   * deleted, or subscribed instead with `logGroupNames`. The default name avoids that.
   *
   * @default - a name CloudFormation generates (stack output KernelLogGroups), new on every deployment
   */
  readonly createdLogGroupName?: string;

  /**
   * Name of the subscription filter put on each log group. Keep it stable: renaming replaces the
   * filter, which fails on a log group that already has two.
   *
   * @default 'conntrack-responder'
   */
  readonly subscriptionFilterName?: string;

  /**
   * Regular expression (JavaScript syntax) that finds the EC2 instance id in a log stream name;
   * drops from a stream without a match are attributed to the stream name.
   *
   * @default 'i-[0-9a-f]{8,17}'
   */
  readonly instanceIdPattern?: string;

  /**
   * Minutes after an incident opens during which further drops on the same instance only add
   * their counts to it instead of opening another incident (1 to 1440).
   *
   * @default 30
   */
  readonly cooldownMinutes?: number;

  /**
   * How the workflow may change a host when no per-instance policy says otherwise: `auto`
   * (remediate within the safety rules), `approve` (wait for a person), or `dry-run` (diagnose and
   * plan, change nothing).
   *
   * @default 'approve'
   */
  readonly defaultMode?: ResponseMode;

  /**
   * Days an evidence bundle is kept in the evidence bucket (and locked, with `objectLock`).
   *
   * @default 365
   */
  readonly evidenceRetentionDays?: number;

  /**
   * Makes the evidence bucket write-once: every object version is locked for
   * `evidenceRetentionDays`. Object Lock can only be turned on when the bucket is created.
   *
   * @default false
   */
  readonly objectLock?: boolean;

  /**
   * Object Lock mode: `GOVERNANCE` (users with `s3:BypassGovernanceRetention` can still delete) or
   * `COMPLIANCE` (nobody can, not even the root user, until retention ends).
   *
   * @default 'GOVERNANCE'
   */
  readonly objectLockMode?: 'GOVERNANCE' | 'COMPLIANCE';

  /**
   * Signs every evidence bundle: the manifest's digest is signed with an asymmetric KMS key
   * (kms:Sign) and signature.json travels in the bundle, so `bundle verify --public-key` proves
   * offline who wrote it. `{}` creates an ECC_NIST_P256 key that only the evidence writer may sign
   * with; `{ keyArn }` uses an existing key. The stack outputs the key ARN and its public key
   * (EvidenceSigningKeyArn, EvidenceSigningPublicKey). See docs/evidence-bundle.md.
   *
   * @default - bundles are not signed (their manifest digest is still recorded outside them)
   */
  readonly evidenceSigning?: EvidenceSigningProps;

  /**
   * Rules on the default event bus that route the incidents' lifecycle events (README "Lifecycle
   * events"): `opsItems` creates an OpsCenter OpsItem per incident (deduplicated by incident id);
   * `webhook` posts to an endpoint through an API destination, PagerDuty Events v2 by default (a
   * trigger on escalation, a resolve at the close), its key read from a Secrets Manager secret.
   *
   * @default - no rule: the events are still put on the default bus for your own rules
   */
  readonly lifecycleEventTargets?: LifecycleEventTargetsProps;

  /**
   * Prefix of every SSM document's name (and of the State Manager associations' names); the rest
   * is the runbook's file name (`runbooks/ssm/raise-limits.yaml` becomes `<prefix>raise-limits`).
   * Document names are unique in an account and region, so two deployments need two prefixes.
   *
   * @default - the stack name, the construct's path in it and a hash of both, then `-`
   *   (`ConntrackResponder-9903E448-` in the app; stack output DocumentNamePrefix)
   */
  readonly documentNamePrefix?: string;

  /**
   * Folder holding the runbooks: `ssm/<name>.yaml` documents and their `scripts/<name>.sh`.
   *
   * @default - the repository's `runbooks/` folder
   */
  readonly runbookDirectory?: string;

  /**
   * Days an incident record stays in the incidents table before DynamoDB's TTL removes it.
   *
   * @default 90
   */
  readonly incidentRetentionDays?: number;

  /**
   * Retention of the log groups the construct creates (the detect function's, the workflow's and
   * the kernel log group).
   *
   * @default logs.RetentionDays.THREE_MONTHS
   */
  readonly logRetention?: logs.RetentionDays;

  /**
   * Upper bound of one incident workflow execution, approval wait and soak included. It must
   * exceed `approvalTimeoutMinutes` + `soak` + what the rest of the workflow may take at most
   * (remediation-slot waits, SSM commands, Lambda steps: see `workflowTimeBudget` in
   * infra/workflow/definition.ts; synth fails with the minimum otherwise), so that an execution is
   * never cut between a change and its verification or rollback.
   *
   * @default Duration.hours(4)
   */
  readonly workflowTimeout?: Duration;

  /**
   * The key of the instance tag that opts an instance in: whatever the stack applies to instances
   * on its own (State Manager associations) targets exactly the instances carrying
   * `managedInstanceTagKey` = `managedInstanceTagValue`. Whoever may tag instances may opt them in:
   * restrict `ec2:CreateTags` on this key accordingly.
   *
   * @default 'conntrack-responder:managed'
   */
  readonly managedInstanceTagKey?: string;

  /**
   * The value of `managedInstanceTagKey` that opts an instance in.
   *
   * @default 'true'
   */
  readonly managedInstanceTagValue?: string;

  /**
   * Installs the host sampler (the host-sampler document: a small systemd service writing one line
   * of conntrack usage and counters per interval to the journal) on every managed instance with a
   * State Manager association, for the detect function to predict when a table fills and act
   * before the first drop (docs/forecast.md). The CloudWatch agent must ship its lines too.
   *
   * @default true
   */
  readonly hostSampler?: boolean;

  /**
   * Seconds between two samples of the host sampler (1 to 3600). Shorter catches faster fills and
   * costs more log events and detect invocations (docs/forecast.md).
   *
   * @default 60
   */
  readonly hostSamplerIntervalSeconds?: number;

  /**
   * Ships the managed instances' kernel messages to the kernel log group: the CloudWatch agent
   * configurations in Parameter Store (`/var/log/kern.log`, `/var/log/messages`, the journal) and
   * two State Manager associations on the instances with the opt-in tag, one installing the agent
   * where it is missing, one applying the configuration of the one source each host has
   * (`runbooks/ssm/ship-kernel-log.yaml`; README "Shipping kernel messages").
   *
   * @default - true when the construct creates the kernel log group; false with `logGroupNames`
   *   (hosts that already ship there are left alone; true ships to the first of them)
   */
  readonly kernelLogShipping?: boolean;

  /**
   * A `near-full` incident opens when a host's table is predicted full within this many minutes
   * (1 to 1440), before the first drop (docs/forecast.md).
   *
   * @default 30
   */
  readonly nearFullHorizonMinutes?: number;

  /**
   * ... or when a host sample shows the table at or above this usage, in percent (50 to 99).
   *
   * @default 90
   */
  readonly nearFullUsagePercent?: number;

  /**
   * The detect function publishes every host sample as per-instance metrics in the
   * `ConntrackResponder` namespace (ConntrackEntries, ConntrackUsage, ConntrackDropCounter,
   * dimension InstanceId): 3 custom metrics per sampled instance.
   *
   * @default true
   */
  readonly hostSampleMetrics?: boolean;

  /**
   * The workflow sends its documents (ssm:SendCommand) only to instances carrying the opt-in tag
   * (`managedInstanceTagKey` = `managedInstanceTagValue`), by an IAM condition on the instance
   * (`ssm:resourceTag/<key>`). An incident on an untagged instance then fails its diagnostics
   * step (AccessDenied) and is escalated with nothing changed.
   *
   * @default false - any instance of the account and region (still only the stack's documents)
   */
  readonly requireManagedInstanceTag?: boolean;

  // ---- the incident workflow (docs/workflow.md, docs/policy.md) ---------------------------------

  /**
   * Minutes a change waits for a person's decision (Slack, or `conntrack-responder approve`) before the
   * incident ends with no change, escalated (1 to 10080).
   *
   * @default 30
   */
  readonly approvalTimeoutMinutes?: number;

  /**
   * Time between a change and its verification, during which the table should drain (whole
   * seconds, 0 to 24 h). As a context key: `soakMinutes`, in whole minutes.
   *
   * @default Duration.minutes(2)
   */
  readonly soak?: Duration;

  /**
   * Overrides of the decision policy (docs/policy.md): per-kind modes (`modes`), memory budget,
   * near-full ratio, raise limits, NOTRACK rules, persistence, verification thresholds. Anything
   * left out keeps its default. Checked at synth against the same schema the functions use, so a
   * misspelt or out-of-range field fails `cdk synth`, naming the field. As a context key: a JSON
   * object (in cdk.json) or its JSON text (with `-c`).
   *
   * @default {} - the documented defaults (limit raises within budget automatic, NOTRACK and
   *   timeouts after approval)
   */
  readonly policy?: PolicyOverrides;

  // ---- fleet guardrails (docs/guardrails.md) ----------------------------------------------------

  /**
   * The fleet circuit breaker trips when more than this many instances open incidents within
   * `breakerWindowMinutes`: automatic changes stop everywhere (running incidents wait for
   * approval), new incidents are recorded but start no workflow, and one escalation with the
   * fleet view goes to the notification topic. A person resets it
   * (`npx conntrack-responder breaker reset`). 0 turns the automatic trip off (a person can still
   * open it by hand).
   *
   * @default 10
   */
  readonly breakerMaxInstances?: number;

  /**
   * The sliding window, in minutes, over which the breaker counts instances (1 to 1440).
   *
   * @default 15
   */
  readonly breakerWindowMinutes?: number;

  /**
   * Remediations (apply → soak → verify → persist or roll back) running at the same time,
   * fleet-wide; further approved or automatic changes wait for a slot (1 to 1000). A slot a dead
   * execution never gave back is freed after `workflowTimeout`.
   *
   * @default 5
   */
  readonly maxConcurrentRemediations?: number;

  /**
   * After a change on an instance (remediated, rolled back, or a failed rollback), further
   * incidents on that instance need a person for this many minutes (0 to 10080; 0 = never).
   *
   * @default 240
   */
  readonly remediationCooldownMinutes?: number;

  /**
   * The instance tag that sets an instance's own mode: `off` (not touched at all), `dry-run`,
   * `approve` or `auto`; it replaces `defaultMode` for that instance, and the change calendar,
   * the breaker and the cooldown can only make it stricter. Read with `ec2:DescribeTags` (SSM
   * `ListTagsForResource` for hybrid `mi-` nodes). Whoever may tag instances may choose their mode:
   * restrict `ec2:CreateTags` on this key accordingly.
   *
   * @default 'conntrack-responder:mode'
   */
  readonly modeTagKey?: string;

  /**
   * An SSM Change Calendar (name or document ARN) whose CLOSED state blocks automatic changes:
   * while it is closed, changes wait for approval.
   *
   * @default - no change calendar
   */
  readonly changeCalendar?: string;

  /**
   * The oldest SSM Agent the runbooks are sent to. Older agents silently ignore ENV_VAR parameters,
   * so their incidents escalate with the manual runbook instead.
   *
   * @default '3.3.2746.0'
   */
  readonly minSsmAgentVersion?: string;

  /**
   * Tries per AWS API call of every function (SDK retries with exponential backoff and full
   * jitter on throttling and transient errors), 1 to 20.
   *
   * @default 8
   */
  readonly awsMaxAttempts?: number;

  /**
   * The SDK retry algorithm: `standard` (backoff and jitter) or `adaptive` (also rate-limits the
   * client once it is throttled).
   *
   * @default 'standard'
   */
  readonly awsRetryMode?: RetryMode;

  // ---- approval without Slack (docs/chatops.md) -------------------------------------------------

  /**
   * IAM roles whose sessions may approve or reject from the command line
   * (`conntrack-responder approve|reject INCIDENT_ID`), through the approval URL (a function URL
   * with AWS_IAM auth). The roles get the right in the function's resource-based policy; a role of
   * another account also needs `lambda:InvokeFunctionUrl` and `lambda:InvokeFunction` on the
   * function in its own identity policy.
   *
   * @default - none: only holders of the approver managed policy (approverPolicy)
   */
  readonly approverRoleArns?: readonly string[];

  /**
   * Creates a managed policy (stack output ApproverPolicyArn) granting exactly what the command
   * line needs; whoever it is attached to in the stack's account may approve or reject. With
   * false, only the sessions of `approverRoleArns` may.
   *
   * @default true
   */
  readonly approverPolicy?: boolean;

  /**
   * Approval and incident threads in Slack: the channel, the workspace and app ids, and who may
   * approve. The construct creates the two secrets to fill in (signing secret, bot token) and the
   * interactivity endpoint whose URL goes into the Slack app (see slack-app-manifest.yaml).
   *
   * @default - no Slack: notifications go to the SNS topic only, approvals time out unanswered
   */
  readonly slack?: SlackProps;
}

const APPROVAL_TIMEOUT_MINUTES_RANGE = {
  min: APPROVAL_TIMEOUT_SECONDS_RANGE.min / 60,
  max: APPROVAL_TIMEOUT_SECONDS_RANGE.max / 60,
} as const;
const DOCUMENT_NAME_PREFIX = /^[A-Za-z0-9_.-]{0,100}$/;
const RESERVED_DOCUMENT_PREFIX = /^(aws|amazon|amzn)/i;

/**
 * SSM document names are unique per account and region, and so are the names this construct
 * gives its associations: the default prefix is the stack's name and the construct's path with
 * a hash of them (Names.uniqueResourceName), so two stacks, or two responders in one stack, never
 * clash, and the same deployment keeps the same names from one synth to the next.
 */
function defaultDocumentNamePrefix(scope: Construct): string {
  return `${Names.uniqueResourceName(scope, { maxLength: 64, separator: '-' })}-`;
}

/**
 * conntrack-responder on AWS: detects a full connection-tracking table from hosts' kernel
 * messages in CloudWatch Logs, opens one incident per instance, and runs the incident workflow
 * that diagnoses, fixes, verifies, notifies and keeps the evidence.
 */
export class ConntrackResponder extends Construct {
  readonly detectFunction: lambda.IFunction;
  readonly failedEventsQueue: sqs.IQueue;
  readonly kernelLogGroups: readonly logs.ILogGroup[];
  readonly incidentTable: dynamodb.ITable;
  readonly evidenceBucket: s3.IBucket;
  readonly notificationTopic: sns.ITopic;
  readonly stateMachine: sfn.IStateMachine;
  readonly documents: RunbookDocuments;
  /** The guardrails function the workflow's guardrail states call. */
  readonly guardrailsFunction: lambda.IFunction;
  /** Present when `slack` was given. */
  readonly chatops?: SlackChatops;
  /** Present unless `kernelLogShipping` is off. */
  readonly logShipping?: KernelLogShipping;
  /** The tag that selects the instances the stack manages (associations, SendCommand condition). */
  readonly managedInstanceTag: ManagedInstanceTag;
  /** Present when `evidenceSigning` was given. */
  readonly evidenceSigning?: EvidenceSigning;
  /** Present when `lifecycleEventTargets` was given. */
  readonly lifecycleEventTargets?: LifecycleEventTargets;
  /** The approval URL behind `conntrack-responder approve|reject` (always there: the default mode is approve). */
  readonly approvalUrl: ApprovalUrl;

  constructor(scope: Construct, id: string, props: ConntrackResponderProps = {}) {
    super(scope, id);
    const settings = resolveProps(props);
    this.managedInstanceTag = settings.managedInstanceTag;

    this.documents = new RunbookDocuments(this, 'Runbooks', {
      directory: settings.runbookDirectory,
      namePrefix: settings.documentNamePrefix ?? defaultDocumentNamePrefix(this),
      mustExist: props.runbookDirectory !== undefined,
    });
    const store = new IncidentStore(this, 'IncidentStore');
    const evidence = new EvidenceBucket(this, 'Evidence', {
      retentionDays: settings.evidenceRetentionDays,
      objectLock: settings.objectLock,
      objectLockMode: settings.objectLockMode,
    });
    const notifications = new Notifications(this, 'Notifications');
    const guardrails = new Guardrails(this, 'Guardrails', {
      settings: settings.guardrails,
      sdkRetry: settings.sdkRetry,
      incidentTable: store.table,
      incidentRetentionDays: settings.incidentRetentionDays,
      logRetention: settings.logRetention,
    });
    const workflow = new IncidentWorkflow(this, 'Workflow', {
      resources: {
        incidentTable: store.table,
        evidenceBucket: evidence.bucket,
        notificationTopic: notifications.topic,
        documents: this.documents,
        guardrailsFunction: guardrails.function,
      },
      logRetention: settings.logRetention,
      timeout: settings.workflowTimeout,
      ...(settings.requireManagedInstanceTag ? { sendCommandTag: settings.managedInstanceTag } : {}),
      managedInstanceTag: settings.managedInstanceTag,
      incidentRetentionDays: settings.incidentRetentionDays,
      settings: {
        policy: settings.policy,
        soak: settings.soak,
        approvalTimeout: Duration.minutes(settings.approvalTimeoutMinutes),
      },
    });
    if (props.lifecycleEventTargets !== undefined) {
      this.lifecycleEventTargets = new LifecycleEventTargets(
        this,
        'LifecycleEvents',
        props.lifecycleEventTargets,
      );
    }
    if (props.evidenceSigning !== undefined) {
      this.evidenceSigning = new EvidenceSigning(this, 'EvidenceSigning', {
        ...props.evidenceSigning,
        writer: workflow.functions.functions.writeEvidence,
        writerRole: workflow.functions.roles.writeEvidence,
        logRetention: settings.logRetention,
      });
    }
    const detection = new Detection(this, 'Detection', {
      logGroupNames: settings.logGroupNames,
      ...(settings.createdLogGroupName === undefined
        ? {}
        : { createdLogGroupName: settings.createdLogGroupName }),
      subscriptionFilterName: settings.subscriptionFilterName,
      instanceIdPattern: settings.instanceIdPattern,
      cooldownMinutes: settings.cooldownMinutes,
      defaultMode: settings.defaultMode,
      incidentRetentionDays: settings.incidentRetentionDays,
      logRetention: settings.logRetention,
      incidentTable: store.table,
      stateMachine: workflow.stateMachine,
      alarmTopic: notifications.topic,
      guardrails: settings.guardrails,
      sdkRetry: settings.sdkRetry,
      nearFullHorizonMinutes: settings.nearFullHorizonMinutes,
      nearFullUsagePercent: settings.nearFullUsagePercent,
      hostSampleMetrics: settings.hostSampleMetrics,
    });
    guardrails.releaseSlotsOfEndedExecutions(workflow.stateMachine);
    const [shipTo] = detection.subscribedLogGroups;
    if (settings.kernelLogShipping && shipTo !== undefined) {
      this.logShipping = new KernelLogShipping(this, 'LogShipping', {
        logGroupName: shipTo.logGroupName,
        tag: settings.managedInstanceTag,
        documents: this.documents,
      });
    }

    const samplerDocument = this.documents.documents.get('host-sampler');
    if (settings.hostSampler && samplerDocument !== undefined) {
      new HostSampler(this, 'HostSampler', {
        document: samplerDocument,
        tag: settings.managedInstanceTag,
        intervalSeconds: settings.hostSamplerIntervalSeconds,
        associationName: this.documents.documentName('host-sampler'),
      });
    }

    this.approvalUrl = new ApprovalUrl(this, 'Approval', {
      incidentTable: store.table,
      logRetention: settings.logRetention,
      approverRoleArns: settings.approverRoleArns,
      approverPolicy: settings.approverPolicy,
    });
    this.approvalUrl.allowDecisionsOn(workflow.stateMachine);
    // The approval request and the escalation say how to decide: the exact command with this URL.
    for (const fn of [workflow.functions.functions.requestApproval, workflow.functions.functions.notify]) {
      fn.addEnvironment(IAM_APPROVAL_ENVIRONMENT.approvalUrl, this.approvalUrl.url.url);
    }

    if (props.slack !== undefined) {
      this.chatops = new SlackChatops(this, 'Slack', {
        ...props.slack,
        incidentTable: store.table,
        logRetention: settings.logRetention,
      });
      this.chatops.allowDecisionsOn(workflow.stateMachine);
      // The approval request is posted in the incident's thread, and so is the outcome.
      this.chatops.connect(workflow.functions.functions.requestApproval);
      this.chatops.connect(workflow.functions.functions.notify);
      this.chatops.allowBreakerControl(guardrailEnvironment(settings.guardrails));
      this.chatops.followWorkflow(workflow.logGroup);
      // A decision from the command line settles the approval message in the incident's thread.
      this.chatops.connect(this.approvalUrl.function);
    }

    this.detectFunction = detection.function;
    this.failedEventsQueue = detection.failedEventsQueue;
    this.kernelLogGroups = detection.subscribedLogGroups;
    this.incidentTable = store.table;
    this.evidenceBucket = evidence.bucket;
    this.notificationTopic = notifications.topic;
    this.stateMachine = workflow.stateMachine;
    this.guardrailsFunction = guardrails.function;
  }
}

type GuardrailProp =
  | 'breakerMaxInstances'
  | 'breakerWindowMinutes'
  | 'maxConcurrentRemediations'
  | 'remediationCooldownMinutes'
  | 'modeTagKey'
  | 'changeCalendar'
  | 'minSsmAgentVersion'
  | 'awsMaxAttempts'
  | 'awsRetryMode';

type TagProp = 'managedInstanceTagKey' | 'managedInstanceTagValue';

/** Props whose default depends on the deployment, resolved where the construct is known. */
type DeploymentNamedProp = 'createdLogGroupName' | 'documentNamePrefix';

type ResolvedProps = Required<
  Omit<
    ConntrackResponderProps,
    GuardrailProp | TagProp | DeploymentNamedProp | 'slack' | 'evidenceSigning' | 'lifecycleEventTargets'
  >
> &
  Pick<ConntrackResponderProps, DeploymentNamedProp> & {
    readonly guardrails: GuardrailSettings;
    readonly sdkRetry: SdkRetryConfig;
    readonly managedInstanceTag: ManagedInstanceTag;
  };

/** Applies the defaults and rejects what would only fail at deploy time, naming the prop. */
function resolveProps(props: ConntrackResponderProps): ResolvedProps {
  const resolved = withDefaults(props);
  checkResolvedProps(resolved, props.slack);
  return resolved;
}

/** The props with every default applied (functions/core/defaults.ts and each concern's own). */
function withDefaults(props: ConntrackResponderProps): ResolvedProps {
  const workflowTimeout = props.workflowTimeout ?? Duration.hours(DEFAULTS.workflowTimeoutHours);
  return {
    logGroupNames: props.logGroupNames ?? [],
    ...(props.createdLogGroupName === undefined ? {} : { createdLogGroupName: props.createdLogGroupName }),
    subscriptionFilterName: props.subscriptionFilterName ?? 'conntrack-responder',
    instanceIdPattern: props.instanceIdPattern ?? DEFAULT_INSTANCE_ID_PATTERN,
    cooldownMinutes: props.cooldownMinutes ?? DEFAULTS.cooldownMinutes,
    defaultMode: props.defaultMode ?? DEFAULTS.defaultMode,
    evidenceRetentionDays: props.evidenceRetentionDays ?? DEFAULTS.evidenceRetentionDays,
    objectLock: props.objectLock ?? false,
    objectLockMode: props.objectLockMode ?? 'GOVERNANCE',
    ...(props.documentNamePrefix === undefined ? {} : { documentNamePrefix: props.documentNamePrefix }),
    runbookDirectory: props.runbookDirectory ?? REPOSITORY_RUNBOOKS,
    incidentRetentionDays: props.incidentRetentionDays ?? DEFAULTS.incidentRetentionDays,
    logRetention: props.logRetention ?? logs.RetentionDays.THREE_MONTHS,
    hostSampler: props.hostSampler ?? true,
    hostSamplerIntervalSeconds: props.hostSamplerIntervalSeconds ?? DEFAULTS.hostSamplerIntervalSeconds,
    nearFullHorizonMinutes: props.nearFullHorizonMinutes ?? DEFAULT_FORECAST_SETTINGS.horizonSeconds / 60,
    nearFullUsagePercent: props.nearFullUsagePercent ?? DEFAULT_FORECAST_SETTINGS.usageThreshold * 100,
    hostSampleMetrics: props.hostSampleMetrics ?? true,
    requireManagedInstanceTag: props.requireManagedInstanceTag ?? false,
    workflowTimeout,
    approvalTimeoutMinutes: props.approvalTimeoutMinutes ?? DEFAULTS.approvalTimeoutMinutes,
    soak: props.soak ?? DEFAULT_SOAK,
    policy: props.policy ?? {},
    approverRoleArns: props.approverRoleArns ?? [],
    approverPolicy: props.approverPolicy ?? true,
    guardrails: {
      breaker: {
        maxInstances: props.breakerMaxInstances ?? DEFAULT_GUARDRAILS.breaker.maxInstances,
        windowMinutes: props.breakerWindowMinutes ?? DEFAULT_GUARDRAILS.breaker.windowMinutes,
      },
      maxConcurrentRemediations:
        props.maxConcurrentRemediations ?? DEFAULT_GUARDRAILS.maxConcurrentRemediations,
      // A slot outlives no execution: it is freed at the latest when its execution would have timed out.
      slotLeaseSeconds: workflowTimeout.toSeconds(),
      remediationCooldownMinutes:
        props.remediationCooldownMinutes ?? DEFAULT_GUARDRAILS.remediationCooldownMinutes,
      modeTagKey: props.modeTagKey ?? DEFAULT_GUARDRAILS.modeTagKey,
      changeCalendar: props.changeCalendar ?? null,
      minAgentVersion: props.minSsmAgentVersion ?? DEFAULT_GUARDRAILS.minAgentVersion,
    },
    sdkRetry: {
      maxAttempts: props.awsMaxAttempts ?? DEFAULT_SDK_RETRY.maxAttempts,
      retryMode: props.awsRetryMode ?? DEFAULT_SDK_RETRY.retryMode,
    },
    kernelLogShipping: props.kernelLogShipping ?? (props.logGroupNames ?? []).length === 0,
    managedInstanceTag: {
      key: props.managedInstanceTagKey ?? DEFAULT_MANAGED_INSTANCE_TAG.key,
      value: props.managedInstanceTagValue ?? DEFAULT_MANAGED_INSTANCE_TAG.value,
    },
  };
}

/** Rejects what would only fail at deploy time (or do something nobody asked for), naming the prop. */
function checkResolvedProps(resolved: ResolvedProps, slack: SlackProps | undefined): void {
  try {
    compileInstanceIdPattern(resolved.instanceIdPattern);
  } catch (error) {
    throw new Error(`ConntrackResponder instanceIdPattern: ${(error as Error).message}`);
  }
  checkWholeNumberInRange(
    'ConntrackResponder cooldownMinutes',
    resolved.cooldownMinutes,
    COOLDOWN_MINUTES_RANGE,
  );
  checkWholeNumberInRange(
    'ConntrackResponder incidentRetentionDays',
    resolved.incidentRetentionDays,
    INCIDENT_RETENTION_DAYS_RANGE,
  );
  checkWholeNumberInRange(
    'ConntrackResponder hostSamplerIntervalSeconds',
    resolved.hostSamplerIntervalSeconds,
    HOST_SAMPLER_INTERVAL_RANGE,
  );
  checkWholeNumberInRange(
    'ConntrackResponder nearFullHorizonMinutes',
    resolved.nearFullHorizonMinutes,
    HORIZON_MINUTES_RANGE,
  );
  checkWholeNumberInRange(
    'ConntrackResponder nearFullUsagePercent',
    resolved.nearFullUsagePercent,
    USAGE_PERCENT_RANGE,
  );
  checkWholeNumberInRange('ConntrackResponder evidenceRetentionDays', resolved.evidenceRetentionDays, {
    min: 1,
    max: 36500,
  });
  if (!isResponseMode(resolved.defaultMode)) {
    throw new Error(
      `ConntrackResponder defaultMode must be one of ${RESPONSE_MODES.join(', ')}, got '${resolved.defaultMode}'`,
    );
  }
  if (resolved.objectLockMode !== 'GOVERNANCE' && resolved.objectLockMode !== 'COMPLIANCE') {
    throw new Error(
      `ConntrackResponder objectLockMode must be GOVERNANCE or COMPLIANCE, got '${resolved.objectLockMode}'`,
    );
  }
  const prefix = resolved.documentNamePrefix;
  if (prefix !== undefined && !DOCUMENT_NAME_PREFIX.test(prefix)) {
    throw new Error(
      `ConntrackResponder documentNamePrefix '${prefix}' may only use letters, digits, _ . - (at most 100)`,
    );
  }
  if (prefix !== undefined && RESERVED_DOCUMENT_PREFIX.test(prefix)) {
    throw new Error(
      `ConntrackResponder documentNamePrefix '${prefix}' starts with a prefix AWS reserves (aws, amazon, amzn)`,
    );
  }
  const kernelLogGroup = resolved.createdLogGroupName;
  if (kernelLogGroup !== undefined && !LOG_GROUP_NAME.test(kernelLogGroup)) {
    throw new Error(
      `ConntrackResponder createdLogGroupName '${kernelLogGroup}' is not valid: 1 to 512 characters from letters, digits and . - _ / #`,
    );
  }
  if (!/^[^:*]{1,512}$/.test(resolved.subscriptionFilterName)) {
    throw new Error(
      `ConntrackResponder subscriptionFilterName '${resolved.subscriptionFilterName}' must be 1 to 512 characters without ':' or '*'`,
    );
  }
  if (slack !== undefined) validateSlackProps(slack);
  checkManagedInstanceTag(resolved.managedInstanceTag, (field) =>
    field === 'key'
      ? 'ConntrackResponder managedInstanceTagKey'
      : 'ConntrackResponder managedInstanceTagValue',
  );
  validateApproverProps(resolved.approverRoleArns);
  if (resolved.workflowTimeout.toSeconds() < 60) {
    throw new Error('ConntrackResponder workflowTimeout must be at least one minute');
  }
  checkWholeNumberInRange(
    'ConntrackResponder approvalTimeoutMinutes',
    resolved.approvalTimeoutMinutes,
    APPROVAL_TIMEOUT_MINUTES_RANGE,
  );
  const workflowProp = { timeout: 'workflowTimeout', approvalTimeout: 'approvalTimeoutMinutes' } as const;
  checkWorkflowSettings(
    resolved.workflowTimeout,
    {
      policy: resolved.policy,
      soak: resolved.soak,
      approvalTimeout: Duration.minutes(resolved.approvalTimeoutMinutes),
    },
    (setting) =>
      `ConntrackResponder ${setting === 'timeout' || setting === 'approvalTimeout' ? workflowProp[setting] : setting}`,
  );
  checkGuardrailSettings(resolved.guardrails, (field) =>
    field === 'remediationSlotLeaseSeconds'
      ? 'ConntrackResponder workflowTimeout'
      : `ConntrackResponder ${field}`,
  );
  checkWholeNumberInRange(
    'ConntrackResponder awsMaxAttempts',
    resolved.sdkRetry.maxAttempts,
    SDK_MAX_ATTEMPTS_RANGE,
  );
  if (!(RETRY_MODES as readonly string[]).includes(resolved.sdkRetry.retryMode)) {
    throw new Error(
      `ConntrackResponder awsRetryMode must be one of ${RETRY_MODES.join(', ')}, got '${resolved.sdkRetry.retryMode}'`,
    );
  }
}
