// The orders handlers in process, as a Lambda environment loads them: the environment set first (the
// tenant from the x-tenant-id header, logs and metrics off, plus `env`), then the functions imported,
// the master schema migrated and `tenants` provisioned. end() ends the registry and restores the
// environment.
import type { APIGatewayProxyStructuredResultV2 } from 'aws-lambda'
import { getTenantPools, resetTenantPools } from '../../lib'

export type Handler = (event: unknown, context: unknown) => Promise<APIGatewayProxyStructuredResultV2>
export type OrdersRoute = 'create' | 'list' | 'get' | 'patch' | 'remove' | 'stats' | 'customers'

export interface OrdersInProcess {
  handlers: Record<OrdersRoute, Handler>
  end(): Promise<void>
}

export async function ordersInProcess(
  tenants: string[],
  env: Record<string, string> = {},
): Promise<OrdersInProcess> {
  const saved = { ...process.env }
  // Set before the functions are loaded: they read these once, as a Lambda environment would.
  Object.assign(process.env, {
    TENANT_POOLS_TRUST_TENANT_HEADER: 'true',
    POWERTOOLS_LOG_LEVEL: 'SILENT',
    POWERTOOLS_METRICS_DISABLED: 'true',
    ...env,
  })
  const { migrateMaster, provisionTenant } = await import('../../functions/admin/provision')
  const orders = await import('../../functions/http/orders/handlers')
  const { customers } = await import('../../functions/http/orders/customers')
  await migrateMaster(getTenantPools())
  for (const tenant of tenants) await provisionTenant(getTenantPools(), tenant)
  return {
    handlers: { ...orders, customers } as unknown as Record<OrdersRoute, Handler>,
    end: async () => {
      await resetTenantPools()
      process.env = saved
    },
  }
}

/** A Lambda context with time enough. */
export const lambdaContext = () => ({
  awsRequestId: 'in-process-request',
  functionName: 'orders',
  functionVersion: '$LATEST',
  invokedFunctionArn: 'arn:aws:lambda:eu-west-1:000000000000:function:orders',
  memoryLimitInMB: '512',
  getRemainingTimeInMillis: () => 30_000,
})
