import { z } from 'zod';
import { type Environment, matching, onOff, optionalText, textList } from '../environment.js';
import { INCIDENT_ID_PATTERN } from '../workflow/incident.js';
import { formatIssues } from '../zod-issues.js';
import type { ApprovalRecord, Approver } from './approval.js';
import { type DecidePorts, decideAndResume } from './decide.js';
import { type FunctionUrlEvent, type FunctionUrlResult, jsonResult, rawRequestFromEvent } from './http.js';
import { BUTTON_DECISIONS, type ButtonDecision } from './interaction.js';

/**
 * Approval without Slack: `conntrack-responder approve|reject INCIDENT_ID` sends a SigV4-signed
 * POST to a Lambda Function URL whose auth type is AWS_IAM. Lambda authenticates the signature and
 * authorizes the caller (identity policy and the function's resource policy) before the function
 * runs, and hands the function the caller's identity in `requestContext.authorizer.iam` — the same
 * account, ARN and user id `sts:GetCallerIdentity` returns for those credentials
 * (https://docs.aws.amazon.com/lambda/latest/dg/urls-auth.html,
 * https://docs.aws.amazon.com/lambda/latest/dg/urls-invocation.html#urls-payloads). That
 * identity, never anything in the body, is who decides; a body only says which incident and what.
 *
 * Who may decide is checked twice: by IAM (only the roles the stack names in the function's
 * resource policy, and whoever holds the approver managed policy the stack outputs), and here
 * again, so that a caller IAM lets through by some broader grant is still refused unless the stack
 * named them. The decision itself is the same single-use conditional write as a Slack click
 * (decideAndResume); the task token never leaves the server.
 */

export interface IamCaller {
  /** The ARN AWS authenticated: arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION, arn:aws:iam::ACCOUNT:user/NAME, … */
  readonly arn: string;
  readonly partition: string;
  readonly accountId: string;
  /** The unique id (AROA…:session for a role session, AIDA… for a user). */
  readonly userId: string | null;
  readonly kind: 'assumed-role' | 'user' | 'root' | 'federated-user' | 'other';
  /** For an assumed role: the role's name (an assumed-role ARN carries no role path). */
  readonly roleName: string | null;
  /** The name to show: ROLE/SESSION, the user name, … */
  readonly displayName: string;
}

/** `requestContext.authorizer.iam` of a Function URL request with AWS_IAM auth (payload format 2.0). */
const IamAuthorizerSchema = z.looseObject({
  accountId: z.string().regex(/^\d{12}$/),
  userArn: z.string().min(1).max(2048),
  userId: z.string().max(512).nullish(),
  callerId: z.string().max(512).nullish(),
});

const ARN = /^arn:(aws[a-z-]*):(iam|sts)::(\d{12}):(.+)$/;

/** The caller's identity as Lambda put it in the request context, or null when there is none. */
export function iamCallerOf(event: FunctionUrlEvent): IamCaller | null {
  const context = (event as { requestContext?: { authorizer?: { iam?: unknown } } }).requestContext;
  const parsed = IamAuthorizerSchema.safeParse(context?.authorizer?.iam);
  if (!parsed.success) return null;
  const { accountId, userArn } = parsed.data;
  const match = ARN.exec(userArn);
  if (match === null) return null;
  const [, partition = 'aws', service, arnAccount, resource = ''] = match;
  // The ARN and the account Lambda reports must agree; anything else is not a request Lambda built.
  if (arnAccount !== accountId) return null;
  const userId = parsed.data.userId ?? parsed.data.callerId ?? null;
  const base = { arn: userArn, partition, accountId, userId };
  const parts = resource.split('/');
  if (service === 'sts' && parts[0] === 'assumed-role' && parts.length >= 3) {
    const roleName = parts[1] ?? '';
    const session = parts.slice(2).join('/');
    return { ...base, kind: 'assumed-role', roleName, displayName: `${roleName}/${session}` };
  }
  if (service === 'iam' && parts[0] === 'user' && parts.length >= 2) {
    return { ...base, kind: 'user', roleName: null, displayName: parts[parts.length - 1] ?? userArn };
  }
  if (service === 'iam' && resource === 'root') {
    return { ...base, kind: 'root', roleName: null, displayName: `root of ${accountId}` };
  }
  if (service === 'sts' && parts[0] === 'federated-user' && parts.length >= 2) {
    return { ...base, kind: 'federated-user', roleName: null, displayName: parts.slice(1).join('/') };
  }
  return { ...base, kind: 'other', roleName: null, displayName: userArn };
}

