// What every function of this environment shares: the logger, the metrics, the pools registry and
// the tenant catalog. Module-level on purpose: they survive warm invocations.
import { Logger } from '@aws-lambda-powertools/logger'
import { getTenantPools, type PrewarmOutcome, TenantCatalog, type TenantPools } from '../../lib'
import { config } from './config'
import { ModuleMetrics } from './request-telemetry'

// Read (and checked) first: a malformed variable fails the function's init, naming it.
const env = config()

export const logger = new Logger({ serviceName: env.POWERTOOLS_SERVICE_NAME })

export const metrics = new ModuleMetrics({
  namespace: env.POWERTOOLS_METRICS_NAMESPACE,
  serviceName: env.POWERTOOLS_SERVICE_NAME,
})

export const pools = (): TenantPools => getTenantPools({ logger })

export const catalog = new TenantCatalog(pools, {
  ttlMs: env.TENANT_CATALOG_TTL_MS,
})

/**
 * With TENANT_POOLS_PREWARM=true: a connection opened during init, bounded by
 * TENANT_POOLS_PREWARM_TIMEOUT_MS, never failing init (see TenantPools.prewarm). Not awaited here: a
 * CommonJS init cannot wait, and the first request, if it comes first, takes the connection when it
 * is ready. An ES module handler may `await prewarming` at its top level to finish it within init.
 * Its warm-up is the catalog's look-up, which every tenant request runs first, for no tenant.
 */
export const prewarming: Promise<PrewarmOutcome> | undefined = env.prewarm
  ? pools().prewarm({ ...env.prewarm, warmUp: (limits) => catalog.warmUp(limits) })
  : undefined
