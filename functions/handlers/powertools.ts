import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { Tracer } from '@aws-lambda-powertools/tracer';

/**
 * Powertools, configured once for every function of conntrack-responder: structured JSON logs,
 * CloudWatch embedded metrics and X-Ray traces under one service name. Handlers import these
 * instances instead of making their own.
 */
import { METRICS_NAMESPACE, SERVICE_NAME } from './metric-names.js';

export { METRICS_NAMESPACE, SERVICE_NAME };

export const logger = new Logger({ serviceName: SERVICE_NAME });
export const metrics = new Metrics({ namespace: METRICS_NAMESPACE, serviceName: SERVICE_NAME });
export const tracer = new Tracer({ serviceName: SERVICE_NAME });