/** An IAM role ARN as the stack's `approverRoleArns` prop takes it (path allowed). */
export const ROLE_ARN_PATTERN = /^arn:aws[a-z-]*:iam::\d{12}:role\/(?:[\w+=,.@-]+\/)*[\w+=,.@-]{1,64}$/;

export interface IamApprovers {
  /** Roles the stack names; their sessions may decide (from any account the role is in). */
  readonly roleArns: readonly string[];
  /**
   * Whether holders of the approver managed policy may decide: then any caller of the stack's own
   * account that IAM let through is one (the function cannot see which policies a caller holds).
   */
  readonly policyHolders: boolean;
  /** The stack's account (the function's own). */
  readonly accountId: string;
}

export type IamAuthorization =
  | { readonly ok: true; readonly basis: 'iam-role' | 'iam-policy' }
  | { readonly ok: false; readonly detail: string };

/** A session of a named role: same partition, account and role name (an assumed-role ARN has no path). */
function isSessionOf(caller: IamCaller, roleArn: string): boolean {
  if (caller.kind !== 'assumed-role' || caller.roleName === null) return false;
  const match = ARN.exec(roleArn);
  if (match === null) return false;
  const [, partition, , account, resource = ''] = match;
  const roleName = resource.split('/').pop();
  return partition === caller.partition && account === caller.accountId && roleName === caller.roleName;
}

export function authorizeIamCaller(caller: IamCaller, approvers: IamApprovers): IamAuthorization {
  if (approvers.roleArns.some((roleArn) => isSessionOf(caller, roleArn)))
    return { ok: true, basis: 'iam-role' };
  if (approvers.policyHolders && caller.accountId === approvers.accountId) {
    return { ok: true, basis: 'iam-policy' };
  }
  const named =
    approvers.roleArns.length === 0 && !approvers.policyHolders
      ? 'no approvers are configured'
      : `not one of the approver roles${approvers.policyHolders ? ` nor of account ${approvers.accountId}` : ''}`;
  return { ok: false, detail: `${caller.arn} is ${named}` };
}

/** The body the CLI sends: which incident, and what. Nothing else is accepted. */
export const IamDecisionRequestSchema = z.strictObject({
  incidentId: z.string().regex(INCIDENT_ID_PATTERN, 'an incident id (1 to 80 of A-Z a-z 0-9 _ -)'),
  decision: z.enum(BUTTON_DECISIONS),
});
export type IamDecisionRequest = z.infer<typeof IamDecisionRequestSchema>;

/** The approval URL's request bodies are a few hundred bytes; anything larger is refused unread. */
export const MAX_DECISION_BODY_BYTES = 4096;

export type IamDecisionResult =
  | 'decided'
  | 'method-not-allowed'
  | 'not-authenticated'
  | 'not-allowed'
  | 'bad-request'
  | 'no-approval'
  | 'already-decided'
  | 'expired'
  | 'unavailable';

/** What the approval URL answers (JSON): the CLI prints it; `detail` says why in one sentence. */
export interface IamDecisionAnswer {
  readonly result: IamDecisionResult;
  readonly detail: string;
  readonly incidentId?: string;
  readonly approvalId?: string;
  readonly decision?: 'approved' | 'rejected';
  /** The approved subset (null = every action of the request). */
  readonly actionIds?: readonly string[] | null;
  readonly actions?: ReadonlyArray<{ readonly id: string; readonly title: string }>;
  readonly approver?: { readonly id: string; readonly name: string | null; readonly via: string };
  readonly decidedAt?: string;
  readonly expiresAt?: string;
}

export interface IamDecisionOutcome {
  readonly answer: IamDecisionAnswer;
  readonly response: FunctionUrlResult;
  /** The approval that was decided (or closed as expired while deciding): its Slack message, if any, is out of date. */
  readonly settle: string | null;
  readonly caller: string | null;
}

const STATUS: Record<IamDecisionResult, number> = {
  decided: 200,
  'method-not-allowed': 405,
  'not-authenticated': 401,
  'not-allowed': 403,
  'bad-request': 400,
  'no-approval': 404,
  'already-decided': 409,
  expired: 410,
  unavailable: 503,
};

function answer(
  result: IamDecisionResult,
  detail: string,
  extra: Omit<IamDecisionAnswer, 'result' | 'detail'> = {},
  settle: string | null = null,
  caller: string | null = null,
): IamDecisionOutcome {
  const body: IamDecisionAnswer = { result, detail, ...extra };
  return { answer: body, response: jsonResult(STATUS[result], body), settle, caller };
}

