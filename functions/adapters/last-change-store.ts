import type { LastChange } from '../core/guardrails/decisions.js';
import { GUARDRAIL_KEYS, GuardrailTable } from './guardrail-table.js';

/** The last change made on each instance (what the remediation cooldown looks at), expiring with TTL. */
export class LastChangeStore extends GuardrailTable {
  /** Records a change on the instance, unless a later one is already recorded. */
  async recordChange(instanceId: string, change: LastChange, retentionDays: number): Promise<void> {
    await this.updateIgnoringCondition({
      Key: GUARDRAIL_KEYS.lastChange(instanceId),
      UpdateExpression: 'SET #at = :at, incidentId = :incidentId, outcome = :outcome, expiresAt = :expiresAt',
      ConditionExpression: 'attribute_not_exists(#at) OR #at <= :at',
      ExpressionAttributeNames: { '#at': 'at' },
      ExpressionAttributeValues: {
        ':at': change.at,
        ':incidentId': change.incidentId,
        ':outcome': change.outcome,
        ':expiresAt': Math.floor(Date.parse(change.at) / 1000) + retentionDays * 86_400,
      },
    });
  }

  async lastChange(instanceId: string): Promise<LastChange | null> {
    const item = await this.get(GUARDRAIL_KEYS.lastChange(instanceId));
    if (item === undefined || typeof item.at !== 'string') return null;
    return { at: item.at, incidentId: String(item.incidentId), outcome: String(item.outcome) };
  }
}
