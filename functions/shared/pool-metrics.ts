// middy middleware: what this request did to the pools, as EMF metrics (acquire wait, connections
// opened, reused, replaced and rebound, pools evicted, checkouts). A tenant request's figures are its
// own calls' (CallMeasure, kept by tenantDb), so concurrent invocations in one thread never count
// each other's; only evictions and expiries, which belong to no request, are the environment's.
import { MetricUnit } from '@aws-lambda-powertools/metrics'
import type { MiddlewareObj, Request } from '@middy/core'
import type { CallMeasure, Counters, TenantPools } from '../../lib'
import type { RequestMetrics } from './request-telemetry'

const reported: Array<[keyof Counters, string]> = [
  ['connectionsOpened', 'ConnectionsOpened'],
  ['connectionsReused', 'ConnectionsReused'],
  ['connectionsReplaced', 'ConnectionsReplaced'],
  ['connectionsRebound', 'ConnectionsRebound'],
  ['readerFallbacks', 'ReaderFallbacks'],
  ['scopesEvicted', 'ScopesEvicted'],
  ['scopesExpired', 'ScopesExpired'],
]

/**
 * Metrics go to the request's own instance (request-telemetry.ts). The counters are read alone
 * (counters(), a copy of one object), not through stats(), which lists every scope and login.
 */
export function poolMetrics(pools: () => TenantPools): MiddlewareObj {
  const before = new WeakMap<object, Counters>()
  const poolMetricsBefore = (request: Request) => {
    before.set(request.context, pools().counters())
  }
  const poolMetricsAfter = (request: Request) => {
    const context = request.context as { metrics?: RequestMetrics; dbMeasure?: CallMeasure }
    const { metrics } = context
    const start = before.get(request.context)
    if (!start || !metrics) return
    const now = pools().counters()
    // The request's own figures where the tenantDb middleware measured its calls; otherwise (admin
    // routes) the environment's counters diffed around the request.
    const own = context.dbMeasure
    const figures: Record<string, number> = own
      ? {
          ...own,
          scopesEvicted: now.scopesEvicted - start.scopesEvicted,
          scopesExpired: now.scopesExpired - start.scopesExpired,
        }
      : Object.fromEntries(reported.map(([key]) => [key, now[key] - start[key]]))
    const checkouts = own ? own.checkouts : now.checkouts - start.checkouts
    const waitedMs = own ? own.acquireWaitMs : now.acquireWaitMs - start.acquireWaitMs
    for (const [key, name] of reported) {
      const delta = figures[key] ?? 0
      if (delta > 0) metrics.addMetric(name, MetricUnit.Count, delta)
    }
    // Always one metric per request, zero included: a request that failed before any checkout
    // would otherwise publish nothing, and Powertools warns in plain text on every such request.
    metrics.addMetric('Checkouts', MetricUnit.Count, checkouts)
    if (checkouts > 0) metrics.addMetric('AcquireWait', MetricUnit.Milliseconds, waitedMs / checkouts)
  }
  return { before: poolMetricsBefore, after: poolMetricsAfter, onError: poolMetricsAfter }
}
