// The orders handlers on a controlled server of the caller's own: the functions build their
// registry from the environment, once, as a Lambda environment would; the master schema is migrated
// and the tenants provisioned.
import type { APIGatewayProxyStructuredResultV2 } from 'aws-lambda'
import type { TenantPools, TenantPoolsStats } from '../../lib'
import { type ControlledServer, controlledServer } from './controlled-pg'

export type Handler = (event: unknown, context: unknown) => Promise<APIGatewayProxyStructuredResultV2>

/** What a world needs from the functions; loaded after the environment is set. */
export interface WorldModules {
  handlers: { create: Handler; list: Handler }
  migrateMaster(pools: TenantPools): Promise<unknown>
  provisionTenant(pools: TenantPools, tenantId: string): Promise<unknown>
  getTenantPools(): TenantPools
  resetTenantPools(): Promise<void>
}

export interface HandlerWorld {
  server: ControlledServer
  handlers: WorldModules['handlers']
  /** Ends the registry and the server, and restores the environment. */
  end(): Promise<void>
}

/** Jest's loader: the sources, through its transform. */
const fromSources = async (): Promise<WorldModules> => ({
  ...(await import('../../functions/admin/provision')),
  ...(await import('../../lib')),
  handlers: (await import('../../functions/http/orders/handlers')) as unknown as WorldModules['handlers'],
})

export async function handlerWorld(
  tenants: string[],
  env: Record<string, string>,
  load: () => Promise<WorldModules> = fromSources,
): Promise<HandlerWorld> {
  const saved = { ...process.env }
  const server = await controlledServer()
  Object.assign(process.env, {
    DATABASE_URL: server.url,
    TENANT_POOLS_TRUST_TENANT_HEADER: 'true',
    POWERTOOLS_LOG_LEVEL: 'SILENT',
    POWERTOOLS_METRICS_DISABLED: 'true',
    ...env,
  })
  const modules = await load()
  await modules.migrateMaster(modules.getTenantPools())
  for (const t of tenants) await modules.provisionTenant(modules.getTenantPools(), t)
  return {
    server,
    handlers: modules.handlers,
    end: async () => {
      await modules.resetTenantPools()
      await server.quit()
      process.env = saved
    },
  }
}

/**
 * Nothing leaked after a chaos run: no caller waiting, every scope within the per-scope limit (the
 * default 2) with no call in flight, the budget within `budget` and nobody queued for it.
 */
export function expectNothingLeaked(stats: TenantPoolsStats, budget: number): void {
  expect(stats.totals.waiting).toBe(0)
  expect(stats.pools.every((p) => p.total <= 2 && p.active === 0)).toBe(true)
  expect(stats.budget.used).toBeLessThanOrEqual(budget)
  expect(stats.budget.waiting).toBe(0)
}
