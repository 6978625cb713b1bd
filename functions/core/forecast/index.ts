/**
 * The forecast core (issue 13): the host sampler's lines read back, each host's recent samples
 * kept in a bounded window, and the prediction of when its conntrack table fills, which opens a
 * `near-full` incident before the first drop. Pure: no AWS, no file system. docs/forecast.md.
 */
export { type Point, type TheilSenFit, theilSen } from './fit.js';
export {
  afterLastGap,
  type Forecast,
  type ForecastRecord,
  type ForecastTrigger,
  forecastRecord,
  forecastTable,
  formatDuration,
  formatRate,
  MAX_RECORD_SAMPLES,
} from './forecast.js';
export {
  type HostSample,
  MAX_SAMPLE_LINE_LENGTH,
  parseSampleLine,
  parseSampleText,
  SAMPLE_FILTER_TERM,
  SAMPLE_FORMAT_VERSION,
  SAMPLE_LINE_TAG,
  type SampleParse,
} from './sample-line.js';
export {
  DEFAULT_FORECAST_SETTINGS,
  FORECAST_ENVIRONMENT,
  type ForecastSettings,
  forecastSettingsFromEnvironment,
  HORIZON_MINUTES_RANGE,
  hostMetricsFromEnvironment,
  USAGE_PERCENT_RANGE,
} from './settings.js';
export {
  eventMessage,
  MAX_EVENTS_PER_GROUP,
  MAX_SAMPLES_PER_GROUP,
  type SampleGroup,
  type SubscriptionSamples,
  samplesInSubscription,
} from './subscription.js';
export {
  isTracked,
  type MergeResult,
  mergeSamples,
  type SkipReason,
  toWindowSample,
  type WindowSample,
  worthStoring,
} from './window.js';
