/**
 * How every AWS SDK client of conntrack-responder retries: throttling (ThrottlingException,
 * ProvisionedThroughputExceededException, TooManyRequestsException, 429), transient 5xx and
 * network errors are retried with exponential backoff and full jitter, up to `maxAttempts` tries
 * in all. `standard` is the SDK's documented algorithm (base 100 ms, doubling, capped at 20 s,
 * random jitter); `adaptive` adds a client-side rate limiter that slows down once throttled.
 *
 * Lambda's own retries (two for asynchronous invocations, then the on-failure queue) and Step
 * Functions' Retry blocks sit on top of this, so a throttled call is never dropped: it is retried
 * here, then by the caller, and finally kept where a person sees it.
 */

export const RETRY_MODES = ['standard', 'adaptive'] as const;
export type RetryMode = (typeof RETRY_MODES)[number];

export const SDK_RETRY_ENVIRONMENT = {
  maxAttempts: 'AWS_MAX_ATTEMPTS',
  retryMode: 'AWS_RETRY_MODE',
} as const;

export const DEFAULT_SDK_RETRY = { maxAttempts: 8, retryMode: 'standard' as RetryMode };
export const SDK_MAX_ATTEMPTS_RANGE = { min: 1, max: 20 } as const;

export interface SdkRetryConfig {
  readonly maxAttempts: number;
  readonly retryMode: RetryMode;
}

/**
 * The retry settings from the environment (the variable names are the SDK's own, so that the
 * same setting also reaches any client built without this helper).
 */
export function sdkRetryConfig(
  env: Readonly<Record<string, string | undefined>> = process.env,
): SdkRetryConfig {
  const attemptsText = env[SDK_RETRY_ENVIRONMENT.maxAttempts]?.trim() || '';
  const modeText = env[SDK_RETRY_ENVIRONMENT.retryMode]?.trim() || '';
  const maxAttempts = attemptsText === '' ? DEFAULT_SDK_RETRY.maxAttempts : Number(attemptsText);
  if (
    !Number.isInteger(maxAttempts) ||
    maxAttempts < SDK_MAX_ATTEMPTS_RANGE.min ||
    maxAttempts > SDK_MAX_ATTEMPTS_RANGE.max
  ) {
    throw new Error(
      `environment variable ${SDK_RETRY_ENVIRONMENT.maxAttempts} must be a whole number from ${SDK_MAX_ATTEMPTS_RANGE.min} to ${SDK_MAX_ATTEMPTS_RANGE.max}, got '${attemptsText}'`,
    );
  }
  const retryMode = modeText === '' ? DEFAULT_SDK_RETRY.retryMode : modeText;
  if (!(RETRY_MODES as readonly string[]).includes(retryMode)) {
    throw new Error(
      `environment variable ${SDK_RETRY_ENVIRONMENT.retryMode} must be one of ${RETRY_MODES.join(', ')}, got '${modeText}'`,
    );
  }
  return { maxAttempts, retryMode: retryMode as RetryMode };
}
