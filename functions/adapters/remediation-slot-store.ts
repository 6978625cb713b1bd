import { setTimeout as sleep } from 'node:timers/promises';
import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import { type DynamoDBDocumentClient, PutCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { decideAcquire, type Holders, liveHolders } from '../core/guardrails/semaphore.js';
import { epochSeconds, GUARDRAIL_KEYS, GuardrailTable, jitter, MAX_ATTEMPTS } from './guardrail-table.js';

/** The remediation slots: one item, holder → lease end, changed under a version check. */

export type SlotResult =
  | {
      readonly granted: true;
      readonly leaseEndsAt: number;
      readonly alreadyHeld: boolean;
      readonly holders: number;
    }
  | { readonly granted: false; readonly holders: readonly string[] };

export class RemediationSlotStore extends GuardrailTable {
  constructor(
    client: DynamoDBDocumentClient,
    tableName: string,
    private readonly settings: {
      readonly maxConcurrentRemediations: number;
      readonly slotLeaseSeconds: number;
    },
  ) {
    super(client, tableName);
  }

  /** Takes a remediation slot for `holder` (an incident id), or says who holds them all. */
  async acquireSlot(holder: string, now: Date): Promise<SlotResult> {
    const max = this.settings.maxConcurrentRemediations;
    for (let attempt = 1; attempt <= MAX_ATTEMPTS; attempt++) {
      const item = await this.get(GUARDRAIL_KEYS.slots);
      const holders = (item?.holders as Holders | undefined) ?? {};
      const version = typeof item?.version === 'number' ? item.version : 0;
      const nowSeconds = epochSeconds(now);
      const decision = decideAcquire(holders, holder, nowSeconds, max, this.settings.slotLeaseSeconds);
      if (decision.action === 'busy') return { granted: false, holders: decision.holders };
      if (decision.action === 'held') {
        return {
          granted: true,
          leaseEndsAt: decision.leaseEndsAt,
          alreadyHeld: true,
          holders: liveHolders(holders, nowSeconds).length,
        };
      }
      try {
        if (item === undefined) {
          await this.client.send(
            new PutCommand({
              TableName: this.tableName,
              Item: { ...GUARDRAIL_KEYS.slots, holders: { [holder]: decision.leaseEndsAt }, version: 1 },
              ConditionExpression: 'attribute_not_exists(pk)',
            }),
          );
        } else {
          const names: Record<string, string> = { '#me': holder };
          decision.expired.forEach((id, index) => {
            names[`#x${index}`] = id;
          });
          const remove = decision.expired.map((_, index) => `holders.#x${index}`);
          await this.client.send(
            new UpdateCommand({
              TableName: this.tableName,
              Key: GUARDRAIL_KEYS.slots,
              UpdateExpression: `SET holders.#me = :lease, version = :next${remove.length > 0 ? ` REMOVE ${remove.join(', ')}` : ''}`,
              ConditionExpression: 'version = :version',
              ExpressionAttributeNames: names,
              ExpressionAttributeValues: {
                ':lease': decision.leaseEndsAt,
                ':version': version,
                ':next': version + 1,
              },
            }),
          );
        }
        return {
          granted: true,
          leaseEndsAt: decision.leaseEndsAt,
          alreadyHeld: false,
          holders: liveHolders(holders, nowSeconds).filter((id) => id !== holder).length + 1,
        };
      } catch (error) {
        if (!(error instanceof ConditionalCheckFailedException)) throw error;
        await sleep(jitter(attempt));
      }
    }
    throw new Error(
      `could not take a remediation slot for ${holder}: the slots changed concurrently ${MAX_ATTEMPTS} times`,
    );
  }

  /** Gives the slot back; false when `holder` did not hold one (already released, or never took one). */
  async releaseSlot(holder: string): Promise<boolean> {
    try {
      await this.client.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: GUARDRAIL_KEYS.slots,
          UpdateExpression: 'REMOVE holders.#me',
          ConditionExpression: 'attribute_exists(holders.#me)',
          ExpressionAttributeNames: { '#me': holder },
        }),
      );
      return true;
    } catch (error) {
      if (error instanceof ConditionalCheckFailedException) return false;
      throw error;
    }
  }

  async slotHolders(now: Date): Promise<{ live: string[]; max: number }> {
    const item = await this.get(GUARDRAIL_KEYS.slots);
    return {
      live: liveHolders((item?.holders as Holders | undefined) ?? {}, epochSeconds(now)),
      max: this.settings.maxConcurrentRemediations,
    };
  }
}
