import { DynamoDBDocumentClient, GetCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  decodeWindow,
  encodeWindow,
  SampleWindowStore,
  sampleWindowKey,
} from '../../../functions/adapters/sample-window-store.js';
import {
  DEFAULT_FORECAST_SETTINGS,
  type HostSample,
  parseSampleLine,
  type SampleGroup,
  type WindowSample,
} from '../../../functions/core/forecast/index.js';
import { type LocalDynamo, startLocalDynamo } from '../../support/dynalite.js';

/**
 * Each host's window of samples between invocations of the stateless detect function, on a real
 * DynamoDB-compatible server: concurrent deliveries of the same host race for real and lose
 * nothing; what is stored reads back; a damaged stored window costs only its damaged entries.
 */

const HOST = 'i-0123456789abcdef0';
const START = Date.parse('2026-12-05T12:00:00Z');
const MAX = 262_144;

function sample(index: number, count: number): HostSample {
  const parsed = parseSampleLine(
    `conntrack-responder-sample v=1 seq=${index + 1} t=${(START + index * 60_000) / 1000} boot=1f0e2d3c ns=4026531840 count=${count} max=${MAX} drop=0`,
  );
  if (!parsed.ok) throw new Error(parsed.reason);
  return parsed.sample;
}

const group = (samples: readonly HostSample[]): SampleGroup => ({
  host: HOST,
  netns: '4026531840',
  samples,
  events: [],
});

describe('SampleWindowStore', () => {
  let dynamo: LocalDynamo;
  let documents: DynamoDBDocumentClient;
  let tableName: string;
  let store: SampleWindowStore;

  beforeAll(async () => {
    dynamo = await startLocalDynamo();
    documents = DynamoDBDocumentClient.from(dynamo.client);
  });
  afterAll(() => dynamo.close());
  beforeEach(async () => {
    tableName = await dynamo.createIncidentTable();
    store = new SampleWindowStore(documents, tableName, DEFAULT_FORECAST_SETTINGS);
  });

  const stored = async () =>
    (
      await documents.send(
        new GetCommand({
          TableName: tableName,
          Key: sampleWindowKey(HOST, '4026531840'),
          ConsistentRead: true,
        }),
      )
    ).Item;

  it('keeps every sample of concurrent deliveries of one host (optimistic concurrency)', async () => {
    const now = new Date(START + 20 * 60_000);
    await Promise.all(
      Array.from({ length: 8 }, (_, index) =>
        store.record(group([sample(index, 150_000 + 1_000 * index)]), now),
      ),
    );
    const item = await stored();
    expect(decodeWindow(item?.samples).map((entry) => entry.count)).toEqual(
      Array.from({ length: 8 }, (_, index) => 150_000 + 1_000 * index),
    );
    expect(item?.version).toBe(8);
    // Removed by DynamoDB's TTL a while after the window ends.
    expect(item?.expiresAt).toBeGreaterThan(now.getTime() / 1000 + DEFAULT_FORECAST_SETTINGS.windowSeconds);
  });

  it('forecasts from the stored window and the new samples together', async () => {
    const now = new Date(START + 10 * 60_000);
    await store.record(group([0, 1, 2].map((index) => sample(index, 150_000 + 6_000 * index))), now);
    const recorded = await store.record(
      group([3, 4, 5, 6, 7].map((index) => sample(index, 150_000 + 6_000 * index))),
      now,
    );
    expect(recorded.window).toHaveLength(8);
    expect(recorded.forecast?.growthPerSecond).toBeCloseTo(100, 0);
    expect(recorded.forecast?.trigger).toBe('horizon');
  });

  it('touches nothing for an idle table', async () => {
    const recorded = await store.record(group([sample(0, 1_000)]), new Date(START));
    expect(recorded).toMatchObject({ stored: false, forecast: null, window: [] });
    expect(await stored()).toBeUndefined();
  });
});

describe('the stored window', () => {
  it('reads back what was written', () => {
    const window: WindowSample[] = [
      { t: START, count: 1, max: 2, drop: null, boot: null },
      { t: START + 1, count: 3, max: 4, drop: 5, boot: 'deadbeef' },
    ];
    expect(decodeWindow(encodeWindow(window))).toEqual(window);
  });

  it('drops damaged entries, keeps the good ones, and refuses what is not a string', () => {
    expect(decodeWindow(`${START},1,2,-,-;garbage;1e9,1,1,1,1;${START + 5},7,8,9,-`)).toEqual([
      { t: START, count: 1, max: 2, drop: null, boot: null },
      { t: START + 5, count: 7, max: 8, drop: 9, boot: null },
    ]);
    for (const value of [undefined, null, 42, {}, ['x'], '']) expect(decodeWindow(value)).toEqual([]);
  });

  it('reads a bounded number of entries whatever is stored', () => {
    const huge = Array.from({ length: 5_000 }, (_, index) => `${START + index},1,2,-,-`).join(';');
    expect(decodeWindow(huge).length).toBeLessThanOrEqual(1024);
  });
});
