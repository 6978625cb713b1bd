import { Duration } from 'aws-cdk-lib';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import * as tasks from 'aws-cdk-lib/aws-stepfunctions-tasks';
import type { Construct } from 'constructs';
import { ENI_TIMEOUTS_DOCUMENT } from '../../functions/core/allowance/eni-change.js';
import { DEFAULTS } from '../../functions/core/defaults.js';
import { HOST_ACTION_KINDS } from '../../functions/core/plan/policy.js';
import { DOCUMENT } from '../../functions/core/workflow/documents.js';
import { OUTCOMES } from '../../functions/core/workflow/outcome.js';
import {
  STATE,
  WORKFLOW_ERROR,
  type WorkflowFunctionRole,
} from '../../functions/core/workflow/state-names.js';
import { type SsmPolling, ssmCommandLoop, throttlingRetry } from './ssm-command.js';

/** The Lambda functions behind the workflow's Task states (thin handlers in functions/handlers/workflow/). */
export type IncidentWorkflowFunctions = Readonly<Record<WorkflowFunctionRole, lambda.IFunction>>;

/** Names in SSM of the documents the workflow runs. */
export interface IncidentWorkflowDocuments {
  readonly collectDiagnostics: string;
  readonly raiseLimits: string;
  readonly notrackPorts: string;
  readonly rollback: string;
}

export interface IncidentDefinitionProps {
  readonly functions: IncidentWorkflowFunctions;
  readonly documents: IncidentWorkflowDocuments;
  /**
   * How SSM commands are awaited.
   * @default 3 s between checks, 60 checks, 60 s delivery timeout
   */
  readonly polling?: Partial<SsmPolling>;
  /**
   * How long a change waits for a person before the incident ends with no change, escalated.
   * @default Duration.minutes(30)
   */
  readonly approvalTimeout?: Duration;
  /**
   * collect-diagnostics parameters: seconds between the two counter samples, and the N of top-N lists.
   * @default { sampleSeconds: 3, topN: 10 }
   */
  readonly diagnostics?: { readonly sampleSeconds?: number; readonly topN?: number };
}

export const DEFAULT_POLLING: SsmPolling = { intervalSeconds: 3, maxPolls: 60, deliveryTimeoutSeconds: 60 };
export const DEFAULT_APPROVAL_TIMEOUT = Duration.minutes(DEFAULTS.approvalTimeoutMinutes);

/**
 * How long a change waits for a remediation slot: 12 retries from 20 s apart, doubling up to 5 min,
 * with full jitter (at most about 45 min in all), then the incident escalates with no change.
 */
export const SLOT_RETRY: sfn.RetryProps = {
  errors: [WORKFLOW_ERROR.slotsBusy],
  interval: Duration.seconds(20),
  backoffRate: 2,
  maxDelay: Duration.minutes(5),
  maxAttempts: 12,
  jitterStrategy: sfn.JitterType.FULL,
};

/** Longest a remediation slot can be waited for: SLOT_RETRY's delays at their full-jitter maximum. */
export function slotWaitSeconds(retry: sfn.RetryProps = SLOT_RETRY): number {
  const interval = retry.interval?.toSeconds() ?? 1;
  const rate = retry.backoffRate ?? 2;
  const cap = retry.maxDelay?.toSeconds() ?? Number.POSITIVE_INFINITY;
  let total = 0;
  for (let attempt = 0; attempt < (retry.maxAttempts ?? 3); attempt++) {
    total += Math.min(interval * rate ** attempt, cap);
  }
  return total;
}

/** Where the time of one execution goes besides its approval wait and its soak (see workflowTimeBudget). */
export interface WorkflowTimeBudget {
  /** Two waits for a remediation slot (see below), each at most slotWaitSeconds(). */
  readonly slotWaitSeconds: number;
  /** SSM commands on the longest path, one after the other. */
  readonly ssmCommands: number;
  /** One command's bound: the polling loop's checks plus a minute to send it and make the checks. */
  readonly secondsPerSsmCommand: number;
  /** Lambda steps on the longest path, each allowed a minute (the EC2 steps included). */
  readonly lambdaSteps: number;
  /** Of those, the network function's: two descriptions, and an ENI change and its rollback per ENI. */
  readonly networkSteps: number;
  readonly totalSeconds: number;
}

/** collect-diagnostics asks at most 8 interfaces for ENA counters: at most one ENI change each. */
export const MAX_ENI_CHANGES = 8;

