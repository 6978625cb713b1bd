import type { Environment } from '../core/environment.js';
import { type SdkRetryConfig, sdkRetrySettingsFrom } from '../core/sdk-retry.js';

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

export {
  DEFAULT_SDK_RETRY,
  RETRY_MODES,
  type RetryMode,
  SDK_MAX_ATTEMPTS_RANGE,
  SDK_RETRY_ENVIRONMENT,
  type SdkRetryConfig,
} from '../core/sdk-retry.js';

/**
 * The retry settings from the environment (the variable names are the SDK's own, so that the
 * same setting also reaches any client built without this helper); the reading is the core's
 * (functions/core/sdk-retry.ts), the functions get it through their settings reader.
 */
export function sdkRetryConfig(env: Environment): SdkRetryConfig {
  return sdkRetrySettingsFrom(env);
}
