// middy middleware: every error becomes `{ "error": { "code", "message", "requestId" } }` with the
// status toHttp() chose. Server errors are logged with what helps (name, code, SQLSTATE), never the
// request body; the caller sees no stack and no SQL.
import type { MiddlewareObj, Request } from '@middy/core'
import { sqlState } from '../sqlstate'
import type { Log } from '../types'
import { jsonResponse } from './json-response'
import { toHttp } from './to-http'

/**
 * `logger`: one for every request, or the request's own (concurrent invocations each have theirs).
 *
 * @example
 * export const handler = middy<Event, Result, Error, TenantContext>()
 *   .use(httpErrors({ logger })) // first: its onError runs last, after tenantDb's release
 *   .use(tenantDb({ pools, catalog }))
 *   .handler(listOrders)
 */
export function httpErrors({ logger: log }: { logger: Log | ((request: Request) => Log) }): MiddlewareObj {
  const httpErrorsOnError = async (request: Request) => {
    const logger = typeof log === 'function' ? log(request) : log
    const err = request.error
    const answer = toHttp(err)
    const requestId = request.context?.awsRequestId ?? 'unknown'
    const e = err as { name?: string; code?: unknown; message?: string; stack?: string }
    if (answer.status >= 500) {
      logger.error('request failed', {
        status: answer.status,
        errorName: e?.name,
        code: e?.code,
        sqlState: sqlState(err),
        stack: e?.stack,
      })
    } else {
      logger.info('request rejected', { status: answer.status, code: answer.code })
    }
    request.response = jsonResponse(
      answer.status,
      { error: { code: answer.code, message: answer.message, requestId } },
      answer.headers,
    )
  }
  return { onError: httpErrorsOnError }
}
