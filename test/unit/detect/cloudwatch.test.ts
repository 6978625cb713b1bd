import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { decodeAwsLogsData } from '../../../functions/core/detect/awslogs-decode.js';
import {
  type CloudWatchLogsData,
  DEFAULT_INSTANCE_ID_PATTERN,
  DetectionSession,
  detectInSubscription,
  hostForLogStream,
  parseCloudWatchLogsData,
  readCloudWatchLogsData,
} from '../../../functions/core/detect/index.js';
import { agentJournaldEvent, SEED_001_KEEPALIVED, SEED_001_MESSAGES } from './real-lines.js';

const INSTANCE = 'i-0a1b2c3d4e5f67890';

/** What the CloudWatch agent ships from /var/log/messages: whole lines, one event each. */
function subscriptionData(
  messages: string[],
  logStream = INSTANCE,
  firstTimestamp = 1773433305000,
): CloudWatchLogsData {
  return {
    messageType: 'DATA_MESSAGE',
    owner: '123456789012',
    logGroup: '/ec2/var/log/messages',
    logStream,
    subscriptionFilters: ['conntrack-responder'],
    logEvents: messages.map((message, index) => ({
      id: `3861938452968327360584216316781342968318493562839${String(index).padStart(5, '0')}`,
      timestamp: firstTimestamp + index,
      message,
    })),
  };
}

/** The Lambda event exactly as CloudWatch Logs invokes the function: base64(gzip(JSON)). */
function lambdaEvent(data: CloudWatchLogsData) {
  return { awslogs: { data: gzipSync(Buffer.from(JSON.stringify(data))).toString('base64') } };
}

describe('detectInSubscription', () => {
  it('groups a real Lambda event by the instance id in the stream name, with the events as evidence', () => {
    const data = subscriptionData([...SEED_001_MESSAGES, SEED_001_KEEPALIVED[0] as string]);
    const decoded = parseCloudWatchLogsData(decodeAwsLogsData(lambdaEvent(data).awslogs.data));
    const result = detectInSubscription(decoded, { now: new Date('2026-11-21T00:00:00Z') });
    expect(result.groups).toEqual([
      {
        host: INSTANCE,
        netns: null,
        kind: 'table-full',
        dropLines: 4,
        suppressed: 419,
        firstSeen: '2026-03-13T20:21:45.000Z',
        lastSeen: '2026-03-13T20:21:59.000Z',
      },
    ]);
    expect(result.ignored).toEqual({ 'not-kernel': 0, unrelated: 0, unreadable: 0 });
    // The seven kernel lines, in order; keepalived's line is no evidence.
    expect(result.events[0]?.map((event) => event.message)).toEqual(SEED_001_MESSAGES);
    expect(result.events[0]?.[0]).toBe(decoded.logEvents[0]);
  });

  it('keeps at most 20 events per group, the earliest ones', () => {
    const lines = Array.from(
      { length: 30 },
      (_, index) =>
        `Mar 13 20:21:${String(index).padStart(2, '0')} web kernel: nf_conntrack: table full, dropping packet`,
    );
    const result = detectInSubscription(subscriptionData(lines));
    expect(result.groups[0]?.dropLines).toBe(30);
    expect(result.events[0]).toHaveLength(20);
    expect(result.events[0]?.[19]?.message).toBe(lines[19]);
  });

  it("uses the event's timestamp when the line has no wall time, and its year for year-less lines", () => {
    const timestamp = Date.parse('2025-12-31T23:59:58Z');
    const result = detectInSubscription(
      subscriptionData(
        [
          'kernel: [1694413.644132] nf_conntrack: nf_conntrack: table full, dropping packet',
          'Dec 31 23:59:57 web kernel: nf_conntrack: table full, dropping packet',
        ],
        INSTANCE,
        timestamp,
      ),
      { now: new Date('2027-06-01T00:00:00Z') },
    );
    expect(result.groups[0]).toMatchObject({
      firstSeen: '2025-12-31T23:59:57.000Z',
      lastSeen: '2025-12-31T23:59:58.000Z',
    });
  });

  it('counts bare messages and other programs as not-kernel: nobody can tell who wrote them', () => {
    const result = detectInSubscription(
      subscriptionData([
        'nf_conntrack: table full, dropping packet',
        'Mar 13 20:21:45 web app[311]: nf_conntrack: table full, dropping packet',
      ]),
    );
    expect(result).toEqual({
      groups: [],
      ignored: { 'not-kernel': 2, unrelated: 0, unreadable: 0 },
      events: [],
      problems: [],
    });
  });

  it('acknowledges a CONTROL_MESSAGE with nothing', () => {
    const control: CloudWatchLogsData = {
      messageType: 'CONTROL_MESSAGE',
      owner: 'CloudwatchLogs',
      logGroup: '',
      logStream: '',
      subscriptionFilters: [],
      logEvents: [
        {
          id: '',
          timestamp: 1773433305000,
          message: 'CWL CONTROL MESSAGE: Checking health of destination Lambda.',
        },
      ],
    };
    expect(detectInSubscription(control)).toEqual({
      groups: [],
      ignored: { 'not-kernel': 0, unrelated: 0, unreadable: 0 },
      events: [],
      problems: [],
    });
  });

  it('reads journald JSON shipped as the event message', () => {
    const message = JSON.stringify({
      _TRANSPORT: 'kernel',
      _HOSTNAME: 'ignored-for-cloudwatch',
      __REALTIME_TIMESTAMP: '1773433305000000',
      MESSAGE: 'nf_conntrack: nf_conntrack: table full in netns 4026532177, dropping packet',
    });
    const result = detectInSubscription(subscriptionData([message]));
    expect(result.groups[0]).toMatchObject({
      host: INSTANCE,
      netns: '4026532177',
      firstSeen: '2026-03-13T20:21:45.000Z',
    });
  });
});