/**
 * How long an execution may need besides its approval wait and its soak, from the bounds this
 * definition sets itself. The state machine's timeout must leave at least this much on top of
 * the approval timeout and the soak: an execution cut after its change but before the
 * verification or the rollback would leave a host changed, unverified and not rolled back.
 *
 * - Remediation slot: "Take a remediation slot" retries for at most slotWaitSeconds() (45 min
 *   with SLOT_RETRY). The longest path passes it twice: an automatic change waits for a slot, is
 *   sent back to the policy gate when the calendar closes or the breaker opens meanwhile, is
 *   approved, and waits for a slot again (an approved change is never sent back).
 * - SSM commands: collect diagnostics, apply up to one per action kind, collect again after the
 *   soak, then persist (or roll back) up to one per action kind. Each is bounded by its polling
 *   loop (maxPolls checks intervalSeconds apart; the delivery timeout ends inside that loop),
 *   plus a minute for SendCommand with its throttling retries and the checks' own calls.
 * - Lambda steps: check the guardrails, assess, check the policy (twice on that path), request
 *   and settle the approval, take the slot (twice), announce the change, verify, release the slot,
 *   write the evidence, notify; and the network function's: describe the interfaces before and
 *   after the soak, and change and restore the idle timeouts of at most MAX_ENI_CHANGES ENIs (one
 *   per ENA interface the diagnostics report, which reads at most that many). Each function's
 *   timeout is 15 to 90 s and they return in about a second: a minute each.
 *
 * Not counted: a service that keeps failing (throttling retries beyond the first minute); such
 * steps end in a Catch, and the workflow timeout is then the last guard.
 */
export function workflowTimeBudget(polling: SsmPolling = DEFAULT_POLLING): WorkflowTimeBudget {
  const slotWait = 2 * slotWaitSeconds();
  const ssmCommands = 1 + HOST_ACTION_KINDS.length + 1 + HOST_ACTION_KINDS.length;
  const secondsPerSsmCommand = polling.maxPolls * polling.intervalSeconds + 60;
  const networkSteps = 2 + 2 * MAX_ENI_CHANGES;
  const lambdaSteps = 13 + networkSteps;
  return {
    slotWaitSeconds: slotWait,
    ssmCommands,
    secondsPerSsmCommand,
    lambdaSteps,
    networkSteps,
    totalSeconds: slotWait + ssmCommands * secondsPerSsmCommand + lambdaSteps * 60,
  };
}

/**
 * Lambda's own throttling (TooManyRequestsException: the account's or function's concurrency is
 * used up) and transient service errors, retried with backoff and full jitter on every Lambda task.
 */
export const LAMBDA_RETRY: sfn.RetryProps = {
  errors: [
    'Lambda.TooManyRequestsException',
    'Lambda.ServiceException',
    'Lambda.AWSLambdaException',
    'Lambda.SdkClientException',
    'Lambda.ClientExecutionTimeoutException',
  ],
  interval: Duration.seconds(2),
  backoffRate: 2,
  maxAttempts: 6,
  jitterStrategy: sfn.JitterType.FULL,
};

/**
 * The incident workflow, in JSONPath so that the same definition runs locally under
 * aws-local-stepfunctions. Data accumulates under one object:
 * `incident` (the execution input), `execution`, `instance`, `before`, `network`, `assessment`,
 * `gate`, `approval`, `applied`, `after`, `networkAfter`, `verification`, `persisted`, `rollback`,
 * `error`, `outcome`, `notification`, `evidence`.
 *
 * Every path ends in Write the evidence bundle → Notify: terminal branches set `outcome`; a failure
 * before any change is caught into "Failed before any change"; a failure once a change may have
 * been made is caught into "Roll back"; a failed rollback into "Rollback failed: escalated".
 *
 * One fragment per phase: intake (the instance and its guardrails) → diagnosis (collect, assess)
 * → decision (policy gate, approval) → remediation slot → change (apply, soak, collect again) →
 * verification (persist or roll back) → the close (release the slot, write the evidence, notify).
 */
