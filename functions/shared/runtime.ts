// What every function of this environment shares: the logger, the metrics, the pools registry and
// the tenant catalog. Module-level on purpose: they survive warm invocations.
import { Logger } from '@aws-lambda-powertools/logger'
import { Metrics } from '@aws-lambda-powertools/metrics'
import { getTenantPools, TenantCatalog, type TenantPools } from '../../lib'

export const logger = new Logger({ serviceName: process.env.POWERTOOLS_SERVICE_NAME ?? 'tenant-pools' })

export const metrics = new Metrics({
  namespace: process.env.POWERTOOLS_METRICS_NAMESPACE ?? 'TenantPools',
  serviceName: process.env.POWERTOOLS_SERVICE_NAME ?? 'tenant-pools',
})

export const pools = (): TenantPools => getTenantPools({ logger })

export const catalog = new TenantCatalog(pools, {
  ttlMs: Number(process.env.TENANT_CATALOG_TTL_MS ?? 30_000),
})
