// Wraps a tenant-scoped HTTP handler: logs and metrics, error mapping, body limit and JSON parsing
// (for handlers that take a body), and the tenant's database.
import middy from '@middy/core'
import httpHeaderNormalizer from '@middy/http-header-normalizer'
import httpJsonBodyParser from '@middy/http-json-body-parser'
import type { APIGatewayProxyEventV2WithJWTAuthorizer, APIGatewayProxyStructuredResultV2 } from 'aws-lambda'
import { bodyLimit, httpErrors, type TenantContext, tenantDb } from '../../lib'
import { config } from './config'
import { poolMetrics } from './pool-metrics'
import { loggerOf, requestTelemetry, type TelemetryContext } from './request-telemetry'
import { catalog, logger, metrics, pools } from './runtime'

export type TenantEvent = APIGatewayProxyEventV2WithJWTAuthorizer
export type TenantHandler = (
  event: TenantEvent,
  context: TenantContext,
) => Promise<APIGatewayProxyStructuredResultV2>

export const BODY_LIMIT_BYTES = config().BODY_LIMIT_BYTES

export function tenantHandler(handler: TenantHandler, { body = false } = {}) {
  // Without middy's early timeout (a timer, an AbortController's race and two promises per request):
  // every await of these handlers is a database call, which tenantDb bounds by the invocation's
  // deadline less a 1 s margin, so the answer comes before Lambda's timeout without it.
  const chain = middy<TenantEvent, APIGatewayProxyStructuredResultV2, Error, TenantContext>({
    timeoutEarlyInMillis: 0,
  })
    .use(requestTelemetry(logger, metrics))
    .use(httpErrors({ logger: loggerOf(logger) }))
    .use(poolMetrics(pools))
    .use(httpHeaderNormalizer())
  if (body) chain.use(bodyLimit({ maxBytes: BODY_LIMIT_BYTES })).use(httpJsonBodyParser())
  return chain
    .use(tenantDb({ pools, catalog }))
    .use({
      before: (request) => {
        ;(request.context as TenantContext & TelemetryContext).logger.appendKeys({
          tenantId: request.context.tenant.id,
        })
      },
      after: (request) => {
        ;(request.context as TenantContext & TelemetryContext).logger.info('request served', {
          status: (request.response as { statusCode?: number } | undefined)?.statusCode,
        })
      },
    })
    .handler(handler)
}
