import { randomUUID } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline/promises';
import type { Readable, Writable } from 'node:stream';
import { SlackWebApi } from '../../adapters/slack-web-api.js';
import {
  type ApprovalRecord,
  type Approver,
  decisionFor,
  taskOutputOf,
} from '../../core/chatops/approval.js';
import { approvalTaskFrom, incidentViewOf } from '../../core/chatops/approval-task.js';
import { GroupMembershipCache } from '../../core/chatops/authorize.js';
import { type FunctionUrlEvent, rawRequestFromEvent } from '../../core/chatops/http.js';
import { IncidentChat, type SlackPort } from '../../core/chatops/incident-chat.js';
import type { ButtonDecision } from '../../core/chatops/interaction.js';
import {
  type FollowUp,
  handleInteraction,
  type InteractivityConfig,
} from '../../core/chatops/interactivity.js';
import type { IncidentView } from '../../core/chatops/messages.js';
import type { SnsMessage } from '../../core/chatops/notification.js';
import { notifyOutcome } from '../../core/chatops/outcome.js';
import {
  CHATOPS_ENVIRONMENT,
  realSlackConfigured,
  type SlackSettings,
  slackSettingsFrom,
} from '../../core/chatops/settings.js';
import { parseSigningSecrets } from '../../core/chatops/signature.js';
import { stepUpdateOf } from '../../core/chatops/steps.js';
import { evidenceReferenceOf } from '../../core/evidence/reference.js';
import { approvalRequestFrom, approvalText } from '../../core/workflow/approval.js';
import { incidentNotification, type WorkflowState } from '../../core/workflow/notify.js';
import type { WorkflowEvent } from '../twin/runner.js';
import { FileSlack } from './file-slack.js';
import { type FunctionUrlServer, serveFunctionUrl } from './function-url-server.js';
import { MemoryApprovalStore } from './memory-store.js';

/**
 * Slack for the local twin, behind the same interface whichever way it goes:
 *
 * - with `SLACK_BOT_TOKEN` and `SLACK_SIGNING_SECRET` (and the channel, workspace, app and approvers
 *   as on AWS) in the environment, messages go to the real workspace and the approval is decided
 *   there: the interactivity endpoint runs on this machine (`SLACK_INTERACTIVITY_PORT`, default
 *   3000, on 127.0.0.1 unless `SLACK_INTERACTIVITY_HOST` says otherwise) with the same verification
 *   code as the Lambda; put a tunnel in front of it and make it the app's Request URL;
 * - otherwise every message is written as Block Kit JSON under `<out>/slack/`, and the decision is
 *   taken on the terminal (or from --approve / --reject).
 *
 * Either way the incident gets its thread: the opening message, a line per step, the approval
 * request and its settlement, and the result; SNS notifications are written under
 * `<out>/notifications/` as what Publish would receive.
 */

/** How the local approval is decided when no workspace does: the terminal, or a flag given up front. */
export type LocalDecisionSource = 'prompt' | 'approve' | 'reject';

export interface LocalChatopsOptions {
  readonly outDir: string;
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly decision: LocalDecisionSource;
  /** Asks the terminal; resolves with the answer line. */
  readonly ask: (question: string) => Promise<string>;
  readonly say: (line: string) => void;
  readonly now?: () => Date;
}

/** A question on the terminal (the local decision when no workspace decides). */
export function askOnTerminal(stdin: Readable, stdout: Writable): (question: string) => Promise<string> {
  return async (question) => {
    const prompt = createInterface({ input: stdin, output: stdout, terminal: false });
    try {
      return await prompt.question(question);
    } finally {
      prompt.close();
    }
  };
}

export interface LocalChatops {
  readonly mode: 'slack' | 'files';
  /** The local interactivity endpoint, in Slack mode. */
  readonly endpoint: string | null;
  requestApproval(payload: unknown): Promise<Record<string, unknown>>;
  notify(payload: unknown): Promise<Record<string, unknown>>;
  /** Posts a line in the thread for the steps worth one (called with every workflow event). */
  onEvent(event: WorkflowEvent): void;
  /** Waits for queued messages and stops the endpoint. */
  close(): Promise<void>;
}

