import { createServer, type IncomingMessage, request, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * AWS endpoints on loopback, for tests that must go through the SDK's whole middleware stack
 * (retries, backoff, error parsing) rather than around it: a proxy that throttles chosen requests
 * on their way to a real server (dynalite), and minimal fakes of the Step Functions and EC2 APIs.
 * The SDK is pointed at them with its own AWS_ENDPOINT_URL_<SERVICE> variables.
 */

export interface LoopbackServer {
  readonly endpoint: string;
  /** Requests answered with a throttling error so far. */
  readonly throttled: () => number;
  /** Requests answered normally (forwarded or served) so far. */
  readonly served: () => number;
  close(): Promise<void>;
}

async function readBody(incoming: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of incoming) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

async function listen(
  handle: (
    incoming: IncomingMessage,
    body: Buffer,
    response: ServerResponse,
  ) => Promise<'throttled' | 'served'>,
): Promise<LoopbackServer> {
  let throttled = 0;
  let served = 0;
  const server: Server = createServer((incoming, response) => {
    readBody(incoming)
      .then((body) => handle(incoming, body, response))
      .then((result) => {
        if (result === 'throttled') throttled++;
        else served++;
      })
      .catch((error: unknown) => {
        response.writeHead(500).end(String(error));
      });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    throttled: () => throttled,
    served: () => served,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/**
 * Forwards DynamoDB requests to `target`, except those `shouldThrottle` picks (called with the
 * request's 1-based number and its X-Amz-Target), which get DynamoDB's throttling error.
 */
export function throttlingDynamoProxy(
  target: string,
  shouldThrottle: (requestNumber: number, operation: string) => boolean,
): Promise<LoopbackServer> {
  const to = new URL(target);
  let count = 0;
  return listen(async (incoming, body, response) => {
    count++;
    const operation = String(incoming.headers['x-amz-target'] ?? '').split('.')[1] ?? '';
    if (shouldThrottle(count, operation)) {
      response.writeHead(400, { 'content-type': 'application/x-amz-json-1.0' }).end(
        JSON.stringify({
          __type: 'com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException',
          message: 'The level of configured provisioned throughput for the table was exceeded.',
        }),
      );
      return 'throttled';
    }
    await new Promise<void>((resolve, reject) => {
      const forwarded = request(
        {
          host: to.hostname,
          port: to.port,
          method: incoming.method,
          path: incoming.url,
          headers: incoming.headers,
        },
        (upstream) => {
          response.writeHead(upstream.statusCode ?? 502, upstream.headers);
          upstream.pipe(response);
          upstream.on('end', resolve);
          upstream.on('error', reject);
        },
      );
      forwarded.on('error', reject);
      forwarded.end(body);
    });
    return 'served';
  });
}

/**
 * Step Functions' StartExecution (AWS JSON 1.0): a name starts once (a second start is
 * ExecutionAlreadyExists); requests `shouldThrottle` picks get ThrottlingException.
 */
export function fakeStepFunctions(
  shouldThrottle: (requestNumber: number) => boolean,
): Promise<LoopbackServer & { readonly executions: Map<string, unknown> }> {
  const executions = new Map<string, unknown>();
  let count = 0;
  const reply = (response: ServerResponse, status: number, body: unknown) =>
    response.writeHead(status, { 'content-type': 'application/x-amz-json-1.0' }).end(JSON.stringify(body));
  return listen(async (incoming, body, response) => {
    count++;
    if (incoming.headers['x-amz-target'] !== 'AWSStepFunctions.StartExecution') {
      reply(response, 400, {
        __type: 'UnknownOperationException',
        message: String(incoming.headers['x-amz-target']),
      });
      return 'served';
    }
    if (shouldThrottle(count)) {
      reply(response, 400, { __type: 'ThrottlingException', message: 'Rate exceeded' });
      return 'throttled';
    }
    const input = JSON.parse(body.toString('utf8')) as { name: string; stateMachineArn: string };
    if (executions.has(input.name)) {
      reply(response, 400, {
        __type: 'ExecutionAlreadyExists',
        message: `Execution Already Exists: '${input.name}'`,
      });
      return 'served';
    }
    executions.set(input.name, input);
    reply(response, 200, {
      executionArn: `${input.stateMachineArn.replace(':stateMachine:', ':execution:')}:${input.name}`,
      startDate: Date.now() / 1000,
    });
    return 'served';
  }).then((server) => Object.assign(server, { executions }));
}

/**
 * EC2's DescribeTags (EC2 query protocol): `tags` by instance id; requests `shouldThrottle` picks
 * get RequestLimitExceeded, EC2's throttling error.
 */
export function fakeEc2(
  tags: Readonly<Record<string, Readonly<Record<string, string>>>>,
  shouldThrottle: (requestNumber: number) => boolean,
): Promise<LoopbackServer> {
  let count = 0;
  const xml = (text: string) => text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
  return listen(async (_incoming, body, response) => {
    count++;
    const form = new URLSearchParams(body.toString('utf8'));
    if (shouldThrottle(count)) {
      response
        .writeHead(503, { 'content-type': 'text/xml' })
        .end(
          '<?xml version="1.0" encoding="UTF-8"?><Response><Errors><Error><Code>RequestLimitExceeded</Code><Message>Request limit exceeded.</Message></Error></Errors><RequestID>throttled</RequestID></Response>',
        );
      return 'throttled';
    }
    if (form.get('Action') !== 'DescribeTags') {
      response.writeHead(400).end(`unexpected action ${form.get('Action')}`);
      return 'served';
    }
    const filters = new Map<string, string>();
    for (let i = 1; form.has(`Filter.${i}.Name`); i++) {
      filters.set(String(form.get(`Filter.${i}.Name`)), String(form.get(`Filter.${i}.Value.1`)));
    }
    const instance = filters.get('resource-id') ?? '';
    const key = filters.get('key');
    const items = Object.entries(tags[instance] ?? {})
      .filter(([name]) => key === undefined || name === key)
      .map(
        ([name, value]) =>
          `<item><resourceId>${xml(instance)}</resourceId><resourceType>instance</resourceType><key>${xml(name)}</key><value>${xml(value)}</value></item>`,
      )
      .join('');
    response
      .writeHead(200, { 'content-type': 'text/xml' })
      .end(
        `<?xml version="1.0" encoding="UTF-8"?><DescribeTagsResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>ok</requestId><tagSet>${items}</tagSet></DescribeTagsResponse>`,
      );
    return 'served';
  });
}
