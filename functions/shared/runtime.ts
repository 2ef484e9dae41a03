// What every function of this environment shares: the logger, the metrics, the pools registry and
// the tenant catalog. Module-level on purpose: they survive warm invocations.
import { Logger } from '@aws-lambda-powertools/logger'
import { getTenantPools, TenantCatalog, type TenantPools } from '../../lib'
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