type Fields = Record<string, unknown>;
const fields = (value: unknown): Fields =>
  typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Fields) : {};

function incidentFromInput(input: unknown): IncidentView | null {
  const candidate = fields(input).incident ?? input;
  const incident = fields(candidate);
  if (typeof incident.incidentId !== 'string' || typeof incident.kind !== 'string') return null;
  return incidentViewOf(
    {
      ...incident,
      incidentId: incident.incidentId,
      kind: incident.kind,
      instanceId: typeof incident.instanceId === 'string' ? incident.instanceId : null,
    } as Parameters<typeof incidentViewOf>[0],
    null,
  );
}

export async function startLocalChatops(options: LocalChatopsOptions): Promise<LocalChatops> {
  const now = options.now ?? (() => new Date());
  const settings = realSlackConfigured(options.env) ? slackSettingsFrom(options.env) : null;
  const store = new MemoryApprovalStore();
  const slack: SlackPort & { userGroupMembers?: (id: string) => Promise<string[]> } =
    settings === null
      ? new FileSlack(join(options.outDir, 'slack'))
      : new SlackWebApi({
          baseUrl: settings.apiBaseUrl,
          token: async () => options.env[CHATOPS_ENVIRONMENT.botToken]?.trim() ?? '',
        });
  const chat = new IncidentChat({
    slack,
    threads: store,
    approvals: store,
    channel: settings?.channelId ?? 'local',
    now,
    newApprovalId: randomUUID,
  });
  const outbox = new Outbox(options.say);

  // Slack mode: clicks resolve the waiting approval through the same verification as on AWS.
  const waiting = new Map<string, (output: Record<string, unknown>) => void>();
  const server =
    settings === null
      ? null
      : await serveInteractivity(options, settings, {
          store,
          now,
          waiting,
          userGroupMembers: (groupId) => (slack as SlackWebApi).userGroupMembers(groupId),
          followUp: (work) => outbox.send(`follow-up ${work.kind}`, () => chat.followUp(work)),
        });

  const parts: ChatopsParts = {
    options,
    now,
    settings,
    store,
    chat,
    outbox,
    waiting,
    endpoint: server?.url ?? null,
  };
  return {
    mode: settings === null ? 'files' : 'slack',
    endpoint: parts.endpoint,
    requestApproval: (payload) => requestApproval(parts, payload),
    notify: notifier(parts),
    onEvent: stepLines(parts),
    async close() {
      await outbox.drained();
      await server?.close();
    },
  };
}

/** Messages go out one at a time, in order; a Slack failure is reported, never fatal. */
class Outbox {
  private queue: Promise<void> = Promise.resolve();

  constructor(private readonly say: (line: string) => void) {}

  send(what: string, work: () => Promise<unknown>): void {
    this.queue = this.queue.then(work).then(
      () => {},
      (error: unknown) => this.say(`slack: ${what} failed: ${(error as Error).message}`),
    );
  }

  /** Resolves once every message queued so far has gone out (or failed). */
  drained(): Promise<void> {
    return this.queue;
  }
}

/** What the approval, the notifications and the step lines share. */
interface ChatopsParts {
  readonly options: LocalChatopsOptions;
  readonly now: () => Date;
  /** The workspace's settings, or null when messages are written as files. */
  readonly settings: SlackSettings | null;
  readonly store: MemoryApprovalStore;
  readonly chat: IncidentChat;
  readonly outbox: Outbox;
  /** The approvals waiting for a click, by task token: a click resolves one. */
  readonly waiting: Map<string, (output: Record<string, unknown>) => void>;
  /** The local interactivity endpoint, in Slack mode. */
  readonly endpoint: string | null;
}