export function buildIncidentDefinition(scope: Construct, props: IncidentDefinitionProps): sfn.IChainable {
  const ctx: DefinitionContext = {
    scope,
    functions: props.functions,
    documents: props.documents,
    polling: { ...DEFAULT_POLLING, ...props.polling },
    approvalTimeout: props.approvalTimeout ?? DEFAULT_APPROVAL_TIMEOUT,
    sampleSeconds: props.diagnostics?.sampleSeconds ?? DEFAULTS.diagnostics.sampleSeconds,
    topN: props.diagnostics?.topN ?? DEFAULTS.diagnostics.topN,
  };
  // Built from the first phase to the last, joined from the last back to the first: CDK keeps a
  // state's incoming transitions in the order they are added and orders the definition's states
  // (and so the role's policy statements) by walking them, so this order keeps the template as is.
  const ends = failureHandling(ctx, closingPhase(ctx));
  const intake = intakePhase(ctx, ends);
  const diagnosis = diagnosisPhase(ctx, ends);
  const decision = decisionPhase(ctx, ends);
  const change = changePhase(ctx, ends);
  const verify = verificationPhase(ctx, ends);
  const takeSlot = remediationSlot(ctx, ends, { granted: change.start, refused: decision.start });
  change.continueWith(verify);
  decision.continueWith(takeSlot);
  diagnosis.continueWith(decision.start);
  intake.continueWith(diagnosis.start);
  return intake.start;
}

/** A phase's states: where it starts, and how its way forward joins the phase after it. */
interface Phase {
  readonly start: sfn.IChainable;
  continueWith(next: sfn.IChainable): void;
}

/** What every phase fragment builds with: the props with their defaults applied. */
interface DefinitionContext {
  readonly scope: Construct;
  readonly functions: IncidentWorkflowFunctions;
  readonly documents: IncidentWorkflowDocuments;
  readonly polling: SsmPolling;
  readonly approvalTimeout: Duration;
  readonly sampleSeconds: number;
  readonly topN: number;
}

/** A state that failures can be caught from. */
type Catching = { addCatch(handler: sfn.IChainable, props?: sfn.CatchProps): unknown };

/** Where every phase can end: an outcome, a failure before any change, a failure after one. */
interface PhaseEnds {
  /** A terminal outcome: it sets `$.outcome`, then the close. */
  outcome(name: string, value: (typeof OUTCOMES)[keyof typeof OUTCOMES]): sfn.IChainable;
  /** Catches any failure of `state` into "Failed before any change". */
  beforeChange<T extends Catching>(state: T): T;
  /** Catches any failure of `state` into "Roll back". */
  afterChange<T extends Catching>(state: T): T;
  readonly rollBack: sfn.IChainable;
}

// Without a payload the function receives the whole state (notify and the evidence bundle need it).
function invoke(
  ctx: DefinitionContext,
  name: string,
  fn: lambda.IFunction,
  payload: sfn.TaskInput | undefined,
  resultPath: string,
): sfn.TaskStateBase {
  return new tasks.LambdaInvoke(ctx.scope, name, {
    lambdaFunction: fn,
    ...(payload === undefined ? {} : { payload }),
    payloadResponseOnly: true,
    resultPath,
    taskTimeout: sfn.Timeout.duration(Duration.seconds(120)),
    // LAMBDA_RETRY instead: the same service errors plus throttling, with jitter.
    retryOnServiceExceptions: false,
  }).addRetry(LAMBDA_RETRY);
}

// The guardrails function sees the whole state and returns the new $.guardrails.
function guardrailStep(
  ctx: DefinitionContext,
  name: string,
  operation: 'check' | 'take-slot' | 'release',
): sfn.TaskStateBase {
  return invoke(
    ctx,
    name,
    ctx.functions.guardrails,
    sfn.TaskInput.fromObject({ operation, state: sfn.JsonPath.objectAt('$') }),
    '$.guardrails',
  );
}

// One eni-timeouts action of the apply or rollback Map, through EC2 (functions/core/allowance):
// its input is the Map item's block, its result has the shape of an SSM block's.
function networkChange(
  ctx: DefinitionContext,
  name: string,
  operation: 'apply' | 'rollback',
): sfn.TaskStateBase {
  return invoke(
    ctx,
    name,
    ctx.functions.network,
    sfn.TaskInput.fromObject({ operation, block: sfn.JsonPath.objectAt('$') }),
    '$',
  );
}

/** The SSM documents that change a host (apply and persist). */
function hostChangeDocuments(ctx: DefinitionContext) {
  return [
    { logicalName: DOCUMENT.raiseLimits, awsName: ctx.documents.raiseLimits },
    { logicalName: DOCUMENT.notrackPorts, awsName: ctx.documents.notrackPorts },
  ];
}

