// middy middleware: what this request did to the pools, as EMF metrics (acquire wait, connections
// opened, reused, replaced and rebound, checkouts). A tenant request's figures are its own calls'
// (CallMeasure, kept by tenantDb), so concurrent invocations in one thread never count each
// other's. Scopes evicted and expired belong to no request: each is reported once, by the first
// request to end after it happened.
import { MetricUnit } from '@aws-lambda-powertools/metrics'
import type { MiddlewareObj, Request } from '@middy/core'
import { type CallMeasure, newCallMeasure, type TenantPools } from '../../lib'
import type { RequestMetrics } from './request-telemetry'

const own: Array<[keyof CallMeasure, string]> = [
  ['connectionsOpened', 'ConnectionsOpened'],
  ['connectionsReused', 'ConnectionsReused'],
  ['connectionsReplaced', 'ConnectionsReplaced'],
  ['connectionsRebound', 'ConnectionsRebound'],
  ['readerFallbacks', 'ReaderFallbacks'],
]

// A request that failed before tenantDb measured anything (no tenant, an unknown one) did nothing.
const NOTHING: CallMeasure = Object.freeze(newCallMeasure())

// How far a counter went since `seen`; a counter below it belongs to a registry built since.
const since = (now: number, seen: number) => (now >= seen ? now - seen : now)

/**
 * Metrics go to the request's own instance (request-telemetry.ts). The environment's counters are
 * read once per request (counters(), a copy of one object), not through stats(), which lists every
 * scope and login.
 */
export function poolMetrics(pools: () => TenantPools): MiddlewareObj {
  // The environment's evictions and expiries already reported (a registry built anew counts from 0).
  let evicted = 0
  let expired = 0
  const poolMetricsAfter = (request: Request) => {
    const context = request.context as { metrics?: RequestMetrics; dbMeasure?: CallMeasure }
    const { metrics } = context
    if (!metrics?.recording) return
    const measure = context.dbMeasure ?? NOTHING
    for (const [key, name] of own) {
      if (measure[key] > 0) metrics.addMetric(name, MetricUnit.Count, measure[key])
    }
    const { scopesEvicted, scopesExpired } = pools().counters()
    const newlyEvicted = since(scopesEvicted, evicted)
    const newlyExpired = since(scopesExpired, expired)
    if (newlyEvicted > 0) metrics.addMetric('ScopesEvicted', MetricUnit.Count, newlyEvicted)
    if (newlyExpired > 0) metrics.addMetric('ScopesExpired', MetricUnit.Count, newlyExpired)
    evicted = scopesEvicted
    expired = scopesExpired
    // Always one metric per request, zero included: a request that failed before any checkout
    // would otherwise publish nothing.
    metrics.addMetric('Checkouts', MetricUnit.Count, measure.checkouts)
    if (measure.checkouts > 0) {
      metrics.addMetric('AcquireWait', MetricUnit.Milliseconds, measure.acquireWaitMs / measure.checkouts)
    }
  }
  return { after: poolMetricsAfter, onError: poolMetricsAfter }
}
