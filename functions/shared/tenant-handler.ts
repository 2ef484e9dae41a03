// Wraps a tenant-scoped HTTP handler: logs and metrics, error mapping, body limit and JSON parsing
// (for handlers that take a body), and the tenant's database.
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware'
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware'
import middy from '@middy/core'
import httpHeaderNormalizer from '@middy/http-header-normalizer'
import httpJsonBodyParser from '@middy/http-json-body-parser'
import type { APIGatewayProxyEventV2WithJWTAuthorizer, APIGatewayProxyStructuredResultV2 } from 'aws-lambda'
import { bodyLimit, httpErrors, type TenantContext, tenantDb } from '../../lib'
import { config } from './config'
import { poolMetrics } from './pool-metrics'
import { catalog, logger, metrics, pools } from './runtime'

export type TenantEvent = APIGatewayProxyEventV2WithJWTAuthorizer
export type TenantHandler = (
  event: TenantEvent,
  context: TenantContext,
) => Promise<APIGatewayProxyStructuredResultV2>

export const BODY_LIMIT_BYTES = config().BODY_LIMIT_BYTES

export function tenantHandler(handler: TenantHandler, { body = false } = {}) {
  const chain = middy<TenantEvent, APIGatewayProxyStructuredResultV2, Error, TenantContext>()
    .use(injectLambdaContext(logger, { resetKeys: true }))
    .use(logMetrics(metrics, { captureColdStartMetric: true }))
    .use(httpErrors({ logger }))
    .use(poolMetrics(pools, metrics))
    .use(httpHeaderNormalizer())
  if (body) chain.use(bodyLimit({ maxBytes: BODY_LIMIT_BYTES })).use(httpJsonBodyParser())
  return chain
    .use(tenantDb({ pools, catalog }))
    .use({
      before: (request) => {
        logger.appendKeys({ tenantId: request.context.tenant.id })
      },
      after: (request) => {
        logger.info('request served', {
          status: (request.response as { statusCode?: number } | undefined)?.statusCode,
        })
      },
    })
    .handler(handler)
}
