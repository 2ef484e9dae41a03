// The orders handlers on a controlled server of the test file's own: the functions build their
// registry from the environment, once, as a Lambda environment would; the master schema is migrated
// and the tenants provisioned.
import type { APIGatewayProxyStructuredResultV2 } from 'aws-lambda'
import { getTenantPools, resetTenantPools } from '../../lib'
import { type ControlledServer, controlledServer } from './controlled-pg'

export type Handler = (event: unknown, context: unknown) => Promise<APIGatewayProxyStructuredResultV2>

export interface HandlerWorld {
  server: ControlledServer
  handlers: { create: Handler; list: Handler }
  /** Ends the registry and the server, and restores the environment. */
  end(): Promise<void>
}

export async function handlerWorld(tenants: string[], env: Record<string, string>): Promise<HandlerWorld> {
  const saved = { ...process.env }
  const server = await controlledServer()
  Object.assign(process.env, {
    DATABASE_URL: server.url,
    TENANT_POOLS_TRUST_TENANT_HEADER: 'true',
    POWERTOOLS_LOG_LEVEL: 'SILENT',
    POWERTOOLS_METRICS_DISABLED: 'true',
    ...env,
  })
  const { migrateMaster, provisionTenant } = await import('../../functions/admin/provision')
  const handlers = (await import(
    '../../functions/http/orders/handlers'
  )) as unknown as HandlerWorld['handlers']
  await migrateMaster(getTenantPools())
  for (const t of tenants) await provisionTenant(getTenantPools(), t)
  return {
    server,
    handlers,
    end: async () => {
      await resetTenantPools()
      await server.quit()
      process.env = saved
    },
  }
}
