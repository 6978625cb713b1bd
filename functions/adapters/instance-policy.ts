import { DescribeTagsCommand, type EC2Client } from '@aws-sdk/client-ec2';
import { GetCalendarStateCommand, ListTagsForResourceCommand, type SSMClient } from '@aws-sdk/client-ssm';

/**
 * Where an instance's own policy comes from: its mode tag, read through EC2 (`DescribeTags`) for
 * EC2 instances and through SSM (`ListTagsForResource`) for hybrid managed nodes (`mi-…`), which
 * have no EC2 tags; and the optional SSM Change Calendar (`GetCalendarState`).
 */

export interface ModeTag {
  readonly value: string | null;
  readonly source: 'ec2' | 'ssm';
}

export async function readModeTag(
  clients: { readonly ec2: EC2Client; readonly ssm: SSMClient },
  instanceId: string,
  key: string,
): Promise<ModeTag> {
  if (instanceId.startsWith('mi-')) {
    const result = await clients.ssm.send(
      new ListTagsForResourceCommand({ ResourceType: 'ManagedInstance', ResourceId: instanceId }),
    );
    const tag = (result.TagList ?? []).find((candidate) => candidate.Key === key);
    return { value: tag?.Value ?? null, source: 'ssm' };
  }
  const result = await clients.ec2.send(
    new DescribeTagsCommand({
      Filters: [
        { Name: 'resource-id', Values: [instanceId] },
        { Name: 'key', Values: [key] },
      ],
    }),
  );
  const tag = (result.Tags ?? []).find(
    (candidate) => candidate.Key === key && candidate.ResourceId === instanceId,
  );
  return { value: tag?.Value ?? null, source: 'ec2' };
}

/** OPEN or CLOSED (anything else is passed on as is, and the guardrail treats it as CLOSED). */
export async function readCalendarState(
  ssm: SSMClient,
  calendar: string,
): Promise<{ name: string; state: string }> {
  const result = await ssm.send(new GetCalendarStateCommand({ CalendarNames: [calendar] }));
  return { name: calendar, state: result.State ?? 'UNKNOWN' };
}