function parseBody(
  event: FunctionUrlEvent,
): { ok: true; request: IamDecisionRequest } | { ok: false; detail: string } {
  const raw = rawRequestFromEvent(event);
  if (!/^application\/json\b/i.test(raw.headers['content-type'] ?? '')) {
    return { ok: false, detail: `expected application/json, got '${raw.headers['content-type'] ?? ''}'` };
  }
  if (raw.body.length > MAX_DECISION_BODY_BYTES) {
    return { ok: false, detail: `the body has ${raw.body.length} bytes; at most ${MAX_DECISION_BODY_BYTES}` };
  }
  let json: unknown;
  try {
    json = JSON.parse(raw.body.toString('utf8'));
  } catch {
    return { ok: false, detail: 'the body is not JSON' };
  }
  const parsed = IamDecisionRequestSchema.safeParse(json);
  if (!parsed.success) {
    return { ok: false, detail: `the request is invalid: ${formatIssues(parsed.error, { limit: 4 })}` };
  }
  return { ok: true, request: parsed.data };
}

function decidedFields(record: ApprovalRecord) {
  const decision = record.decision;
  return {
    incidentId: record.incidentId,
    approvalId: record.approvalId,
    actions: record.actions,
    ...(decision === null
      ? {}
      : {
          decision: decision.decision,
          actionIds: decision.actionIds,
          approver: { id: decision.approver.id, name: decision.approver.name, via: decision.approver.via },
          decidedAt: decision.decidedAt,
        }),
  };
}

export interface IamDecisionPorts extends DecidePorts {
  readonly now: () => Date;
}

/**
 * One request to the approval URL, from the event Lambda delivers to the answer. In order, and
 * nothing is read or changed before the previous step passed: the method; the caller's identity
 * from the request context (**401** without one: the URL must be AWS_IAM); the caller against the
 * approvers (**403**); the body (**400**); the incident's approval (**404**); the single-use
 * decision (**409** already decided, **410** expired, **503** the workflow could not be resumed
 * just now and the decision was undone).
 */
export async function handleIamDecision(
  event: FunctionUrlEvent,
  approvers: IamApprovers,
  ports: IamDecisionPorts,
): Promise<IamDecisionOutcome> {
  const method = (event.requestContext?.http?.method ?? '').toUpperCase();
  if (method !== 'POST') return answer('method-not-allowed', `method ${method || '(none)'} is not POST`);
  const caller = iamCallerOf(event);
  if (caller === null) {
    return answer(
      'not-authenticated',
      'the request carries no IAM identity: the approval URL must use AWS_IAM auth and the request must be SigV4-signed',
    );
  }
  const authorization = authorizeIamCaller(caller, approvers);
  if (!authorization.ok) return answer('not-allowed', authorization.detail, {}, null, caller.arn);
  const parsed = parseBody(event);
  if (!parsed.ok) return answer('bad-request', parsed.detail, {}, null, caller.arn);
  const { incidentId, decision: choice } = parsed.request;

  const record = await ports.store.findByIncident(incidentId);
  if (record === undefined) {
    return answer(
      'no-approval',
      `incident ${incidentId} has no approval request (it never needed one, or it is not this stack's)`,
      { incidentId },
      null,
      caller.arn,
    );
  }
  if (choice === 'alternative' && record.alternative === null) {
    return answer(
      'bad-request',
      `approval ${record.approvalId} offers no alternative`,
      { incidentId },
      null,
      caller.arn,
    );
  }
  const approver: Approver = {
    id: caller.arn,
    name: caller.displayName,
    teamId: null,
    via: 'iam',
    basis: authorization.basis,
  };
  const now = ports.now();
  const outcome = await decideAndResume(record, choice as ButtonDecision, approver, now, ports);
  switch (outcome.result) {
    case 'not-found':
      return answer(
        'no-approval',
        `approval ${record.approvalId} does not exist`,
        { incidentId },
        null,
        caller.arn,
      );
    case 'already-decided':
      return answer(
        'already-decided',
        `approval ${record.approvalId} was already decided`,
        decidedFields(outcome.record),
        null,
        caller.arn,
      );
    case 'expired':
      return answer(
        'expired',
        outcome.detail,
        { incidentId, approvalId: record.approvalId, expiresAt: outcome.record.expiresAt },
        outcome.stoppedWaiting ? record.approvalId : null,
        caller.arn,
      );
    case 'unavailable':
      return answer(
        'unavailable',
        outcome.detail,
        { incidentId, approvalId: record.approvalId },
        null,
        caller.arn,
      );
    case 'decided':
      return answer(
        'decided',
        `approval ${record.approvalId}: ${outcome.decision.decision} (${outcome.decision.choice}) by ${caller.arn} (${authorization.basis})`,
        decidedFields(outcome.record),
        record.approvalId,
        caller.arn,
      );
  }
}

