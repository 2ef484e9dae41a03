// middy middleware: what this request did to the pools, as EMF metrics (acquire wait, connections
// opened, reused and replaced, pools evicted, checkouts). Counters are the environment's, diffed
// around the request: with concurrent invocations (Lambda Managed Instances) a request's figures
// include what the others did meanwhile.
import { type Metrics, MetricUnit } from '@aws-lambda-powertools/metrics'
import type { MiddlewareObj, Request } from '@middy/core'
import type { Counters, TenantPools } from '../../lib'

const reported: Array<[keyof Counters, string]> = [
  ['connectionsOpened', 'ConnectionsOpened'],
  ['connectionsReused', 'ConnectionsReused'],
  ['connectionsReplaced', 'ConnectionsReplaced'],
  ['poolsEvicted', 'PoolsEvicted'],
  ['poolsExpired', 'PoolsExpired'],
]

/** Metrics go to the request's own instance (request-telemetry.ts). */
export function poolMetrics(pools: () => TenantPools): MiddlewareObj {
  const before = new WeakMap<object, Counters>()
  const poolMetricsBefore = (request: Request) => {
    before.set(request.context, pools().stats().counters)
  }
  const poolMetricsAfter = (request: Request) => {
    const start = before.get(request.context)
    const metrics = (request.context as { metrics?: Metrics }).metrics
    if (!start || !metrics) return
    const now = pools().stats().counters
    for (const [key, name] of reported) {
      const delta = now[key] - start[key]
      if (delta > 0) metrics.addMetric(name, MetricUnit.Count, delta)
    }
    const checkouts = now.checkouts - start.checkouts
    // Always one metric per request, zero included: a request that failed before any checkout
    // would otherwise publish nothing, and Powertools warns in plain text on every such request.
    metrics.addMetric('Checkouts', MetricUnit.Count, checkouts)
    if (checkouts > 0) {
      metrics.addMetric(
        'AcquireWait',
        MetricUnit.Milliseconds,
        (now.acquireWaitMs - start.acquireWaitMs) / checkouts,
      )
    }
  }
  return { before: poolMetricsBefore, after: poolMetricsAfter, onError: poolMetricsAfter }
}
