import { DEFAULTS } from '../defaults.js';
import {
  type Environment,
  matching,
  optionalText,
  requiredText,
  type TextRule,
  wholeNumber,
} from '../environment.js';
import {
  checkWholeNumberInRange,
  DETECT_ENVIRONMENT,
  INCIDENT_RETENTION_DAYS_RANGE,
  RESPONSE_MODES,
} from '../incident/settings.js';

/**
 * The fleet guardrails' settings, shared by the CDK construct (which writes them as environment
 * variables), the `detect` and `guardrails` functions (which read them back here), the CLI and the
 * storm bench. One list of names, one set of defaults, one set of ranges.
 */

/** What a `conntrack-responder:mode` tag may say: `off` opts the instance out entirely. */
export const INSTANCE_MODES = ['off', ...RESPONSE_MODES] as const;
export type InstanceMode = (typeof INSTANCE_MODES)[number];

export function isInstanceMode(value: string): value is InstanceMode {
  return (INSTANCE_MODES as readonly string[]).includes(value);
}

export const DEFAULT_MODE_TAG_KEY = 'conntrack-responder:mode';
/** The first SSM Agent that exports ENV_VAR parameters as SSM_<name>; older agents silently ignore them. */
export const ENV_VAR_MIN_AGENT_VERSION = '3.3.2746.0';
/** What a person follows when the responder may not act (shipped in the repository). */
export const MANUAL_RUNBOOK = 'runbooks/conntrack-table-full.md';

export interface BreakerSettings {
  /** The breaker trips when more than this many instances open incidents within the window (0 = off). */
  readonly maxInstances: number;
  readonly windowMinutes: number;
}

export interface GuardrailSettings {
  readonly breaker: BreakerSettings;
  /** Remediations (apply → soak → verify → persist or roll back) running at once, fleet-wide. */
  readonly maxConcurrentRemediations: number;
  /** A slot not released within this many seconds is free again (a workflow that died mid-way). */
  readonly slotLeaseSeconds: number;
  /** After a change on an instance, further incidents there wait for a person this long. */
  readonly remediationCooldownMinutes: number;
  readonly modeTagKey: string;
  /** SSM Change Calendar name or ARN whose CLOSED state blocks automatic changes; null = none. */
  readonly changeCalendar: string | null;
  readonly minAgentVersion: string;
}

export const DEFAULT_GUARDRAILS: GuardrailSettings = {
  breaker: { maxInstances: 10, windowMinutes: 15 },
  maxConcurrentRemediations: 5,
  slotLeaseSeconds: 4 * 3600,
  remediationCooldownMinutes: 240,
  modeTagKey: DEFAULT_MODE_TAG_KEY,
  changeCalendar: null,
  minAgentVersion: ENV_VAR_MIN_AGENT_VERSION,
};

export const GUARDRAIL_RANGES = {
  breakerMaxInstances: { min: 0, max: 100_000 },
  breakerWindowMinutes: { min: 1, max: 1440 },
  maxConcurrentRemediations: { min: 1, max: 1000 },
  slotLeaseSeconds: { min: 60, max: 366 * 86_400 },
  remediationCooldownMinutes: { min: 0, max: 10_080 },
} as const;

/** EC2 tag keys: 1 to 127 Unicode characters, not starting with `aws:`. */
export const TAG_KEY_RULE: TextRule = {
  rule: "1 to 127 characters not starting with 'aws:'",
  test: (key) => key.length > 0 && key.length <= 127 && !/^aws:/i.test(key),
};

export function checkTagKey(name: string, key: string): string {
  if (!TAG_KEY_RULE.test(key)) {
    throw new Error(`${name} must be 1 to 127 characters and not start with 'aws:', got '${key}'`);
  }
  return key;
}

/** A calendar given by name (`[A-Za-z0-9_.-]{3,128}`) or by its SSM document ARN. */
const CALENDAR_NAME = /^[A-Za-z0-9_.-]{3,128}$/;
const CALENDAR_ARN = /^arn:aws[a-z-]*:ssm:[a-z0-9-]+:[0-9]{12}:document\/[A-Za-z0-9_.-]{3,128}$/;

export const CHANGE_CALENDAR_RULE: TextRule = {
  rule: 'an SSM Change Calendar name ([A-Za-z0-9_.-], 3 to 128) or its document ARN',
  test: (calendar) => CALENDAR_NAME.test(calendar) || CALENDAR_ARN.test(calendar),
};

export function checkChangeCalendar(name: string, calendar: string): string {
  if (!CHANGE_CALENDAR_RULE.test(calendar)) {
    throw new Error(
      `${name} must be an SSM Change Calendar name ([A-Za-z0-9_.-], 3 to 128) or its document ARN, got '${calendar}'`,
    );
  }
  return calendar;
}

const VERSION = /^[0-9]{1,9}(\.[0-9]{1,9}){1,3}$/;
export const AGENT_VERSION_RULE = matching(VERSION, `a version such as ${ENV_VAR_MIN_AGENT_VERSION}`);

export function checkAgentVersion(name: string, version: string): string {
  if (!VERSION.test(version)) {
    throw new Error(`${name} must be a version such as ${ENV_VAR_MIN_AGENT_VERSION}, got '${version}'`);
  }
  return version;
}

/** The settings' fields, as the construct's props name them. */
export type GuardrailField =
  | 'breakerMaxInstances'
  | 'breakerWindowMinutes'
  | 'maxConcurrentRemediations'
  | 'remediationSlotLeaseSeconds'
  | 'remediationCooldownMinutes'
  | 'modeTagKey'
  | 'changeCalendar'
  | 'minSsmAgentVersion';

