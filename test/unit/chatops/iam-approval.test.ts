import { describe, expect, it } from 'vitest';
import type { FunctionUrlEvent } from '../../../functions/core/chatops/http.js';
import {
  authorizeIamCaller,
  type IamApprovers,
  iamApproversFrom,
  iamCallerOf,
} from '../../../functions/core/chatops/iam-approval.js';

/** The request context Lambda builds for a SigV4-signed request to an AWS_IAM function URL. */
function eventFor(iam: unknown): FunctionUrlEvent {
  return {
    version: '2.0',
    rawPath: '/',
    headers: { 'content-type': 'application/json' },
    body: '{}',
    isBase64Encoded: false,
    requestContext: {
      http: { method: 'POST', path: '/' },
      authorizer: { iam },
    } as FunctionUrlEvent['requestContext'],
  };
}

const ACCOUNT = '111122223333';
const sessionOf = (role: string, session: string, account = ACCOUNT) => ({
  accessKey: 'ASIAEXAMPLE',
  accountId: account,
  callerId: `AROAEXAMPLE:${session}`,
  cognitoIdentity: null,
  principalOrgId: null,
  userArn: `arn:aws:sts::${account}:assumed-role/${role}/${session}`,
  userId: `AROAEXAMPLE:${session}`,
});

describe('the caller of the approval URL', () => {
  it('is the assumed role and session Lambda authenticated', () => {
    const caller = iamCallerOf(eventFor(sessionOf('OnCall', 'alice@example.com')));
    expect(caller).toEqual({
      arn: `arn:aws:sts::${ACCOUNT}:assumed-role/OnCall/alice@example.com`,
      partition: 'aws',
      accountId: ACCOUNT,
      userId: 'AROAEXAMPLE:alice@example.com',
      kind: 'assumed-role',
      roleName: 'OnCall',
      displayName: 'OnCall/alice@example.com',
    });
  });

  it('knows IAM users, the root user and federated users by their ARNs', () => {
    const user = iamCallerOf(
      eventFor({
        accountId: ACCOUNT,
        userArn: `arn:aws:iam::${ACCOUNT}:user/ops/bob`,
        userId: 'AIDAEXAMPLE',
      }),
    );
    expect(user).toMatchObject({ kind: 'user', displayName: 'bob', roleName: null });
    expect(
      iamCallerOf(eventFor({ accountId: ACCOUNT, userArn: `arn:aws:iam::${ACCOUNT}:root` })),
    ).toMatchObject({
      kind: 'root',
    });
    expect(
      iamCallerOf(
        eventFor({ accountId: ACCOUNT, userArn: `arn:aws-cn:sts::${ACCOUNT}:federated-user/carol` }),
      ),
    ).toMatchObject({ kind: 'federated-user', partition: 'aws-cn', displayName: 'carol' });
  });

  it('is nobody without an IAM authorizer context (a URL with auth NONE, a direct invoke without one)', () => {
    expect(iamCallerOf(eventFor(undefined))).toBeNull();
    expect(iamCallerOf({ requestContext: { http: { method: 'POST' } } })).toBeNull();
    expect(iamCallerOf(eventFor({ accountId: ACCOUNT }))).toBeNull();
    expect(
      iamCallerOf(eventFor({ accountId: 'not-an-account', userArn: `arn:aws:iam::${ACCOUNT}:root` })),
    ).toBeNull();
    // The ARN's account must be the account Lambda reports.
    expect(
      iamCallerOf(eventFor({ accountId: '444455556666', userArn: `arn:aws:iam::${ACCOUNT}:root` })),
    ).toBeNull();
    expect(iamCallerOf(eventFor({ accountId: ACCOUNT, userArn: 'alice' }))).toBeNull();
  });
});

