import { GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import { beforeAll, describe, expect, it } from 'vitest';
import { LOCAL_REGION } from '../../support/dynalite.js';
import { handlerHarness } from '../../support/handler-harness.js';

const PROBE = 'CONNTRACK_RESPONDER_HARNESS_PROBE';

describe('the handler harness', () => {
  const regionBefore = process.env.AWS_REGION;

  describe('in a handler test', () => {
    const { mocks, load } = handlerHarness({ sts: STSClient });
    let seenAtImport: string | undefined;
    let first: typeof import('../../../functions/core/defaults.js');
    let second: typeof import('../../../functions/core/defaults.js');

    beforeAll(async () => {
      first = await load({ [PROBE]: 'set' }, async () => {
        seenAtImport = process.env[PROBE];
        return import('../../../functions/core/defaults.js');
      });
      second = await load({}, () => import('../../../functions/core/defaults.js'));
    });

    it('sets the environment before the import and imports from a fresh module registry', () => {
      expect(seenAtImport).toBe('set');
      expect(process.env.AWS_REGION).toBe(LOCAL_REGION);
      expect(process.env.POWERTOOLS_LOG_LEVEL).toBe('SILENT');
      expect(second).not.toBe(first);
    });

    it('stubs the named SDK clients', async () => {
      mocks.sts.on(GetCallerIdentityCommand).resolves({ Account: '123456789012' });
      const answer = await new STSClient({}).send(new GetCallerIdentityCommand({}));
      expect(answer.Account).toBe('123456789012');
      expect(mocks.sts.commandCalls(GetCallerIdentityCommand)).toHaveLength(1);
    });

    it('resets the stubs before each test', async () => {
      expect(mocks.sts.calls()).toHaveLength(0);
      expect(await new STSClient({}).send(new GetCallerIdentityCommand({}))).toBeUndefined();
    });
  });

  it('restores the environment after the tests that used it', () => {
    expect(process.env[PROBE]).toBeUndefined();
    expect(process.env.AWS_REGION).toBe(regionBefore);
  });
});