async function writeJson(folder: string, file: string, value: unknown): Promise<string> {
  await mkdir(folder, { recursive: true });
  const path = join(folder, file);
  await writeFile(path, `${JSON.stringify(value, null, 2)}\n`);
  return path;
}

/**
 * The approval request: posted to the thread, written under `<out>/approvals/` as SNS carries it,
 * and decided by a click in the workspace, on the terminal, or by the command line's flag.
 */
async function requestApproval(parts: ChatopsParts, payload: unknown): Promise<Record<string, unknown>> {
  const { options, now, settings, chat, waiting } = parts;
  await parts.outbox.drained();
  const task = approvalTaskFrom(payload);
  // The stricter reading of the same input first, so that nothing is posted for an input it refuses.
  const { request: pending } = approvalRequestFrom(payload, now(), 'pending');
  // Wait for the click from before the message is posted: a click that arrived between the post
  // and the wait would find nobody waiting and close the approval as expired.
  const clicked =
    settings !== null && options.decision === 'prompt'
      ? new Promise<Record<string, unknown>>((resolve) => waiting.set(task.taskToken, resolve))
      : null;
  let record: ApprovalRecord;
  try {
    ({ record } = await chat.requestApproval(task));
  } catch (error) {
    waiting.delete(task.taskToken);
    throw error;
  }
  const request = {
    ...pending,
    approvalId: record.approvalId,
    createdAt: record.createdAt,
    expiresAt: record.expiresAt,
  };
  const text = approvalText(request);
  // The request as SNS carries it: the approval id, never the task token.
  const folder = join(options.outDir, 'approvals');
  await writeJson(folder, `${record.approvalId}.request.json`, request);
  await mkdir(folder, { recursive: true });
  await writeFile(join(folder, `${record.approvalId}.request.txt`), `${text}\n`);
  let output: Record<string, unknown>;
  if (settings !== null && clicked !== null) {
    options.say(
      `slack: approval ${record.approvalId} posted to ${settings.channelId}; waiting for a click (endpoint ${parts.endpoint}, which the app's Request URL must reach)`,
    );
    output = await clicked;
  } else {
    output = await decideLocally(record, text, options, parts.store, now);
    parts.outbox.send('settling the approval', () => chat.settleApproval(record.approvalId));
  }
  await writeJson(folder, `${record.approvalId}.decision.json`, output);
  return output;
}

/** The outcome: posted to the thread, and written under `<out>/notifications/` as Publish would receive it. */
function notifier(parts: ChatopsParts): LocalChatops['notify'] {
  let notifications = 0;
  return async (payload) => {
    await parts.outbox.drained();
    const notification = incidentNotification(payload as WorkflowState);
    const evidence = evidenceReferenceOf((payload as WorkflowState).evidence);
    let location = '';
    const delivery = await notifyOutcome(
      payload,
      notification,
      { account: 'local', evidence },
      {
        publish: async (message: SnsMessage) => {
          notifications += 1;
          location = await writeJson(
            join(parts.options.outDir, 'notifications'),
            `sns-${String(notifications).padStart(2, '0')}.json`,
            message,
          );
          return { messageId: location };
        },
        chat: parts.chat,
      },
    );
    if (typeof delivery.slack === 'object')
      parts.options.say(`slack: the outcome was not posted: ${delivery.slack.error}`);
    return { channel: 'file', location, subject: notification.subject, slack: delivery.slack };
  };
}

/** A line in the thread for each step worth one, once the first event has named the incident. */
function stepLines(parts: ChatopsParts): LocalChatops['onEvent'] {
  let incident: IncidentView | null = null;
  return (event) => {
    if (incident === null) incident = incidentFromInput(event.input);
    const update = stepUpdateOf({
      kind:
        event.type === 'StateExited'
          ? 'exited'
          : event.type === 'StateFailed' || event.type === 'StateCaught'
            ? 'failed'
            : 'other',
      state: event.state,
      output: event.output,
      error: event.error,
      cause: event.cause,
    });
    if (incident === null || update === null) return;
    const current = incident;
    parts.outbox.send(`step ${update.title}`, () =>
      parts.chat.step(current, update.title, update.status, update.detail),
    );
  };
}