/** The end of every path: release the slot, keep the evidence, then notify. Returns its start. */
function closingPhase(ctx: DefinitionContext): sfn.IChainable {
  const { scope, functions } = ctx;
  // The bundle is written first so that the notification (SNS and the Slack thread) carries its
  // location and the manifest's sha256: the digest a reviewer checks the bundle against, recorded
  // where whoever can rewrite the bucket cannot rewrite it (docs/evidence-bundle.md). A bundle that
  // cannot be written is still notified, with the error, and then fails the execution, as does a
  // notification SNS did not take: both are what an alarm on failed executions should see.
  const done = new sfn.Succeed(scope, STATE.done);
  const evidenceNotWritten = new sfn.Fail(scope, STATE.evidenceNotWritten, {
    error: WORKFLOW_ERROR.evidenceNotWritten,
    cause: 'The incident was handled, but its evidence bundle could not be written (see $.evidenceError).',
  });
  const notificationNotSent = new sfn.Fail(scope, STATE.notificationNotSent, {
    error: WORKFLOW_ERROR.notificationNotSent,
    cause: 'The incident was handled and its evidence kept, but the notification was not published.',
  });
  const closed = new sfn.Choice(scope, STATE.evidenceAndNotification)
    .when(sfn.Condition.isPresent('$.evidenceError'), evidenceNotWritten)
    .when(sfn.Condition.isPresent('$.notificationError'), notificationNotSent)
    .otherwise(done);

  const notify = invoke(ctx, STATE.notify, functions.notify, undefined, '$.notification');
  notify.addCatch(closed, { errors: [sfn.Errors.ALL], resultPath: '$.notificationError' });
  notify.next(closed);

  const writeEvidence = invoke(ctx, STATE.writeEvidence, functions.writeEvidence, undefined, '$.evidence');
  writeEvidence.addCatch(notify, { errors: [sfn.Errors.ALL], resultPath: '$.evidenceError' });
  writeEvidence.next(notify);

  // Every path passes here before the evidence and the notification: the remediation slot (if any)
  // is given back, a change starts the instance's cooldown, and the diagnosed top ports feed the
  // fleet view. If this fails the incident is still kept and notified; the slot's lease (and the
  // ended-executions rule) free it.
  const releaseSlot = guardrailStep(ctx, STATE.releaseSlot, 'release');
  releaseSlot.addCatch(writeEvidence, { errors: [sfn.Errors.ALL], resultPath: '$.guardrailsError' });
  releaseSlot.next(writeEvidence);
  return releaseSlot;
}

/** Failure handling: before any change, to the close; after one, through the rollback. */
function failureHandling(ctx: DefinitionContext, close: sfn.IChainable): PhaseEnds {
  const { scope } = ctx;
  const outcome: PhaseEnds['outcome'] = (name, value) =>
    new sfn.Pass(scope, name, { result: sfn.Result.fromObject(value), resultPath: '$.outcome' }).next(close);

  const failedBeforeChange = outcome(STATE.failedBeforeChange, OUTCOMES.failedBeforeChange);
  const rollbackFailed = outcome(STATE.rollbackFailed, OUTCOMES.rollbackFailed);
  const rolledBack = outcome(STATE.rolledBack, OUTCOMES.rolledBack);

  const rollBack = new sfn.Map(scope, STATE.rollBack, {
    itemsPath: '$.gate.rollback',
    maxConcurrency: 1,
    itemSelector: ssmBlockInput('$$.Map.Item.Value.parameters', '$$.Map.Item.Value'),
    resultPath: '$.rollback',
  });
  // An ENI change is undone through EC2 by the network function, a host change by the rollback document.
  rollBack.itemProcessor(
    new sfn.Choice(scope, STATE.rollBackThrough)
      .when(
        sfn.Condition.stringEquals('$.request.document', ENI_TIMEOUTS_DOCUMENT),
        networkChange(ctx, STATE.rollBackEniChange, 'rollback'),
      )
      .otherwise(
        ssmCommandLoop(scope, {
          label: 'Roll back',
          documents: [{ logicalName: DOCUMENT.rollback, awsName: ctx.documents.rollback }],
          polling: ctx.polling,
        }),
      ),
  );
  rollBack.addCatch(rollbackFailed, { errors: [sfn.Errors.ALL], resultPath: '$.rollbackError' });
  rollBack.next(rolledBack);

  return {
    outcome,
    rollBack,
    beforeChange: (state) => {
      state.addCatch(failedBeforeChange, { errors: [sfn.Errors.ALL], resultPath: '$.error' });
      return state;
    },
    afterChange: (state) => {
      state.addCatch(rollBack, { errors: [sfn.Errors.ALL], resultPath: '$.error' });
      return state;
    },
  };
}

