import { type Environment, oneOf, wholeNumber } from './environment.js';

/**
 * How the functions' AWS SDK clients retry, read from the SDK's own environment variables (so the
 * same setting also reaches any client built without this reader). What the modes mean, and how
 * these retries sit under Lambda's and Step Functions' own, is in functions/adapters/aws-retry.ts.
 */
export const RETRY_MODES = ['standard', 'adaptive'] as const;
export type RetryMode = (typeof RETRY_MODES)[number];

export const SDK_RETRY_ENVIRONMENT = {
  maxAttempts: 'AWS_MAX_ATTEMPTS',
  retryMode: 'AWS_RETRY_MODE',
} as const;

export const DEFAULT_SDK_RETRY: SdkRetryConfig = { maxAttempts: 8, retryMode: 'standard' };
export const SDK_MAX_ATTEMPTS_RANGE = { min: 1, max: 20 } as const;

export interface SdkRetryConfig {
  readonly maxAttempts: number;
  readonly retryMode: RetryMode;
}

/** The retry settings from a function's environment, the defaults where unset. */
export function sdkRetrySettingsFrom(env: Environment): SdkRetryConfig {
  return {
    maxAttempts: wholeNumber(
      env,
      SDK_RETRY_ENVIRONMENT.maxAttempts,
      SDK_MAX_ATTEMPTS_RANGE,
      DEFAULT_SDK_RETRY.maxAttempts,
    ),
    retryMode: oneOf(env, SDK_RETRY_ENVIRONMENT.retryMode, RETRY_MODES, DEFAULT_SDK_RETRY.retryMode),
  };
}