interface InteractivityParts {
  readonly store: MemoryApprovalStore;
  readonly now: () => Date;
  /** The approvals waiting for a click, by task token: a click resolves one. */
  readonly waiting: Map<string, (output: Record<string, unknown>) => void>;
  readonly userGroupMembers: (groupId: string) => Promise<string[]>;
  readonly followUp: (work: FollowUp) => void;
}

/** The local interactivity endpoint: Slack's clicks, verified and decided as the Lambda does. */
async function serveInteractivity(
  options: LocalChatopsOptions,
  settings: SlackSettings,
  parts: InteractivityParts,
): Promise<FunctionUrlServer> {
  const { store, now, waiting, followUp } = parts;
  const signingSecret = options.env[CHATOPS_ENVIRONMENT.signingSecret]?.trim() ?? '';
  const config: InteractivityConfig = {
    app: settings.app,
    approvers: settings.approvers,
    channelId: settings.channelId,
  };
  const groups = new GroupMembershipCache(parts.userGroupMembers, settings.groupCacheSeconds * 1000);
  return serveFunctionUrl(
    async (event: FunctionUrlEvent) => {
      const outcome = await handleInteraction(rawRequestFromEvent(event), config, {
        signingSecrets: async () => parseSigningSecrets(signingSecret),
        store,
        groupMembers: groups.members,
        now,
        newAttemptId: randomUUID,
        workflow: {
          succeed: async (token, output) => {
            const resolve = waiting.get(token);
            if (resolve === undefined)
              return { resumed: false, detail: 'the local workflow no longer waits' };
            waiting.delete(token);
            resolve(output);
            return { resumed: true };
          },
        },
      });
      options.say(`slack: ${outcome.result} (${outcome.response.statusCode}): ${outcome.detail}`);
      if (outcome.followUp !== null) followUp(outcome.followUp);
      return outcome.response;
    },
    {
      host: options.env.SLACK_INTERACTIVITY_HOST?.trim() || '127.0.0.1',
      port: Number(options.env.SLACK_INTERACTIVITY_PORT ?? 3000),
      onError: (error) => options.say(`slack: the endpoint failed: ${(error as Error).message}`),
    },
  );
}

/** The approval decided on this machine: asked on the terminal, or as the command line's flag says. */
async function decideLocally(
  record: ApprovalRecord,
  text: string,
  options: LocalChatopsOptions,
  store: MemoryApprovalStore,
  now: () => Date,
): Promise<Record<string, unknown>> {
  let choice: ButtonDecision;
  if (options.decision === 'prompt') {
    const alternative = record.alternative;
    const answer = (
      await options.ask(
        `\n${text}\n${alternative ? `Type "yes" to approve everything, "${alternative.label.toLowerCase()}" (or "alt") for that only; anything else rejects: ` : 'Apply these changes? Type "yes" to approve, anything else rejects: '}`,
      )
    )
      .trim()
      .toLowerCase();
    choice =
      answer === 'yes'
        ? 'approve'
        : alternative && (answer === 'alt' || answer === alternative.label.toLowerCase())
          ? 'alternative'
          : 'reject';
  } else {
    choice = options.decision === 'approve' ? 'approve' : 'reject';
  }
  const approver: Approver = {
    id: options.env.SUDO_USER ?? options.env.USER ?? 'local-operator',
    name: null,
    teamId: null,
    via: options.decision === 'prompt' ? 'terminal' : 'flag',
    basis: 'local-operator',
  };
  const decided = await store.decide(
    record.approvalId,
    decisionFor(record, choice, approver, now(), randomUUID()),
    now(),
  );
  if (decided.outcome !== 'decided' || decided.record.decision === null) {
    throw new Error(`approval ${record.approvalId} could not be decided locally: ${decided.outcome}`);
  }
  return taskOutputOf(decided.record, decided.record.decision);
}