/** From the incident to the instance: is it one, is it managed, do its guardrails allow a look. */
function intakePhase(ctx: DefinitionContext, ends: PhaseEnds): Phase {
  const { scope } = ctx;
  const takeIncident = new sfn.Pass(scope, STATE.takeIncident, {
    parameters: {
      incident: sfn.JsonPath.objectAt('$'),
      execution: {
        id: sfn.JsonPath.executionId,
        name: sfn.JsonPath.executionName,
        startedAt: sfn.JsonPath.executionStartTime,
      },
    },
  });

  const lookUpInstance = ends.beforeChange(
    new tasks.CallAwsService(scope, STATE.lookUpInstance, {
      service: 'ssm',
      action: 'describeInstanceInformation',
      iamAction: 'ssm:DescribeInstanceInformation',
      // DescribeInstanceInformation supports no resource-level permissions.
      iamResources: ['*'],
      parameters: {
        Filters: [
          { Key: 'InstanceIds', Values: sfn.JsonPath.array(sfn.JsonPath.stringAt('$.incident.instanceId')) },
        ],
      },
      resultSelector: { information: sfn.JsonPath.listAt('$.InstanceInformationList') },
      resultPath: '$.instance',
    }).addRetry(throttlingRetry()),
  );

  const notManaged = ends.outcome(STATE.notManaged, OUTCOMES.notManaged);
  const optedOut = ends.outcome(STATE.optedOut, OUTCOMES.optedOut);

  // Before any SSM call: the instance's mode tag, the preconditions (managed, online, Linux, an
  // agent that passes ENV_VAR parameters), the change calendar, the fleet breaker and the cooldown
  // after a change. `$.guardrails.mode` is the policy gate's ceiling from here on.
  const checkGuardrails = ends.beforeChange(guardrailStep(ctx, STATE.checkGuardrails, 'check'));

  return {
    start: takeIncident,
    continueWith: (collectBefore) => {
      lookUpInstance.next(checkGuardrails);
      checkGuardrails.next(
        new sfn.Choice(scope, STATE.optedOutChoice)
          .when(sfn.Condition.stringEquals('$.guardrails.next', 'opted-out'), optedOut)
          .otherwise(
            new sfn.Choice(scope, STATE.instanceManaged)
              .when(sfn.Condition.stringEquals('$.guardrails.next', 'collect'), collectBefore)
              .otherwise(notManaged),
          ),
      );
      // Detection opens incidents for hosts that are not EC2 instances too (no instance id in the
      // log stream name): those can only be escalated.
      takeIncident.next(
        new sfn.Choice(scope, STATE.hostIsInstance)
          .when(
            sfn.Condition.and(
              sfn.Condition.isPresent('$.incident.instanceId'),
              sfn.Condition.isString('$.incident.instanceId'),
            ),
            lookUpInstance,
          )
          .otherwise(notManaged),
      );
    },
  };
}

/** From the instance to an assessment: collect diagnostics, ask EC2, confirm the drops. */
function diagnosisPhase(ctx: DefinitionContext, ends: PhaseEnds): Phase {
  const { scope, functions } = ctx;
  const collectBefore = ends.beforeChange(collectDiagnostics(ctx, STATE.collectDiagnostics, '$.before'));

  // EC2's view of the instance's ENIs (timeouts, tracked flows), asked only when the diagnostics
  // show its allowance involved. A failure is kept in $.network for the plan to say, not an end.
  const describeNetwork = invoke(
    ctx,
    STATE.describeNetwork,
    functions.network,
    sfn.TaskInput.fromObject({
      operation: 'describe',
      incident: sfn.JsonPath.objectAt('$.incident'),
      diagnostics: sfn.JsonPath.objectAt('$.before'),
    }),
    '$.network',
  );

  const assess = ends.beforeChange(
    invoke(
      ctx,
      STATE.assess,
      functions.assess,
      sfn.TaskInput.fromObject({
        incident: sfn.JsonPath.objectAt('$.incident'),
        // For the lifecycle events this step puts.
        execution: sfn.JsonPath.objectAt('$.execution'),
        diagnostics: sfn.JsonPath.objectAt('$.before'),
        network: sfn.JsonPath.objectAt('$.network'),
      }),
      '$.assessment',
    ),
  );
  describeNetwork.addCatch(assess, { errors: [sfn.Errors.ALL], resultPath: '$.network' });
  describeNetwork.next(assess);
  const notConfirmed = ends.outcome(STATE.notConfirmed, OUTCOMES.notConfirmed);

  return {
    start: collectBefore,
    continueWith: (checkPolicy) => {
      assess.next(
        new sfn.Choice(scope, STATE.dropsConfirmed)
          .when(sfn.Condition.booleanEquals('$.assessment.confirmed', true), checkPolicy)
          .otherwise(notConfirmed),
      );
      collectBefore.next(describeNetwork);
    },
  };
}

