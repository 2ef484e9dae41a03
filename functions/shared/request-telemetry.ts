// A logger and a metrics buffer of each request's own. With Lambda Managed Instances several
// invocations run at once in one thread: a module-level logger given each one's context (and keys
// such as the tenant) would stamp one request's lines with another's id. So each request logs
// through a child of the module logger, and records metrics in an instance published at its end.
import type { Logger } from '@aws-lambda-powertools/logger'
import { Metrics } from '@aws-lambda-powertools/metrics'
import type { MiddlewareObj, Request } from '@middy/core'
import type { Context } from 'aws-lambda'
import type { Log } from '../../lib'
import { config } from './config'

export interface TelemetryContext extends Context {
  /** This request's logger: the module logger's settings, this invocation's context and keys. */
  logger: Logger
  /** This request's metrics, published when it ends. */
  metrics: Metrics
}

// The first request of an environment records the cold start.
let coldStart = true

export function requestTelemetry(logger: Logger): MiddlewareObj {
  const telemetryBefore = (request: Request) => {
    const context = request.context as TelemetryContext
    const cold = coldStart
    coldStart = false
    // The request's identity as persistent keys of its own instance: addContext() would keep it in
    // a store the other invocations of the thread share.
    context.logger = logger.createChild({
      persistentKeys: {
        function_name: context.functionName,
        function_request_id: context.awsRequestId,
        cold_start: cold,
      },
    })
    const { POWERTOOLS_METRICS_NAMESPACE: namespace, POWERTOOLS_SERVICE_NAME: serviceName } = config()
    context.metrics = new Metrics({ namespace, serviceName })
    context.metrics.addDimension('function_name', context.functionName)
    if (cold) context.metrics.captureColdStartMetric()
  }
  const telemetryAfter = (request: Request) => {
    const { metrics } = request.context as Partial<TelemetryContext>
    // A request that recorded nothing (an admin call refused before its handler) has nothing to
    // publish: Powertools would print a plain-text warning for it on every such request. The
    // cold-start metric is not stored here: captureColdStartMetric published it already.
    if (metrics?.hasStoredMetrics()) metrics.publishStoredMetrics()
  }
  return { before: telemetryBefore, after: telemetryAfter, onError: telemetryAfter }
}

/** The request's logger (the module logger before the middleware ran). */
export const loggerOf =
  (fallback: Log) =>
  (request: Request): Log =>
    (request.context as Partial<TelemetryContext>).logger ?? fallback

/** Forgets that the environment has served a request, for tests. */
export const resetColdStart = (): void => {
  coldStart = true
}
