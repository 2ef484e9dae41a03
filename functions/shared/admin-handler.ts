// Wraps an admin handler: the same logs, metrics and error mapping as tenant handlers, plus an admin
// key check (x-admin-key) that holds everywhere, serverless-offline included. Fails closed: with
// no key configured, every admin call is refused.
import { createHash, timingSafeEqual } from 'node:crypto'
import middy from '@middy/core'
import httpHeaderNormalizer from '@middy/http-header-normalizer'
import httpJsonBodyParser from '@middy/http-json-body-parser'
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, Context } from 'aws-lambda'
import { bodyLimit, HttpError, httpErrors } from '../../lib'
import { adminKey } from './admin-key'
import { loggerOf, requestTelemetry } from './request-telemetry'
import { logger, metrics, pools } from './runtime'

export type AdminHandler = (
  event: APIGatewayProxyEventV2,
  context: Context,
) => Promise<APIGatewayProxyStructuredResultV2>

const digest = (s: string) => createHash('sha256').update(s).digest()

async function assertAdmin(event: APIGatewayProxyEventV2): Promise<void> {
  const expected = await adminKey()
  const given = event.headers?.['x-admin-key']
  if (!expected) {
    logger.error('No admin key is configured: refusing every admin call')
    throw new HttpError(401, 'ADMIN_REQUIRED', 'Admin credentials required')
  }
  // Hashes have equal length, so the comparison takes the same time whatever was sent.
  if (!given || !timingSafeEqual(digest(given), digest(expected))) {
    throw new HttpError(401, 'ADMIN_REQUIRED', 'Admin credentials required')
  }
}

export function adminHandler(handler: AdminHandler, { body = false } = {}) {
  const chain = middy<APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2>()
    .use(requestTelemetry(logger, metrics))
    .use(httpErrors({ logger: loggerOf(logger) }))
    .use(httpHeaderNormalizer())
    .use({ before: (request) => assertAdmin(request.event) })
    // A freeze may lie between this invocation and the last, however short.
    .use({ before: () => pools().invocationStarted() })
  if (body) chain.use(bodyLimit({ maxBytes: 16 * 1024 })).use(httpJsonBodyParser())
  return chain.handler(handler)
}