/**
 * From the assessment to a decision: the policy gate, and a person's approval when it asks for
 * one. Continues with the remediation slot when the decision is to apply.
 */
function decisionPhase(ctx: DefinitionContext, ends: PhaseEnds): Phase {
  const checkPolicy = ends.beforeChange(
    invoke(
      ctx,
      STATE.checkPolicy,
      ctx.functions.policyGate,
      sfn.TaskInput.fromObject({
        incident: sfn.JsonPath.objectAt('$.incident'),
        // For the lifecycle events this step puts.
        execution: sfn.JsonPath.objectAt('$.execution'),
        assessment: sfn.JsonPath.objectAt('$.assessment'),
        guardrails: sfn.JsonPath.objectAt('$.guardrails'),
      }),
      '$.gate',
    ),
  );
  const nothingToChange = ends.outcome(STATE.nothingToChange, OUTCOMES.nothingToChange);
  const dryRun = ends.outcome(STATE.dryRun, OUTCOMES.dryRun);
  const approval = approvalFragment(ctx, ends);

  return {
    start: checkPolicy,
    continueWith: (takeSlot) => {
      approval.continueWith(takeSlot);
      checkPolicy.next(
        new sfn.Choice(ctx.scope, STATE.approvalRequired)
          .when(sfn.Condition.stringEquals('$.gate.decision', 'apply'), takeSlot)
          .when(sfn.Condition.stringEquals('$.gate.decision', 'approve'), approval.start)
          .when(sfn.Condition.stringEquals('$.gate.decision', 'dry-run'), dryRun)
          .otherwise(nothingToChange),
      );
    },
  };
}

/** A person's decision on the gate's plan, then the gate again with it. */
function approvalFragment(ctx: DefinitionContext, ends: PhaseEnds): Phase {
  const { scope, functions, approvalTimeout } = ctx;
  const rejected = ends.outcome(STATE.rejected, OUTCOMES.rejected);
  const approvalTimedOut = ends.outcome(STATE.approvalTimedOut, OUTCOMES.approvalTimedOut);

  // The task token never leaves the server side: the handler stores it under a single-use approval
  // id, and only that id travels in messages and buttons.
  const waitForApproval = new tasks.LambdaInvoke(scope, STATE.waitForApproval, {
    lambdaFunction: functions.requestApproval,
    integrationPattern: sfn.IntegrationPattern.WAIT_FOR_TASK_TOKEN,
    payload: sfn.TaskInput.fromObject({
      taskToken: sfn.JsonPath.taskToken,
      timeoutSeconds: approvalTimeout.toSeconds(),
      execution: sfn.JsonPath.objectAt('$.execution'),
      incident: sfn.JsonPath.objectAt('$.incident'),
      assessment: sfn.JsonPath.objectAt('$.assessment'),
      gate: sfn.JsonPath.objectAt('$.gate'),
      // The evidence the approver reads (usage, drops, top ports and states, firewall, NAT).
      diagnostics: sfn.JsonPath.objectAt('$.before'),
    }),
    taskTimeout: sfn.Timeout.duration(approvalTimeout),
    resultPath: '$.approval',
    retryOnServiceExceptions: false,
  });
  waitForApproval.addRetry(LAMBDA_RETRY);
  waitForApproval.addCatch(approvalTimedOut, { errors: [sfn.Errors.TIMEOUT], resultPath: '$.error' });
  ends.beforeChange(waitForApproval);

  const settleApproval = ends.beforeChange(
    invoke(
      ctx,
      STATE.settleApproval,
      functions.policyGate,
      sfn.TaskInput.fromObject({
        incident: sfn.JsonPath.objectAt('$.incident'),
        // For the lifecycle events this step puts.
        execution: sfn.JsonPath.objectAt('$.execution'),
        assessment: sfn.JsonPath.objectAt('$.assessment'),
        guardrails: sfn.JsonPath.objectAt('$.guardrails'),
        approval: sfn.JsonPath.objectAt('$.approval'),
      }),
      '$.gate',
    ),
  );

  return {
    start: waitForApproval,
    continueWith: (takeSlot) => {
      settleApproval.next(
        new sfn.Choice(scope, STATE.anythingApproved)
          .when(sfn.Condition.stringEquals('$.gate.decision', 'apply'), takeSlot)
          .otherwise(rejected),
      );
      waitForApproval.next(settleApproval);
    },
  };
}

