// The scheduled maintenance job (EventBridge). Its own registry: one connection per tenant at a time,
// `concurrency` tenants at once, plus the master pool; all logging in with the master credentials,
// which own the tenant schemas.
import { MetricUnit } from '@aws-lambda-powertools/metrics'
import type { Context } from 'aws-lambda'
import { optionsFromEnv, secretsManagerCredentials, TenantPools } from '../../../lib'
import { tenantMigrations } from '../../../migrations'
import { migrateMaster } from '../../admin/provision'
import { logger, metrics } from '../../shared/runtime'
import { runMaintenance } from './run'

const num = (name: string, fallback: number) => {
  const raw = process.env[name]
  const n = raw === undefined || raw === '' ? fallback : Number(raw)
  if (!Number.isInteger(n) || n < 0) throw new Error(`${name} must be a non-negative integer`)
  return n
}

const JOB_ANSWER_MARGIN_MS = 5_000

let pools: TenantPools | undefined

export const handler = async (_event: unknown, context: Context) => {
  const concurrency = Math.max(1, num('MAINTENANCE_CONCURRENCY', 4))
  const env = optionsFromEnv()
  const apiPrefix = env.applicationNamePrefix ?? 'tenant-pools'
  pools ??= new TenantPools({
    ...env,
    // Per-tenant roles cannot migrate their schema: the job logs in as the owner everywhere.
    credentials: process.env.TENANT_POOLS_SECRET_ID
      ? secretsManagerCredentials({ secretId: process.env.TENANT_POOLS_SECRET_ID })
      : undefined,
    applicationNamePrefix: `${apiPrefix}-job`,
    // The job logs in as the schema owner: no role carries a tenant's search_path for it.
    proxySafe: false,
    budget: concurrency + 1,
    maxPerPool: 1,
    maxPools: concurrency + 1,
    statementTimeoutMs: num('MAINTENANCE_STATEMENT_TIMEOUT_MS', 600_000),
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
    safetyMarginMs: num('MAINTENANCE_SAFETY_MARGIN_MS', 60_000),
    retentionDays: num('MAINTENANCE_RETENTION_DAYS', 30),
    reapIdleMs: num('MAINTENANCE_REAP_IDLE_MS', 600_000),
    applicationNamePrefix: apiPrefix,
    reapRolePrefix: process.env.TENANT_POOLS_SCHEMA_PREFIX || 'tenant_',
  })
  metrics.addMetric('MaintenanceProcessed', MetricUnit.Count, summary.processed)
  metrics.addMetric('MaintenanceFailed', MetricUnit.Count, summary.failed)
  metrics.addMetric('MaintenanceRemaining', MetricUnit.Count, summary.remaining)
  metrics.addMetric('ZombiesReaped', MetricUnit.Count, summary.zombiesReaped)
  metrics.publishStoredMetrics()
  return summary
}
