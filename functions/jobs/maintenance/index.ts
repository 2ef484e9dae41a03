// The scheduled maintenance job (EventBridge). Its own registry: one connection per tenant at a time,
// `concurrency` tenants at once, plus the master pool; all logging in with the master credentials,
// which own the tenant schemas.
import { MetricUnit } from '@aws-lambda-powertools/metrics'
import type { Context } from 'aws-lambda'
import { secretsManagerCredentials, TenantPools } from '../../../lib'
import { tenantMigrations } from '../../../migrations'
import { migrateMaster } from '../../admin/provision'
import { config } from '../../shared/config'
import { logger, metrics } from '../../shared/runtime'
import { runMaintenance } from './run'

const JOB_ANSWER_MARGIN_MS = 5_000

let pools: TenantPools | undefined

export const handler = async (_event: unknown, context: Context) => {
  const cfg = config()
  const concurrency = cfg.MAINTENANCE_CONCURRENCY
  const env = cfg.pools
  const apiPrefix = cfg.TENANT_POOLS_APP_NAME_PREFIX
  pools ??= new TenantPools({
    ...env,
    // Per-tenant roles cannot migrate their schema: the job logs in as the owner everywhere.
    credentials: cfg.TENANT_POOLS_SECRET_ID
      ? secretsManagerCredentials({ secretId: cfg.TENANT_POOLS_SECRET_ID })
      : undefined,
    applicationNamePrefix: `${apiPrefix}-job`,
    // The job logs in as the schema owner: no role carries a tenant's search_path for it.
    proxySafe: false,
    budget: concurrency + 1,
    maxPerScope: 1,
    maxScopes: concurrency + 1,
    statementTimeoutMs: cfg.MAINTENANCE_STATEMENT_TIMEOUT_MS,
    logger,
  })
  pools.invocationStarted()
  await migrateMaster(pools)
  const summary = await runMaintenance({
    pools,
    migrations: tenantMigrations,
    remainingMs: () => context.getRemainingTimeInMillis(),
    // Kept back from the invocation's end: time to record outcomes and return the summary.
    deadline: Date.now() + context.getRemainingTimeInMillis() - JOB_ANSWER_MARGIN_MS,
    logger,
    concurrency,
    safetyMarginMs: cfg.MAINTENANCE_SAFETY_MARGIN_MS,
    retentionDays: cfg.MAINTENANCE_RETENTION_DAYS,
    passesKept: cfg.MAINTENANCE_PASSES_KEPT,
    reapIdleMs: cfg.MAINTENANCE_REAP_IDLE_MS,
    applicationNamePrefix: apiPrefix,
    // The API's sessions log in as tenant traffic's role, the tenants' own, or (unset) the job's.
    reapRoles: cfg.TENANT_POOLS_TRAFFIC_ROLE ? [cfg.TENANT_POOLS_TRAFFIC_ROLE] : undefined,
    reapRolePrefix: cfg.TENANT_POOLS_SCHEMA_PREFIX,
  })
  metrics.addMetric('MaintenanceProcessed', MetricUnit.Count, summary.processed)
  metrics.addMetric('MaintenanceFailed', MetricUnit.Count, summary.failed)
  metrics.addMetric('MaintenanceRemaining', MetricUnit.Count, summary.remaining)
  metrics.addMetric('ZombiesReaped', MetricUnit.Count, summary.zombiesReaped)
  metrics.publishStoredMetrics()
  return summary
}