describe('who may decide from the command line', () => {
  const roles: IamApprovers = {
    roleArns: [`arn:aws:iam::${ACCOUNT}:role/teams/sre/OnCall`, 'arn:aws:iam::444455556666:role/Incident'],
    policyHolders: false,
    accountId: ACCOUNT,
  };
  const caller = (iam: unknown) => {
    const parsed = iamCallerOf(eventFor(iam));
    if (parsed === null) throw new Error('no caller');
    return parsed;
  };

  it('lets sessions of the named roles decide, in their own account, whatever the role path', () => {
    expect(authorizeIamCaller(caller(sessionOf('OnCall', 'alice')), roles)).toEqual({
      ok: true,
      basis: 'iam-role',
    });
    expect(authorizeIamCaller(caller(sessionOf('Incident', 'x', '444455556666')), roles)).toEqual({
      ok: true,
      basis: 'iam-role',
    });
  });

  it('refuses other roles, the same role name in another account, users and root when only roles are named', () => {
    for (const iam of [
      sessionOf('Admin', 'alice'),
      sessionOf('OnCall', 'alice', '444455556666'),
      sessionOf('OnCallX', 'alice'),
      { accountId: ACCOUNT, userArn: `arn:aws:iam::${ACCOUNT}:user/OnCall` },
      { accountId: ACCOUNT, userArn: `arn:aws:iam::${ACCOUNT}:root` },
    ]) {
      const verdict = authorizeIamCaller(caller(iam), roles);
      expect(verdict.ok, JSON.stringify(iam)).toBe(false);
      expect(verdict.ok ? '' : verdict.detail).toContain('not one of the approver roles');
    }
  });

  it('lets any caller of the stack account through when the approver policy is on (IAM already checked it), never another account', () => {
    const withPolicy = { ...roles, policyHolders: true };
    expect(authorizeIamCaller(caller(sessionOf('Admin', 'alice')), withPolicy)).toEqual({
      ok: true,
      basis: 'iam-policy',
    });
    expect(authorizeIamCaller(caller(sessionOf('OnCall', 'alice')), withPolicy)).toEqual({
      ok: true,
      basis: 'iam-role',
    });
    expect(authorizeIamCaller(caller(sessionOf('Admin', 'mallory', '999988887777')), withPolicy).ok).toBe(
      false,
    );
  });

  it('refuses everyone when nobody is configured', () => {
    const verdict = authorizeIamCaller(caller(sessionOf('OnCall', 'alice')), {
      roleArns: [],
      policyHolders: false,
      accountId: ACCOUNT,
    });
    expect(verdict).toEqual({ ok: false, detail: expect.stringContaining('no approvers are configured') });
  });

  it('reads its settings from the environment and refuses malformed ones by name', () => {
    expect(
      iamApproversFrom(
        { APPROVER_ROLE_ARNS: `arn:aws:iam::${ACCOUNT}:role/OnCall, `, APPROVER_POLICY_HOLDERS: 'true' },
        ACCOUNT,
      ),
    ).toEqual({ roleArns: [`arn:aws:iam::${ACCOUNT}:role/OnCall`], policyHolders: true, accountId: ACCOUNT });
    expect(() =>
      iamApproversFrom({ APPROVER_ROLE_ARNS: 'OnCall', APPROVER_POLICY_HOLDERS: 'true' }, ACCOUNT),
    ).toThrow(
      /environment variable APPROVER_ROLE_ARNS must be a list of IAM role ARNs, separated by commas, got 'OnCall'/,
    );
    expect(() => iamApproversFrom({ APPROVER_POLICY_HOLDERS: 'yes' }, ACCOUNT)).toThrow(
      /APPROVER_POLICY_HOLDERS/,
    );
    expect(() => iamApproversFrom({ APPROVER_POLICY_HOLDERS: 'false' }, '')).toThrow(/account/);
  });

  it('never throws and never lets an unnamed identity through, whatever the authorizer context holds', () => {
    let state = 20261122;
    const pick = <T>(items: readonly T[]): T => {
      state = (state * 1103515245 + 12345) >>> 0;
      return items[(state >>> 16) % items.length] as T;
    };
    const partitions = ['aws', 'aws', 'aws', 'aws-cn', 'awsx', ''];
    const services = ['sts', 'sts', 'iam', 'lambda', ''];
    const accounts = [ACCOUNT, ACCOUNT, '444455556666', '999988887777', '11112222333', '*'];
    const kinds = ['assumed-role', 'assumed-role', 'user', 'role', 'federated-user', 'root', ''];
    const names = [
      'OnCall',
      'Incident',
      'oncall',
      'OnCall ',
      'On\u0000Call',
      '*',
      '',
      'teams/sre/OnCall',
      '..',
    ];
    const sessions = ['alice', '', 'a/b', 'OnCall', '\u001b[31m', 'x'.repeat(300)];
    let parsedCount = 0;
    let allowedCount = 0;
    for (let i = 0; i < 5000; i++) {
      const account = pick(accounts);
      const arn = `arn:${pick(partitions)}:${pick(services)}::${account}:${pick(kinds)}/${pick(names)}/${pick(sessions)}`;
      const parsed = iamCallerOf(eventFor({ accountId: pick([account, ACCOUNT]), userArn: arn }));
      if (parsed === null) continue;
      parsedCount++;
      const verdict = authorizeIamCaller(parsed, roles);
      if (!verdict.ok) continue;
      allowedCount++;
      // Only a session of a named role, in that role's account and partition, gets through.
      expect(parsed.kind).toBe('assumed-role');
      expect(
        (parsed.roleName === 'OnCall' && parsed.accountId === ACCOUNT) ||
          (parsed.roleName === 'Incident' && parsed.accountId === '444455556666'),
      ).toBe(true);
      expect(parsed.partition).toBe('aws');
    }
    // The generator reaches both sides of the rule.
    expect(parsedCount).toBeGreaterThan(1000);
    expect(allowedCount).toBeGreaterThan(10);
  });
});
