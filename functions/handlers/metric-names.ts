/**
 * Names the functions publish under, kept free of Powertools so that the CDK constructs that
 * alarm on the metrics can import them at synth time.
 */

/** The `service` every function's logs and metrics carry. */
export const SERVICE_NAME = 'conntrack-responder';
export const METRICS_NAMESPACE = 'ConntrackResponder';

/** Metrics of the detect function (namespace METRICS_NAMESPACE, dimension `service`) that an alarm watches. */
export const IGNORED_DROP_TEXT_METRICS = {
  /** Lines with drop or suppression text that the kernel did not write, as far as the format tells. */
  notKernel: 'LinesNotKernel',
  /** Lines with drop or suppression text that could not be read (wording, timestamp). */
  unreadable: 'LinesUnreadable',
} as const;