/**
 * Right before a change: an automatic change the calendar or the breaker now forbids goes back
 * to the policy gate (capped to approve); otherwise a fleet-wide slot is taken, waiting with
 * backoff and jitter while all are busy. Returns the step that takes it.
 */
function remediationSlot(
  ctx: DefinitionContext,
  ends: PhaseEnds,
  next: { readonly granted: sfn.IChainable; readonly refused: sfn.IChainable },
): sfn.IChainable {
  const noSlot = ends.outcome(STATE.noSlot, OUTCOMES.noRemediationSlot);
  const takeSlot = guardrailStep(ctx, STATE.takeSlot, 'take-slot').addRetry(SLOT_RETRY);
  takeSlot.addCatch(noSlot, { errors: [WORKFLOW_ERROR.slotsBusy], resultPath: '$.error' });
  ends.beforeChange(takeSlot);
  takeSlot.next(
    new sfn.Choice(ctx.scope, STATE.slotTaken)
      .when(sfn.Condition.booleanEquals('$.guardrails.slot.granted', true), next.granted)
      .otherwise(next.refused),
  );
  return takeSlot;
}

/** The change: apply, announce it, soak, then look at the host and its ENIs again. */
function changePhase(ctx: DefinitionContext, ends: PhaseEnds): Phase {
  const { scope, functions } = ctx;
  const applyRemediation = ends.afterChange(
    new sfn.Map(scope, STATE.applyRemediation, {
      itemsPath: '$.gate.toApply',
      maxConcurrency: 1,
      itemSelector: ssmBlockInput('$$.Map.Item.Value.parameters', '$$.Map.Item.Value'),
      resultPath: '$.applied',
    }),
  );
  // Host changes go through SSM documents, ENI timeouts through EC2 (never SSM).
  applyRemediation.itemProcessor(
    new sfn.Choice(scope, STATE.applyThrough)
      .when(
        sfn.Condition.stringEquals('$.request.document', ENI_TIMEOUTS_DOCUMENT),
        networkChange(ctx, STATE.applyEniChange, 'apply'),
      )
      .otherwise(
        ssmCommandLoop(scope, { label: 'Apply', documents: hostChangeDocuments(ctx), polling: ctx.polling }),
      ),
  );

  const soak = new sfn.Wait(scope, STATE.soak, { time: sfn.WaitTime.secondsPath('$.gate.soakSeconds') });

  // The applied lifecycle event (README "Lifecycle events"), the one state change no other function
  // sees as it happens. It never fails the incident: the function does not throw, and if Lambda
  // itself fails the soak starts anyway.
  const announceChange = invoke(
    ctx,
    STATE.announceChange,
    functions.announce,
    sfn.TaskInput.fromObject({
      incident: sfn.JsonPath.objectAt('$.incident'),
      execution: sfn.JsonPath.objectAt('$.execution'),
      gate: sfn.JsonPath.objectAt('$.gate'),
      applied: sfn.JsonPath.listAt('$.applied'),
    }),
    '$.announced',
  );
  announceChange.addCatch(soak, { errors: [sfn.Errors.ALL], resultPath: '$.announceError' });

  const collectAfter = ends.afterChange(collectDiagnostics(ctx, STATE.collectDiagnosticsAfter, '$.after'));

  // What EC2 reports now, when ENI timeouts were changed (the verification compares it with what was
  // set). A failure is kept in $.networkAfter: the counter's rate still decides.
  const describeNetworkAfter = invoke(
    ctx,
    STATE.describeNetworkAfter,
    functions.network,
    sfn.TaskInput.fromObject({
      operation: 'describe-after',
      incident: sfn.JsonPath.objectAt('$.incident'),
      gate: sfn.JsonPath.objectAt('$.gate'),
    }),
    '$.networkAfter',
  );
  applyRemediation.next(announceChange).next(soak).next(collectAfter).next(describeNetworkAfter);

  return {
    start: applyRemediation,
    continueWith: (verify) => {
      describeNetworkAfter.addCatch(verify, { errors: [sfn.Errors.ALL], resultPath: '$.networkAfter' });
      describeNetworkAfter.next(verify);
    },
  };
}