export const GUARDRAIL_ENVIRONMENT: Readonly<Record<GuardrailField, string>> = {
  breakerMaxInstances: 'BREAKER_MAX_INSTANCES',
  breakerWindowMinutes: 'BREAKER_WINDOW_MINUTES',
  maxConcurrentRemediations: 'MAX_CONCURRENT_REMEDIATIONS',
  remediationSlotLeaseSeconds: 'REMEDIATION_SLOT_LEASE_SECONDS',
  remediationCooldownMinutes: 'REMEDIATION_COOLDOWN_MINUTES',
  modeTagKey: 'MODE_TAG_KEY',
  changeCalendar: 'CHANGE_CALENDAR',
  minSsmAgentVersion: 'MIN_SSM_AGENT_VERSION',
};

/** Checks every field, naming the first one that is wrong the way `nameOf` says (prop or variable). */
export function checkGuardrailSettings(
  settings: GuardrailSettings,
  nameOf: (field: GuardrailField) => string,
): GuardrailSettings {
  const R = GUARDRAIL_RANGES;
  checkWholeNumberInRange(
    nameOf('breakerMaxInstances'),
    settings.breaker.maxInstances,
    R.breakerMaxInstances,
  );
  checkWholeNumberInRange(
    nameOf('breakerWindowMinutes'),
    settings.breaker.windowMinutes,
    R.breakerWindowMinutes,
  );
  checkWholeNumberInRange(
    nameOf('maxConcurrentRemediations'),
    settings.maxConcurrentRemediations,
    R.maxConcurrentRemediations,
  );
  checkWholeNumberInRange(
    nameOf('remediationSlotLeaseSeconds'),
    settings.slotLeaseSeconds,
    R.slotLeaseSeconds,
  );
  checkWholeNumberInRange(
    nameOf('remediationCooldownMinutes'),
    settings.remediationCooldownMinutes,
    R.remediationCooldownMinutes,
  );
  checkTagKey(nameOf('modeTagKey'), settings.modeTagKey);
  if (settings.changeCalendar !== null)
    checkChangeCalendar(nameOf('changeCalendar'), settings.changeCalendar);
  checkAgentVersion(nameOf('minSsmAgentVersion'), settings.minAgentVersion);
  return settings;
}

/** The environment variables that carry these settings to a function. */
export function guardrailEnvironment(settings: GuardrailSettings): Record<string, string> {
  const E = GUARDRAIL_ENVIRONMENT;
  return {
    [E.breakerMaxInstances]: String(settings.breaker.maxInstances),
    [E.breakerWindowMinutes]: String(settings.breaker.windowMinutes),
    [E.maxConcurrentRemediations]: String(settings.maxConcurrentRemediations),
    [E.remediationSlotLeaseSeconds]: String(settings.slotLeaseSeconds),
    [E.remediationCooldownMinutes]: String(settings.remediationCooldownMinutes),
    [E.modeTagKey]: settings.modeTagKey,
    [E.changeCalendar]: settings.changeCalendar ?? '',
    [E.minSsmAgentVersion]: settings.minAgentVersion,
  };
}

/**
 * Reads the settings back. A variable that is absent takes its default (so a function deployed
 * before a setting existed keeps working); one that is present but wrong fails, naming it.
 */
export function guardrailSettingsFromEnvironment(env: Environment): GuardrailSettings {
  const E = GUARDRAIL_ENVIRONMENT;
  const D = DEFAULT_GUARDRAILS;
  const R = GUARDRAIL_RANGES;
  return {
    breaker: {
      maxInstances: wholeNumber(env, E.breakerMaxInstances, R.breakerMaxInstances, D.breaker.maxInstances),
      windowMinutes: wholeNumber(
        env,
        E.breakerWindowMinutes,
        R.breakerWindowMinutes,
        D.breaker.windowMinutes,
      ),
    },
    maxConcurrentRemediations: wholeNumber(
      env,
      E.maxConcurrentRemediations,
      R.maxConcurrentRemediations,
      D.maxConcurrentRemediations,
    ),
    slotLeaseSeconds: wholeNumber(env, E.remediationSlotLeaseSeconds, R.slotLeaseSeconds, D.slotLeaseSeconds),
    remediationCooldownMinutes: wholeNumber(
      env,
      E.remediationCooldownMinutes,
      R.remediationCooldownMinutes,
      D.remediationCooldownMinutes,
    ),
    modeTagKey: optionalText(env, E.modeTagKey, TAG_KEY_RULE) ?? D.modeTagKey,
    changeCalendar: optionalText(env, E.changeCalendar, CHANGE_CALENDAR_RULE) ?? null,
    minAgentVersion: optionalText(env, E.minSsmAgentVersion, AGENT_VERSION_RULE) ?? D.minAgentVersion,
  };
}

/** Everything the `guardrails` function reads from its environment (the Guardrails construct writes it). */
export interface GuardrailFunctionSettings {
  readonly guardrails: GuardrailSettings;
  /** Where the breaker, the slots and the last changes are kept. */
  readonly incidentTableName: string;
  /** Days a last-change record is kept (DynamoDB TTL), as for the incident records. */
  readonly incidentRetentionDays: number;
}

export function guardrailFunctionSettingsFrom(env: Environment): GuardrailFunctionSettings {
  return {
    guardrails: guardrailSettingsFromEnvironment(env),
    incidentTableName: requiredText(env, DETECT_ENVIRONMENT.incidentTableName),
    incidentRetentionDays: wholeNumber(
      env,
      DETECT_ENVIRONMENT.incidentRetentionDays,
      INCIDENT_RETENTION_DAYS_RANGE,
      DEFAULTS.incidentRetentionDays,
    ),
  };
}
