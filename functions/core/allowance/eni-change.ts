import { z } from 'zod';
import { ResponderError, TASK_ERROR } from '../errors.js';
import { formatIssues } from '../zod-issues.js';
import {
  EC2_FIELD_NAMES,
  ENI_TIMEOUT_FIELDS,
  type EniTimeouts,
  formatTimeouts,
  isInRange,
  neverLonger,
  sameTimeouts,
} from './eni-timeouts.js';
import { currentTimeoutsOf, type Ec2NetworkPort, ENI_ID_PATTERN, type EniDescription } from './network.js';

/**
 * Changing an ENI's idle tracking timeouts and undoing it exactly, with the same contract as the
 * host's remediation documents: the previous values are saved under the change's ChangeId
 * *before* anything is changed, a rerun with the same ChangeId and parameters changes nothing
 * more, and the rollback restores exactly what was saved, leaving alone values someone else
 * changed since. Where the scripts keep their state in /var/lib/conntrack-responder/changes on the
 * host, these changes keep theirs in a store outside the instance (the incident table on AWS, a
 * folder in the local twin), because the ENI is not the host's to hold it.
 */

/** The "document" name plans and the workflow give this change (it is an EC2 API call, not SSM). */
export const ENI_TIMEOUTS_DOCUMENT = 'eni-timeouts' as const;

export const CHANGE_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9-]{0,63}$/;

export interface EniChangeRecord {
  readonly changeId: string;
  readonly incidentId: string;
  readonly instanceId: string;
  readonly networkInterfaceId: string;
  /** What was asked for (the plan's target). */
  readonly requested: EniTimeouts;
  /** The values in effect before the change: what a rollback restores. */
  readonly previous: EniTimeouts;
  /** Which previous values were set on the ENI and which were the instance type's defaults. */
  readonly previousSources: Readonly<Record<keyof EniTimeouts, 'eni' | 'instance-type'>>;
  /** What was set (never longer than `previous`); null until the change was made. */
  readonly applied: EniTimeouts | null;
  readonly status: 'saved' | 'applied' | 'rolled-back';
  readonly savedAt: string;
  readonly appliedAt?: string;
  readonly rolledBackAt?: string;
}

/** Where change records live: one per ChangeId, created once. */
export interface EniChangeStore {
  get(changeId: string): Promise<EniChangeRecord | null>;
  /** Creates the record unless one exists under its ChangeId; false when one did. */
  create(record: EniChangeRecord): Promise<boolean>;
  update(record: EniChangeRecord): Promise<void>;
}

export class EniChangeRefusedError extends ResponderError {
  override readonly name = TASK_ERROR.eniChangeRefused;
}

const seconds = z
  .string()
  .regex(/^[1-9][0-9]{0,5}$/)
  .transform(Number);
const single = <T extends z.ZodType>(schema: T) =>
  z.union([schema, z.tuple([schema]).transform(([value]) => value)]);

/** The parameters of an eni-timeouts action, as plans write them (strings, or SSM-style lists). */
export const EniTimeoutsParametersSchema = z.object({
  ChangeId: single(z.string().regex(CHANGE_ID_PATTERN)),
  NetworkInterfaceId: single(z.string().regex(ENI_ID_PATTERN)),
  TcpEstablishedTimeout: single(seconds),
  UdpStreamTimeout: single(seconds),
  UdpTimeout: single(seconds),
});

const BlockInputSchema = z.looseObject({
  instanceId: z.string().min(1),
  incidentId: z.string().min(1),
  parameters: z.record(z.string(), z.unknown()),
  request: z.unknown(),
});

export interface EniStepResult {
  readonly request: unknown;
  /** The same shape as an SSM command's result, so that every change leaves the same record. */
  readonly invocation: {
    readonly status: 'Success';
    readonly statusDetails: 'Success';
    readonly responseCode: 0;
    readonly stdout: string;
    readonly stderr: '';
  };
}

export interface EniStepContext {
  readonly ec2: Ec2NetworkPort;
  readonly store: EniChangeStore;
  readonly now: () => Date;
}

function parseInput(payload: unknown) {
  const parsed = BlockInputSchema.safeParse(payload);
  if (!parsed.success) {
    throw new EniChangeRefusedError(`the ENI change input is invalid: ${formatIssues(parsed.error)}`);
  }
  return parsed.data;
}

