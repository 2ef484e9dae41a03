// middy middleware: refuses a missing body with 400 and one over `maxBytes` with 413, before
// anything parses it.
import type { MiddlewareObj, Request } from '@middy/core'
import type { APIGatewayProxyEventV2 } from 'aws-lambda'
import { HttpError } from '../errors'

const defaults = { maxBytes: 64 * 1024 }

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
