import type { ManagedInstanceTag } from '../functions/core/defaults.js';

/**
 * The tag key as State Manager, Run Command and IAM all accept it. EC2 allows 1 to 128 characters
 * and reserves `aws:` (https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/Using_Tags.html); an
 * SSM target key `tag:<key>` allows only letters, digits, spaces and `_ . : / = - @` (no `+`), at
 * most 163 characters (https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_Target.html).
 * ASCII only, so that the key reads the same in a condition key (`ssm:resourceTag/<key>`).
 */
const TAG_KEY = /^[A-Za-z0-9 _.:/=@-]{1,128}$/;
/** Tag values: EC2 allows up to 256 characters; an SSM target value must not be empty (same pages). */
const TAG_VALUE = /^[A-Za-z0-9 _.:/=+@-]{1,256}$/;

/** Rejects a tag that would only fail at deploy time, naming the prop the way `nameOf` says. */
export function checkManagedInstanceTag(
  tag: ManagedInstanceTag,
  nameOf: (field: 'key' | 'value') => string,
): ManagedInstanceTag {
  if (!TAG_KEY.test(tag.key) || /^aws:/i.test(tag.key)) {
    throw new Error(
      `${nameOf('key')} must be 1 to 128 characters from letters, digits, spaces and _ . : / = - @, not starting with 'aws:' (an EC2 tag key State Manager can target), got ${JSON.stringify(tag.key)}`,
    );
  }
  if (!TAG_VALUE.test(tag.value)) {
    throw new Error(
      `${nameOf('value')} must be 1 to 256 characters from letters, digits, spaces and _ . : / = + - @, got ${JSON.stringify(tag.value)}`,
    );
  }
  return tag;
}

/**
 * The targets of a State Manager association (or a Run Command) that reach exactly the managed
 * instances: `Key=tag:<key>,Values=<value>`, the form State Manager and Run Command take
 * (https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_Target.html).
 */
export function managedInstanceTargets(tag: ManagedInstanceTag): { key: string; values: string[] }[] {
  return [{ key: `tag:${tag.key}`, values: [tag.value] }];
}