/** Validates an action's parameters, including EC2's ranges (a value EC2 would refuse never leaves here). */
export function parseEniTimeoutsParameters(parameters: unknown): {
  changeId: string;
  networkInterfaceId: string;
  timeouts: EniTimeouts;
} {
  const parsed = EniTimeoutsParametersSchema.safeParse(parameters);
  if (!parsed.success) {
    throw new EniChangeRefusedError(`eni-timeouts parameters are invalid: ${formatIssues(parsed.error)}`);
  }
  const timeouts: EniTimeouts = {
    tcpEstablished: parsed.data.TcpEstablishedTimeout,
    udpStream: parsed.data.UdpStreamTimeout,
    udp: parsed.data.UdpTimeout,
  };
  for (const field of ENI_TIMEOUT_FIELDS) {
    if (!isInRange(field, timeouts[field]))
      throw new EniChangeRefusedError(`${EC2_FIELD_NAMES[field]}=${timeouts[field]} is outside EC2's range`);
  }
  return { changeId: parsed.data.ChangeId, networkInterfaceId: parsed.data.NetworkInterfaceId, timeouts };
}

function result(request: unknown, body: Record<string, unknown>): EniStepResult {
  return {
    request,
    invocation: {
      status: 'Success',
      statusDetails: 'Success',
      responseCode: 0,
      stdout: `${JSON.stringify({ document: ENI_TIMEOUTS_DOCUMENT, ...body })}\n`,
      stderr: '',
    },
  };
}

async function attachedInterface(
  ec2: Ec2NetworkPort,
  networkInterfaceId: string,
  instanceId: string,
): Promise<EniDescription> {
  const eni = await ec2.describeInterface(networkInterfaceId);
  if (eni === null) throw new EniChangeRefusedError(`${networkInterfaceId} does not exist`);
  if (eni.attachment?.instanceId !== instanceId) {
    throw new EniChangeRefusedError(
      `${networkInterfaceId} is attached to ${eni.attachment?.instanceId ?? 'no instance'}, not to ${instanceId}: it is not this incident's to change`,
    );
  }
  if (eni.requesterManaged)
    throw new EniChangeRefusedError(
      `${networkInterfaceId} is requester-managed: EC2 does not allow changing it`,
    );
  return eni;
}

async function effectiveTimeouts(
  ec2: Ec2NetworkPort,
  eni: EniDescription,
  instanceId: string,
): Promise<{ values: EniTimeouts; sources: EniChangeRecord['previousSources'] }> {
  const needsDefaults = ENI_TIMEOUT_FIELDS.some((field) => eni.connectionTracking[field] === undefined);
  const defaults = needsDefaults ? (await ec2.instanceTypeDefaults(instanceId)).defaults : null;
  const current = currentTimeoutsOf(eni, defaults);
  const unknown = ENI_TIMEOUT_FIELDS.filter((field) => current[field].value === null);
  if (unknown.length > 0) {
    throw new EniChangeRefusedError(
      `the current ${unknown.map((field) => EC2_FIELD_NAMES[field]).join(', ')} of ${eni.networkInterfaceId} cannot be read (not set on the ENI, no instance type default): an exact rollback could not be promised`,
    );
  }
  const values = Object.fromEntries(
    ENI_TIMEOUT_FIELDS.map((field) => [field, current[field].value]),
  ) as Record<keyof EniTimeouts, number>;
  const sources = Object.fromEntries(
    ENI_TIMEOUT_FIELDS.map((field) => [field, current[field].source === 'eni' ? 'eni' : 'instance-type']),
  ) as Record<keyof EniTimeouts, 'eni' | 'instance-type'>;
  return { values, sources };
}

/**
 * "Apply: change the ENI timeouts". Saves the values in effect, then sets the planned ones (never
 * longer than those in effect). Rerunning the same ChangeId with the same parameters reports
 * `unchanged` once the values are set; the same ChangeId with other parameters is refused.
 */
