import { setTimeout as sleep } from 'node:timers/promises';
import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import { type DynamoDBDocumentClient, GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import {
  type Forecast,
  type ForecastSettings,
  forecastTable,
  type MergeResult,
  mergeSamples,
  type SampleGroup,
  type WindowSample,
  worthStoring,
} from '../core/forecast/index.js';

/**
 * Where the detect function keeps each host's recent samples between invocations (it is
 * stateless): one item per host and network namespace in the incidents table,
 * `samples#<host>` / `netns#<inode>`, holding the window as one compact string, a version for
 * optimistic concurrency (a put that requires the version it read, so two concurrent deliveries
 * never lose each other's samples), and a TTL a little longer than the window.
 *
 * Cost is bounded: a delivery whose samples are all below the tracking threshold (an idle table)
 * reads and writes nothing; otherwise one consistent GetItem and one PutItem of at most 64
 * samples (about 2.5 KB; 15 samples at the default 60 s interval, under 1 KB).
 */

export const SAMPLE_WINDOW_KEY_PREFIX = 'samples#';
/**
 * Concurrent deliveries of one host are rare (one log stream per instance) but happen under Lambda
 * retries and bursts: each conflict waits a random, growing pause (full jitter) and merges again.
 * Past the last attempt the invocation fails and Lambda retries it, so no sample is lost.
 */
const MAX_ATTEMPTS = 10;
const BASE_BACKOFF_MS = 10;
/** An item outlives its window by this much, then DynamoDB's TTL removes it. */
const TTL_SLACK_SECONDS = 3600;

export interface RecordedSamples {
  /** The merged window (empty when nothing was tracked). */
  readonly window: readonly WindowSample[];
  readonly forecast: Forecast | null;
  readonly skipped: MergeResult['skipped'];
  readonly unloaded: boolean;
  /** False when the delivery held nothing worth storing, and the table was not touched. */
  readonly stored: boolean;
}

export function sampleWindowKey(host: string, netns: string | null) {
  return { pk: `${SAMPLE_WINDOW_KEY_PREFIX}${host}`, sk: `netns#${netns ?? 'unknown'}` };
}

/** The window as stored: `t,count,max,drop,boot` per sample, `;` between samples (`-` for null). */
export function encodeWindow(samples: readonly WindowSample[]): string {
  return samples
    .map((sample) => `${sample.t},${sample.count},${sample.max},${sample.drop ?? '-'},${sample.boot ?? '-'}`)
    .join(';');
}

const ENTRY = /^(\d{1,15}),(\d{1,16}),(\d{1,16}),(\d{1,16}|-),([0-9a-f]{8}|-)$/;

/** Reads a stored window back; an entry that is not in the stored form is dropped. */
export function decodeWindow(text: unknown): WindowSample[] {
  if (typeof text !== 'string' || text === '') return [];
  const samples: WindowSample[] = [];
  for (const entry of text.split(';', 1024)) {
    const match = ENTRY.exec(entry);
    if (!match) continue;
    samples.push({
      t: Number(match[1]),
      count: Number(match[2]),
      max: Number(match[3]),
      drop: match[4] === '-' ? null : Number(match[4]),
      boot: match[5] === '-' ? null : (match[5] as string),
    });
  }
  return samples.sort((a, b) => a.t - b.t);
}

export class SampleWindowStore {
  constructor(
    private readonly client: DynamoDBDocumentClient,
    private readonly tableName: string,
    private readonly settings: ForecastSettings,
  ) {}

  /** Adds one host's samples to its window and forecasts from the result. */
  async record(group: SampleGroup, now: Date): Promise<RecordedSamples> {
    if (!worthStoring(group.samples, this.settings)) {
      const merged = mergeSamples([], group.samples, this.settings, now.getTime());
      return { window: [], forecast: null, skipped: merged.skipped, unloaded: false, stored: false };
    }
    const key = sampleWindowKey(group.host, group.netns);
    for (let attempt = 1; attempt <= MAX_ATTEMPTS; attempt++) {
      const { Item: item } = await this.client.send(
        new GetCommand({ TableName: this.tableName, Key: key, ConsistentRead: true }),
      );
      const version = typeof item?.version === 'number' ? item.version : 0;
      const merged = mergeSamples(decodeWindow(item?.samples), group.samples, this.settings, now.getTime());
      try {
        await this.client.send(
          new PutCommand({
            TableName: this.tableName,
            Item: {
              ...key,
              host: group.host,
              netns: group.netns,
              samples: encodeWindow(merged.samples),
              version: version + 1,
              updatedAt: now.toISOString(),
              expiresAt: Math.floor(now.getTime() / 1000) + this.settings.windowSeconds + TTL_SLACK_SECONDS,
            },
            ConditionExpression: item === undefined ? 'attribute_not_exists(pk)' : 'version = :version',
            ...(item === undefined ? {} : { ExpressionAttributeValues: { ':version': version } }),
          }),
        );
      } catch (error) {
        // A concurrent delivery of the same host stored first: merge into what it stored.
        if (error instanceof ConditionalCheckFailedException) {
          await sleep(Math.random() * BASE_BACKOFF_MS * 2 ** Math.min(attempt, 6));
          continue;
        }
        throw error;
      }
      return {
        window: merged.samples,
        forecast: forecastTable(merged.samples, this.settings),
        skipped: merged.skipped,
        unloaded: merged.unloaded,
        stored: true,
      };
    }
    throw new Error(
      `could not store the samples of ${group.host}: the window changed concurrently ${MAX_ATTEMPTS} times`,
    );
  }
}