/**
 * The approval URL's settings, by environment variable (the CDK construct writes them; the
 * function's own account comes from its ARN at run time).
 */
export const IAM_APPROVAL_ENVIRONMENT = {
  /** Comma-separated role ARNs. */
  roleArns: 'APPROVER_ROLE_ARNS',
  /** `true` when the approver managed policy exists (its holders may decide). */
  policyHolders: 'APPROVER_POLICY_HOLDERS',
  /** The approval URL itself, for the commands the approval request shows (request-approval). */
  approvalUrl: 'APPROVAL_URL',
} as const;

/** The approval URL the approval request and the escalation print in their commands, when the stack has one. */
export function approvalUrlFrom(env: Environment): string | null {
  return optionalText(env, IAM_APPROVAL_ENVIRONMENT.approvalUrl) ?? null;
}

/** Who may decide through the approval URL, as the environment says (the account comes at run time). */
export type IamApprovalSettings = Omit<IamApprovers, 'accountId'>;

export function iamApprovalSettingsFrom(env: Environment): IamApprovalSettings {
  return {
    roleArns: textList(env, IAM_APPROVAL_ENVIRONMENT.roleArns, matching(ROLE_ARN_PATTERN, 'IAM role ARNs')),
    policyHolders: onOff(env, IAM_APPROVAL_ENVIRONMENT.policyHolders, { words: ['true', 'false'] }),
  };
}

/** The approvers: the settings, and the function's own account (from its ARN at run time). */
export function iamApproversOf(settings: IamApprovalSettings, accountId: string): IamApprovers {
  if (!/^\d{12}$/.test(accountId)) throw new Error(`'${accountId}' is not an AWS account id`);
  return { ...settings, accountId };
}

export function iamApproversFrom(env: Environment, accountId: string): IamApprovers {
  return iamApproversOf(iamApprovalSettingsFrom(env), accountId);
}

/** A function URL as Lambda makes them (what the approval request may print in a command). */
const PRINTABLE_APPROVAL_URL = /^https:\/\/[a-z0-9]+\.lambda-url\.[a-z0-9-]+\.on\.aws\/$/;

/** The URL when it may be printed in a command, else null. */
export function printableApprovalUrl(approvalUrl: string | null | undefined): string | null {
  return approvalUrl && PRINTABLE_APPROVAL_URL.test(approvalUrl) ? approvalUrl : null;
}

export interface DecisionCommands {
  readonly approve: string;
  readonly reject: string;
  /** Approve only the safer alternative, when the request offers one. */
  readonly alternative: string | null;
}

/**
 * The exact commands that decide an incident's approval from a terminal, or null when there is no
 * approval URL to name (the local twin) or it is not a function URL (never printed then: a command
 * people copy into a shell must hold nothing but an incident id and our own URL).
 */
export function decisionCommands(
  incidentId: string,
  approvalUrl: string | null | undefined,
  hasAlternative: boolean,
): DecisionCommands | null {
  const url = printableApprovalUrl(approvalUrl);
  if (url === null || !INCIDENT_ID_PATTERN.test(incidentId)) return null;
  const command = (verb: string, extra = '') =>
    `npx conntrack-responder ${verb} ${incidentId}${extra} --url ${url}`;
  return {
    approve: command('approve'),
    reject: command('reject'),
    alternative: hasAlternative ? command('approve', ' --alternative') : null,
  };
}

/** The lines that say how to decide from a terminal (for the SNS message and the escalation). */
export function decisionCommandLines(commands: DecisionCommands, alternativeLabel: string | null): string[] {
  return [
    'Decide from a terminal, with the AWS credentials of an approver (a session of a role in',
    "approverRoleArns, or a holder of the stack's ApproverPolicyArn policy):",
    `  approve:  ${commands.approve}`,
    ...(commands.alternative === null
      ? []
      : [`  ${(alternativeLabel ?? 'safer alternative').toLowerCase()}:  ${commands.alternative}`]),
    `  reject:   ${commands.reject}`,
  ];
}
