import { describe, expect, it } from 'vitest';
import { DEFAULT_MANAGED_INSTANCE_TAG } from '../../functions/core/defaults.js';
import { managedInstanceTargets } from '../../infra/managed-instances.js';
import { synthesize } from './support.js';

describe('the opt-in tag of managed instances', () => {
  it('defaults to conntrack-responder:managed = true and targets it as State Manager does', () => {
    const { stack } = synthesize();
    expect(stack.responder.managedInstanceTag).toEqual({ key: 'conntrack-responder:managed', value: 'true' });
    expect(managedInstanceTargets(DEFAULT_MANAGED_INSTANCE_TAG)).toEqual([
      { key: 'tag:conntrack-responder:managed', values: ['true'] },
    ]);
  });

  it('takes another key and value', () => {
    const { stack } = synthesize({
      managedInstanceTagKey: 'team/ops @ edge',
      managedInstanceTagValue: 'v=1+2',
    });
    expect(stack.responder.managedInstanceTag).toEqual({ key: 'team/ops @ edge', value: 'v=1+2' });
  });

  it.each([
    [{ managedInstanceTagKey: '' }, /managedInstanceTagKey must be 1 to 128 characters/],
    [{ managedInstanceTagKey: 'k'.repeat(129) }, /managedInstanceTagKey must be 1 to 128/],
    [
      { managedInstanceTagKey: 'AWS:managed' },
      /managedInstanceTagKey .*not starting with 'aws:'.*got "AWS:managed"/,
    ],
    // `+` is a valid EC2 tag key character, but an SSM target key refuses it.
    [{ managedInstanceTagKey: 'a+b' }, /managedInstanceTagKey .*got "a\+b"/],
    [{ managedInstanceTagKey: 'a\nb' }, /managedInstanceTagKey .*got "a\\nb"/],
    [{ managedInstanceTagValue: '' }, /managedInstanceTagValue must be 1 to 256 characters/],
    [{ managedInstanceTagValue: 'v'.repeat(257) }, /managedInstanceTagValue must be 1 to 256/],
    [{ managedInstanceTagValue: 'yes*' }, /managedInstanceTagValue .*got "yes\*"/],
  ])('rejects %j at synth, naming the prop', (props, message) => {
    expect(() => synthesize(props)).toThrow(message);
  });

  it('accepts the longest key and value EC2 allows', () => {
    expect(() =>
      synthesize({ managedInstanceTagKey: 'k'.repeat(128), managedInstanceTagValue: 'v'.repeat(256) }),
    ).not.toThrow();
  });
});