export async function applyEniTimeouts(payload: unknown, context: EniStepContext): Promise<EniStepResult> {
  const input = parseInput(payload);
  const { changeId, networkInterfaceId, timeouts: requested } = parseEniTimeoutsParameters(input.parameters);
  const { ec2, store, now } = context;

  let record = await store.get(changeId);
  if (record !== null) {
    if (record.networkInterfaceId !== networkInterfaceId || !sameTimeouts(record.requested, requested)) {
      throw new EniChangeRefusedError(
        `ChangeId ${changeId} was used for ${record.networkInterfaceId} (${formatTimeouts(record.requested)}): a different change needs a new ChangeId`,
      );
    }
    if (record.status === 'rolled-back')
      throw new EniChangeRefusedError(
        `ChangeId ${changeId} was rolled back: a new change needs a new ChangeId`,
      );
  }
  const eni = await attachedInterface(ec2, networkInterfaceId, input.instanceId);
  if (record === null) {
    const { values, sources } = await effectiveTimeouts(ec2, eni, input.instanceId);
    const fresh: EniChangeRecord = {
      changeId,
      incidentId: input.incidentId,
      instanceId: input.instanceId,
      networkInterfaceId,
      requested,
      previous: values,
      previousSources: sources,
      applied: null,
      status: 'saved',
      savedAt: now().toISOString(),
    };
    // Saved before anything changes: a crash after this line leaves something to roll back to.
    record = (await store.create(fresh)) ? fresh : await store.get(changeId);
    if (record === null) throw new Error(`the record of ChangeId ${changeId} vanished while it was created`);
  }

  const target = neverLonger(requested, record.previous);
  const { values: inEffect } = await effectiveTimeouts(ec2, eni, input.instanceId);
  const unchanged =
    sameTimeouts(inEffect, target) && (record.status === 'applied' || sameTimeouts(target, record.previous));
  if (!sameTimeouts(inEffect, target)) await ec2.setTimeouts(networkInterfaceId, target);
  const appliedRecord: EniChangeRecord = {
    ...record,
    applied: target,
    status: 'applied',
    appliedAt: record.appliedAt ?? now().toISOString(),
  };
  if (record.status !== 'applied' || record.applied === null || !sameTimeouts(record.applied, target)) {
    await store.update(appliedRecord);
  }
  const reasons = ENI_TIMEOUT_FIELDS.filter((field) => target[field] < requested[field]).map(
    (field) =>
      `${EC2_FIELD_NAMES[field]} stays ${target[field]} s: it was already below the planned ${requested[field]} s`,
  );
  return result(input.request, {
    changeId,
    status: unchanged ? 'unchanged' : 'applied',
    networkInterfaceId,
    instanceId: input.instanceId,
    previous: record.previous,
    previousSources: record.previousSources,
    applied: target,
    reasons,
  });
}

/**
 * "Roll back: restore the ENI timeouts". Restores the saved values if the ENI still has the values
 * this change set; leaves alone (and says so) values someone changed since. A ChangeId with nothing
 * saved changed nothing (the apply saves before it changes), so there is nothing to undo.
 */
export async function rollbackEniTimeouts(payload: unknown, context: EniStepContext): Promise<EniStepResult> {
  const input = parseInput(payload);
  const changeIdParsed = single(z.string().regex(CHANGE_ID_PATTERN)).safeParse(input.parameters.ChangeId);
  if (!changeIdParsed.success) throw new EniChangeRefusedError('the rollback needs a valid ChangeId');
  const changeId = changeIdParsed.data;
  const { ec2, store, now } = context;
  const record = await store.get(changeId);
  if (record === null) {
    return result(input.request, {
      changeId,
      status: 'nothing-saved',
      reasons: ['nothing was saved under this ChangeId, so this change modified nothing'],
    });
  }
  const base = { changeId, networkInterfaceId: record.networkInterfaceId, previous: record.previous };
  if (record.status === 'rolled-back') {
    return result(input.request, { ...base, status: 'unchanged', reasons: ['already rolled back'] });
  }
  const eni = await ec2.describeInterface(record.networkInterfaceId);
  if (eni === null) {
    await store.update({ ...record, status: 'rolled-back', rolledBackAt: now().toISOString() });
    return result(input.request, {
      ...base,
      status: 'rolled-back',
      reasons: [`${record.networkInterfaceId} no longer exists: there is nothing left to restore`],
    });
  }
  const { values: inEffect } = await effectiveTimeouts(ec2, eni, record.instanceId);
  const reasons: string[] = [];
  let restored = false;
  if (sameTimeouts(inEffect, record.previous)) {
    reasons.push(
      `${record.networkInterfaceId} already has the saved values (${formatTimeouts(record.previous)})`,
    );
  } else if (record.applied !== null && !sameTimeouts(inEffect, record.applied)) {
    reasons.push(
      `${record.networkInterfaceId} has ${formatTimeouts(inEffect)}, not the ${formatTimeouts(record.applied)} this change set: someone changed it since, left as it is`,
    );
  } else {
    await ec2.setTimeouts(record.networkInterfaceId, record.previous);
    restored = true;
  }
  const keptByOthers = record.applied !== null && !restored && !sameTimeouts(inEffect, record.previous);
  await store.update({ ...record, status: 'rolled-back', rolledBackAt: now().toISOString() });
  return result(input.request, {
    ...base,
    status: keptByOthers ? 'left-alone' : 'rolled-back',
    restored: restored ? record.previous : null,
    reasons,
  });
}