/** Did the fix hold: then persist it, else roll it back. Returns the verification. */
function verificationPhase(ctx: DefinitionContext, ends: PhaseEnds): sfn.IChainable {
  const { scope, functions } = ctx;
  const verify = ends.afterChange(
    invoke(
      ctx,
      STATE.verify,
      functions.verify,
      sfn.TaskInput.fromObject({
        incident: sfn.JsonPath.objectAt('$.incident'),
        // For the lifecycle events this step puts.
        execution: sfn.JsonPath.objectAt('$.execution'),
        assessment: sfn.JsonPath.objectAt('$.assessment'),
        gate: sfn.JsonPath.objectAt('$.gate'),
        applied: sfn.JsonPath.listAt('$.applied'),
        before: sfn.JsonPath.objectAt('$.before'),
        after: sfn.JsonPath.objectAt('$.after'),
        networkAfter: sfn.JsonPath.objectAt('$.networkAfter'),
      }),
      '$.verification',
    ),
  );
  const remediated = ends.outcome(STATE.remediated, OUTCOMES.remediated);

  // A verified change is re-applied with Persist=true (when the policy persists at all). If that
  // fails the fix still holds, so the incident ends remediated and the notification says so.
  const persist = new sfn.Map(scope, STATE.persist, {
    itemsPath: '$.gate.toPersist',
    maxConcurrency: 1,
    itemSelector: ssmBlockInput('$$.Map.Item.Value.parameters', '$$.Map.Item.Value'),
    resultPath: '$.persisted',
  });
  persist.itemProcessor(
    ssmCommandLoop(scope, { label: 'Persist', documents: hostChangeDocuments(ctx), polling: ctx.polling }),
  );
  persist.addCatch(remediated, { errors: [sfn.Errors.ALL], resultPath: '$.persistError' });
  persist.next(remediated);

  verify.next(
    new sfn.Choice(scope, STATE.fixHeld)
      .when(sfn.Condition.booleanEquals('$.verification.held', true), persist)
      .otherwise(ends.rollBack),
  );
  return verify;
}

/** The input of an SSM command block: see ssmCommandLoop. */
function ssmBlockInput(parametersPath: string, requestPath: string): Record<string, unknown> {
  return {
    instanceId: sfn.JsonPath.stringAt('$.incident.instanceId'),
    incidentId: sfn.JsonPath.stringAt('$.incident.incidentId'),
    parameters: sfn.JsonPath.objectAt(parametersPath),
    request: sfn.JsonPath.objectAt(requestPath),
    polls: { count: 0 },
  };
}

/** collect-diagnostics as one Parallel block, so that its loop's failures are caught as one step. */
function collectDiagnostics(ctx: DefinitionContext, name: string, resultPath: string): sfn.Parallel {
  const block = new sfn.Parallel(ctx.scope, name, {
    parameters: {
      instanceId: sfn.JsonPath.stringAt('$.incident.instanceId'),
      incidentId: sfn.JsonPath.stringAt('$.incident.incidentId'),
      parameters: { SampleSeconds: [String(ctx.sampleSeconds)], TopN: [String(ctx.topN)] },
      request: { document: DOCUMENT.collectDiagnostics },
      polls: { count: 0 },
    },
    resultSelector: {
      commandId: sfn.JsonPath.stringAt('$[0].command.commandId'),
      status: sfn.JsonPath.stringAt('$[0].invocation.status'),
      stdout: sfn.JsonPath.stringAt('$[0].invocation.stdout'),
      stderr: sfn.JsonPath.stringAt('$[0].invocation.stderr'),
    },
    resultPath,
  });
  block.branch(
    ssmCommandLoop(ctx.scope, {
      label: name,
      documents: [{ logicalName: DOCUMENT.collectDiagnostics, awsName: ctx.documents.collectDiagnostics }],
      polling: ctx.polling,
    }),
  );
  return block;
}