describe("the CloudWatch agent's journald events (the body wrapper)", () => {
  it('counts kernel-transport entries, with the instance id from the stream and the journal time', () => {
    const result = detectInSubscription(
      subscriptionData([
        agentJournaldEvent({
          message: 'net_ratelimit: 9 callbacks suppressed',
          realtimeMicros: '1773433305000000',
        }),
        agentJournaldEvent({
          message: 'nf_conntrack: nf_conntrack: table full, dropping packet',
          realtimeMicros: '1773433306250000',
        }),
      ]),
    );
    expect(result.groups).toEqual([
      {
        host: INSTANCE,
        netns: null,
        kind: 'table-full',
        dropLines: 1,
        suppressed: 9,
        firstSeen: '2026-03-13T20:21:45.000Z',
        lastSeen: '2026-03-13T20:21:46.250Z',
      },
    ]);
    expect(result.ignored['not-kernel']).toBe(0);
  });

  it("keeps the kernel-origin rule: only the journal's own _TRANSPORT inside body counts", () => {
    const forged = JSON.stringify({
      // A wrapper key claiming the kernel does not make the entry the kernel's.
      _TRANSPORT_: 'kernel',
      body: JSON.parse(agentJournaldEvent({ message: 'x', transport: 'syslog' })).body,
    }).replace('"MESSAGE":"x"', '"MESSAGE":"nf_conntrack: table full, dropping packet"');
    const result = detectInSubscription(
      subscriptionData([
        agentJournaldEvent({
          message: 'nf_conntrack: table full, dropping packet',
          transport: 'syslog',
          identifier: 'kernel',
        }),
        agentJournaldEvent({ message: 'nf_conntrack: table full, dropping packet', transport: 'stdout' }),
        forged,
      ]),
    );
    expect(result.groups).toEqual([]);
    expect(result.ignored['not-kernel']).toBe(3);
  });

  it('reads the wrapper in the CLI session too (a saved agent event)', () => {
    const session = new DetectionSession({ defaultHost: 'h' });
    session.jsonValue(
      JSON.parse(
        agentJournaldEvent({ message: 'nf_conntrack: expectation table full', hostname: 'ip-10-0-0-1' }),
      ),
    );
    expect(session.report().groups).toEqual([
      expect.objectContaining({ host: 'ip-10-0-0-1', kind: 'expect-table-full', dropLines: 1 }),
    ]);
  });
});

