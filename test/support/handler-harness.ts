import type { Client } from '@smithy/types';
import { type AwsClientStub, mockClient } from 'aws-sdk-client-mock';
import { afterAll, beforeEach, vi } from 'vitest';
import { LOCAL_CREDENTIALS, LOCAL_REGION } from './dynalite.js';

/**
 * The one set-up of a Lambda handler test: the handler's environment (restored after the file's
 * tests), a fresh module registry and the dynamic import of the handler (a handler reads its
 * configuration when its module is first evaluated, so the environment must be in place first), and
 * aws-sdk-client-mock stubs of the SDK clients it calls, reset before each test.
 *
 * Call it at the top of a `describe` body, before the test's own `beforeEach`: its reset runs first,
 * so a test's `beforeEach` only says how the clients answer.
 */

// biome-ignore lint/suspicious/noExplicitAny: any SDK v3 client class; its own types give the stub's.
type ClientClass = { prototype: Client<any, any, any> };

export type ClientMocks<Clients extends Record<string, ClientClass>> = {
  readonly [Name in keyof Clients]: AwsClientStub<Clients[Name]['prototype']>;
};

/** What every handler here runs with: a region, the local credentials, Powertools quiet. */
export const HANDLER_BASE_ENVIRONMENT: Readonly<Record<string, string>> = {
  AWS_REGION: LOCAL_REGION,
  AWS_ACCESS_KEY_ID: LOCAL_CREDENTIALS.accessKeyId,
  AWS_SECRET_ACCESS_KEY: LOCAL_CREDENTIALS.secretAccessKey,
  POWERTOOLS_LOG_LEVEL: 'SILENT',
  POWERTOOLS_METRICS_DISABLED: 'true',
  POWERTOOLS_TRACE_ENABLED: 'false',
};

export interface HandlerHarness<Clients extends Record<string, ClientClass>> {
  /** One stub per named client, reset before each test. */
  readonly mocks: ClientMocks<Clients>;
  /**
   * Sets HANDLER_BASE_ENVIRONMENT and `environment` (an `undefined` value removes the variable),
   * resets the module registry, then runs `load` (the test's own `import(...)` of the handler
   * modules, so the paths stay relative to the test file) and returns what it returns.
   */
  load<Modules>(
    environment: Readonly<Record<string, string | undefined>>,
    load: () => Promise<Modules>,
  ): Promise<Modules>;
}

export function handlerHarness<Clients extends Record<string, ClientClass>>(
  clients: Clients = {} as Clients,
): HandlerHarness<Clients> {
  const mocks = Object.fromEntries(
    Object.entries(clients).map(([name, client]) => [name, mockClient(client)]),
  ) as unknown as ClientMocks<Clients>;
  const stubs = Object.values(mocks) as { reset(): void; restore(): void }[];
  /** The value each variable had before the first `load` changed it. */
  const previous = new Map<string, string | undefined>();

  beforeEach(() => {
    for (const stub of stubs) stub.reset();
  });
  afterAll(() => {
    for (const [name, value] of previous) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
    previous.clear();
    for (const stub of stubs) stub.restore();
  });

  return {
    mocks,
    async load(environment, load) {
      for (const [name, value] of Object.entries({ ...HANDLER_BASE_ENVIRONMENT, ...environment })) {
        if (!previous.has(name)) previous.set(name, process.env[name]);
        if (value === undefined) delete process.env[name];
        else process.env[name] = value;
      }
      vi.resetModules();
      return load();
    },
  };
}
