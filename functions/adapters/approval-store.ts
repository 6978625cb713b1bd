/**
 * Approvals and incident threads, in the incidents table next to the incident items (generic
 * `pk`/`sk` keys; `expiresAt` is the table's TTL attribute, in epoch seconds):
 * - `approval#<uuid>` / `approval`: the approval record, its Step Functions task token (never
 *   returned to Slack), `approvalExpiresAt` (ISO) and `expiresAtMs` for the conditional write;
 * - `approval#incident#<incident id>` / `latest`: the incident's latest approval id, so that
 *   `conntrack-responder approve INCIDENT_ID` finds it (an incident id has no `#`, an approval id
 *   is a UUID, so the two kinds of key never meet; both stay under the `approval#` prefix the
 *   approval writers' IAM condition allows);
 * - `thread#<incident id>` / `thread`: the channel and ts of the incident's opening message, and its
 *   latest approval;
 * - `incident#<incident id>` / `incident` (detect's item): gets `approval`, who decided and when.
 *
 * The decision is one UpdateItem conditioned on "exists, pending, not expired": however many clicks
 * race, DynamoDB lets exactly one through, and only that one gets the task token.
 */

import { ConditionalCheckFailedException, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, GetCommand, PutCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import type {
  ApprovalRecord,
  ApprovalStore,
  DecideResult,
  IncidentThreadRef,
  PostedMessage,
  RecordedDecision,
  ThreadStore,
} from '../core/chatops/approval.js';
import { INCIDENT_TABLE } from '../core/incident/incident.js';

const KEEP_AFTER_EXPIRY_SECONDS = 30 * 24 * 3600;

const approvalKey = (approvalId: string) => ({ pk: `approval#${approvalId}`, sk: 'approval' });
const latestApprovalKey = (incidentId: string) => ({ pk: `approval#incident#${incidentId}`, sk: 'latest' });
const threadKey = (incidentId: string) => ({ pk: `thread#${incidentId}`, sk: 'thread' });
const incidentKey = (incidentId: string) => ({ pk: `incident#${incidentId}`, sk: 'incident' });

// The store relies on the incidents table's key and TTL names.
const TTL = INCIDENT_TABLE.ttlAttribute;
if (INCIDENT_TABLE.partitionKey !== 'pk' || INCIDENT_TABLE.sortKey !== 'sk' || TTL !== 'expiresAt') {
  throw new Error(
    'the approval store expects the incidents table keyed by pk/sk with TTL attribute expiresAt',
  );
}

interface StoredMessage {
  readonly channel: string;
  readonly ts: string;
  readonly threadTs: string | null;
  /** JSON of the SlackMessage (kept as one string: Block Kit has optional fields DynamoDB would reject as undefined). */
  readonly body: string;
}

interface ApprovalItem extends Omit<ApprovalRecord, 'message' | 'expiresAt'> {
  readonly pk: string;
  readonly sk: string;
  readonly kind: 'approval';
  readonly taskToken: string;
  readonly approvalExpiresAt: string;
  readonly expiresAtMs: number;
  /** TTL, epoch seconds: DynamoDB removes the item 30 days after the approval expired. */
  readonly expiresAt: number;
  readonly message: StoredMessage | null;
}

function toRecord(item: Record<string, unknown>): ApprovalRecord {
  const {
    pk: _pk,
    sk: _sk,
    kind: _kind,
    taskToken: _taskToken,
    expiresAtMs: _expiresAtMs,
    expiresAt: _ttl,
    approvalExpiresAt,
    message,
    ...rest
  } = item as unknown as ApprovalItem;
  return {
    ...(rest as Omit<ApprovalRecord, 'message' | 'expiresAt'>),
    expiresAt: approvalExpiresAt,
    decision: rest.decision ?? null,
    expiredReason: rest.expiredReason ?? null,
    alternative: rest.alternative ?? null,
    message:
      message === null || message === undefined
        ? null
        : {
            channel: message.channel,
            ts: message.ts,
            threadTs: message.threadTs ?? null,
            body: JSON.parse(message.body) as PostedMessage['body'],
          },
  };
}

function isConditionFailure(error: unknown): boolean {
  return (
    error instanceof ConditionalCheckFailedException ||
    (error as { name?: string }).name === 'ConditionalCheckFailedException'
  );
}

export class DynamoApprovalStore implements ApprovalStore, ThreadStore {
  private readonly documents: DynamoDBDocumentClient;

  constructor(
    client: DynamoDBClient,
    readonly tableName: string,
    private readonly warn: (message: string, fields: Record<string, unknown>) => void = () => {},
  ) {
    this.documents = DynamoDBDocumentClient.from(client, {
      marshallOptions: { removeUndefinedValues: true },
    });
  }

  async create(record: ApprovalRecord, taskToken: string): Promise<void> {
    const expiresAtMs = Date.parse(record.expiresAt);
    if (Number.isNaN(expiresAtMs)) throw new Error(`approval ${record.approvalId}: expiresAt is not a date`);
    const { expiresAt, ...fields } = record;
    const item: ApprovalItem = {
      ...fields,
      ...approvalKey(record.approvalId),
      kind: 'approval',
      taskToken,
      approvalExpiresAt: expiresAt,
      expiresAtMs,
      expiresAt: Math.ceil(expiresAtMs / 1000) + KEEP_AFTER_EXPIRY_SECONDS,
      message: null,
    };
    await this.documents.send(
      new PutCommand({
        TableName: this.tableName,
        Item: item,
        // An approval id is used once: a repeated id is a bug, never an overwrite.
        ConditionExpression: 'attribute_not_exists(pk)',
      }),
    );
    // The incident's latest approval (an execution asks at most once; a later one replaces it).
    await this.documents.send(
      new PutCommand({
        TableName: this.tableName,
        Item: {
          ...latestApprovalKey(record.incidentId),
          kind: 'latest-approval',
          incidentId: record.incidentId,
          approvalId: record.approvalId,
          expiresAt: item.expiresAt,
        },
      }),
    );
  }

  async findByIncident(incidentId: string): Promise<ApprovalRecord | undefined> {
    const answer = await this.documents.send(
      new GetCommand({
        TableName: this.tableName,
        Key: latestApprovalKey(incidentId),
        ConsistentRead: true,
      }),
    );
    const approvalId = answer.Item?.approvalId;
    return typeof approvalId === 'string' ? this.get(approvalId) : undefined;
  }

  private async item(approvalId: string): Promise<Record<string, unknown> | undefined> {
    const answer = await this.documents.send(
      new GetCommand({ TableName: this.tableName, Key: approvalKey(approvalId), ConsistentRead: true }),
    );
    return answer.Item;
  }

  async get(approvalId: string): Promise<ApprovalRecord | undefined> {
    const item = await this.item(approvalId);
    return item === undefined ? undefined : toRecord(item);
  }

  async attachMessage(approvalId: string, message: PostedMessage): Promise<void> {
    const stored: StoredMessage = {
      channel: message.channel,
      ts: message.ts,
      threadTs: message.threadTs,
      body: JSON.stringify(message.body),
    };
    await this.documents.send(
      new UpdateCommand({
        TableName: this.tableName,
        Key: approvalKey(approvalId),
        UpdateExpression: 'SET message = :message',
        ConditionExpression: 'attribute_exists(pk)',
        ExpressionAttributeValues: { ':message': stored },
      }),
    );
  }

  async decide(approvalId: string, decision: RecordedDecision, now: Date): Promise<DecideResult> {
    try {
      const answer = await this.documents.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: approvalKey(approvalId),
          UpdateExpression: 'SET #status = :decided, decision = :decision',
          ConditionExpression: 'attribute_exists(pk) AND #status = :pending AND expiresAtMs > :now',
          ExpressionAttributeNames: { '#status': 'status' },
          ExpressionAttributeValues: {
            ':decided': 'decided',
            ':pending': 'pending',
            ':decision': decision,
            ':now': now.getTime(),
          },
          ReturnValues: 'ALL_NEW',
        }),
      );
      const item = answer.Attributes ?? {};
      const record = toRecord(item);
      await this.noteOnIncident(record.incidentId, record.approvalId, decision);
      return { outcome: 'decided', record, taskToken: String(item.taskToken) };
    } catch (error) {
      if (!isConditionFailure(error)) throw error;
    }
    // Lost the condition: say why, from a consistent read.
    const item = await this.item(approvalId);
    if (item === undefined) return { outcome: 'not-found' };
    const record = toRecord(item);
    if (record.status === 'decided') return { outcome: 'already-decided', record };
    return { outcome: 'expired', record };
  }

  /**
   * Who decided, on the incident item itself (when detect opened one: an incident started by hand
   * has none, and none is created here). The workflow's state and the evidence bundle get the same
   * identity through the task output.
   */
  private async noteOnIncident(
    incidentId: string,
    approvalId: string,
    decision: RecordedDecision,
  ): Promise<void> {
    try {
      await this.documents.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: incidentKey(incidentId),
          UpdateExpression: 'SET approval = :approval',
          ConditionExpression: 'attribute_exists(pk)',
          ExpressionAttributeValues: {
            ':approval': {
              approvalId,
              decision: decision.decision,
              choice: decision.choice,
              actionIds: decision.actionIds,
              approver: decision.approver,
              decidedAt: decision.decidedAt,
            },
          },
        }),
      );
    } catch (error) {
      // Best effort: the decision is made and must reach the workflow even if this note fails.
      if (!isConditionFailure(error))
        this.warn('could not note the approval on the incident', { incidentId, error });
    }
  }

  async undoDecision(approvalId: string, attemptId: string): Promise<boolean> {
    try {
      await this.documents.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: approvalKey(approvalId),
          UpdateExpression: 'SET #status = :pending REMOVE decision',
          ConditionExpression: '#status = :decided AND decision.attemptId = :attempt',
          ExpressionAttributeNames: { '#status': 'status' },
          ExpressionAttributeValues: { ':pending': 'pending', ':decided': 'decided', ':attempt': attemptId },
        }),
      );
      return true;
    } catch (error) {
      if (isConditionFailure(error)) return false;
      throw error;
    }
  }

  async expire(approvalId: string, reason: string, attemptId?: string): Promise<boolean> {
    const mine = attemptId === undefined ? '' : ' OR (#status = :decided AND decision.attemptId = :attempt)';
    try {
      await this.documents.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: approvalKey(approvalId),
          UpdateExpression: 'SET #status = :expired, expiredReason = :reason',
          ConditionExpression: `attribute_exists(pk) AND (#status = :pending${mine})`,
          ExpressionAttributeNames: { '#status': 'status' },
          ExpressionAttributeValues: {
            ':expired': 'expired',
            ':pending': 'pending',
            ':reason': reason,
            ...(attemptId === undefined ? {} : { ':decided': 'decided', ':attempt': attemptId }),
          },
        }),
      );
      return true;
    } catch (error) {
      if (isConditionFailure(error)) return false;
      throw error;
    }
  }

  async getThread(incidentId: string): Promise<IncidentThreadRef | undefined> {
    const answer = await this.documents.send(
      new GetCommand({ TableName: this.tableName, Key: threadKey(incidentId), ConsistentRead: true }),
    );
    const item = answer.Item;
    if (item === undefined) return undefined;
    return {
      incidentId: String(item.incidentId),
      channel: String(item.channel),
      ts: String(item.ts),
      approvalId: typeof item.approvalId === 'string' ? item.approvalId : null,
    };
  }

  async putThread(thread: IncidentThreadRef): Promise<IncidentThreadRef> {
    try {
      await this.documents.send(
        new PutCommand({
          TableName: this.tableName,
          Item: {
            ...threadKey(thread.incidentId),
            kind: 'thread',
            incidentId: thread.incidentId,
            channel: thread.channel,
            ts: thread.ts,
            ...(thread.approvalId === null ? {} : { approvalId: thread.approvalId }),
            expiresAt: Math.ceil(Date.now() / 1000) + KEEP_AFTER_EXPIRY_SECONDS,
          },
          ConditionExpression: 'attribute_not_exists(pk)',
        }),
      );
      return thread;
    } catch (error) {
      if (!isConditionFailure(error)) throw error;
      const stored = await this.getThread(thread.incidentId);
      if (stored === undefined)
        throw new Error(`thread of ${thread.incidentId} vanished while being created`);
      return stored;
    }
  }

  async setThreadApproval(incidentId: string, approvalId: string): Promise<void> {
    await this.documents.send(
      new UpdateCommand({
        TableName: this.tableName,
        Key: threadKey(incidentId),
        UpdateExpression: 'SET approvalId = :approval',
        ConditionExpression: 'attribute_exists(pk)',
        ExpressionAttributeValues: { ':approval': approvalId },
      }),
    );
  }
}
