// middy middleware: refuses a missing body with 400 and one over `maxBytes` with 413, before
// anything parses it.
import type { MiddlewareObj, Request } from '@middy/core'
import type { APIGatewayProxyEventV2 } from 'aws-lambda'
import { HttpError } from '../errors'

const defaults = { maxBytes: 64 * 1024 }

/**
 * middy middleware: refuses a request with no body (400) or one over `maxBytes` (413, 64 KiB by
 * default) before anything parses it.
 *
 * @example
 * export const handler = middy()
 *   .use(httpErrors({ logger }))
 *   .use(bodyLimit({ maxBytes: 16 * 1024 })) // before the parser: 400 without a body, 413 over 16 KiB
 *   .use(httpJsonBodyParser())
 *   .handler(createOrder)
 */
export function bodyLimit(options: { maxBytes?: number } = {}): MiddlewareObj<APIGatewayProxyEventV2> {
  const { maxBytes } = { ...defaults, ...options }
  const bodyLimitBefore = (request: Request<APIGatewayProxyEventV2>) => {
    const { body, isBase64Encoded } = request.event
    if (body === undefined || body === null || body === '') {
      throw new HttpError(400, 'BODY_REQUIRED', 'This request needs a JSON body')
    }
    const bytes = isBase64Encoded ? Buffer.from(body, 'base64').length : Buffer.byteLength(body)
    if (bytes > maxBytes) {
      throw new HttpError(413, 'PAYLOAD_TOO_LARGE', `The body is ${bytes} bytes; the limit is ${maxBytes}`)
    }
  }
  return { before: bodyLimitBefore }
}
