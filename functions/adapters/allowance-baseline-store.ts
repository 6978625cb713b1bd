import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import { type DynamoDBDocumentClient, GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import {
  type AllowanceCheck,
  type AllowanceDetectSettings,
  type AllowanceReading,
  checkAllowance,
} from '../core/allowance/detect.js';
import type { SampleGroup } from '../core/forecast/index.js';

/**
 * Where the detect function keeps the last ENA allowance readings of each host between
 * invocations (it is stateless; a cumulative counter needs the previous reading to show a rise):
 * one item per host and network namespace in the incidents table, `allowance#<host>` /
 * `netns#<inode>`, holding the latest reading and the one it was compared with (so that a retried
 * delivery finds the same rise again; both of one boot, the item's `boot`).
 *
 * Cost is bounded: a delivery without ENA counters (no ENA, or an older sampler) reads and writes
 * nothing; otherwise one GetItem, and a PutItem only when the reading is new, a counter changed, or
 * the stored one is due for a refresh (`refreshSeconds`), so a quiet instance costs a write every
 * few minutes, not one per sample. The put only ever moves the reading forward in time
 * (`attribute_not_exists(pk) OR readingAt < :at`): of two concurrent deliveries the newer reading
 * stays, and the older one's failed put is not an error.
 */

export const ALLOWANCE_BASELINE_KEY_PREFIX = 'allowance#';
/** An item outlives its usefulness as a baseline by this much, then DynamoDB's TTL removes it. */
const TTL_SLACK_SECONDS = 3600;

export function allowanceBaselineKey(host: string, netns: string | null) {
  return { pk: `${ALLOWANCE_BASELINE_KEY_PREFIX}${host}`, sk: `netns#${netns ?? 'unknown'}` };
}

/** `name:exceeded:available` per interface, `,` between them (`-` for null). */
export function encodeInterfaces(reading: Pick<AllowanceReading, 'interfaces'>): string {
  return reading.interfaces
    .map((item) => `${item.name}:${item.exceeded ?? '-'}:${item.available ?? '-'}`)
    .join(',');
}

const ENTRY = /^([A-Za-z0-9._-]{1,15}):(\d{1,16}|-):(\d{1,16}|-)$/;

/**
 * Reads the stored readings back (the latest, then the one before it); one that is not in the
 * stored form is left out (then there is no baseline from it).
 */
export function decodeReadings(item: Record<string, unknown> | undefined): AllowanceReading[] {
  if (item === undefined) return [];
  const boot = typeof item.boot === 'string' ? item.boot : null;
  return [
    decodeReading(item.readingAt, item.interfaces, boot),
    decodeReading(item.previousAt, item.previousInterfaces, boot),
  ].filter((reading) => reading !== null);
}

function decodeReading(
  readingAt: unknown,
  interfaces: unknown,
  boot: string | null,
): AllowanceReading | null {
  if (typeof readingAt !== 'number' || !Number.isSafeInteger(readingAt) || typeof interfaces !== 'string') {
    return null;
  }
  const parsed: { name: string; exceeded: number | null; available: number | null }[] = [];
  for (const entry of interfaces.split(',', 64)) {
    const match = ENTRY.exec(entry);
    if (!match) return null;
    parsed.push({
      name: match[1] as string,
      exceeded: match[2] === '-' ? null : Number(match[2]),
      available: match[3] === '-' ? null : Number(match[3]),
    });
  }
  return { at: readingAt, boot, interfaces: parsed };
}

export class AllowanceBaselineStore {
  constructor(
    private readonly client: DynamoDBDocumentClient,
    private readonly tableName: string,
    readonly settings: AllowanceDetectSettings,
  ) {}

  /** Checks one host's samples against its stored reading, and keeps the newest reading. */
  async check(group: SampleGroup, now: Date): Promise<AllowanceCheck & { readonly stored: boolean }> {
    if (!group.samples.some((sample) => sample.ena.length > 0)) {
      return { reading: null, previous: null, write: false, rates: [], findings: [], stored: false };
    }
    const key = allowanceBaselineKey(group.host, group.netns);
    const { Item: item } = await this.client.send(
      new GetCommand({ TableName: this.tableName, Key: key, ConsistentRead: true }),
    );
    const result = checkAllowance(decodeReadings(item), group.samples, now.getTime(), this.settings);
    if (!result.write || result.reading === null) return { ...result, stored: false };
    try {
      await this.client.send(
        new PutCommand({
          TableName: this.tableName,
          Item: {
            ...key,
            host: group.host,
            netns: group.netns,
            readingAt: result.reading.at,
            boot: result.reading.boot,
            interfaces: encodeInterfaces(result.reading),
            ...(result.previous === null
              ? {}
              : { previousAt: result.previous.at, previousInterfaces: encodeInterfaces(result.previous) }),
            updatedAt: now.toISOString(),
            expiresAt: Math.floor(now.getTime() / 1000) + this.settings.maxGapSeconds + TTL_SLACK_SECONDS,
          },
          ConditionExpression: 'attribute_not_exists(pk) OR readingAt < :at',
          ExpressionAttributeValues: { ':at': result.reading.at },
        }),
      );
    } catch (error) {
      // A concurrent delivery stored a newer reading: it is the better baseline.
      if (error instanceof ConditionalCheckFailedException) return { ...result, stored: false };
      throw error;
    }
    return { ...result, stored: true };
  }
}