describe('hostForLogStream', () => {
  const cases: [string, RegExp | undefined, string][] = [
    ['i-0a1b2c3d4e5f67890', undefined, 'i-0a1b2c3d4e5f67890'],
    ['i-0a1b2c3d', undefined, 'i-0a1b2c3d'],
    ['web-01_i-0a1b2c3d4e5f67890', undefined, 'i-0a1b2c3d4e5f67890'],
    ['ip-10-0-1-17.ec2.internal', undefined, 'ip-10-0-1-17.ec2.internal'],
    ['node/web-01', /node\/(\S+)/, 'web-01'],
    ['i-0a1b2c3d4e5f67890', /i-[0-9a-f]+/g, 'i-0a1b2c3d4e5f67890'],
  ];
  it.each(cases)('%s with %s → %s', (stream, pattern, host) => {
    expect(hostForLogStream(stream, pattern)).toBe(host);
    // A global pattern must give the same answer twice (no lastIndex state).
    expect(hostForLogStream(stream, pattern)).toBe(host);
  });

  it('defaults to the documented instance id pattern', () => {
    expect(DEFAULT_INSTANCE_ID_PATTERN.source).toBe('i-[0-9a-f]{8,17}');
  });
});

describe('decoding and validating payloads', () => {
  it('refuses an envelope that is not base64, not gzip, or not JSON', () => {
    expect(() => decodeAwsLogsData('not base64!')).toThrow(/not base64/);
    expect(() => decodeAwsLogsData(Buffer.from('plain').toString('base64'))).toThrow(/not gzip/);
    expect(() => decodeAwsLogsData(gzipSync('{nope').toString('base64'))).toThrow(/does not hold JSON/);
  });

  it('names the field that is wrong', () => {
    expect(() => parseCloudWatchLogsData({ ...subscriptionData([]), logStream: 7 })).toThrow(
      /logStream is not a string/,
    );
    expect(() =>
      parseCloudWatchLogsData({
        ...subscriptionData([]),
        logEvents: [{ id: 'x', timestamp: 'soon', message: '' }],
      }),
    ).toThrow(/timestamp is not a number \(logEvents\[0\]\)/);
  });

  it('sets a malformed event aside, names it, and reads the events beside it (session and Lambda core)', () => {
    const data = subscriptionData(SEED_001_MESSAGES);
    // A third drop line whose event has a text timestamp, and an event that is not an object.
    const payload = {
      ...data,
      logEvents: [
        ...data.logEvents.slice(0, 3),
        { id: 'bad-1', timestamp: 'soon', message: SEED_001_MESSAGES[2] },
        42,
        ...data.logEvents.slice(3),
      ],
    };
    const named = [
      'logEvents[3] (id "bad-1"): timestamp is not a number',
      'logEvents[4]: the event is not an object',
    ];
    const expectedGroup = { host: INSTANCE, dropLines: 4, suppressed: 419 };

    const session = new DetectionSession({ decodeAwsLogsData });
    expect(session.jsonValue(payload)).toEqual(named);
    expect(session.jsonValue(lambdaEvent(payload as CloudWatchLogsData))).toEqual(named);
    const report = session.report();
    expect(report.groups).toEqual([
      expect.objectContaining({ ...expectedGroup, dropLines: 8, suppressed: 838 }),
    ]);
    expect(report.ignored).toEqual({ 'not-kernel': 0, unrelated: 0, unreadable: 2 });

    const { data: valid, refused } = readCloudWatchLogsData(payload);
    expect(valid.logEvents).toEqual(data.logEvents);
    const result = detectInSubscription(valid, {}, refused);
    expect(result.groups).toEqual([expect.objectContaining(expectedGroup)]);
    expect(result.ignored).toEqual({ 'not-kernel': 0, unrelated: 0, unreadable: 1 });
    expect(result.problems).toEqual(named);
    // The payload's own fields still have to be right: without them no event can be placed.
    expect(() => readCloudWatchLogsData({ ...payload, logStream: 7 })).toThrow(/logStream is not a string/);
  });

  it('takes the Lambda event through a session when a decoder is given, and refuses it without one', () => {
    const event = lambdaEvent(subscriptionData(SEED_001_MESSAGES));
    const session = new DetectionSession({ decodeAwsLogsData });
    expect(session.jsonValue(event)).toEqual([]);
    expect(session.report().groups[0]).toMatchObject({ host: INSTANCE, dropLines: 4, suppressed: 419 });
    expect(new DetectionSession().jsonValue(event)).toEqual([expect.stringMatching(/needs a decoder/)]);
  });
});
