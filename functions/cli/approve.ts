import { parseArgs } from 'node:util';
import { GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import { fromNodeProviderChain } from '@aws-sdk/credential-providers';
import {
  ApprovalUrlError,
  checkApprovalUrl,
  regionOfApprovalUrl,
  type SentDecision,
  sendDecision,
} from '../adapters/approval-url-client.js';
import { sdkRetryConfig } from '../adapters/aws-retry.js';
import type { IamDecisionAnswer } from '../core/chatops/iam-approval.js';
import { INCIDENT_ID_PATTERN } from '../core/workflow/incident.js';
import { type CliIo, type Command, UsageError } from './io.js';

/** Where the approval URL comes from when --url is not given. */
export const APPROVAL_URL_VARIABLE = 'CONNTRACK_RESPONDER_APPROVAL_URL';

const help = (
  verb: 'approve' | 'reject',
) => `usage: conntrack-responder ${verb} INCIDENT_ID ${verb === 'approve' ? '[--alternative] ' : ''}[--url URL] [--region R] [--json]

${
  verb === 'approve'
    ? 'Approves the change an incident is waiting for (every action of the request, or with\n--alternative only the safer subset the request offers),'
    : 'Rejects the change an incident is waiting for (nothing is changed on the host),'
} as a Slack button would: the
decision is made exactly once, whoever else decides at the same time, and recorded with your IAM
identity (the caller of sts:GetCallerIdentity for your credentials, as AWS authenticates the
signed request). Credentials come from the usual places (environment, profile, SSO, instance role).

options:
  --url URL       the approval URL (stack output ApprovalUrl);
                  default: the ${APPROVAL_URL_VARIABLE} environment variable
  --region R      region to sign for (default: the one in the URL's host name, then AWS_REGION)
${verb === 'approve' ? '  --alternative   approve only the safer alternative the request offers (e.g. raise limits only)\n' : ''}  --json          print the answer as JSON

Who may decide is set by the stack: sessions of the roles in approverRoleArns, and (unless
approverPolicy is false) whoever holds the managed policy of the ApproverPolicyArn output.

exit code: 0 decided, 1 not decided (refused, already decided, expired, unreachable), 2 usage
`;

function parseOptions(args: string[]) {
  try {
    return parseArgs({
      args,
      allowPositionals: true,
      options: {
        url: { type: 'string' },
        region: { type: 'string' },
        alternative: { type: 'boolean', default: false },
        json: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
    });
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
}

/**
 * Text from the server (names, action titles derived from a host's report) shown on a terminal:
 * control characters (C0, DEL, C1, line and paragraph separators) are shown escaped, never sent.
 */
export function printable(value: unknown): string {
  return String(value).replace(
    TERMINAL_CONTROL,
    (character) => `\\u${character.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}

// biome-ignore lint/suspicious/noControlCharactersInRegex: these are the characters being escaped
const TERMINAL_CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g;

function actionsLine(answer: IamDecisionAnswer): string[] {
  const chosen = answer.actionIds ?? null;
  return (answer.actions ?? [])
    .filter((action) => chosen === null || chosen.includes(action.id))
    .map((action) => `  - ${printable(action.id)}: ${printable(action.title)}`);
}

function who(answer: IamDecisionAnswer): string {
  const approver = answer.approver;
  if (approver === undefined) return 'someone';
  return `${printable(approver.name ?? approver.id)} (${printable(approver.via)}${approver.name === null ? '' : `, ${printable(approver.id)}`})`;
}

function describe(sent: SentDecision, verb: 'approve' | 'reject', incidentId: string): string {
  const answer = sent.answer;
  if (answer === null) {
    if (sent.status === 403) {
      return `AWS refused the request (HTTP 403) before it reached conntrack-responder: these credentials may not call the approval URL. They need lambda:InvokeFunctionUrl and lambda:InvokeFunction on the approval function: attach the managed policy of the stack output ApproverPolicyArn, or use a role named in approverRoleArns.${sent.raw ? ` AWS said: ${printable(sent.raw.slice(0, 300))}` : ''}`;
    }
    return `the approval URL answered HTTP ${sent.status}${sent.raw ? `: ${printable(sent.raw.slice(0, 300))}` : ''}`;
  }
  const detail = printable(answer.detail);
  switch (answer.result) {
    case 'decided': {
      const what = answer.decision === 'rejected' ? 'Rejected' : 'Approved';
      const scope =
        answer.decision === 'rejected'
          ? 'nothing will be changed on the host.'
          : answer.actionIds === null || answer.actionIds === undefined
            ? 'every action of the request:'
            : 'only these actions:';
      const lines = [
        `${what} incident ${printable(incidentId)} (approval ${printable(answer.approvalId)}) as ${who(answer)}: ${scope}`,
        ...(answer.decision === 'rejected' ? [] : actionsLine(answer)),
        answer.decision === 'rejected'
          ? 'The incident ends "rejected"; the outcome goes to the notification topic.'
          : 'The workflow resumes now: apply, soak, verify; the outcome goes to the notification topic.',
      ];
      return lines.join('\n');
    }
    case 'already-decided':
      return `Not decided: incident ${printable(incidentId)} was already ${answer.decision ?? 'decided'} by ${who(answer)}${answer.decidedAt ? ` at ${printable(answer.decidedAt)}` : ''}; your ${verb} changed nothing.`;
    case 'expired':
      return `Not decided: the approval ${answer.expiresAt ? `expired at ${printable(answer.expiresAt)}` : 'expired'} (${detail}); the incident was escalated without a change.`;
    case 'no-approval':
      return `Not decided: ${detail}.`;
    case 'not-allowed':
      return `Not decided: you may not decide conntrack-responder approvals: ${detail}.`;
    case 'unavailable':
      return `Not decided: ${detail}. Try again in a minute.`;
    default:
      return `Not decided (${printable(answer.result)}): ${detail}.`;
  }
}

export function decisionCommand(verb: 'approve' | 'reject'): Command {
  return async (args: string[], io: CliIo) => {
    const { values, positionals } = parseOptions(args);
    if (values.help) {
      io.stdout.write(help(verb));
      return 0;
    }
    const [incidentId, ...extra] = positionals;
    if (incidentId === undefined) throw new UsageError(`name the incident\n\n${help(verb)}`);
    if (extra.length > 0) throw new UsageError(`unexpected argument '${printable(extra[0])}'`);
    if (!INCIDENT_ID_PATTERN.test(incidentId)) {
      throw new UsageError(`'${printable(incidentId)}' is not an incident id (1 to 80 of A-Z a-z 0-9 _ -)`);
    }
    if (values.alternative && verb === 'reject') throw new UsageError('--alternative only goes with approve');
    const urlText = values.url ?? process.env[APPROVAL_URL_VARIABLE] ?? '';
    if (urlText === '') {
      throw new UsageError(
        `--url is required (the stack output ApprovalUrl), or set ${APPROVAL_URL_VARIABLE}`,
      );
    }
    let url: URL;
    try {
      url = checkApprovalUrl(urlText);
    } catch (error) {
      if (error instanceof ApprovalUrlError) throw new UsageError(printable(error.message));
      throw error;
    }
    const region = values.region ?? regionOfApprovalUrl(url) ?? process.env.AWS_REGION ?? '';
    if (region === '') throw new UsageError('--region is required for this URL (or set AWS_REGION)');

    const credentials = fromNodeProviderChain();
    const sts = new STSClient({ ...sdkRetryConfig(process.env), region, credentials });
    let caller: { arn: string; account: string };
    try {
      const identity = await sts.send(new GetCallerIdentityCommand({}));
      caller = { arn: identity.Arn ?? '', account: identity.Account ?? '' };
    } catch (error) {
      io.stderr.write(
        `conntrack-responder ${verb}: no usable AWS credentials (${printable((error as Error).name)}: ${printable((error as Error).message)}); set a profile, SSO session or keys first\n`,
      );
      return 1;
    } finally {
      sts.destroy();
    }
    if (!values.json)
      io.stdout.write(`Deciding as ${printable(caller.arn)} (account ${printable(caller.account)})\n`);

    let sent: SentDecision;
    try {
      sent = await sendDecision({
        url,
        region,
        credentials,
        request: {
          incidentId,
          decision: verb === 'reject' ? 'reject' : values.alternative ? 'alternative' : 'approve',
        },
      });
    } catch (error) {
      io.stderr.write(
        `conntrack-responder ${verb}: could not reach ${printable(url.origin)}: ${printable((error as Error).message)}\n`,
      );
      return 1;
    }
    const decided = sent.answer?.result === 'decided';
    if (values.json) {
      io.stdout.write(
        `${JSON.stringify({ status: sent.status, caller: caller.arn, ...(sent.answer ?? { result: 'refused-by-aws', detail: sent.raw ?? '' }) }, null, 2)}\n`,
      );
    } else {
      (decided ? io.stdout : io.stderr).write(`${describe(sent, verb, incidentId)}\n`);
    }
    return decided ? 0 : 1;
  };
}

export const approveCommand = decisionCommand('approve');
export const rejectCommand = decisionCommand('reject');
