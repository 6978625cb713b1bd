/** The SSM documents the workflow runs, by file name under runbooks/ssm (without `.yaml`). */
export const DOCUMENT = {
  collectDiagnostics: 'collect-diagnostics',
  raiseLimits: 'raise-limits',
  notrackPorts: 'notrack-ports',
  rollback: 'rollback',
} as const;

export type DocumentName = (typeof DOCUMENT)[keyof typeof DOCUMENT];

/** Documents that change the host; every one saves the previous state under its ChangeId. */
export const REMEDIATION_DOCUMENTS = [DOCUMENT.raiseLimits, DOCUMENT.notrackPorts] as const;
export type RemediationDocument = (typeof REMEDIATION_DOCUMENTS)[number];

export function isRemediationDocument(name: string): name is RemediationDocument {
  return (REMEDIATION_DOCUMENTS as readonly string[]).includes(name);
}
